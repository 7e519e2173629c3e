//! A scenario as the Kubernetes resources istiod reads: a Gateway selecting
//! the gateway's label, a ServiceEntry per service (static endpoint on its
//! echo backend, so clusters are `outbound|PORT||FQDN`), a VirtualService per
//! host whose HTTP routes carry the scenario's route names, and the
//! WasmPlugins with their url bound to the pushed digest.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};

use serde_json::{json, Value};

use crate::scenario::{Scenario, SHA256_AUTO};
use crate::translate::placement::ROOT_NAMESPACE;
use crate::translate::IstioWasmPlugin;

/// The gateway stands in Higress's namespace, so Higress WasmPlugins (kept
/// in their namespace by the translation) select it, as do Istio WasmPlugins
/// in the root namespace.
pub use crate::translate::placement::GATEWAY_NAMESPACE;
pub const GATEWAY_NAME: &str = "plugproof-gateway";
/// The value of the `istio` label the selectors match.
pub const GATEWAY_LABEL: &str = "plugproof-gateway";

pub struct Input<'a> {
    pub scenario: &'a Scenario,
    /// Each WasmPlugin with the `oci://` url of its module and the pushed
    /// image's digest (hex), which is what istio checks `sha256` against for
    /// an `oci://` url (`sha256: auto`).
    pub plugins: Vec<(&'a IstioWasmPlugin, String, &'a str)>,
    pub backends: &'a BTreeMap<String, SocketAddr>,
    pub gateway_ip: Ipv4Addr,
    pub gateway_port: u16,
}

pub fn render(input: &Input<'_>) -> Vec<Value> {
    let mut objects = vec![gateway(input)];
    objects.extend(input.scenario.policies.iter().map(|p| policy(&p.document)));
    objects.extend(input.scenario.services.iter().map(|service| {
        let backend = input.backends[&service.name];
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": service.name, "namespace": GATEWAY_NAMESPACE},
            "spec": {
                "hosts": [service.host],
                "location": "MESH_INTERNAL",
                "ports": [{"number": service.port, "name": "http", "protocol": "HTTP"}],
                "resolution": "STATIC",
                "endpoints": [{"address": backend.ip().to_string(), "ports": {"http": backend.port()}}],
            },
        })
    }));
    objects.extend(virtual_services(input.scenario));
    // Ties in a phase fall to creation time, then istiod's name: created
    // in that order, the two agree, as in the model (`placement`).
    let mut plugins: Vec<&(&IstioWasmPlugin, String, &str)> = input.plugins.iter().collect();
    plugins.sort_by_key(|(p, ..)| (p.created, p.sort_name(), p.namespace.clone()));
    // Every WasmPlugin is applied, wherever it is: istiod decides which reach the gateway.
    let namespaces: BTreeSet<&str> = plugins
        .iter()
        .map(|(p, ..)| p.namespace.as_str())
        .filter(|ns| ![GATEWAY_NAMESPACE, ROOT_NAMESPACE].contains(ns))
        .collect();
    objects.extend(
        namespaces.into_iter().map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
    );
    objects.extend(plugins.into_iter().map(|(p, url, sha256)| wasm_plugin(p, url, sha256)));
    objects
}

/// A native policy as written, in the gateway's namespace and selecting the
/// gateway unless it says otherwise.
fn policy(document: &Value) -> Value {
    let mut object = document.clone();
    if object["metadata"]["namespace"].is_null() {
        object["metadata"]["namespace"] = json!(GATEWAY_NAMESPACE);
    }
    let spec = &object["spec"];
    if spec["selector"].is_null() && spec["targetRef"].is_null() && spec["targetRefs"].is_null() {
        object["spec"]["selector"] = json!({"matchLabels": {"istio": GATEWAY_LABEL}});
    }
    object
}

fn gateway(input: &Input<'_>) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
        "spec": {
            "selector": {"istio": GATEWAY_LABEL},
            "servers": [{
                "port": {"number": input.gateway_port, "name": "http", "protocol": "HTTP"},
                "bind": input.gateway_ip.to_string(),
                "hosts": ["*"],
            }],
        },
    })
}

/// One VirtualService per distinct host, holding every route that lists
/// it, in scenario order (as the standalone profile's virtual hosts).
fn virtual_services(scenario: &Scenario) -> Vec<Value> {
    scenario
        .routes_by_host()
        .into_iter()
        .enumerate()
        .map(|(index, (host, routes))| {
            let http: Vec<Value> = routes
                .into_iter()
                .map(|(route, service)| {
                    json!({
                        "name": route.name,
                        "match": [{"uri": {"prefix": route.path_prefix}}],
                        "route": [{"destination": {"host": service.host, "port": {"number": service.port}}}],
                    })
                })
                .collect();
            json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": format!("host-{index}"), "namespace": GATEWAY_NAMESPACE},
                "spec": {
                    "hosts": [host],
                    "gateways": [format!("{GATEWAY_NAMESPACE}/{GATEWAY_NAME}")],
                    "http": http,
                },
            })
        })
        .collect()
}

fn wasm_plugin(plugin: &IstioWasmPlugin, url: &str, image_digest: &str) -> Value {
    let mut spec = serde_json::to_value(&plugin.spec).expect("a WasmPlugin spec serialises");
    spec["url"] = json!(url);
    if spec["sha256"] == SHA256_AUTO {
        spec["sha256"] = json!(image_digest);
    }
    spec["selector"] = json!({"matchLabels": {"istio": GATEWAY_LABEL}});
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": plugin.name, "namespace": plugin.namespace},
        "spec": spec,
    })
}
