//! Bootstrap and filesystem xDS for the standalone profile. Names follow
//! real gateways so plugins see what they would see there: routes are
//! named `NAMESPACE/NAME` (Higress), clusters `outbound|PORT||FQDN` (istio),
//! Wasm filters as istiod 1.30 names them (see `translate::istio`), one ECDS
//! file each.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::components::envoy::access_log;
use crate::components::envoy::updates::Resource;
use crate::scenario::{Scenario, WasmService};
use crate::translate::ecds::{extension_config, filter_type, string_value, V8_RUNTIME};
use crate::translate::IstioWasmPlugin;

pub const BOOTSTRAP: &str = "bootstrap.json";
pub const LISTENER: &str = "gateway";
const ROUTE_CONFIG: &str = "gateway";
const LDS: &str = "lds.json";
const RDS: &str = "rds.json";
const CDS: &str = "cds.json";
const ECDS_DIR: &str = "ecds";
const ROUTER: &str = "envoy.filters.http.router";

pub struct Input<'a> {
    pub dir: &'a Path,
    /// Where Envoy logs the requests that name themselves (`access_log`).
    pub access_log: &'a Path,
    pub gateway: SocketAddr,
    /// Where each of the scenario's TCP listeners listens, by name.
    pub tcp: &'a BTreeMap<String, SocketAddr>,
    pub admin: SocketAddr,
    pub scenario: &'a Scenario,
    pub backends: &'a BTreeMap<String, SocketAddr>,
    /// Each plugin with its module file, in filter-chain order.
    pub plugins: Vec<(&'a IstioWasmPlugin, &'a PathBuf)>,
    /// Each Wasm service with its module file.
    pub services: Vec<(&'a WasmService, &'a PathBuf)>,
}

pub struct Files {
    pub bootstrap: Value,
    pub lds: Value,
    pub rds: Value,
    pub cds: Value,
    /// Per Wasm filter: its file name (below `ecds/`), its name, its DiscoveryResponse.
    pub ecds: Vec<(String, String, Value)>,
}

/// A file whose content differs from what is on disk, and the xDS resource
/// Envoy will update when it reads it (none for the bootstrap).
pub struct FileChange {
    path: PathBuf,
    content: Vec<u8>,
    pub resource: Option<Resource>,
}

impl Files {
    /// The files that differ from those in `dir`, in the order they must be
    /// written: LDS last, so that once Envoy sees the listener, everything
    /// it refers to exists.
    pub fn changes(&self, dir: &Path) -> Vec<FileChange> {
        let routes = Resource::Routes { stat_prefix: LISTENER.to_owned(), name: ROUTE_CONFIG.to_owned() };
        let mut all = vec![
            (dir.join(BOOTSTRAP), &self.bootstrap, None),
            (dir.join(CDS), &self.cds, Some(Resource::Clusters)),
            (dir.join(RDS), &self.rds, Some(routes)),
        ];
        all.extend(
            self.ecds
                .iter()
                .map(|(file, name, v)| (dir.join(ECDS_DIR).join(file), v, Some(Resource::Filter(name.clone())))),
        );
        all.push((dir.join(LDS), &self.lds, Some(Resource::Listeners)));
        all.into_iter()
            .filter_map(|(path, value, resource)| {
                let content = serde_json::to_vec_pretty(value).expect("JSON values serialise");
                let same = std::fs::read(&path).is_ok_and(|old| old == content);
                (!same).then_some(FileChange { path, content, resource })
            })
            .collect()
    }
}

/// Writes `changes` in order; each file is written beside and renamed into
/// place, as Envoy's file watcher expects.
pub fn write(dir: &Path, changes: &[FileChange]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join(ECDS_DIR))?;
    for change in changes {
        let partial = change.path.with_extension("json.partial");
        std::fs::write(&partial, &change.content)?;
        std::fs::rename(&partial, &change.path)?;
    }
    Ok(())
}

fn file_source(path: &Path) -> Value {
    json!({
        "resource_api_version": "V3",
        "path_config_source": {
            "path": path,
            "watched_directory": {"path": path.parent().expect("xDS files live in a directory")},
        },
    })
}

