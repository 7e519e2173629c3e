//! `stamp`: a proxy-wasm test plugin that marks the requests and responses of
//! the streams its configuration (Higress `_rules_` included) selects, so a
//! harness can see from outside which config, and which module build, ran.
//!
//! The logic lives here as plain functions; `filter` is the proxy-wasm glue.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use plugproof_rules::{ParseError, RuleMatcher};
use serde::Deserialize;
use serde_json::Value;

mod filter;

/// The module build, reported in `x-stamp-version` to tell upgrades apart.
pub const VERSION: &str = if cfg!(feature = "v2") { "v2" } else { "v1" };

/// Response header naming the config that handled the stream; added, never
/// replaced, so each stamp filter in a chain leaves its own value.
pub const STAMP_HEADER: &str = "x-stamp";
pub const VERSION_HEADER: &str = "x-stamp-version";

/// One global or rule config. Keys it does not know, such as `_match_route_`,
/// are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StampConfig {
    pub name: String,
    /// Set (replacing any value) on the request.
    #[serde(default)]
    pub request_headers: BTreeMap<String, String>,
    /// Added to the response.
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
    /// If present, the request is answered by the plugin and goes no further.
    #[serde(default)]
    pub local_reply: Option<LocalReply>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LocalReply {
    pub status: u32,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A local reply in the shape `send_http_response` takes.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    pub status: u32,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a str,
}

#[derive(Debug)]
pub enum ConfigError {
    Json(serde_json::Error),
    /// Envoy would assert on a status code outside the HTTP range.
    Status(u32),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Json(e) => write!(f, "{e}"),
            ConfigError::Status(s) => write!(f, "local_reply.status {s} is not in 100..=599"),
        }
    }
}

impl StampConfig {
    pub fn from_value(value: &Value) -> Result<Self, ConfigError> {
        let config = StampConfig::deserialize(value).map_err(ConfigError::Json)?;
        match &config.local_reply {
            Some(reply) if !(100..=599).contains(&reply.status) => Err(ConfigError::Status(reply.status)),
            _ => Ok(config),
        }
    }

    /// The headers added to a response that passes through this config.
    pub fn response_headers(&self) -> Vec<(&str, &str)> {
        let configured = self.response_headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        configured.chain(self.stamp_headers()).collect()
    }

    /// The local reply to send, if this config answers requests itself. It
    /// carries the stamp headers too, since the plugin does not touch its
    /// own reply again on the response path.
    pub fn local_reply(&self) -> Option<Reply<'_>> {
        self.local_reply.as_ref().map(|reply| {
            let configured = reply.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            Reply {
                status: reply.status,
                headers: configured.chain(self.stamp_headers()).collect(),
                body: reply.body.as_str(),
            }
        })
    }

    fn stamp_headers(&self) -> [(&str, &str); 2] {
        [(STAMP_HEADER, self.name.as_str()), (VERSION_HEADER, VERSION)]
    }
}

/// Parses the plugin configuration. Configs are shared with the streams
/// that select them, hence the `Rc`.
pub fn parse_configuration(bytes: &[u8]) -> Result<RuleMatcher<Rc<StampConfig>>, ParseError> {
    RuleMatcher::parse_slice(bytes, |value| StampConfig::from_value(value).map(Rc::new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugproof_rules::Source;
    use serde_json::json;

    fn config(value: Value) -> StampConfig {
        StampConfig::from_value(&value).expect("config parses")
    }

    #[test]
    fn name_alone_is_enough() {
        let c = config(json!({"name": "n"}));
        assert!(c.request_headers.is_empty() && c.response_headers.is_empty());
        assert_eq!(c.local_reply, None);
        assert_eq!(c.response_headers(), vec![("x-stamp", "n"), ("x-stamp-version", VERSION)]);
    }

    #[test]
    fn name_is_required() {
        let err = StampConfig::from_value(&json!({"request_headers": {}})).unwrap_err();
        assert!(err.to_string().contains("missing field `name`"), "{err}");
    }

    #[test]
    fn header_values_must_be_strings() {
        assert!(StampConfig::from_value(&json!({"name": "n", "request_headers": {"x-a": 1}})).is_err());
    }

    #[test]
    fn match_keys_are_ignored() {
        let c = config(json!({"name": "n", "_match_route_": ["r"], "unknown": true}));
        assert_eq!(c.name, "n");
    }

    #[test]
    fn response_headers_come_before_stamp() {
        let c = config(json!({"name": "n", "response_headers": {"x-b": "2", "x-a": "1"}}));
        assert_eq!(
            c.response_headers(),
            vec![("x-a", "1"), ("x-b", "2"), ("x-stamp", "n"), ("x-stamp-version", VERSION)]
        );
    }

    #[test]
    fn local_reply_carries_its_headers_and_the_stamp() {
        let c =
            config(json!({"name": "deny", "local_reply": {"status": 403, "body": "denied", "headers": {"x-c": "3"}}}));
        let expected = Reply {
            status: 403,
            headers: vec![("x-c", "3"), ("x-stamp", "deny"), ("x-stamp-version", VERSION)],
            body: "denied",
        };
        assert_eq!(c.local_reply(), Some(expected));
    }

    #[test]
    fn local_reply_body_and_headers_are_optional() {
        let c = config(json!({"name": "n", "local_reply": {"status": 204}}));
        let expected = Reply { status: 204, headers: vec![("x-stamp", "n"), ("x-stamp-version", VERSION)], body: "" };
        assert_eq!(c.local_reply(), Some(expected));
    }

    #[test]
    fn local_reply_status_must_be_http() {
        for status in [0, 99, 600] {
            let value = json!({"name": "n", "local_reply": {"status": status}});
            assert!(matches!(StampConfig::from_value(&value), Err(ConfigError::Status(s)) if s == status));
        }
    }

    #[test]
    fn configuration_with_rules() {
        let bytes = br#"{"name": "global", "_rules_": [
            {"_match_domain_": ["a.example.com"], "name": "by-domain", "request_headers": {"x-a": "1"}}
        ]}"#;
        let m = parse_configuration(bytes).unwrap();
        let selected = m.select(Some("a.example.com"), "", "").unwrap();
        assert_eq!(selected.source, Source::Rule(0));
        assert_eq!(selected.config.request_headers["x-a"], "1");
        assert_eq!(m.select(Some("b.example.com"), "", "").unwrap().config.name, "global");
    }

    #[test]
    fn bad_configurations_are_rejected() {
        for bytes in [
            &br#"{"name": "#[..],
            br#"{}"#,
            br#"{"_rules_": [{"name": "no-match-keys"}]}"#,
            br#"{"_rules_": [{"_match_route_": ["r"]}]}"#,
            br#"{"name": "n", "local_reply": {"status": 0}}"#,
        ] {
            assert!(parse_configuration(bytes).is_err(), "{}", String::from_utf8_lossy(bytes));
        }
    }
}
