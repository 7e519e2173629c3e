//! Systems under test. A profile deploys a scenario's resources onto real
//! components and hands back the running deployment the steps talk to.
//! Each profile is an implementation of `Profile`; `profile` is the one
//! place that maps a profile's name to it.

pub mod cluster;
pub mod envoy;
pub mod istio;
mod names;

pub use names::Names;

use std::any::Any;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use crate::cluster::facts::Facts;
use crate::components::envoy::updates::Update;
use crate::components::envoy::{Admin, Expected};
use crate::components::registry::ModuleRegistry;
use crate::components::ComponentError;
use crate::failure::{Failure, FailureKind};
use crate::oci::OciError;
use crate::options::{Options, RegistryAddress};
use crate::provision::{ModuleFile, Tools};
use crate::runtime::isolation::IsolationError;
use crate::runtime::Loopback;
use crate::scenario::{Flavor, Phase, Reference, Scenario, Translator, WasmPlugin};
pub use crate::targets::ProfileKind;
use crate::targets::{Needs, Target};
use crate::translate::{self, placement, IstioWasmPlugin, TranslateError};

/// The profile a name stands for.
pub fn profile(kind: ProfileKind, options: &Options) -> Box<dyn Profile> {
    match kind {
        ProfileKind::Envoy => Box::new(envoy::Standalone),
        ProfileKind::Istio => {
            Box::new(istio::Istio::new(options.cache.join("ports"), options.shared_control_plane.clone()))
        }
        ProfileKind::Cluster => Box::new(cluster::Cluster::new(options)),
    }
}

/// Where a profile's runs execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// In the caller's namespaces.
    None,
    /// In network, mount and PID namespaces of their own.
    Own,
    /// In the network namespace of process `pid` (a local cluster's node);
    /// none while that is not up.
    Join(Option<u32>),
}

/// A way to run the system under test.
#[async_trait(?Send)]
pub trait Profile: Send + Sync {
    fn kind(&self) -> ProfileKind;

    /// What the profile itself can do (a target adds what its versions do),
    /// and the programs its gateway runs.
    fn needs(&self) -> Needs;

    /// Where its runs must execute.
    fn isolation(&self) -> Isolation {
        Isolation::None
    }

    /// Whether its runs execute in namespaces other than the caller's.
    fn needs_isolation(&self) -> bool {
        self.isolation() != Isolation::None
    }

    /// Where the namespaces and names of a scenario about to run land.
    fn names(&self) -> Names {
        Names::as_written()
    }

    /// Where the run's registry and echo backends listen, if not on an
    /// address of the run's own: where a cluster's Pods reach this machine.
    fn serve_at(&self) -> Option<std::net::Ipv4Addr> {
        None
    }

    /// Starts what needs nothing of the stage, so that it boots while the
    /// stage's registry starts and its modules are pushed; `deploy` gets
    /// it back. Nothing, unless the profile says otherwise.
    async fn boot_early(&self, _early: &Early<'_>) -> Result<Booting, DeployError> {
        Ok(Booting::default())
    }

    /// Starts the system for `stage`, ready for the steps, with what
    /// `boot_early` started.
    async fn deploy(&self, stage: &Stage<'_>, booting: Booting) -> Result<Box<dyn Deployment>, DeployError>;

    /// A registry the scenarios' modules go to, shared (the user's, or one
    /// the profile runs), instead of a registry of each scenario's own.
    async fn shared_registry(&self) -> Result<Option<RegistryAddress>, DeployError> {
        Ok(None)
    }

    /// What the cluster it runs on says of itself (versions, images), for
    /// the report; none when it runs on no cluster, or cannot be asked.
    async fn cluster_facts(&self) -> Option<Facts> {
        None
    }

    /// Stops what the profile keeps between scenarios (a control plane).
    async fn shutdown(&self) {}
}

/// A running system under test.
#[async_trait(?Send)]
pub trait Deployment {
    /// Where the steps send their requests.
    fn gateway(&self) -> SocketAddr;

    /// The gateway Envoy's admin API.
    fn admin(&self) -> &Admin;

    /// Where the steps reach the scenario's TCP listener `name` (the
    /// profiles with the `tcp-listeners` feature have one per listener).
    fn tcp_listener(&self, _name: &str) -> Option<SocketAddr> {
        None
    }

