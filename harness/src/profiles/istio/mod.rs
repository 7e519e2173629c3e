//! The istio profile: real istiod reading a real kube-apiserver (over etcd),
//! real pilot-agent running the upstream Envoy as an ingress gateway and
//! fetching `oci://` modules from the run's registry itself. The run is in
//! its own network and mount namespaces (see `runtime::isolation`).

mod kube;
mod resources;
mod template;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::{istio_plugins, reaching_gateway, Clock, DeployError, Stage};
use crate::components::apiserver::{ApiServer, TOKEN, URL};
use crate::components::envoy::updates::{Resource, Update};
use crate::components::envoy::{await_update, Admin, Baseline};
use crate::components::etcd::Etcd;
use crate::components::gateway::{Gateway, GatewaySpec};
use crate::components::istiod::Istiod;
use crate::files::copy_tree;
use crate::runtime::isolation::{is_isolated, BindMount};
use crate::translate::placement::filter_order;
use crate::translate::IstioWasmPlugin;

pub use self::kube::KubeError;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The agent's Wasm cache lives under this fixed path; each run mounts its own.
const AGENT_STATE: &str = "/var/lib";

pub struct IstioDeployment {
    // Declared in stopping order: the gateway first, etcd last.
    gateway: Gateway,
    istiod: Istiod,
    apiserver: ApiServer,
    etcd: Etcd,
    _agent_state: BindMount,
    ip: Ipv4Addr,
    port: u16,
    client: ::kube::Client,
    /// The WasmPlugins applied so far, to delete those a step removes.
    applied: Vec<(String, String)>,
    /// What istiod should be giving the gateway now, in the model.
    expected: GatewayWasm,
    /// The wall-clock second WasmPlugins were last created in.
    last_created: u64,
    dir: PathBuf,
    boot: Vec<(&'static str, Duration)>,
}

impl IstioDeployment {
    pub fn gateway(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.port))
    }

    pub fn admin(&self) -> &Admin {
        self.gateway.admin()
    }

    /// istiod's own view of the gateway's configuration.
    pub async fn extra_evidence(&self) -> Vec<(String, Value)> {
        let proxy = format!("{}.{}", resources::GATEWAY_NAME, resources::GATEWAY_NAMESPACE);
        match self.istiod.config_dump(&proxy).await {
            Ok(dump) => vec![("istiod_config_dump.json".into(), dump)],
            Err(e) => vec![("istiod_config_dump.json".into(), json!({"error": e.to_string()}))],
        }
    }

    pub fn boot_phases(&self) -> Vec<(&'static str, Duration)> {
        self.boot.clone()
    }

    /// Applies the stage's current resources, deletes the WasmPlugins no
    /// longer among them, and waits (up to `within`) until the gateway has
    /// taken or refused the updates the model expects istiod to send it.
    pub async fn sync(&mut self, stage: &Stage<'_>, within: Duration) -> Result<Update, DeployError> {
        let plugins = istio_plugins(stage)?;
        let objects = render(stage, &plugins, self.ip, self.port, &self.dir)?;
        let expected = GatewayWasm::of(&plugins, &objects);
        let resources = self.expected.updates_to(&expected);
        let now = wasm_plugin_keys(&objects);
        let creates = now.iter().any(|key| !self.applied.contains(key));
        if creates {
            // creationTimestamp has whole seconds: a new resource must be
            // newer than every earlier one, as the model orders it.
            second_after(self.last_created).await;
        }
        let (admin, process) = self.gateway.parts();
        let baseline = Baseline::take(admin, process).await?;
        apply_all(&self.client, &objects).await?;
        if creates {
            self.last_created = unix_second();
        }
        for (namespace, name) in self.applied.iter().filter(|k| !now.contains(k)) {
            kube::delete_wasm_plugin(&self.client, namespace, name).await?;
        }
        self.applied = now;
        self.expected = expected;
        Ok(await_update(admin, process, resources, baseline, within).await?)
    }

    pub async fn stop(self) {
        self.gateway.stop().await;
        self.istiod.stop().await;
        self.apiserver.stop().await;
        self.etcd.stop().await;
    }
}

