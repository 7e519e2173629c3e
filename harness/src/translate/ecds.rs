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

/// The ECDS resource for `plugin` with its module at `module`.
pub fn extension_config(plugin: &IstioWasmPlugin, module: &Path) -> Value {
    json!({
        "@type": TYPED_EXTENSION_CONFIG_TYPE,
        "name": plugin.filter_name(),
        "typed_config": {"@type": WASM_HTTP_FILTER_TYPE, "config": plugin_config(plugin, module)},
    })
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
    if let Some(strategy) = spec.fail_strategy {
        config["failure_policy"] = json!(match strategy {
            FailStrategy::FailOpen => "FAIL_OPEN",
            FailStrategy::FailClose => "FAIL_CLOSED",
        });
    }
    config
}