    /// The name Envoy gives the listener a scenario calls `listener`: `http`
    /// (the HTTP listener) or one of its TCP listeners.
    fn envoy_listener(&self, listener: &str) -> Option<String>;

    /// Whether the harness reaches the gateway's listener through a
    /// port-forward, which can lose an answer the gateway gave.
    fn forwarded(&self) -> bool {
        false
    }

    /// The file where the gateway's Envoy writes the access log lines of
    /// requests that name themselves (`components::envoy::access_log`).
    fn access_log(&self) -> &Path;

    /// The file where the gateway's Envoy writes its log, with the lines
    /// its Wasm plugins log.
    fn gateway_log(&self) -> &Path;

    /// Brings the running system in line with the stage's current
    /// WasmPlugins and pushed modules (after an `apply`, `delete` or
    /// `push`), and waits up to `within` until the gateway has taken or
    /// refused what that changes for it.
    async fn sync(&mut self, stage: &Stage<'_>, within: Duration) -> Result<Update, DeployError>;

    /// Ends the gateway and starts a new one in its place, with a file
    /// system of its own (an empty Wasm cache, as a recreated Pod has),
    /// and waits until it has the configuration the stage calls for.
    async fn replace_gateway(&mut self, stage: &Stage<'_>) -> Result<(), DeployError>;

    /// Restarts the gateway in place, as a kubelet restarts a container
    /// that ended (the same Pod, address and volumes, so the agent's Wasm
    /// cache on disk), and waits until it has the stage's configuration.
    async fn restart_gateway(&mut self, _stage: &Stage<'_>) -> Result<(), DeployError> {
        Err(DeployError::CannotRestart)
    }

    /// Evidence beyond the run directory and Envoy's config dump, for a
    /// failure bundle: (file name, JSON).
    async fn extra_evidence(&self) -> Vec<(String, Value)> {
        Vec::new()
    }

    /// What the gateway's own log says went wrong that no step sees (a
    /// module its agent could not fetch), told with a failure.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// How long each part took to start.
    fn boot_phases(&self) -> Vec<(&'static str, Duration)>;

    /// Stops it and removes what it put in place; fails if something of it
    /// is left.
    async fn stop(self: Box<Self>) -> Result<(), DeployError>;
}

/// A module a run pushed: for which plugin, from which source (as the
/// scenario names it), the module's sha256 and the manifest digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleUse {
    pub plugin: String,
    pub source: String,
    /// One of plugproof's own test modules.
    pub builtin: bool,
    pub sha256: String,
    pub digest: String,
}

impl std::fmt::Display for ModuleUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} sha256:{} pushed as {}", self.plugin, self.source, self.sha256, self.digest)
    }
}

/// A plugin as pushed (last) to the run's registry.
#[derive(Debug, Clone)]
pub struct Published {
    pub repository: String,
    pub tag: String,
    /// The manifest digest of the last push.
    pub digest: String,
}

impl Published {
    /// What the run records of it: the plugin, its source and digests.
    pub fn record(&self, plugin: &str, module: &ModuleFile) -> ModuleUse {
        ModuleUse {
            plugin: plugin.to_owned(),
            source: module.source.clone(),
            builtin: module.builtin,
            sha256: module.sha256.clone(),
            digest: self.digest.clone(),
        }
    }
}

/// What every profile gets: the scenario, its run directory and address,
/// the registry holding its modules, the echo backends, and the current
/// state that steps change (WasmPlugins, pushed modules).
/// What a profile may start before the stage is ready.
pub struct Early<'a> {
    pub scenario: &'a Scenario,
    pub target: &'a Target,
    pub dir: &'a Path,
    pub loopback: &'a Loopback,
}

/// What a profile started early, handed back to its own `deploy`: only the
/// profile that made it knows what it holds. Dropped unused (the stage
/// failed), it stops what it holds.
#[derive(Default)]
pub struct Booting(Option<Box<dyn Any>>);

impl Booting {
    pub fn of<T: 'static>(started: T) -> Self {
        Booting(Some(Box::new(started)))
    }

    /// What it holds, if it holds a `T`.
    pub fn take<T: 'static>(self) -> Option<T> {
        self.0.and_then(|started| started.downcast().ok()).map(|started| *started)
    }
}

