//! The istio profile: real istiod reading a real kube-apiserver (over etcd),
//! a real pilot-agent per scenario running the upstream Envoy as an ingress
//! gateway and fetching `oci://` modules from the scenario's registry
//! itself. One control plane serves every scenario of a run (`ControlPlane`;
//! under nextest, one shared by the test processes, `shared`), each
//! scenario in namespaces of its own with a gateway of its own. It all runs
//! in a network namespace of the run's own (see `runtime::isolation`).
//! The cluster profile deploys its scenarios the same way (`deploy`), on a
//! cluster's own istiod.

mod control_plane;
pub(in crate::profiles) mod kube;
pub(in crate::profiles) mod resources;
pub mod shared;
mod template;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Booting, Clock, DeployError, Deployment, Isolation, Module, Profile, ProfileKind, Stage};
use crate::components::envoy::updates::{Resource, Update};
use crate::components::envoy::{await_removed, await_update, Admin, Baseline, Expected};
use crate::components::gateway::{self, Gateway, GatewaySpec};
use crate::components::istiod;
use crate::profiles::Names;
use crate::runtime::isolation::is_isolated;
use crate::runtime::ports::PortBlock;
use crate::runtime::rundir;
use crate::runtime::{Program, Runtime};
use crate::scenario::{Feature, ResourceKind, RoutingApi, HTTP_LISTENER};
use crate::targets::Needs;
use crate::translate::IstioWasmPlugin;

pub use self::control_plane::ControlPlane;
pub use self::kube::KubeError;
pub use crate::options::Endpoints;

/// What an istio gateway can do.
pub(in crate::profiles) const FEATURES: &[Feature] = &[
    Feature::AgentFetch,
    Feature::NewGateway,
    Feature::GatewayEnv,
    Feature::GatewayConcurrency,
    Feature::OwnRegistry,
    Feature::NativeFilters,
    Feature::TcpListeners,
    Feature::GatewayApi,
    Feature::VerifiedGateway,
    Feature::PrivateRegistry,
];
/// The programs an istio gateway runs.
pub(in crate::profiles) const PROGRAMS: &[Program] = &[Program::Agent, Program::Envoy];

const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long istiod may take to notice a gateway that went away.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The istio profile, and the control plane its scenarios share.
pub struct Istio {
    /// Where the locks of fixed-port blocks are kept.
    port_locks: PathBuf,
    plane: tokio::sync::Mutex<Plane>,
}

enum Plane {
    /// Booted by the first scenario that needs it, stopped at `shutdown`.
    Own(Option<Arc<OwnPlane>>),
    /// Run by another process (the shared control plane of a nextest run).
    Shared(Endpoints),
}

struct OwnPlane {
    plane: ControlPlane,
    /// Its data and logs, removed with it.
    _dir: tempfile::TempDir,
}

impl Istio {
    /// A profile that boots its control plane, or uses a `shared` one.
    pub fn new(port_locks: PathBuf, shared: Option<Endpoints>) -> Self {
        let plane = match shared {
            Some(endpoints) => Plane::Shared(endpoints),
            None => Plane::Own(None),
        };
        Istio { port_locks, plane: tokio::sync::Mutex::new(plane) }
    }

    /// The control plane's endpoints, booting it first if it is this
    /// profile's own and not up yet.
    async fn endpoints(&self, stage: &Stage<'_>) -> Result<Endpoints, DeployError> {
        let kit = stage.target.kit.as_ref().ok_or(DeployError::Unprovisioned("istio"))?;
        let mut plane = self.plane.lock().await;
        let endpoints = match &mut *plane {
            Plane::Shared(endpoints) => endpoints.clone(),
            Plane::Own(Some(own)) => own.plane.endpoints.clone(),
            Plane::Own(slot) => {
                let dir =
                    rundir::create("plane").map_err(DeployError::io("cannot create the control plane's folder"))?;
                let plane = ControlPlane::start(kit, dir.path()).await?;
                let endpoints = plane.endpoints.clone();
                *slot = Some(Arc::new(OwnPlane { plane, _dir: dir }));
                endpoints
            }
        };
        if endpoints.pin != kit.pin {
            return Err(DeployError::PinMismatch { running: endpoints.pin, wanted: kit.pin.clone() });
        }
        Ok(endpoints)
    }
}

