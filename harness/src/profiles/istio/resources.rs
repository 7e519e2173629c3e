//! A scenario as the Kubernetes resources istiod reads, in the namespaces
//! the scenario landed in (`Names`): its namespaces; a Gateway selecting its
//! gateway's labels, with an HTTP server and one TCP server per TCP
//! listener (each routed by a VirtualService of its own); a ServiceEntry per service (static endpoint on its
//! echo backend, so clusters are `outbound|PORT||FQDN`) and a VirtualService
//! per host whose HTTP routes carry the scenario's route names, both seen by
//! the scenario's namespace and its gateway's only; its policies; and the
//! WasmPlugins, their url bound to the pushed digest, selecting its gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};

use serde_json::{json, Value};

use crate::mesh::{GATEWAY_LABEL, GATEWAY_NAMESPACE, GATEWAY_NAME_LABEL, GATEWAY_PORT};
use crate::profiles::{Names, PullLogin};
use crate::runtime::owner;
use crate::scenario::{
    Flavor, PullSecret, ResourceKind, RoutingApi, Scenario, SecretLogin, ServiceProtocol, WasmPlugin, WorkloadSelector,
    SHA256_AUTO,
};
use crate::translate::{self, IstioWasmPlugin};

pub use crate::mesh::GATEWAY_NAME;
/// The label every namespace of a scenario carries, and its value `plugproof`.
pub const MANAGED_BY: &str = crate::cluster::facts::SCENARIO_LABEL;
/// The annotation naming the process that owns a scenario's namespace (`runtime::owner`).
pub const OWNER: &str = "plugproof.dev/owner";

pub struct Input<'a> {
    pub scenario: &'a Scenario,
    pub names: &'a Names,
    /// Each WasmPlugin with the `oci://` url of its module and the pushed
    /// image's digest (hex), which is what istio checks `sha256` against for
    /// an `oci://` url (`sha256: auto`).
    pub plugins: Vec<(&'a IstioWasmPlugin, String, &'a str)>,
    pub backends: &'a BTreeMap<String, SocketAddr>,
    pub gateway_ip: Ipv4Addr,
    pub gateway_port: u16,
    /// The port of each of the scenario's TCP listeners, by name.
    pub tcp_ports: &'a BTreeMap<String, u16>,
    /// The labels of the gateway, which the selectors match.
    pub gateway_labels: &'a BTreeMap<String, String>,
    /// Higress WasmPlugins applied as written, for the cluster's own
    /// Higress controller to translate, likewise with url and digest.
    pub as_written: Vec<(&'a WasmPlugin, String, &'a str)>,
    /// The registry's host, and the login the scenario's pull secrets hold for it.
    pub registry: &'a str,
    pub pull_login: &'a PullLogin,
}

/// The labels of the scenario's own gateway: `istio` with a value of the
/// scenario's, and for a Gateway API gateway the label naming its Gateway,
/// as istio's deployment gives its gateways' Pods.
pub fn own_gateway_labels(names: &Names, routing: RoutingApi) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([("istio".to_owned(), names.unique_name("gateway"))]);
    if routing == RoutingApi::GatewayApi {
        labels.insert(GATEWAY_NAME_LABEL.to_owned(), GATEWAY_NAME.to_owned());
    }
    labels
}