pub struct Stage<'a> {
    pub scenario: &'a Scenario,
    pub target: &'a Target,
    /// Where the scenario's namespaces and names land.
    pub names: Names,
    pub dir: &'a Path,
    pub loopback: Loopback,
    pub tools: &'a Tools,
    pub registry: &'a mut dyn ModuleRegistry,
    /// Service name -> echo backend address.
    pub backends: BTreeMap<String, SocketAddr>,
    pub published: BTreeMap<String, Published>,
    /// Every module pushed so far, in order.
    pub modules: Vec<ModuleUse>,
    /// The WasmPlugins in force now: the scenario's, then as steps apply and delete.
    pub resources: Vec<InForce>,
    /// What the scenario's pull secrets hold for its registry.
    pub pull_login: PullLogin,
}

/// A user and password for the scenario's registry, of the scenario's own,
/// which its pull secrets hold. The run's registry asks for no login, so
/// what the steps see is what istiod and the agent do with a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullLogin {
    pub user: String,
    pub password: String,
}

impl PullLogin {
    pub fn unique() -> Self {
        let password: String = (0..24).map(|_| char::from(b'a' + rand::random::<u8>() % 26)).collect();
        PullLogin { user: "plugproof".into(), password }
    }
}

/// A WasmPlugin in force, and when it was created, in order: 0 for the
/// scenario's own (created together at deploy), then one more for each a
/// step creates. istiod orders ties by creation time.
#[derive(Debug, Clone)]
pub struct InForce {
    pub resource: WasmPlugin,
    pub created: u32,
}

impl InForce {
    /// The scenario's own resources, as deployed.
    pub fn initial(resources: &[WasmPlugin]) -> Vec<InForce> {
        resources.iter().map(|r| InForce { resource: r.clone(), created: 0 }).collect()
    }
}

impl Stage<'_> {
    /// What the plugin's url names now.
    pub fn module<'p>(&'p self, plugin: &'p IstioWasmPlugin) -> Module<'p> {
        self.module_of(&plugin.plugin, &plugin.reference)
    }

    /// What a url naming `plugin` by `reference` names now.
    pub fn module_of<'p>(&'p self, plugin: &str, reference: &'p Reference) -> Module<'p> {
        let tag = match reference {
            Reference::Digest => None,
            Reference::Tag(tag) => Some(tag.as_str()),
        };
        Module { published: &self.published[plugin], tag }
    }

    /// The Higress WasmPlugins in force that the cluster's own Higress
    /// controller translates (`translator: higress-controller`): applied
    /// as written, not as the model's translation; none otherwise.
    pub fn left_to_controller(&self) -> Vec<&WasmPlugin> {
        if self.scenario.translator != Translator::HigressController {
            return Vec::new();
        }
        self.resources.iter().map(|r| &r.resource).filter(|r| r.flavor == Flavor::Higress).collect()
    }

    /// Each Wasm filter the model expects the gateway to get: its name,
    /// its WasmPlugin (`NAMESPACE/NAME` as the scenario writes it) and phase.
    pub fn wasm_filters(&self) -> Vec<(String, String, Phase)> {
        let plugins = self.plugins().unwrap_or_default();
        self.reaching(&plugins).iter().map(|p| (p.filter_name(), p.written.clone(), p.phase())).collect()
    }

    /// The Istio WasmPlugins the stage's resources become (Higress ones
    /// through the translator), wherever they are, with the names they
    /// are deployed under.
    pub fn plugins(&self) -> Result<Vec<IstioWasmPlugin>, DeployError> {
        let mut plugins = Vec::new();
        for InForce { resource, created } in &self.resources {
            let converted =
                translate::to_istio(resource, self.target.istiod).map_err(|source| DeployError::Translate {
                    at: self.scenario.at(resource.line),
                    name: format!("{}/{}", resource.namespace, resource.name),
                    source,
                })?;
            plugins.extend(converted.map(|p| IstioWasmPlugin {
                created: *created,
                name: self.names.name(&p.namespace, &p.name),
                namespace: self.names.namespace(&p.namespace),
                ..p
            }));
        }
        Ok(plugins)
    }

    /// Those of `plugins` that istiod gives the gateway, in the model, in
    /// filter-chain order.
    pub fn reaching(&self, plugins: &[IstioWasmPlugin]) -> Vec<IstioWasmPlugin> {
        let gateway = self.names.gateway_namespace();
        let reaching: Vec<&IstioWasmPlugin> =
            plugins.iter().filter(|p| placement::reaches_gateway(p, &gateway, self.scenario.routing)).collect();
        placement::filter_order(reaching, &gateway).into_iter().cloned().collect()
    }

    /// What must be loaded before the steps start: `listener`, every
    /// plugin's ECDS resource and every route.
    pub fn expected(&self, listeners: Vec<String>, plugins: &[IstioWasmPlugin]) -> Expected {
        Expected {
            listeners,
            ecds: plugins.iter().map(IstioWasmPlugin::filter_name).collect(),
            routes: self.scenario.routes.iter().map(|r| r.name.clone()).collect(),
        }
    }
}