fn discovery_response(resources: Vec<Value>) -> Value {
    json!({"version_info": "1", "resources": resources})
}

fn socket(addr: SocketAddr) -> Value {
    json!({"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}})
}

/// Envoy's admin API, its listeners and clusters from the files in `dir`,
/// and its Wasm services.
fn bootstrap(dir: &Path, admin: SocketAddr, services: &[(&WasmService, &PathBuf)]) -> Value {
    json!({
        "node": {"id": "plugproof-gateway", "cluster": "plugproof-gateway"},
        "admin": {"address": socket(admin)},
        "dynamic_resources": {
            "lds_config": file_source(&dir.join(LDS)),
            "cds_config": file_source(&dir.join(CDS)),
        },
        "bootstrap_extensions": services.iter().map(|(s, module)| wasm_service(s, module)).collect::<Vec<_>>(),
    })
}

/// What Envoy boots on before the stage is ready: the bootstrap `render`
/// writes for a scenario without Wasm services, no clusters, no listeners.
pub fn before_stage(dir: &Path, admin: SocketAddr) -> Vec<FileChange> {
    let empty = discovery_response(Vec::new());
    [(BOOTSTRAP, bootstrap(dir, admin, &[])), (CDS, empty.clone()), (LDS, empty)]
        .into_iter()
        .map(|(file, value)| FileChange {
            path: dir.join(file),
            content: serde_json::to_vec_pretty(&value).expect("JSON values serialise"),
            resource: None,
        })
        .collect()
}

pub fn render(input: &Input<'_>) -> Files {
    let dir = input.dir;
    let bootstrap = bootstrap(dir, input.admin, &input.services);

    let by_name: BTreeMap<String, &PathBuf> = input.plugins.iter().map(|(p, m)| (p.filter_name(), *m)).collect();
    let ordered: Vec<&IstioWasmPlugin> = input.plugins.iter().map(|(p, _)| *p).collect();
    // Each filter as its listener or connection manager names it, its config by ECDS.
    let discovered = |p: &&IstioWasmPlugin| {
        json!({
            "name": p.filter_name(),
            "config_discovery": {
                "config_source": file_source(&dir.join(ECDS_DIR).join(ecds_file(p))),
                "type_urls": [filter_type(p)],
            },
        })
    };
    // istiod puts a NETWORK plugin on every listener of the gateway, ahead
    // of its HTTP connection manager or TCP proxy, in the same order.
    let network_filters: Vec<Value> = ordered.iter().filter(|p| p.spec.network()).map(discovered).collect();
    let mut http_filters: Vec<Value> = ordered.iter().filter(|p| !p.spec.network()).map(discovered).collect();
    http_filters.push(json!({
        "name": ROUTER,
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }));
    let hcm = json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": LISTENER,
            "codec_type": "AUTO",
            "rds": {"route_config_name": ROUTE_CONFIG, "config_source": file_source(&dir.join(RDS))},
            "http_filters": http_filters,
            "access_log": [{
                "name": "envoy.access_loggers.file",
                "filter": {"header_filter": {"header": {"name": access_log::REQUEST_HEADER, "present_match": true}}},
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": input.access_log,
                    "log_format": {"json_format": access_log::json_format()},
                },
            }],
        },
    });
    let listener = json!({
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": LISTENER,
        "address": socket(input.gateway),
        "filter_chains": [{"filters": network_filters.iter().chain([&hcm]).collect::<Vec<_>>()}],
    });
    let mut listeners = vec![listener];
    listeners.extend(input.scenario.tcp_listeners.iter().map(|tcp| {
        let service = input.scenario.service(&tcp.service).expect("the loader checks a listener's service");
        let proxy = json!({
            "name": "envoy.filters.network.tcp_proxy",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": tcp_listener_name(&tcp.name),
                "cluster": service.cluster_name(),
            },
        });
        json!({
            "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
            "name": tcp_listener_name(&tcp.name),
            "address": socket(input.tcp[&tcp.name]),
            "filter_chains": [{"filters": network_filters.iter().chain([&proxy]).collect::<Vec<_>>()}],
        })
    }));
    let ecds = ordered
        .iter()
        .map(|p| {
            let config = extension_config(p, by_name[&p.filter_name()]);
            (ecds_file(p), p.filter_name(), discovery_response(vec![config]))
        })
        .collect();

    Files {
        bootstrap,
        lds: discovery_response(listeners),
        rds: discovery_response(vec![route_configuration(input.scenario)]),
        cds: discovery_response(clusters(input.scenario, input.backends)),
        ecds,
    }
}