pub fn render(input: &Input<'_>) -> Vec<Value> {
    let names = input.names;
    let home = names.scenario_namespace();
    let labels = input.gateway_labels;
    let policies: Vec<Value> = input.scenario.policies.iter().map(|p| policy(&p.document, names, labels)).collect();
    // Ties in a phase fall to creation time, then istiod's name: created
    // in that order, the two agree, as in the model (`placement`).
    let mut plugins: Vec<&(&IstioWasmPlugin, String, &str)> = input.plugins.iter().collect();
    plugins.sort_by_key(|(p, ..)| (p.created, p.sort_name(), p.namespace.clone()));
    // Every WasmPlugin is applied, wherever it is: istiod decides which reach the gateway.
    let namespaces: BTreeSet<String> = std::iter::once(home.clone())
        .chain(plugins.iter().map(|(p, ..)| p.namespace.clone()))
        .chain(input.as_written.iter().map(|(r, ..)| names.namespace(&r.namespace)))
        .chain(input.scenario.pull_secrets.iter().map(|s| names.namespace(&s.namespace)))
        .chain(policies.iter().filter_map(|p| p["metadata"]["namespace"].as_str().map(str::to_owned)))
        .filter(|ns| names.owns(ns))
        .collect();
    // Seen by the scenario's namespace, and by an installed gateway's.
    let export_to: BTreeSet<String> =
        [".".to_owned(), names.gateway_namespace()].into_iter().filter(|ns| *ns != home).collect();
    let mut objects: Vec<Value> = namespaces.iter().map(|ns| owned_namespace(ns)).collect();
    if input.scenario.routing == RoutingApi::Istio {
        objects.push(gateway(input, &home, labels));
    }
    objects.extend(policies);
    objects.extend(input.scenario.pull_secrets.iter().map(|s| pull_secret(s, names, input.registry, input.pull_login)));
    objects.extend(input.scenario.services.iter().map(|service| {
        let backend = input.backends[&service.name];
        let (name, protocol) = match service.protocol {
            ServiceProtocol::Http => ("http", "HTTP"),
            ServiceProtocol::Tcp => ("tcp", "TCP"),
        };
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": service.name, "namespace": home},
            "spec": {
                "hosts": [service.host],
                // Other scenarios name their services alike.
                "exportTo": export_to,
                "location": "MESH_INTERNAL",
                "ports": [{"number": service.port, "name": name, "protocol": protocol}],
                "resolution": "STATIC",
                "endpoints": [{"address": backend.ip().to_string(), "ports": {name: backend.port()}}],
            },
        })
    }));
    match input.scenario.routing {
        RoutingApi::Istio => {
            objects.extend(virtual_services(input.scenario, &home, &export_to));
            objects.extend(tcp_virtual_services(input, &home, &export_to));
        }
        RoutingApi::GatewayApi => objects.extend(gateway_api(input, &home, labels)),
    }
    let gateway = GatewayFacts { labels, port: input.gateway_port };
    objects.extend(plugins.into_iter().map(|(p, url, sha256)| wasm_plugin(p, names, url, sha256, &gateway)));
    objects.extend(input.as_written.iter().map(|(r, url, sha256)| higress_wasm_plugin(r, names, url, sha256)));
    objects
}

/// A namespace of this run's: labelled as plugproof's, and annotated with
/// its owner, so that if the run is killed outright the next one removes it.
pub fn owned_namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name,
        "labels": {MANAGED_BY: "plugproof"},
        "annotations": {OWNER: owner::me()},
    }})
}

/// A native policy as written, in the scenario's namespace for it (the
/// gateway's unless it says) and selecting its gateway unless it says
/// otherwise.
fn policy(document: &Value, names: &Names, labels: &BTreeMap<String, String>) -> Value {
    let mut object = document.clone();
    let written = object["metadata"]["namespace"].as_str().unwrap_or(GATEWAY_NAMESPACE).to_owned();
    let name = names.name(&written, object["metadata"]["name"].as_str().unwrap_or_default());
    object["metadata"]["namespace"] = json!(names.namespace(&written));
    object["metadata"]["name"] = json!(name);
    let spec = &object["spec"];
    if spec["selector"].is_null() && spec["targetRef"].is_null() && spec["targetRefs"].is_null() {
        object["spec"]["selector"] = json!({ "matchLabels": labels });
    }
    object
}

/// The scenario's Gateway: its HTTP server, and one TCP server per TCP listener.
fn gateway(input: &Input<'_>, namespace: &str, labels: &BTreeMap<String, String>) -> Value {
    let server = |port: u16, name: String, protocol: &str| {
        json!({
            "port": {"number": port, "name": name, "protocol": protocol},
            "bind": input.gateway_ip.to_string(),
            "hosts": ["*"],
        })
    };
    let tcp = input.tcp_ports.iter().map(|(name, port)| server(*port, format!("tcp-{name}"), "TCP"));
    let servers: Vec<Value> =
        std::iter::once(server(input.gateway_port, "http".to_owned(), "HTTP")).chain(tcp).collect();
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": GATEWAY_NAME, "namespace": namespace},
        "spec": {"selector": labels, "servers": servers},
    })
}

