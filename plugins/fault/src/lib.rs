//! `fault`: a proxy-wasm test plugin that makes its Wasm VM trap where its
//! configuration says, so a harness can see what Envoy does with a plugin
//! that crashes (its `failure_policy`). Streams it selects without a trap
//! get `x-fault: <name>` on the response, as a minimal stamp.
//!
//! The logic lives here as plain functions; `filter` is the proxy-wasm glue.

use std::rc::Rc;

use plugproof_rules::{ParseError, RuleMatcher};
use serde::Deserialize;

mod filter;

/// Response header naming the config that handled a stream that did not trap.
pub const FAULT_HEADER: &str = "x-fault";

/// Where the VM traps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trap {
    /// In `on_configure`: the plugin never gets a configuration.
    Configure,
    /// In `on_http_request_headers` of a stream that selects this config.
    RequestHeaders,
}

/// One global or rule config; other keys, such as `_match_route_`, are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FaultConfig {
    pub name: String,
    #[serde(default)]
    pub trap: Option<Trap>,
}

/// Parses the plugin configuration. Configs are shared with the streams
/// that select them, hence the `Rc`.
pub fn parse_configuration(bytes: &[u8]) -> Result<RuleMatcher<Rc<FaultConfig>>, ParseError> {
    RuleMatcher::parse_slice(bytes, |value| FaultConfig::deserialize(value).map(Rc::new))
}

/// Whether configuring the plugin traps: some config, global or rule, asks
/// for it. Configuration is not per stream, so a rule's `_match_*_` keys do
/// not narrow this trap.
pub fn traps_on_configure(matcher: &RuleMatcher<Rc<FaultConfig>>) -> bool {
    matcher.configs().any(|config| config.trap == Some(Trap::Configure))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> RuleMatcher<Rc<FaultConfig>> {
        parse_configuration(value.to_string().as_bytes()).expect("configuration parses")
    }

    #[test]
    fn trap_is_optional() {
        let m = parse(json!({"name": "n"}));
        let config = m.select(Some("h"), "", "").unwrap().config;
        assert_eq!(**config, FaultConfig { name: "n".into(), trap: None });
        assert!(!traps_on_configure(&m));
    }

    #[test]
    fn trap_names() {
        for (name, trap) in [("configure", Trap::Configure), ("request_headers", Trap::RequestHeaders)] {
            let m = parse(json!({"name": "n", "trap": name}));
            assert_eq!(m.select(Some("h"), "", "").unwrap().config.trap, Some(trap));
        }
    }

    #[test]
    fn unknown_trap_is_rejected_with_the_known_ones() {
        let err = parse_configuration(br#"{"name": "n", "trap": "response_headers"}"#).unwrap_err();
        assert!(err.to_string().contains("expected `configure` or `request_headers`"), "{err}");
    }

    #[test]
    fn configure_trap_in_any_config_traps_the_plugin() {
        assert!(traps_on_configure(&parse(json!({"name": "n", "trap": "configure"}))));
        let in_rule = json!({"_rules_": [
            {"_match_domain_": ["a.example.com"], "name": "a"},
            {"_match_route_": ["r"], "name": "r", "trap": "configure"},
        ]});
        assert!(traps_on_configure(&parse(in_rule)));
        assert!(!traps_on_configure(&parse(json!({"name": "n", "trap": "request_headers"}))));
    }

    #[test]
    fn rules_pick_the_trap() {
        let m = parse(json!({"name": "g", "_rules_": [
            {"_match_domain_": ["crash.example.com"], "name": "crash", "trap": "request_headers"},
        ]}));
        assert_eq!(m.select(Some("crash.example.com"), "", "").unwrap().config.trap, Some(Trap::RequestHeaders));
        assert_eq!(m.select(Some("other.example.com"), "", "").unwrap().config.trap, None);
    }

    #[test]
    fn bad_configurations_are_rejected() {
        for bytes in [&b"{}"[..], br#"{"trap": "configure"}"#, br#"{"name": 1}"#, b"["] {
            assert!(parse_configuration(bytes).is_err(), "{}", String::from_utf8_lossy(bytes));
        }
    }
}
