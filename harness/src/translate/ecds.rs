//! An Istio WasmPlugin as the ECDS resource istiod sends (and pilot-agent
//! rewrites to a local file): a `TypedExtensionConfig` holding an
//! `envoy.extensions.filters.http.wasm.v3.Wasm` filter.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::istio::IstioWasmPlugin;
use crate::scenario::{EnvValueSource, FailStrategy};

pub const WASM_HTTP_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const TYPED_EXTENSION_CONFIG_TYPE: &str = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";
const V8: &str = "envoy.wasm.runtime.v8";

/// How the fail strategy reaches Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailField {
    /// `failure_policy`, as istiod sends it since 1.25.
    FailurePolicy,
    /// The deprecated `fail_open` bool, as istiod before 1.25 sent it.
    FailOpen,
}

/// The ECDS resource for `plugin` with its module at `module`.
pub fn extension_config(plugin: &IstioWasmPlugin, module: &Path, fail_field: FailField) -> Value {
    json!({
        "@type": TYPED_EXTENSION_CONFIG_TYPE,
        "name": plugin.filter_name(),
        "typed_config": {"@type": WASM_HTTP_FILTER_TYPE, "config": plugin_config(plugin, module, fail_field)},
    })
}

/// Mirrors istiod's `buildPluginConfig` (pilot/pkg/model/extensions.go).
fn plugin_config(plugin: &IstioWasmPlugin, module: &Path, fail_field: FailField) -> Value {
    let spec = &plugin.spec;
    let mut key_values = Map::new();
    let mut host_env_keys = Vec::new();
    for env in spec.vm_config.iter().flat_map(|vm| &vm.env) {
        match env.value_from.unwrap_or(EnvValueSource::Inline) {
            EnvValueSource::Inline => {
                key_values.insert(env.name.clone(), Value::String(env.value.clone().unwrap_or_default()));
            }
            EnvValueSource::Host => host_env_keys.push(Value::String(env.name.clone())),
        }
    }
    let mut config = json!({
        "name": plugin.plugin_config_name(),
        "root_id": spec.plugin_name.clone().unwrap_or_default(),
        "vm_config": {
            "runtime": V8,
            "code": {"local": {"filename": module}},
            "environment_variables": {"key_values": key_values, "host_env_keys": host_env_keys},
        },
    });
    // istiod sends no configuration at all for an empty pluginConfig.
    if let Some(plugin_config) = spec.plugin_config.as_ref().filter(|c| !c.is_empty()) {
        config["configuration"] = json!({
            "@type": STRING_VALUE_TYPE,
            "value": Value::Object(plugin_config.clone()).to_string(),
        });
    }
    match (fail_field, spec.fail_strategy) {
        (_, None) => {}
        (FailField::FailurePolicy, Some(strategy)) => {
            config["failure_policy"] = json!(match strategy {
                FailStrategy::FailOpen => "FAIL_OPEN",
                FailStrategy::FailClose => "FAIL_CLOSED",
            });
        }
        (FailField::FailOpen, Some(strategy)) => config["fail_open"] = json!(strategy == FailStrategy::FailOpen),
    }
    config
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::{json, Value};

    use super::*;
    use crate::scenario::Reference;
    use crate::translate::istio::IstioSpec;

    fn config(fail_strategy: Option<FailStrategy>, fail_field: FailField) -> Value {
        let plugin = IstioWasmPlugin {
            name: "p".into(),
            namespace: "istio-system".into(),
            plugin: "p".into(),
            reference: Reference::Digest,
            spec: IstioSpec { fail_strategy, ..IstioSpec::default() },
            created: 0,
        };
        extension_config(&plugin, Path::new("/m.wasm"), fail_field)["typed_config"]["config"].clone()
    }

    #[rstest]
    #[case::unset_sends_neither(None, FailField::FailurePolicy, None, None)]
    #[case::policy_open(Some(FailStrategy::FailOpen), FailField::FailurePolicy, Some(json!("FAIL_OPEN")), None)]
    #[case::policy_closed(Some(FailStrategy::FailClose), FailField::FailurePolicy, Some(json!("FAIL_CLOSED")), None)]
    #[case::legacy_open(Some(FailStrategy::FailOpen), FailField::FailOpen, None, Some(json!(true)))]
    #[case::legacy_closed(Some(FailStrategy::FailClose), FailField::FailOpen, None, Some(json!(false)))]
    #[case::legacy_unset_sends_neither(None, FailField::FailOpen, None, None)]
    fn fail_strategy_fields(
        #[case] strategy: Option<FailStrategy>,
        #[case] field: FailField,
        #[case] failure_policy: Option<Value>,
        #[case] fail_open: Option<Value>,
    ) {
        let config = config(strategy, field);
        assert_eq!(config.get("failure_policy").cloned(), failure_policy);
        assert_eq!(config.get("fail_open").cloned(), fail_open);
    }
}