/// Durations of the parts of a boot, in order.
struct Clock {
    last: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock { last: Instant::now(), laps: Vec::new() }
    }
}

impl Clock {
    fn lap(&mut self, part: &'static str) {
        let now = Instant::now();
        self.laps.push((part, now - self.last));
        self.last = now;
    }
}

/// A plugin's module as its url names it: by the digest pushed last, or by tag.
pub struct Module<'a> {
    pub published: &'a Published,
    pub tag: Option<&'a str>,
}

impl Module<'_> {
    /// `@DIGEST` or `:TAG`, to follow the repository in a reference.
    pub fn suffix(&self) -> String {
        match self.tag {
            Some(tag) => format!(":{tag}"),
            None => format!("@{}", self.published.digest),
        }
    }
}

impl DeployError {
    pub fn kind(&self) -> FailureKind {
        match self {
            DeployError::Component(e) => e.kind(),
            // Higress refuses a WasmPlugin it cannot convert.
            DeployError::Translate { .. } => FailureKind::Rejected,
            DeployError::Unprovisioned(_) => FailureKind::Provisioning,
            DeployError::Kube(_)
            | DeployError::Cluster(_)
            | DeployError::NoCluster
            | DeployError::NoIstiod
            | DeployError::NoAddress(_)
            | DeployError::NoHigress
            | DeployError::ClusterImage { .. }
            | DeployError::Isolation(_)
            | DeployError::NotIsolated
            | DeployError::Oci(_)
            | DeployError::PinMismatch { .. }
            | DeployError::Left(_)
            | DeployError::CannotReplace(_)
            | DeployError::CannotRestart
            | DeployError::Io { .. } => FailureKind::Setup,
        }
    }

    pub fn failure(&self) -> Failure {
        Failure::new(self.kind(), self.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Component(#[from] ComponentError),
    #[error(transparent)]
    Kube(#[from] istio::KubeError),
    #[error(transparent)]
    Isolation(#[from] IsolationError),
    #[error("the {0} profile's programs were not provisioned")]
    Unprovisioned(&'static str),
    #[error("the istio and cluster profiles run in a network namespace of the run's own or the local cluster's node; run them through `plugproof run` or the nextest scenario tests, which arrange that")]
    NotIsolated,
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("no local cluster is up; start one with `plugproof cluster up`")]
    NoCluster,
    #[error("no Higress controller runs in the cluster (no running Pod higress-controller-* with an address in higress-system); install Higress there, or leave out --higress-controller")]
    NoHigress,
    #[error("Pod {0} runs without an address in the cluster")]
    NoAddress(String),
    #[error("no istiod runs in the cluster (no running Pod istiod-* with an address in istio-system); install istio there (the local cluster does at `plugproof cluster up`), or see `plugproof cluster status`")]
    NoIstiod,
    #[error("the local cluster's node holds the gateway image {holds}, the target wants {wanted}; run `plugproof cluster down` then `plugproof cluster up` to load the target's")]
    ClusterImage { holds: String, wanted: String },
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error("{at}: WasmPlugin {name}: {source}")]
    Translate {
        at: String,
        name: String,
        #[source]
        source: TranslateError,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the shared control plane runs istio pin {running}, the target wants {wanted}; run the targets of one pin at a time")]
    PinMismatch { running: String, wanted: String },
    #[error("the scenario's {0} is left after it ended")]
    Left(String),
    #[error("this target cannot restart its gateway in place; a scenario with `gateway: restart` declares `features: [restarted-gateway]`, which only the cluster profile has")]
    CannotRestart,
    #[error("the {0} profile cannot replace its gateway; a scenario with `gateway: replace` declares `features: [new-gateway]`, which only the istio and cluster profiles have")]
    CannotReplace(&'static str),
}

impl DeployError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| DeployError::Io { what, source }
    }
}
