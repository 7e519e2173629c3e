//! `probe`: a proxy-wasm test plugin that appends its id to `x-probe` on the
//! request and on the response, so a harness can read the order in which a
//! chain of filters ran: the backend sees `a,b,c`, the client `c,b,a`.
//!
//! The logic lives here as plain functions; `filter` is the proxy-wasm glue.

use std::rc::Rc;

use plugproof_rules::{ParseError, RuleMatcher};
use serde::Deserialize;

mod filter;

pub const PROBE_HEADER: &str = "x-probe";

/// One global or rule config; other keys, such as `_match_route_`, are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProbeConfig {
    pub id: String,
}

/// Parses the plugin configuration. Configs are shared with the streams
/// that select them, hence the `Rc`.
pub fn parse_configuration(bytes: &[u8]) -> Result<RuleMatcher<Rc<ProbeConfig>>, ParseError> {
    RuleMatcher::parse_slice(bytes, |value| ProbeConfig::deserialize(value).map(Rc::new))
}

/// The `x-probe` value after this probe: its id appended to what earlier
/// probes left. An empty header counts as absent, so no empty item appears.
pub fn append_id(existing: Option<&str>, id: &str) -> String {
    match existing {
        Some(existing) if !existing.is_empty() => format!("{existing},{id}"),
        _ => id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_probe_sets_its_id() {
        assert_eq!(append_id(None, "a"), "a");
        assert_eq!(append_id(Some(""), "a"), "a");
    }

    #[test]
    fn later_probes_append() {
        assert_eq!(append_id(Some("a"), "b"), "a,b");
        assert_eq!(append_id(Some("a,b"), "c"), "a,b,c");
    }

    #[test]
    fn global_config() {
        let m = parse_configuration(br#"{"id": "a"}"#).unwrap();
        assert_eq!(m.select(Some("h"), "", "").unwrap().config.id, "a");
    }

    #[test]
    fn rules_pick_ids() {
        let m =
            parse_configuration(br#"{"id": "g", "_rules_": [{"_match_route_": ["default/r1"], "id": "r"}]}"#).unwrap();
        assert_eq!(m.select(Some("h"), "default/r1", "").unwrap().config.id, "r");
        assert_eq!(m.select(Some("h"), "default/r2", "").unwrap().config.id, "g");
    }

    #[test]
    fn bad_configurations_are_rejected() {
        for bytes in [&b"{}"[..], br#"{"id": 1}"#, br#"{"_rules_": [{"_match_route_": ["r"]}]}"#, b"["] {
            assert!(parse_configuration(bytes).is_err(), "{}", String::from_utf8_lossy(bytes));
        }
    }
}
