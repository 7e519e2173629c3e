//! Scenarios: the YAML model, its validation, and the checked form the
//! runner executes.

pub mod document;
mod feature;
mod load;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::load::LoadPlan;
pub use document::{
    BackendExpect, BodyExpect, Closes, EnvValueSource, EnvVar, Expect, FailStrategy, FilterOrder, HeaderExpect,
    JsonObject, Layout, MatchRule, Phase, PullPolicy, RequestSpec, UpdateExpect, VersionDoc as VersionSpec, VmConfig,
    WasmPluginSpec,
};
pub use feature::Feature;

use crate::outcome::{Failure, FailureKind};
pub use load::{discover, load_all, load_file, Diagnostic, LoadError};

/// Consecutive passes a step needs unless it says otherwise.
pub const DEFAULT_TIMES: u32 = 3;
/// How long a step may take to hold unless it says otherwise.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(10);
/// How long the gateway may take to act on a change unless the step says
/// otherwise: a large module can take seconds to fetch and compile.
pub const DEFAULT_CHANGE_WITHIN: Duration = Duration::from_secs(30);

/// A scenario that passed validation: every reference resolves.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Path below the scenarios root without extension, e.g. `scope/domain-exact`.
    pub id: String,
    pub file: PathBuf,
    pub name: String,
    pub description: String,
    pub features: Vec<Feature>,
    pub plugins: BTreeMap<String, Plugin>,
    pub services: Vec<Service>,
    pub routes: Vec<Route>,
    pub resources: Vec<WasmPlugin>,
    pub policies: Vec<Policy>,
    /// Environment of the gateway's Envoy.
    pub gateway_env: BTreeMap<String, String>,
    pub steps: Vec<Step>,
}

impl Scenario {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Each distinct host name in order of first mention, with every route
    /// that lists it (in scenario order) and the route's service: what a
    /// gateway makes one virtual host of.
    pub fn routes_by_host(&self) -> Vec<(&str, Vec<(&Route, &Service)>)> {
        let mut hosts: Vec<(&str, Vec<(&Route, &Service)>)> = Vec::new();
        for route in &self.routes {
            let service = self.service(&route.service).expect("validated reference");
            for host in &route.hosts {
                match hosts.iter_mut().find(|(h, _)| h == host) {
                    Some((_, routes)) => routes.push((route, service)),
                    None => hosts.push((host, vec![(route, service)])),
                }
            }
        }
        hosts
    }

    /// `file:line`, for messages about a place in this scenario.
    pub fn at(&self, line: u64) -> String {
        format!("{}:{line}", self.file.display())
    }
}

/// A module pushed to the run's registry as `plugproof/NAME:TAG`.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub name: String,
    pub module: ModuleSource,
    pub tag: String,
    pub layout: Layout,
    /// Where the scenario declares it.
    pub line: u64,
}

/// Where a module comes from (paths resolved against the scenario's folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// A built-in test module of `plugins/modules.yaml`.
    Builtin(String),
    /// A `.wasm` file.
    File(PathBuf),
    /// An image in a registry the user names (`HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]`).
    Oci(String),
    /// A Rust crate, built for wasm32.
    Cargo(PathBuf),
    /// A Go main package, built for wasip1 as a c-shared module.
    Go(PathBuf),
}