/// The Gateway API's view of the scenario: a Gateway of manual deployment
/// (its address names a Service, which here is a ServiceEntry whose one
/// endpoint is the gateway, so that istiod gives the gateway its
/// listener), and an HTTPRoute per route, to the route's ServiceEntry.
fn gateway_api(input: &Input<'_>, namespace: &str, labels: &BTreeMap<String, String>) -> Vec<Value> {
    let service = format!("{GATEWAY_NAME}.{namespace}.svc.cluster.local");
    let gateway = json!({
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "Gateway",
        "metadata": {"name": GATEWAY_NAME, "namespace": namespace},
        "spec": {
            "gatewayClassName": "istio",
            "addresses": [{"type": "Hostname", "value": service}],
            "listeners": [{"name": "http", "port": input.gateway_port, "protocol": "HTTP",
                           "allowedRoutes": {"namespaces": {"from": "Same"}}}],
        },
    });
    let entry = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": GATEWAY_NAME, "namespace": namespace},
        "spec": {
            "hosts": [service],
            "exportTo": ["."],
            "location": "MESH_INTERNAL",
            "ports": [{"number": input.gateway_port, "name": "http", "protocol": "HTTP"}],
            "resolution": "STATIC",
            "endpoints": [{"address": input.gateway_ip.to_string(), "labels": labels}],
        },
    });
    let routes = input.scenario.routes.iter().enumerate().map(|(index, route)| {
        let service = input.scenario.service(&route.service).expect("the loader checks a route's service");
        let mut spec = json!({
            "parentRefs": [{"name": GATEWAY_NAME}],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": route.path_prefix}}],
                "backendRefs": [{"group": "networking.istio.io", "kind": "Hostname", "name": service.host,
                                 "port": service.port}],
            }],
        });
        // `*` is every host: an HTTPRoute without hostnames.
        if !route.hosts.iter().any(|h| h == "*") {
            spec["hostnames"] = json!(route.hosts);
        }
        json!({
            "apiVersion": GATEWAY_API_VERSION,
            "kind": "HTTPRoute",
            "metadata": {"name": http_route_name(index), "namespace": namespace},
            "spec": spec,
        })
    });
    [gateway, entry].into_iter().chain(routes).collect()
}

const GATEWAY_API_VERSION: &str = "gateway.networking.k8s.io/v1";

/// The HTTPRoute of the scenario's route at `index`.
fn http_route_name(index: usize) -> String {
    format!("route-{index}")
}

/// The names of the routes istiod gives Envoy for the scenario's
/// HTTPRoutes in `namespace` (a rule without a name: `NS.NAME.INDEX`).
pub fn http_routes_in_envoy(scenario: &Scenario, namespace: &str) -> Vec<String> {
    (0..scenario.routes.len()).map(|index| format!("{namespace}.{}.0", http_route_name(index))).collect()
}

/// One VirtualService per TCP listener, routing its port to its service.
fn tcp_virtual_services<'a>(
    input: &'a Input<'_>,
    namespace: &'a str,
    export_to: &'a BTreeSet<String>,
) -> impl Iterator<Item = Value> + 'a {
    input.scenario.tcp_listeners.iter().map(move |listener| {
        let service = input.scenario.service(&listener.service).expect("the loader checks a listener's service");
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": format!("tcp-{}", listener.name), "namespace": namespace},
            "spec": {
                "hosts": ["*"],
                "exportTo": export_to,
                "gateways": [format!("{namespace}/{GATEWAY_NAME}")],
                "tcp": [{
                    "match": [{"port": input.tcp_ports[&listener.name]}],
                    "route": [{"destination": {"host": service.host, "port": {"number": service.port}}}],
                }],
            },
        })
    })
}

/// One VirtualService per distinct host, holding every route that lists
/// it, in scenario order (as the standalone profile's virtual hosts).
fn virtual_services(scenario: &Scenario, namespace: &str, export_to: &BTreeSet<String>) -> Vec<Value> {
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
                "metadata": {"name": format!("host-{index}"), "namespace": namespace},
                "spec": {
                    "hosts": [host],
                    "exportTo": export_to,
                    "gateways": [format!("{namespace}/{GATEWAY_NAME}")],
                    "http": http,
                },
            })
        })
        .collect()
}

/// What the scenarios' names for their gateway stand for where it lands.
struct GatewayFacts<'a> {
    labels: &'a BTreeMap<String, String>,
    port: u16,
}

