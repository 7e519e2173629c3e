//! An Istio WasmPlugin as the ECDS resource istiod sends (and pilot-agent
//! rewrites to a local file): a `TypedExtensionConfig` holding an
//! `envoy.extensions.filters.http.wasm.v3.Wasm` filter, or the network one.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::istio::IstioWasmPlugin;
use super::istiod::FailField;
use crate::scenario::{EnvValueSource, FailStrategy};

pub const WASM_HTTP_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
pub const WASM_NETWORK_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm";
const TYPED_EXTENSION_CONFIG_TYPE: &str = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";
pub const V8_RUNTIME: &str = "envoy.wasm.runtime.v8";

/// The ECDS resource for `plugin` with its module at `module`, as its istiod sends it.
pub fn extension_config(plugin: &IstioWasmPlugin, module: &Path) -> Value {
    json!({
        "@type": TYPED_EXTENSION_CONFIG_TYPE,
        "name": plugin.filter_name(),
        "typed_config": {"@type": filter_type(plugin), "config": plugin_config(plugin, module)},
    })
}

/// The type of Wasm filter istiod makes of `plugin`: a network one for `type: NETWORK`.
pub fn filter_type(plugin: &IstioWasmPlugin) -> &'static str {
    if plugin.spec.network() {
        WASM_NETWORK_FILTER_TYPE
    } else {
        WASM_HTTP_FILTER_TYPE
    }
}

/// A plugin's configuration as Envoy takes it: a `google.protobuf.StringValue`.
pub fn string_value(text: &str) -> Value {
    json!({"@type": STRING_VALUE_TYPE, "value": text})
}

/// Mirrors istiod's `buildPluginConfig` (pilot/pkg/model/extensions.go).
fn plugin_config(plugin: &IstioWasmPlugin, module: &Path) -> Value {
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
            "runtime": V8_RUNTIME,
            "code": {"local": {"filename": module}},
            "environment_variables": {"key_values": key_values, "host_env_keys": host_env_keys},
        },
    });
    // istiod sends no configuration at all for an empty pluginConfig.
    if let Some(plugin_config) = spec.plugin_config.as_ref().filter(|c| !c.is_empty()) {
        config["configuration"] = string_value(&Value::Object(plugin_config.clone()).to_string());
    }
    // FAIL_CLOSE is the API's zero value: unset reads as FAIL_CLOSE.
    let strategy = spec.fail_strategy.unwrap_or(FailStrategy::FailClose);
    match plugin.istiod.fail_field() {
        FailField::FailurePolicy => {
            config["failure_policy"] = json!(match strategy {
                FailStrategy::FailOpen => "FAIL_OPEN",
                FailStrategy::FailClose => "FAIL_CLOSED",
                FailStrategy::FailReload => "FAIL_RELOAD",
            });
        }
        // A false bool is proto3's default and is not sent.
        FailField::FailOpen if strategy == FailStrategy::FailOpen => config["fail_open"] = json!(true),
        FailField::FailOpen => {}
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
    use crate::translate::istiod::IstiodVersion;

    fn config(fail_strategy: Option<FailStrategy>, istiod: &str) -> Value {
        let plugin = IstioWasmPlugin {
            kind: crate::scenario::ResourceKind::WasmPlugin,
            name: "p".into(),
            namespace: "istio-system".into(),
            plugin: "p".into(),
            reference: Reference::Digest,
            spec: IstioSpec { fail_strategy, ..IstioSpec::default() },
            created: 0,
            istiod: IstiodVersion::parse(istiod).expect("a known version"),
            written: "istio-system/p".into(),
        };
        extension_config(&plugin, Path::new("/m.wasm"))["typed_config"]["config"].clone()
    }

    #[rstest]
    #[case::unset_is_fail_close(None, "1.30", Some(json!("FAIL_CLOSED")), None)]
    #[case::policy_open(Some(FailStrategy::FailOpen), "1.30", Some(json!("FAIL_OPEN")), None)]
    #[case::policy_closed(Some(FailStrategy::FailClose), "1.25", Some(json!("FAIL_CLOSED")), None)]
    #[case::legacy_open(Some(FailStrategy::FailOpen), "1.24", None, Some(json!(true)))]
    #[case::legacy_closed_sends_nothing(Some(FailStrategy::FailClose), "1.24", None, None)]
    #[case::policy_reload(Some(FailStrategy::FailReload), "1.27", Some(json!("FAIL_RELOAD")), None)]
    #[case::legacy_unset_sends_nothing(None, "1.24", None, None)]
    fn fail_strategy_fields(
        #[case] strategy: Option<FailStrategy>,
        #[case] istiod: &str,
        #[case] failure_policy: Option<Value>,
        #[case] fail_open: Option<Value>,
    ) {
        let config = config(strategy, istiod);
        assert_eq!(config.get("failure_policy").cloned(), failure_policy);
        assert_eq!(config.get("fail_open").cloned(), fail_open);
    }

    #[test]
    fn names_follow_the_istiod() {
        let config = |istiod| {
            extension_config(
                &IstioWasmPlugin {
                    kind: crate::scenario::ResourceKind::WasmPlugin,
                    name: "p".into(),
                    namespace: "ns".into(),
                    plugin: "p".into(),
                    reference: Reference::Digest,
                    spec: IstioSpec::default(),
                    created: 0,
                    istiod: IstiodVersion::parse(istiod).expect("a known version"),
                    written: "ns/p".into(),
                },
                Path::new("/m.wasm"),
            )
        };
        assert_eq!(config("1.29")["name"], "extensions.istio.io/wasmplugin/ns.p");
        assert_eq!(config("1.29")["typed_config"]["config"]["name"], "ns.p");
        assert_eq!(config("1.30")["typed_config"]["config"]["name"], "ns.p~istio-translated-wasmplugin");
    }
}