#[async_trait(?Send)]
impl Profile for Istio {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Istio
    }

    fn needs(&self) -> Needs {
        Needs { features: FEATURES.to_vec(), programs: PROGRAMS }
    }

    fn isolation(&self) -> Isolation {
        Isolation::Own
    }

    fn names(&self) -> Names {
        Names::unique()
    }

    async fn deploy(&self, stage: &Stage<'_>, _booting: Booting) -> Result<Box<dyn Deployment>, DeployError> {
        if !is_isolated() {
            return Err(DeployError::NotIsolated);
        }
        let mut clock = Clock::default();
        let endpoints = self.endpoints(stage).await?;
        clock.lap("control plane");
        let control_plane =
            ControlPlaneAccess { endpoints: &endpoints, client: kube::client()?, namespace_controller: false };
        let gateway = GatewayRun { runtime: stage.target.runtime.clone(), bind: stage.loopback.ip(), installed: None };
        Ok(Box::new(deploy(stage, control_plane, gateway, &self.port_locks, clock).await?))
    }

    async fn shutdown(&self) {
        let mut plane = self.plane.lock().await;
        if let Plane::Own(slot) = &mut *plane {
            if let Some(own) = slot.take().and_then(|own| Arc::try_unwrap(own).ok()) {
                own.plane.stop().await;
            }
        }
    }
}

pub struct IstioDeployment {
    gateway: Gateway,
    origin: Origin,
    /// How the gateway runs (and the port-forwards that reach it).
    runtime: Arc<dyn Runtime>,
    /// The id istiod knows the gateway by.
    proxy: String,
    /// The gateway's labels, which the scenario's selectors match.
    labels: BTreeMap<String, String>,
    /// Its listener's address, on the gateway.
    bind: Ipv4Addr,
    /// Gateways started so far; each gets a folder of its own.
    started: u32,
    ports: ListenerPorts,
    /// Where the harness reaches the gateway's listener.
    listener: SocketAddr,
    /// Where it reaches each TCP listener, by name.
    tcp: BTreeMap<String, SocketAddr>,
    client: ::kube::Client,
    /// Whether the cluster's namespace controller removes deleted namespaces.
    namespace_controller: bool,
    /// istiod's debug API.
    debug: istiod::Debug,
    /// Every object applied so far, to remove those a step deletes and,
    /// at the end, all of them.
    applied: Vec<Value>,
    /// What istiod should be giving the gateway now, in the model.
    expected: GatewayWasm,
    /// The wall-clock second WasmPlugins were last created in.
    last_created: u64,
    dir: PathBuf,
    boot: Vec<(&'static str, Duration)>,
}

#[async_trait(?Send)]
impl Deployment for IstioDeployment {
    fn gateway(&self) -> SocketAddr {
        self.listener
    }

    fn admin(&self) -> &Admin {
        self.gateway.admin()
    }

    fn tcp_listener(&self, name: &str) -> Option<SocketAddr> {
        self.tcp.get(name).copied()
    }

    /// istiod names a gateway listener `BIND_PORT`.
    fn envoy_listener(&self, listener: &str) -> Option<String> {
        let port = match listener {
            HTTP_LISTENER => self.ports.http,
            tcp => *self.ports.tcp.get(tcp)?,
        };
        Some(self.ports.listener_name(port))
    }

    fn forwarded(&self) -> bool {
        self.listener != SocketAddr::from((self.bind, self.ports.http))
    }

    /// The agent's log: its Envoy writes the mesh's access log to stdout.
    fn access_log(&self) -> &Path {
        self.gateway.log_path()
    }

    fn gateway_log(&self) -> &Path {
        self.gateway.log_path()
    }

    /// istiod's own view of the gateway's configuration.
    async fn extra_evidence(&self) -> Vec<(String, Value)> {
        let mut evidence = self.gateway.evidence().await;
        evidence.push(match self.debug.config_dump(&self.proxy).await {
            Ok(dump) => ("istiod_config_dump.json".into(), dump),
            Err(e) => ("istiod_config_dump.json".into(), json!({"error": e.to_string()})),
        });
        evidence
    }

    fn boot_phases(&self) -> Vec<(&'static str, Duration)> {
        self.boot.clone()
    }