pub async fn deploy(stage: &Stage<'_>) -> Result<IstioDeployment, DeployError> {
    let kit = stage.tools.istio.as_ref().ok_or(DeployError::Unprovisioned("istio"))?;
    if !is_isolated() {
        return Err(DeployError::NotIsolated);
    }
    let plugins = istio_plugins(stage)?;
    let dir = stage.dir.join("istio");
    std::fs::create_dir_all(&dir).map_err(DeployError::io("cannot create the istio folder"))?;
    let template = template::etcd_template(kit, &stage.dir.join("template")).await?;
    let mut clock = Clock::default();
    let data = dir.join("etcd");
    copy_tree(&template, &data, &[]).map_err(DeployError::io("cannot copy the etcd template"))?;
    let etcd = Etcd::start(&kit.etcd, &data, &dir.join("etcd.log")).await?;
    clock.lap("etcd");
    let apiserver = ApiServer::start(&kit.apiserver, &kit.credentials, &dir.join("apiserver")).await?;
    clock.lap("kube-apiserver");

    let ip = stage.loopback.ip();
    let port = stage.loopback.free_port().map_err(DeployError::io("no free port for the gateway"))?;
    let objects = render(stage, &plugins, ip, port, &dir)?;
    let kubeconfig = write_kubeconfig(&dir)?;
    let client = kube::client()?;
    let (istiod, applied) =
        tokio::join!(Istiod::start(&kit.discovery, &kubeconfig, &dir), apply_all(&client, &objects));
    let istiod = istiod?;
    applied?;
    let last_created = unix_second();
    clock.lap("istiod + resources");

    let agent_state = dir.join("varlib");
    // The agent makes its cache's entries, not the cache folder itself.
    std::fs::create_dir_all(agent_state.join("istio/data"))
        .map_err(DeployError::io("cannot create the agent's state folder"))?;
    let agent_state = BindMount::new(&agent_state, Path::new(AGENT_STATE))?;
    let gateway_dir = dir.join("gateway");
    std::fs::create_dir_all(&gateway_dir).map_err(DeployError::io("cannot create the gateway folder"))?;
    let mut gateway = Gateway::start(&GatewaySpec {
        agent: &kit.agent,
        envoy: &stage.tools.envoy,
        bootstrap_template: &kit.bootstrap_template,
        dir: &gateway_dir,
        name: resources::GATEWAY_NAME,
        namespace: resources::GATEWAY_NAMESPACE,
        label: resources::GATEWAY_LABEL,
        ip,
        registry: stage.registry.host(),
        env: &stage.scenario.gateway_env,
    })?;
    gateway.wait_ready(&stage.expected(format!("{ip}_{port}"), &reaching_gateway(&plugins)), READY_TIMEOUT).await?;
    clock.lap("gateway ready");
    Ok(IstioDeployment {
        gateway,
        istiod,
        apiserver,
        etcd,
        _agent_state: agent_state,
        ip,
        port,
        client,
        applied: wasm_plugin_keys(&objects),
        expected: GatewayWasm::of(&plugins, &objects),
        last_created,
        dir,
        boot: clock.laps,
    })
}

/// The resources for the stage's current state, also kept as
/// `resources.json` in the run directory.
fn render(
    stage: &Stage<'_>,
    plugins: &[IstioWasmPlugin],
    ip: Ipv4Addr,
    port: u16,
    dir: &Path,
) -> Result<Vec<Value>, DeployError> {
    let registry = stage.registry.host();
    let modules: Vec<(String, &str)> = plugins
        .iter()
        .map(|p| {
            let module = stage.module(p);
            let url = format!("oci://{registry}/{}{}", module.published.repository, module.suffix());
            (url, module.published.digest.trim_start_matches("sha256:"))
        })
        .collect();
    let objects = resources::render(&resources::Input {
        scenario: stage.scenario,
        plugins: plugins.iter().zip(modules).map(|(p, (url, sha))| (p, url, sha)).collect(),
        backends: &stage.backends,
        gateway_ip: ip,
        gateway_port: port,
    });
    let rendered = serde_json::to_vec_pretty(&objects).expect("JSON values serialise");
    std::fs::write(dir.join("resources.json"), rendered).map_err(DeployError::io("cannot write resources.json"))?;
    Ok(objects)
}

/// The model's view of what istiod gives the gateway: its Wasm filters in
/// chain order, and the WasmPlugin each comes from (url and digest bound).
#[derive(Debug, Default, PartialEq)]
struct GatewayWasm {
    chain: Vec<String>,
    sources: BTreeMap<String, Value>,
}

impl GatewayWasm {
    fn of(plugins: &[IstioWasmPlugin], objects: &[Value]) -> Self {
        let reaching = reaching_gateway(plugins);
        let ordered = filter_order(&reaching);
        let source = |p: &IstioWasmPlugin| {
            objects
                .iter()
                .find(|o| {
                    o["kind"] == "WasmPlugin"
                        && o["metadata"]["name"] == *p.name
                        && o["metadata"]["namespace"] == *p.namespace
                })
                .map_or(Value::Null, |o| o["spec"].clone())
        };
        GatewayWasm {
            chain: ordered.iter().map(|p| p.filter_name()).collect(),
            sources: ordered.iter().map(|p| (p.filter_name(), source(p))).collect(),
        }
    }

    /// The updates going from `self` to `next` makes: the listener when the
    /// chain changes, and each filter that is new or comes from a changed
    /// WasmPlugin.
    fn updates_to(&self, next: &GatewayWasm) -> Vec<Resource> {
        let listeners = (self.chain != next.chain).then_some(Resource::Listeners);
        let filters = next
            .sources
            .iter()
            .filter(|(name, spec)| self.sources.get(*name) != Some(spec))
            .map(|(name, _)| Resource::Filter(name.clone()));
        listeners.into_iter().chain(filters).collect()
    }
}

fn unix_second() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Waits until the wall clock is past the second `last`.
async fn second_after(last: u64) {
    loop {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        if now.as_secs() > last {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()))).await;
    }
}

async fn apply_all(client: &::kube::Client, objects: &[Value]) -> Result<(), KubeError> {
    for object in objects {
        kube::apply(client, object).await?;
    }
    Ok(())
}

/// (namespace, name) of every WasmPlugin among `objects`.
fn wasm_plugin_keys(objects: &[Value]) -> Vec<(String, String)> {
    objects
        .iter()
        .filter(|o| o["kind"] == "WasmPlugin")
        .map(|o| {
            let meta = &o["metadata"];
            (
                meta["namespace"].as_str().unwrap_or_default().to_owned(),
                meta["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn write_kubeconfig(dir: &Path) -> Result<std::path::PathBuf, DeployError> {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster: {{server: \"{URL}\", insecure-skip-tls-verify: true}}\n\
         users:\n- name: admin\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: local\n  context: {{cluster: local, user: admin}}\n\
         current-context: local\n"
    );
    std::fs::write(&path, text).map_err(DeployError::io("cannot write the kubeconfig"))?;
    Ok(path)
}