fn wasm_plugin(
    plugin: &IstioWasmPlugin,
    names: &Names,
    url: &str,
    image_digest: &str,
    gateway: &GatewayFacts<'_>,
) -> Value {
    let mut spec = serde_json::to_value(&plugin.spec).expect("a WasmPlugin spec serialises");
    let (namespace, _) = plugin.written.split_once('/').unwrap_or_default();
    bind(&mut spec, names, namespace, url, image_digest);
    // istio's API takes a selector or targetRef(s), not both.
    if !plugin.spec.targets() {
        spec["selector"] = json!({ "matchLabels": selected(plugin.spec.selector.as_ref(), gateway.labels) });
    }
    let traffic = spec.get_mut("match").and_then(Value::as_array_mut).into_iter().flatten();
    for port in traffic.filter_map(|t| t.get_mut("ports").and_then(Value::as_array_mut)).flatten() {
        if port["number"] == GATEWAY_PORT {
            port["number"] = json!(gateway.port);
        }
    }
    if plugin.kind == ResourceKind::TrafficExtension {
        nest_wasm(&mut spec);
    }
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": plugin.kind.name(),
        "metadata": {"name": plugin.name, "namespace": plugin.namespace},
        "spec": spec,
    })
}

/// A WasmPlugin's fields that a TrafficExtension holds under `wasm`.
const WASM_FIELDS: &[&str] =
    &["url", "sha256", "imagePullPolicy", "imagePullSecret", "pluginConfig", "pluginName", "failStrategy", "vmConfig"];

/// A WasmPlugin's spec as a TrafficExtension's: its module and how it runs under `wasm`.
fn nest_wasm(spec: &mut Value) {
    let fields = spec.as_object_mut().expect("a spec is an object");
    let wasm: serde_json::Map<String, Value> = WASM_FIELDS
        .iter()
        .filter_map(|field| fields.remove(*field).map(|value| ((*field).to_owned(), value)))
        .collect();
    fields.insert("wasm".to_owned(), Value::Object(wasm));
}

/// The labels a WasmPlugin selects, where it lands: with no selector, or
/// one that asks for no label, the gateway's (which stands for every
/// workload of its namespace: other scenarios' gateways share the root
/// namespace); else the selector's, the gateway's label as scenarios write
/// it (`GATEWAY_LABEL`) standing for the gateway's labels.
fn selected(selector: Option<&WorkloadSelector>, gateway: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let Some(selector) = selector.filter(|s| !s.match_labels.is_empty()) else { return gateway.clone() };
    let mut labels = BTreeMap::new();
    for (key, value) in &selector.match_labels {
        if (key.as_str(), value.as_str()) == GATEWAY_LABEL {
            labels.extend(gateway.clone());
        } else {
            labels.insert(key.clone(), value.clone());
        }
    }
    labels
}

/// A Higress WasmPlugin as written, where the scenario's namespace landed;
/// it selects nothing (Higress's own apply to its gateways).
fn higress_wasm_plugin(resource: &WasmPlugin, names: &Names, url: &str, image_digest: &str) -> Value {
    let mut spec = translate::as_written(&resource.spec);
    bind(&mut spec, names, &resource.namespace, url, image_digest);
    json!({
        "apiVersion": Flavor::HIGRESS_API,
        "kind": "WasmPlugin",
        "metadata": {"name": names.name(&resource.namespace, &resource.name), "namespace": names.namespace(&resource.namespace)},
        "spec": spec,
    })
}

/// The module's `oci://` url in `spec`, its image's digest for `sha256:
/// auto`, and its pull secret by the name it has where the scenario's
/// `namespace` landed.
fn bind(spec: &mut Value, names: &Names, namespace: &str, url: &str, image_digest: &str) {
    spec["url"] = json!(url);
    if spec["sha256"] == SHA256_AUTO {
        spec["sha256"] = json!(image_digest);
    }
    if let Some(secret) = spec["imagePullSecret"].as_str() {
        spec["imagePullSecret"] = json!(names.name(namespace, secret));
    }
}

/// A pull secret: a `kubernetes.io/dockerconfigjson` Secret holding the
/// scenario's login for its registry, where its namespace landed.
fn pull_secret(secret: &PullSecret, names: &Names, registry: &str, login: &PullLogin) -> Value {
    let password = match secret.login {
        SecretLogin::Right => login.password.clone(),
        SecretLogin::Wrong => format!("not-{}", login.password),
    };
    // The API server encodes `stringData`; the docker config's user and password need no `auth`.
    let config = json!({"auths": {registry: {"username": login.user, "password": password}}});
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": names.name(&secret.namespace, &secret.name), "namespace": names.namespace(&secret.namespace)},
        "stringData": {DOCKER_CONFIG: config.to_string()},
    })
}

/// The key of a pull secret's docker config.
const DOCKER_CONFIG: &str = ".dockerconfigjson";