    fn notes(&self) -> Vec<String> {
        gateway::fetch_failures(self.gateway.log_path())
    }

    /// Applies the stage's current resources, deletes the WasmPlugins no
    /// longer among them, and waits (up to `within`) until the gateway has
    /// taken or refused the updates the model expects istiod to send it.
    async fn sync(&mut self, stage: &Stage<'_>, within: Duration) -> Result<Update, DeployError> {
        let plugins = stage.plugins()?;
        let objects = render(stage, &plugins, self.bind, &self.ports, &self.labels, &self.dir)?;
        let expected = GatewayWasm::of(stage, &plugins, &objects);
        let resources = self.expected.updates_to(&expected);
        let creates = wasm_plugins(&objects).any(|o| !self.applied.iter().any(|a| same(a, o)));
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
        for gone in wasm_plugins(&self.applied).filter(|a| !objects.iter().any(|o| same(a, o))) {
            kube::delete(&self.client, gone).await?;
        }
        self.applied = objects;
        self.expected = expected;
        Ok(await_update(admin, process, resources, baseline, within).await?)
    }

    /// A new gateway under the same name and on the same ports (istiod
    /// sees the same proxy come back), in a folder of its own.
    async fn replace_gateway(&mut self, stage: &Stage<'_>) -> Result<(), DeployError> {
        let Origin::Own(place) = &self.origin else {
            return Err(DeployError::CannotReplace("cluster profile, on an installed gateway,"));
        };
        self.started += 1;
        let dir = self.dir.join(format!("gateway-{}", self.started));
        std::fs::create_dir_all(&dir).map_err(DeployError::io("cannot create the new gateway's folder"))?;
        self.gateway.replace(self.runtime.as_ref(), &place.spec(stage, &dir)).await?;
        let expected = ready(stage, &self.ports)?;
        self.gateway.wait_ready(&expected, READY_TIMEOUT).await?;
        Ok(())
    }

    async fn restart_gateway(&mut self, stage: &Stage<'_>) -> Result<(), DeployError> {
        if let Origin::Installed { .. } = self.origin {
            return Err(DeployError::CannotRestart);
        }
        self.gateway.restart().await?;
        self.gateway.wait_ready(&ready(stage, &self.ports)?, READY_TIMEOUT).await?;
        Ok(())
    }