/// A Wasm service as a bootstrap extension: a singleton VM on Envoy's main thread.
fn wasm_service(service: &WasmService, module: &Path) -> Value {
    let mut config = json!({
        "name": service.name,
        "vm_config": {"vm_id": service.vm_id, "runtime": V8_RUNTIME, "code": {"local": {"filename": module}}},
    });
    if let Some(configuration) = &service.config {
        config["configuration"] = string_value(&Value::Object(configuration.clone()).to_string());
    }
    json!({
        "name": "envoy.bootstrap.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.wasm.v3.WasmService",
            "singleton": true,
            "config": config,
        },
    })
}

/// The Envoy listener of the scenario's TCP listener `name`.
pub fn tcp_listener_name(name: &str) -> String {
    format!("tcp-{name}")
}

fn ecds_file(plugin: &IstioWasmPlugin) -> String {
    format!("{}.{}.json", plugin.namespace, plugin.name)
}

/// One virtual host per distinct host name, holding every route that lists
/// it, in scenario order. Ports in `Host` are ignored, as on a gateway.
fn route_configuration(scenario: &Scenario) -> Value {
    let virtual_hosts: Vec<Value> = scenario
        .routes_by_host()
        .into_iter()
        .map(|(host, routes)| {
            let routes: Vec<Value> = routes
                .into_iter()
                .map(|(route, service)| {
                    json!({
                        "name": route.name,
                        "match": {"prefix": route.path_prefix},
                        "route": {"cluster": service.cluster_name()},
                    })
                })
                .collect();
            json!({"name": host, "domains": [host], "routes": routes})
        })
        .collect();
    json!({
        "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
        "name": ROUTE_CONFIG,
        "ignore_port_in_host_matching": true,
        "virtual_hosts": virtual_hosts,
    })
}

fn clusters(scenario: &Scenario, backends: &BTreeMap<String, SocketAddr>) -> Vec<Value> {
    scenario
        .services
        .iter()
        .map(|service| {
            let name = service.cluster_name();
            json!({
                "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
                "name": name,
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {
                    "cluster_name": name,
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(backends[&service.name])}}]}],
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::scenario::load_file;

    #[test]
    fn envoy_boots_before_the_stage_on_the_bootstrap_render_writes() {
        let yaml = "
plugins: {stamp: {module: stamp}}
services: [{name: echo}]
routes: [{name: default/web, hosts: ['*'], service: echo}]
steps:
  - request: {host: a.example.com}
    expect: {status: 200}
";
        let modules: BTreeSet<String> = ["stamp".to_owned()].into();
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("s.yaml"), yaml).unwrap();
        let scenario = load_file(&folder.path().join("s.yaml"), folder.path(), &modules).expect("the scenario loads");
        let dir = Path::new("/run/xds");
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let rendered = render(&Input {
            dir,
            access_log: Path::new("/run/access.log"),
            gateway: addr(8000),
            tcp: &BTreeMap::new(),
            admin: addr(9000),
            scenario: &scenario,
            backends: &[("echo".to_owned(), addr(7000))].into(),
            plugins: Vec::new(),
            services: Vec::new(),
        });
        let before = before_stage(dir, addr(9000));
        let bootstrap = before.iter().find(|c| c.path == dir.join(BOOTSTRAP)).expect("a bootstrap");
        let parsed: Value = serde_json::from_slice(&bootstrap.content).unwrap();
        assert_eq!(parsed, rendered.bootstrap, "the stage's files leave the bootstrap as it was");
        let empty = |file: &str| {
            let change = before.iter().find(|c| c.path == dir.join(file)).expect("the file");
            serde_json::from_slice::<Value>(&change.content).unwrap()["resources"].as_array().map(Vec::len)
        };
        assert_eq!((empty(LDS), empty(CDS)), (Some(0), Some(0)), "no listener, no cluster before the stage");
    }
}