/// `objects` as kept with the evidence: Secrets without their data.
pub fn redacted(objects: &[Value]) -> Vec<Value> {
    objects
        .iter()
        .map(|object| {
            let mut object = object.clone();
            if object["kind"] == "Secret" {
                object["stringData"] = json!({DOCKER_CONFIG: "<redacted>"});
            }
            object
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Reference, WasmPluginSpec};

    /// A selector lands with the gateway's label as scenarios write it
    /// standing for the labels of the gateway the scenario drives; with none,
    /// the plugin selects that gateway.
    #[test]
    fn a_selector_lands_with_the_gateways_labels_for_its_label() {
        let gateway: BTreeMap<String, String> = [("istio".to_owned(), "pabc-gateway".to_owned())].into();
        let written = |labels: &[(&str, &str)]| WorkloadSelector {
            match_labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        assert_eq!(selected(None, &gateway), gateway);
        // Every workload of the namespace, as with no selector: not other scenarios' gateways.
        assert_eq!(selected(Some(&written(&[])), &gateway), gateway);
        let narrower = selected(Some(&written(&[("istio", "ingressgateway"), ("version", "v2")])), &gateway);
        assert_eq!(narrower, [("istio".into(), "pabc-gateway".into()), ("version".into(), "v2".into())].into());
        let elsewhere = selected(Some(&written(&[("app", "elsewhere")])), &gateway);
        assert_eq!(elsewhere, [("app".into(), "elsewhere".into())].into());
    }

    /// A pull secret lands where its namespace does, under the name the
    /// WasmPlugin's `imagePullSecret` is bound to; the evidence keeps no login.
    #[test]
    fn a_pull_secret_is_named_as_its_wasm_plugin_names_it_and_kept_without_its_login() {
        let names = Names::unique();
        let secret = PullSecret {
            name: "regcred".into(),
            namespace: crate::mesh::ROOT_NAMESPACE.into(),
            login: SecretLogin::Right,
            line: 1,
        };
        let login = PullLogin::unique();
        let object = pull_secret(&secret, &names, "127.0.0.9:5000", &login);
        let renamed = names.name(crate::mesh::ROOT_NAMESPACE, "regcred");
        assert_ne!(renamed, "regcred", "the root namespace is shared: a scenario's names there are its own");
        assert_eq!(object["metadata"], json!({"name": renamed, "namespace": crate::mesh::ROOT_NAMESPACE}));
        let config: Value = serde_json::from_str(object["stringData"][DOCKER_CONFIG].as_str().expect("a string"))
            .expect("a docker config");
        assert_eq!(config["auths"]["127.0.0.9:5000"]["password"], login.password.as_str());
        let mut spec = json!({"imagePullSecret": "regcred"});
        bind(&mut spec, &names, crate::mesh::ROOT_NAMESPACE, "oci://x/y", "ab");
        assert_eq!(spec["imagePullSecret"], renamed.as_str());
        let kept = serde_json::to_string(&redacted(&[object])).expect("serialises");
        assert!(!kept.contains(&login.password) && kept.contains("<redacted>"), "{kept}");
    }

    /// The cluster's Higress controller gets the resource as written, in the
    /// namespace the scenario's landed in, with the pushed module bound.
    #[test]
    fn a_higress_wasm_plugin_goes_as_written_with_its_module_bound() {
        let mut spec = WasmPluginSpec { sha256: Some(SHA256_AUTO.into()), ..Default::default() };
        spec.url.value = "plugin://stamp".into();
        let resource = WasmPlugin {
            flavor: Flavor::Higress,
            name: "stamp".into(),
            namespace: crate::mesh::GATEWAY_NAMESPACE.into(),
            plugin: "stamp".into(),
            reference: Reference::Digest,
            spec,
            line: 1,
        };
        let names = Names::unique();
        let object = higress_wasm_plugin(&resource, &names, "oci://10.244.0.9:5000/plugproof/stamp@sha256:ab", "ab");
        assert_eq!(object["apiVersion"], "extensions.higress.io/v1alpha1");
        assert_eq!(object["metadata"]["namespace"], names.namespace(crate::mesh::GATEWAY_NAMESPACE));
        assert_eq!(object["metadata"]["name"], names.name(crate::mesh::GATEWAY_NAMESPACE, "stamp"));
        assert_eq!(object["spec"], json!({"url": "oci://10.244.0.9:5000/plugproof/stamp@sha256:ab", "sha256": "ab"}));
    }
}
