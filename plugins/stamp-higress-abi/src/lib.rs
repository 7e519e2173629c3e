//! `stamp-higress-abi`: a working HTTP filter whose module declares the
//! proxy-wasm ABI version `0.2.100`, the marker the Higress Go SDK
//! (`higress-group/wasm-go`) exports and only Higress's Envoy knows. On
//! upstream Envoy the module must be refused at load; on Higress's Envoy it
//! stamps responses like `stamp` does, so a scenario can tell the two apart.
//!
//! Why not `stamp` with a feature: the proxy-wasm crate (0.2.x) exports
//! `proxy_abi_version_0_2_1` from its lib.rs with no feature to turn it off,
//! and a cdylib exports every `#[no_mangle]` function of its dependencies, so
//! any module built on the SDK declares 0.2.1 (adding our marker would make
//! two, and upstream Envoy would load it as 0.2.1). So this crate is written
//! against the ABI directly: the few host calls and callbacks it needs, in
//! `abi`. The configuration logic here is plain Rust, tested on the host.

use std::collections::BTreeMap;

use serde::Deserialize;

mod abi;

/// Reported in `x-stamp-version`, where `stamp` says `v1` or `v2`.
pub const VERSION: &str = "higress-abi";

pub const STAMP_HEADER: &str = "x-stamp";
pub const VERSION_HEADER: &str = "x-stamp-version";

/// The plugin configuration: a subset of `stamp`'s, one global config and no
/// `_rules_`. Other keys are refused, so a `stamp` configuration that asks
/// for more than this module does fails loudly instead of half working.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
    /// Added to every response, before the stamp headers.
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
}

impl Config {
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The headers added to every response.
    pub fn response_headers(&self) -> Vec<(&str, &str)> {
        let configured = self.response_headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        configured.chain([(STAMP_HEADER, self.name.as_str()), (VERSION_HEADER, VERSION)]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_alone_is_enough() {
        let c = Config::parse(br#"{"name": "n"}"#).unwrap();
        assert_eq!(c.response_headers(), vec![("x-stamp", "n"), ("x-stamp-version", "higress-abi")]);
    }

    #[test]
    fn response_headers_come_before_stamp() {
        let c = Config::parse(br#"{"name": "n", "response_headers": {"x-b": "2", "x-a": "1"}}"#).unwrap();
        assert_eq!(
            c.response_headers(),
            vec![("x-a", "1"), ("x-b", "2"), ("x-stamp", "n"), ("x-stamp-version", "higress-abi")]
        );
    }

    #[test]
    fn bad_configurations_are_rejected() {
        for bytes in [
            &b""[..],
            b"not json",
            br#"{}"#,
            br#"{"name": 1}"#,
            br#"{"name": "n", "_rules_": []}"#,
            br#"{"name": "n", "local_reply": {"status": 403}}"#,
        ] {
            assert!(Config::parse(bytes).is_err(), "{}", String::from_utf8_lossy(bytes));
        }
    }
}
