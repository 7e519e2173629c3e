//! `service`: a proxy-wasm module for a Wasm service (a singleton VM that
//! Envoy runs beside its filters, `envoy.bootstrap.wasm`). Configured with
//! `{"shared_data": {KEY: VALUE, ...}}`, it writes each value into the
//! shared data of its `vm_id` when it is configured, where a filter's VM of
//! the same `vm_id` (such as `stamp` with `shared_data: [KEY]`) reads it.
//!
//! The logic lives here as plain functions; `root` is the proxy-wasm glue.

use std::collections::BTreeMap;

use serde::Deserialize;

mod root;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub shared_data: BTreeMap<String, String>,
}

pub fn parse_configuration(bytes: &[u8]) -> Result<Config, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_lists_shared_data() {
        let config = parse_configuration(br#"{"shared_data": {"greeting": "hello"}}"#).unwrap();
        assert_eq!(config.shared_data["greeting"], "hello");
        assert!(parse_configuration(b"{}").is_err());
        assert!(parse_configuration(br#"{"shared_data": {"a": 1}}"#).is_err());
    }
}
