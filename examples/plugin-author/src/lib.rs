//! `api-key`: an HTTP filter that lets a request through only with a known
//! API key. A request without the key header, or with an unknown key, is
//! answered 401 by the plugin; a known key is taken off the request (the
//! backend never sees it) and replaced by a header naming the consumer.
//!
//! Configuration:
//!
//! ```json
//! {"keys": {"k-3f9a": "alice"}, "header": "x-api-key", "consumer_header": "x-consumer"}
//! ```
//!
//! `header` and `consumer_header` default as shown; unknown fields are
//! refused, so a typo fails the plugin's configuration instead of turning
//! the check off. The logic is plain Rust here; `filter` is the proxy-wasm
//! glue.

use std::collections::BTreeMap;

use serde::Deserialize;

#[cfg(target_arch = "wasm32")]
mod filter;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API key -> consumer name.
    pub keys: BTreeMap<String, String>,
    #[serde(default = "default_header")]
    pub header: String,
    #[serde(default = "default_consumer_header")]
    pub consumer_header: String,
}

fn default_header() -> String {
    "x-api-key".to_owned()
}

fn default_consumer_header() -> String {
    "x-consumer".to_owned()
}

impl Config {
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let config: Config = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if config.keys.is_empty() {
            return Err("`keys` is empty: no request could pass".into());
        }
        for name in [&config.header, &config.consumer_header] {
            if name.is_empty() || name.chars().any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')) {
                return Err(format!("`{name}` is not a lowercase header name"));
            }
        }
        Ok(config)
    }

    /// What to do with a request carrying `key` (the header's value, if any).
    pub fn decide(&self, key: Option<&str>) -> Decision<'_> {
        match key {
            None => Decision::Deny("missing API key"),
            Some(key) => match self.keys.get(key) {
                Some(consumer) => Decision::Allow { consumer },
                None => Decision::Deny("invalid API key"),
            },
        }
    }

    /// The `www-authenticate` value of a 401.
    pub fn challenge(&self) -> String {
        format!("ApiKey header=\"{}\"", self.header)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Answer 401 with this body.
    Deny(&'static str),
    /// Take the key off the request and name the consumer.
    Allow { consumer: &'a str },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(br#"{"keys": {"k-3f9a": "alice"}}"#).unwrap()
    }

    #[test]
    fn known_keys_pass_as_their_consumer_and_others_are_denied() {
        let config = config();
        assert_eq!(config.decide(Some("k-3f9a")), Decision::Allow { consumer: "alice" });
        assert_eq!(config.decide(Some("k-0000")), Decision::Deny("invalid API key"));
        assert_eq!(config.decide(None), Decision::Deny("missing API key"));
        assert_eq!(config.challenge(), r#"ApiKey header="x-api-key""#);
    }

    #[test]
    fn a_config_that_would_turn_the_check_off_is_refused() {
        assert!(Config::parse(br#"{"keys": {}}"#).unwrap_err().contains("`keys` is empty"));
        assert!(Config::parse(br#"{"keys": {"k": "a"}, "hedaer": "x"}"#).unwrap_err().contains("unknown field"));
        assert!(Config::parse(br#"{"keys": {"k": "a"}, "header": "X-Key"}"#).unwrap_err().contains("lowercase"));
    }
}