    /// Ends the gateway, removes what the scenario applied, its namespaces
    /// last, and waits until istiod no longer lists the gateway; an
    /// installed gateway is left running once it no longer serves the
    /// scenario's listener.
    async fn stop(self: Box<Self>) -> Result<(), DeployError> {
        let IstioDeployment {
            gateway,
            origin,
            runtime: _forwards,
            proxy,
            ports,
            client,
            namespace_controller,
            debug,
            applied,
            ..
        } = *self;
        let port = ports.http;
        let admin = gateway.admin().clone();
        gateway.stop().await;
        let (namespaces, objects): (Vec<&Value>, Vec<&Value>) = applied.iter().partition(|o| o["kind"] == "Namespace");
        for object in objects.into_iter().rev() {
            kube::delete(&client, object).await?;
        }
        for namespace in namespaces {
            let name = namespace["metadata"]["name"].as_str().unwrap_or_default();
            if namespace_controller {
                // The controller removes it after a fixed grace of 5 s; the
                // profile waits for that once, when the run ends.
                kube::delete(&client, namespace).await?;
                if !kube::namespace_terminating(&client, name).await? {
                    return Err(DeployError::Left(format!("namespace {name}, which is not being removed")));
                }
            } else {
                kube::remove_namespace(&client, name).await?;
                if kube::namespace_exists(&client, name).await? {
                    return Err(DeployError::Left(format!("namespace {name}")));
                }
            }
        }
        if let Origin::Installed { .. } = origin {
            // The next scenario finds the gateway without this one's listeners
            // (still draining, on ports of their own, with their filters).
            for port in std::iter::once(port).chain(ports.tcp.values().copied()) {
                if let Err(left) = await_removed(&admin, &ports.listener_name(port), DISCONNECT_TIMEOUT).await {
                    return Err(DeployError::Left(format!("{left} on the installed gateway {proxy}")));
                }
            }
            return Ok(());
        }
        let started = Instant::now();
        while debug.connected(&proxy).await? {
            if started.elapsed() > DISCONNECT_TIMEOUT {
                return Err(DeployError::Left(format!(
                    "gateway {proxy}, which istiod lists {DISCONNECT_TIMEOUT:?} after it stopped"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// How a scenario reaches a control plane: istiod's endpoints, and a
/// client of the API server it reads.
pub(in crate::profiles) struct ControlPlaneAccess<'a> {
    pub endpoints: &'a Endpoints,
    pub client: ::kube::Client,
    /// Whether a namespace controller (a cluster's controller manager)
    /// empties and finalizes deleted namespaces; else the harness does.
    pub namespace_controller: bool,
}

/// How a scenario's gateway runs, and the address its listener binds.
pub(in crate::profiles) struct GatewayRun {
    pub runtime: Arc<dyn Runtime>,
    /// The run's own address where the gateway shares the harness's
    /// network; else every address of the gateway's own.
    pub bind: Ipv4Addr,
    /// The gateway installed in the cluster that the scenario drives; none
    /// to start one of its own.
    pub installed: Option<InstalledGateway>,
}

/// A gateway installed in a cluster, which scenarios drive one at a time.
pub(in crate::profiles) struct InstalledGateway {
    /// Its Pod, followed (named as the runtime reaches it).
    pub pod: Box<dyn crate::runtime::Running>,
    pub namespace: String,
    /// The labels its Gateway and WasmPlugin selectors match.
    pub labels: BTreeMap<String, String>,
    /// Its Envoy's admin port, on the Pod's loopback.
    pub admin_port: u16,
    /// Held while the scenario runs, so that no other scenario of any
    /// process drives the gateway meanwhile.
    pub lease: std::fs::File,
}

/// Where a scenario's gateway comes from.
enum Origin {
    /// Started for it, and what starts another in its place.
    Own(GatewayPlace),
    /// Installed in the cluster; the lease on it ends with the scenario.
    Installed { _lease: std::fs::File },
}

/// Deploys a scenario on a control plane: applies its resources, starts
/// its gateway as `gateway` says, and waits until the gateway has its
/// configuration.
pub(in crate::profiles) async fn deploy(
    stage: &Stage<'_>,
    control_plane: ControlPlaneAccess<'_>,
    gateway: GatewayRun,
    port_locks: &std::path::Path,
    mut clock: Clock,
) -> Result<IstioDeployment, DeployError> {
    stage.target.kit.as_ref().ok_or(DeployError::Unprovisioned("istio"))?;
    let dir = stage.dir.join("istio");
    std::fs::create_dir_all(&dir).map_err(DeployError::io("cannot create the istio folder"))?;
    write_names(stage, &dir)?;
    let GatewayRun { runtime, bind, installed } = gateway;
    // Ports free on the run's address: where the gateway shares it, its listeners'.
    let free = || stage.loopback.free_port().map_err(DeployError::io("no free port for the gateway"));
    // An Istio Gateway's servers bind the gateway's address; a Gateway API
    // Gateway's listeners have no such field, so istiod's listen on all of
    // the gateway's (the run's own network namespace).
    let host = match stage.scenario.routing {
        RoutingApi::Istio => bind,
        RoutingApi::GatewayApi => Ipv4Addr::UNSPECIFIED,
    };
    let mut ports = ListenerPorts { host, http: free()?, tcp: BTreeMap::new() };
    for listener in &stage.scenario.tcp_listeners {
        ports.tcp.insert(listener.name.clone(), free()?);
    }
    let labels = match &installed {
        Some(installed) => installed.labels.clone(),
        None => resources::own_gateway_labels(&stage.names, stage.scenario.routing),
    };
    let plugins = stage.plugins()?;
    let objects = render(stage, &plugins, bind, &ports, &labels, &dir)?;
    let ControlPlaneAccess { endpoints, client, namespace_controller } = control_plane;
    apply_all(&client, &objects).await?;
    let last_created = unix_second();
    clock.lap("resources");

    let (mut gateway, origin, proxy) = match installed {
        Some(InstalledGateway { pod, namespace, admin_port, lease, .. }) => {
            let proxy = format!("{}.{namespace}", pod.name());
            (Gateway::of(runtime.as_ref(), pod, admin_port).await?, Origin::Installed { _lease: lease }, proxy)
        }
        None => {
            let namespace = stage.names.gateway_namespace();
            let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": resources::GATEWAY_NAME, "namespace": namespace}});
            kube::apply(&client, &account).await?;
            let place = GatewayPlace {
                token: kube::istiod_token(&client, &namespace, resources::GATEWAY_NAME).await?,
                namespace,
                labels: labels.clone(),
                ip: bind,
                discovery: endpoints.xds.clone(),
                ports: PortBlock::claim(port_locks).map_err(DeployError::io("no block of ports for the gateway"))?,
            };
            let gateway_dir = dir.join("gateway");
            std::fs::create_dir_all(&gateway_dir).map_err(DeployError::io("cannot create the gateway folder"))?;
            let gateway = Gateway::start(runtime.as_ref(), &place.spec(stage, &gateway_dir)).await?;
            let proxy = format!("{}.{}", resources::GATEWAY_NAME, place.namespace);
            (gateway, Origin::Own(place), proxy)
        }
    };
    gateway.wait_ready(&ready(stage, &ports)?, READY_TIMEOUT).await?;
    clock.lap("gateway ready");
    let listener = gateway.reach(runtime.as_ref(), SocketAddr::from((bind, ports.http))).await?;
    let mut tcp = BTreeMap::new();
    for (name, port) in &ports.tcp {
        tcp.insert(name.clone(), gateway.reach(runtime.as_ref(), SocketAddr::from((bind, *port))).await?);
    }
    Ok(IstioDeployment {
        gateway,
        origin,
        runtime,
        proxy,
        labels,
        bind,
        started: 1,
        ports,
        listener,
        tcp,
        client,
        namespace_controller,
        debug: istiod::Debug::at(&endpoints.debug, endpoints.debug_token.clone()),
        expected: GatewayWasm::of(stage, &plugins, &objects),
        applied: objects,
        last_created,
        dir,
        boot: clock.laps,
    })
}

/// Where a scenario's gateway runs, and what it is told: what starts
/// another in its place.
struct GatewayPlace {
    namespace: String,
    /// The labels its Gateway and WasmPlugins select.
    labels: BTreeMap<String, String>,
    ip: Ipv4Addr,
    /// istiod's XDS address.
    discovery: String,
    ports: PortBlock,
    /// Its service account's token for istiod.
    token: String,
}

impl GatewayPlace {
    fn spec<'a>(&'a self, stage: &'a Stage<'_>, dir: &'a Path) -> GatewaySpec<'a> {
        GatewaySpec {
            dir,
            name: resources::GATEWAY_NAME,
            namespace: &self.namespace,
            labels: &self.labels,
            ip: self.ip,
            discovery: &self.discovery,
            ports: &self.ports,
            registry: stage.registry.host(),
            registry_ca: stage.registry.ca_pem(),
            env: &stage.scenario.gateway_env,
            concurrency: stage.scenario.concurrency,
            token: &self.token,
        }
    }
}

/// The ports of a scenario's gateway listeners, on its address.
struct ListenerPorts {
    /// The address in Envoy's names of the listeners.
    host: Ipv4Addr,
    http: u16,
    /// Each TCP listener's, by name.
    tcp: BTreeMap<String, u16>,
}

impl ListenerPorts {
    /// Envoy's name of the gateway's listener on `port`.
    fn listener_name(&self, port: u16) -> String {
        format!("{}_{port}", self.host)
    }
}

/// What a gateway of the stage has once ready: its listeners, and the
/// Wasm filters of the plugins that reach it.
fn ready(stage: &Stage<'_>, ports: &ListenerPorts) -> Result<Expected, DeployError> {
    let listeners =
        std::iter::once(ports.http).chain(ports.tcp.values().copied()).map(|port| ports.listener_name(port));
    let mut expected = stage.expected(listeners.collect(), &stage.reaching(&stage.plugins()?));
    if stage.scenario.routing == RoutingApi::GatewayApi {
        expected.routes = resources::http_routes_in_envoy(stage.scenario, &stage.names.scenario_namespace());
    }
    Ok(expected)
}

/// Where the scenario's namespaces landed, kept with its evidence.
fn write_names(stage: &Stage<'_>, dir: &std::path::Path) -> Result<(), DeployError> {
    let written = stage
        .scenario
        .resources
        .iter()
        .map(|r| r.namespace.as_str())
        .chain([crate::mesh::GATEWAY_NAMESPACE, crate::mesh::ROOT_NAMESPACE]);
    let mapping: BTreeMap<String, String> = stage.names.mapping(written).into_iter().collect();
    let text = serde_json::to_vec_pretty(&json!({"prefix": stage.names.prefix(), "namespaces": mapping}))
        .expect("JSON serialises");
    std::fs::write(dir.join("names.json"), text).map_err(DeployError::io("cannot write names.json"))
}

/// The resources for the stage's current state, also kept as
/// `resources.json` in the run directory.
fn render(
    stage: &Stage<'_>,
    plugins: &[IstioWasmPlugin],
    ip: Ipv4Addr,
    ports: &ListenerPorts,
    labels: &BTreeMap<String, String>,
    dir: &std::path::Path,
) -> Result<Vec<Value>, DeployError> {
    let registry = stage.registry.host();
    // A resource with its module's `oci://` url and its image's digest (hex).
    fn bound<'m, R>(resource: R, registry: &str, module: Module<'m>) -> (R, String, &'m str) {
        let url = format!("oci://{registry}/{}{}", module.published.repository, module.suffix());
        (resource, url, module.published.digest.trim_start_matches("sha256:"))
    }
    let as_written = stage.left_to_controller();
    let translated =
        |p: &&IstioWasmPlugin| !as_written.iter().any(|r| p.written == format!("{}/{}", r.namespace, r.name));
    let objects = resources::render(&resources::Input {
        scenario: stage.scenario,
        names: &stage.names,
        plugins: plugins.iter().filter(translated).map(|p| bound(p, registry, stage.module(p))).collect(),
        backends: &stage.backends,
        gateway_ip: ip,
        gateway_port: ports.http,
        tcp_ports: &ports.tcp,
        gateway_labels: labels,
        as_written: as_written.iter().map(|r| bound(*r, registry, stage.module_of(&r.plugin, &r.reference))).collect(),
        registry,
        pull_login: &stage.pull_login,
    });
    let rendered = serde_json::to_vec_pretty(&resources::redacted(&objects)).expect("JSON values serialise");
    std::fs::write(dir.join("resources.json"), rendered).map_err(DeployError::io("cannot write resources.json"))?;
    Ok(objects)
}

/// The model's view of what istiod gives the gateway: its Wasm filters in
/// chain order, and the WasmPlugin each comes from (url and digest bound),
/// less what only places the filter: a change there is the listener's.
#[derive(Debug, Default, PartialEq)]
struct GatewayWasm {
    chain: Vec<String>,
    sources: BTreeMap<String, Value>,
}

/// WasmPlugin fields that decide where its filter goes, not its ECDS config.
const PLACEMENT: &[&str] = &["phase", "priority", "selector", "targetRef", "targetRefs", "match"];

impl GatewayWasm {
    fn of(stage: &Stage<'_>, plugins: &[IstioWasmPlugin], objects: &[Value]) -> Self {
        let ordered = stage.reaching(plugins);
        let source = |p: &IstioWasmPlugin| {
            objects
                .iter()
                .find(|o| {
                    o["kind"] == p.kind.name()
                        && o["metadata"]["name"] == *p.name
                        && o["metadata"]["namespace"] == *p.namespace
                })
                .map_or(Value::Null, |o| {
                    let mut spec = o["spec"].clone();
                    if let Some(fields) = spec.as_object_mut() {
                        fields.retain(|field, _| !PLACEMENT.contains(&field.as_str()));
                    }
                    spec
                })
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

/// The WasmPlugins and TrafficExtensions among `objects`.
fn wasm_plugins(objects: &[Value]) -> impl Iterator<Item = &Value> {
    objects.iter().filter(|o| ResourceKind::ALL.iter().any(|kind| o["kind"] == kind.name()))
}

/// The same object: kind, namespace and name.
fn same(a: &Value, b: &Value) -> bool {
    let meta = |o: &Value| (o["kind"].clone(), o["metadata"]["namespace"].clone(), o["metadata"]["name"].clone());
    meta(a) == meta(b)
}
