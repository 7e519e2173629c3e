//! `stamp`: a proxy-wasm test plugin that marks the requests and responses of
//! the streams its configuration (Higress `_rules_` included) selects, so a
//! harness can see from outside which config, and which module build, ran.
//!
//! The logic lives here as plain functions; `filter` is the proxy-wasm glue.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use plugproof_glue::Environment;
use plugproof_rules::{ParseError, RuleMatcher};
use serde::Deserialize;
use serde_json::Value;

mod env;
mod filter;
mod shared;

pub use env::{EnvHeader, UNSET};
pub use shared::SharedHeader;

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
    /// Environment variables to report, each in `x-stamp-env-<name>`.
    #[serde(default)]
    pub env: Vec<EnvHeader>,
    /// Shared-data keys to report on the response, each in
    /// `x-stamp-shared-<key>`: the value, or `(unset)`.
    #[serde(default)]
    pub shared_data: Vec<SharedHeader>,
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
    /// `environment` is the VM's, None when it could not be read: then the
    /// `env` headers are left out rather than claim variables are unset.
    pub fn response_headers<'a>(&'a self, environment: Option<&'a Environment>) -> Vec<(&'a str, &'a str)> {
        let configured = self.response_headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        configured.chain(self.stamp_headers(environment)).collect()
    }

    /// The local reply to send, if this config answers requests itself. It
    /// carries the stamp headers too, since the plugin does not touch its
    /// own reply again on the response path.
    pub fn local_reply<'a>(&'a self, environment: Option<&'a Environment>) -> Option<Reply<'a>> {
        self.local_reply.as_ref().map(|reply| {
            let configured = reply.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            Reply {
                status: reply.status,
                headers: configured.chain(self.stamp_headers(environment)).collect(),
                body: reply.body.as_str(),
            }
        })
    }

    fn stamp_headers<'a>(&'a self, environment: Option<&'a Environment>) -> impl Iterator<Item = (&'a str, &'a str)> {
        let env = environment.into_iter().flat_map(|environment| self.env.iter().map(|e| e.report(environment)));
        env.chain([(STAMP_HEADER, self.name.as_str()), (VERSION_HEADER, VERSION)])
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
        assert!(c.request_headers.is_empty() && c.response_headers.is_empty() && c.env.is_empty());
        assert_eq!(c.local_reply, None);
        assert_eq!(c.response_headers(None), vec![("x-stamp", "n"), ("x-stamp-version", VERSION)]);
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
            c.response_headers(None),
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
        assert_eq!(c.local_reply(None), Some(expected));
    }

    #[test]
    fn local_reply_body_and_headers_are_optional() {
        let c = config(json!({"name": "n", "local_reply": {"status": 204}}));
        let expected = Reply { status: 204, headers: vec![("x-stamp", "n"), ("x-stamp-version", VERSION)], body: "" };
        assert_eq!(c.local_reply(None), Some(expected));
    }

    #[test]
    fn env_headers_report_the_environment() {
        let c = config(json!({"name": "n", "env": ["GREETING", "HOME", "MISSING"], "response_headers": {"x-a": "1"}}));
        let environment: Environment =
            [("GREETING", "hello"), ("HOME", "/root")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        assert_eq!(
            c.response_headers(Some(&environment)),
            vec![
                ("x-a", "1"),
                ("x-stamp-env-greeting", "hello"),
                ("x-stamp-env-home", "/root"),
                ("x-stamp-env-missing", UNSET),
                ("x-stamp", "n"),
                ("x-stamp-version", VERSION)
            ]
        );
        let reply = config(json!({"name": "n", "env": ["HOME"], "local_reply": {"status": 403}}));
        assert_eq!(
            reply.local_reply(Some(&environment)).unwrap().headers,
            vec![("x-stamp-env-home", "/root"), ("x-stamp", "n"), ("x-stamp-version", VERSION)]
        );
    }

    #[test]
    fn env_headers_are_left_out_when_the_environment_is_unreadable() {
        let c = config(json!({"name": "n", "env": ["HOME"]}));
        assert_eq!(c.response_headers(None), vec![("x-stamp", "n"), ("x-stamp-version", VERSION)]);
    }

    #[test]
    fn env_must_list_header_safe_names() {
        let err = StampConfig::from_value(&json!({"name": "n", "env": ["A B"]})).unwrap_err();
        assert!(err.to_string().contains("cannot be part of a header name"), "{err}");
        assert!(StampConfig::from_value(&json!({"name": "n", "env": "HOME"})).is_err());
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