impl std::fmt::Display for ModuleSource {
    /// As a scenario writes it: `{module: stamp}`, `{file: /abs/x.wasm}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModuleSource::Builtin(name) => write!(f, "{{module: {name}}}"),
            ModuleSource::File(path) => write!(f, "{{file: {}}}", path.display()),
            ModuleSource::Oci(reference) => write!(f, "{{oci: {reference}}}"),
            ModuleSource::Cargo(dir) => write!(f, "{{cargo: {}}}", dir.display()),
            ModuleSource::Go(dir) => write!(f, "{{go: {}}}", dir.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Service {
    /// The cluster name real gateways give a service (`outbound|PORT||FQDN`),
    /// which Higress's service rules match against.
    pub fn cluster_name(&self) -> String {
        format!("outbound|{}||{}", self.port, self.host)
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    /// `NAMESPACE/NAME`, as Higress names the route of an Ingress.
    pub name: String,
    pub hosts: Vec<String>,
    pub path_prefix: String,
    pub service: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Istio,
    Higress,
}

impl Flavor {
    pub const ISTIO_API: &'static str = "extensions.istio.io/v1alpha1";
    pub const HIGRESS_API: &'static str = "extensions.higress.io/v1alpha1";
}

/// A `WasmPlugin` resource whose `url` names one of the scenario's plugins.
#[derive(Debug, Clone)]
pub struct WasmPlugin {
    pub flavor: Flavor,
    pub name: String,
    pub namespace: String,
    /// The plugin (from `plugins`) that `url: plugin://NAME[:TAG]` refers to.
    pub plugin: String,
    pub reference: Reference,
    pub spec: WasmPluginSpec,
    pub line: u64,
}

/// How a WasmPlugin's url names its module in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `plugin://NAME`: the digest pushed last for the plugin.
    Digest,
    /// `plugin://NAME:TAG`: a tag, which a `push` step may re-point (or
    /// that was never pushed, for fetch failures).
    Tag(String),
}

/// `sha256: auto` stands for the pushed image's digest: for an `oci://` url,
/// istio checks `sha256` against the image, not the module binary.
pub const SHA256_AUTO: &str = "auto";

/// A native istio security resource, applied as written.
#[derive(Debug, Clone)]
pub struct Policy {
    pub document: serde_json::Value,
    pub line: u64,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub line: u64,
    pub name: Option<String>,
    pub action: Action,
    /// How `request` and `filters` steps are attempted.
    pub retry: Retry,
    /// Known to fail, in the way this says.
    pub expected_failure: Option<ExpectedFailure>,
}

/// How often a check is attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Exactly one attempt: the first answer is the one judged.
    Once,
    /// Until it holds `times` in a row (`every` apart), or `within` passes.
    Until { times: u32, within: Duration, every: Duration },
}

impl Default for Retry {
    fn default() -> Self {
        Retry::Until { times: DEFAULT_TIMES, within: DEFAULT_WITHIN, every: Duration::ZERO }
    }
}

/// `expected_failure`: the reason, what the failure must be, and on which
/// targets.
#[derive(Debug, Clone)]
pub struct ExpectedFailure {
    pub reason: String,
    pub kind: Option<FailureKind>,
    pub matches: Option<regex::Regex>,
    pub when: Vec<Feature>,
    pub unless: Vec<Feature>,
}

impl ExpectedFailure {
    /// Whether the mark holds on a target with `features`.
    pub fn applies(&self, features: &BTreeSet<Feature>) -> bool {
        self.when.iter().all(|f| features.contains(f)) && !self.unless.iter().any(|f| features.contains(f))
    }

    /// Whether `failure` is the one this mark names.
    pub fn accepts(&self, failure: &Failure) -> bool {
        self.kind.is_none_or(|k| k == failure.kind)
            && self.matches.as_ref().is_none_or(|re| re.is_match(&failure.message))
    }

    /// `kind K, message matching /RE/`, for messages.
    pub fn describe(&self) -> String {
        let kind = self.kind.map(|k| format!("kind {k}"));
        let pattern = self.matches.as_ref().map(|re| format!("a message matching /{}/", re.as_str()));
        kind.into_iter().chain(pattern).collect::<Vec<_>>().join(", ")
    }
}

impl Step {
    /// A one-line label for progress and reports.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match &self.action {
            Action::Request { request, .. } => {
                format!("{} {}{}", request.method, request.host, request.path)
            }
            Action::Filters(_) => "filter chain order".to_owned(),
            Action::Change { change, .. } => change.label(),
            Action::Reload(reload) => format!("reload under load: {}", reload.change.label()),
            Action::StopRegistry => "stop the registry".to_owned(),
        }
    }
}

/// A change to what is deployed.
#[derive(Debug, Clone)]
pub enum Change {
    /// `line`: the step's, for errors about the module.
    Push {
        plugin: String,
        module: ModuleSource,
        line: u64,
    },
    Apply(Box<WasmPlugin>),
    Delete {
        namespace: String,
        name: String,
    },
}

impl Change {
    pub fn label(&self) -> String {
        match self {
            Change::Push { plugin, module, .. } => format!("push {module} as {plugin}"),
            Change::Apply(resource) => format!("apply WasmPlugin {}/{}", resource.namespace, resource.name),
            Change::Delete { namespace, name } => format!("delete WasmPlugin {namespace}/{name}"),
        }
    }
}

/// A change applied while bounded background load runs.
#[derive(Debug, Clone)]
pub struct Reload {
    pub load: LoadPlan,
    /// When the change is applied, after the load starts.
    pub after: Duration,
    pub change: Change,
    pub version: VersionSpec,
    pub errors: u32,
    pub status: u16,
    pub closes: Closes,
    pub switch_within: Duration,
}

#[derive(Debug, Clone)]
pub enum Action {
    Request {
        request: RequestSpec,
        expect: Box<Expect>,
    },
    Filters(FilterOrder),
    /// A change, then the wait (up to `within`) for the gateway to take or
    /// refuse it; `expect` says which it must be.
    Change {
        change: Change,
        expect: Option<UpdateExpect>,
        within: Duration,
    },
    Reload(Box<Reload>),
    StopRegistry,
}
