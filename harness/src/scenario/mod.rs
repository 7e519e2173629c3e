//! Scenarios: the YAML model, its validation, and the checked form the
//! runner executes.

pub mod document;
mod feature;
mod load;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::load::tcp::TcpLoadPlan;
pub use crate::load::LoadPlan;
pub use document::{
    BackendExpect, BodyExpect, Closes, EnvValueSource, EnvVar, Expect, FailStrategy, FilterOrder, HeaderExpect,
    JsonObject, Layout, MatchRule, Phase, PluginType, PortSelector, PrivateRegistry, PullPolicy, RequestSpec,
    RoutingApi, SecretLogin, ServiceProtocol, TargetRef, TcpExchange, TrafficSelector, Translator, UpdateExpect,
    VmConfig, WasmConfig, WasmPluginSpec, WorkloadMode, WorkloadSelector,
};
pub use feature::Feature;

use crate::failure::{Failure, FailureKind};
pub use load::{discover, load_all, load_file, Diagnostic, LoadError, HTTP_LISTENER};

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
    /// The gateway's TCP listeners, each proxying to a TCP service.
    pub tcp_listeners: Vec<TcpListener>,
    /// The Wasm services the gateway's Envoy runs.
    pub wasm_services: Vec<WasmService>,
    pub resources: Vec<WasmPlugin>,
    pub policies: Vec<Policy>,
    /// Environment of the gateway's Envoy.
    pub gateway_env: BTreeMap<String, String>,
    /// What configures the gateway.
    pub routing: RoutingApi,
    /// The gateway's Envoy's worker threads.
    pub concurrency: u32,
    /// What turns its Higress WasmPlugins into Istio's.
    pub translator: Translator,
    /// The Secrets the run makes for `imagePullSecret`.
    pub pull_secrets: Vec<PullSecret>,
    /// Its registry asks for a login, over TLS with a CA of the run's.
    pub private_registry: Option<PrivateRegistry>,
    pub steps: Vec<Step>,
}

/// What a change of a `cycle` step is reckoned to take by the clock (the
/// gateway takes it, the next request shows it) when ordering runs.
const CYCLE_CHANGE: Duration = Duration::from_millis(250);

impl Scenario {
    /// How long its steps are known to take at least by the clock: the
    /// loads of its reloads and the changes of its cycles. Runs start the
    /// longest first, so that a long one does not start last and hold the
    /// end of a run.
    pub fn clock_time(&self) -> Duration {
        self.steps
            .iter()
            .map(|step| match &step.action {
                Action::Reload(reload) => reload.load.duration,
                Action::TcpReload(reload) => reload.load.duration,
                Action::Cycle { times, .. } => CYCLE_CHANGE * *times,
                _ => Duration::ZERO,
            })
            .sum()
    }

    /// The kind of the resource `namespace/name`, declared or applied by a step
    /// (names are one per namespace, whatever the kind); `None` if neither.
    pub fn flavor_of(&self, namespace: &str, name: &str) -> Option<Flavor> {
        let applied = self.steps.iter().flat_map(|step| step.action.changes()).filter_map(|change| match change {
            Change::Apply(resource) => Some(resource.as_ref()),
            _ => None,
        });
        self.resources.iter().chain(applied).find(|r| r.namespace == namespace && r.name == name).map(|r| r.flavor)
    }

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
    pub protocol: ServiceProtocol,
    /// Its backend's address refuses connections.
    pub down: bool,
}

/// A Wasm service: a singleton VM running `plugin`'s module (the digest
/// pushed first), configured with `config`, in the VM group `vm_id`.
#[derive(Debug, Clone)]
pub struct WasmService {
    pub name: String,
    pub plugin: String,
    pub config: Option<JsonObject>,
    pub vm_id: String,
}

/// A TCP listener of the gateway; where it listens is the run's.
#[derive(Debug, Clone)]
pub struct TcpListener {
    pub name: String,
    /// The TCP service it proxies every connection to.
    pub service: String,
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
    /// istio's `TrafficExtension` (1.30 on), written in Istio's API group;
    /// its spec is held as a WasmPlugin's (`wasm` lifted to the top).
    TrafficExtension,
}

impl Flavor {
    pub const ISTIO_API: &'static str = "extensions.istio.io/v1alpha1";
    pub const HIGRESS_API: &'static str = "extensions.higress.io/v1alpha1";

    /// The kind of resource istiod reads for it (a Higress WasmPlugin becomes an Istio one).
    pub fn kind(self) -> ResourceKind {
        match self {
            Flavor::Istio | Flavor::Higress => ResourceKind::WasmPlugin,
            Flavor::TrafficExtension => ResourceKind::TrafficExtension,
        }
    }
}

/// The resource istiod reads: a WasmPlugin, or (1.30 on) a TrafficExtension,
/// which istiod turns WasmPlugins into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    WasmPlugin,
    TrafficExtension,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 2] = [ResourceKind::WasmPlugin, ResourceKind::TrafficExtension];

    /// Its `kind`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::WasmPlugin => "WasmPlugin",
            ResourceKind::TrafficExtension => "TrafficExtension",
        }
    }
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

/// A `kubernetes.io/dockerconfigjson` Secret the run makes for the
/// scenario's registry (`pull_secrets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSecret {
    pub name: String,
    pub namespace: String,
    pub login: SecretLogin,
    pub line: u64,
}

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
    /// Exactly `times` attempts (`every` apart), each of which must hold:
    /// for claims about every request, not the first one or eventually.
    Always { times: u32, every: Duration },
}

impl Default for Retry {
    fn default() -> Self {
        Retry::Until { times: DEFAULT_TIMES, within: DEFAULT_WITHIN, every: Duration::ZERO }
    }
}

/// `expected_failure`: the reason, which checks fail and how, and on which
/// targets.
#[derive(Debug, Clone)]
pub struct ExpectedFailure {
    pub reason: String,
    pub kind: Option<FailureKind>,
    /// Each names a part of the failure (a failed check, or the message of
    /// a failure that is not a check's); together they name every part.
    pub matches: Vec<regex::Regex>,
    pub when: Vec<Feature>,
    pub unless: Vec<Feature>,
}

impl ExpectedFailure {
    /// Whether the mark holds on a target with `features`.
    pub fn applies(&self, features: &BTreeSet<Feature>) -> bool {
        self.when.iter().all(|f| features.contains(f)) && !self.unless.iter().any(|f| features.contains(f))
    }

    /// Whether `failure` is exactly the one this mark names: its kind, each
    /// pattern matching a failed check, and no failed check that no pattern
    /// names (every other check of the step held). Err says what differs.
    pub fn accepts(&self, failure: &Failure) -> Result<(), String> {
        if let Some(kind) = self.kind.filter(|k| *k != failure.kind) {
            return Err(format!("the failure is of kind {}, not {kind}", failure.kind));
        }
        let parts = failure.parts();
        let unmatched: Vec<&str> =
            self.matches.iter().filter(|re| !parts.iter().any(|p| re.is_match(p))).map(|re| re.as_str()).collect();
        if !unmatched.is_empty() {
            return Err(format!("no failed check matches /{}/", unmatched.join("/, /")));
        }
        let unnamed: Vec<&String> = parts.iter().filter(|p| !self.matches.iter().any(|re| re.is_match(p))).collect();
        if !unnamed.is_empty() {
            let list: Vec<String> = unnamed.iter().map(|p| p.replace('\n', " / ")).collect();
            return Err(format!("failed checks the mark does not name: {}", list.join("; ")));
        }
        Ok(())
    }

    /// `kind K, failed checks matching /RE/`, for messages.
    pub fn describe(&self) -> String {
        let kind = self.kind.map(|k| format!("kind {k}"));
        let patterns: Vec<String> = self.matches.iter().map(|re| format!("/{}/", re.as_str())).collect();
        let pattern = format!("failed checks matching {}", patterns.join(" and "));
        kind.into_iter().chain([pattern]).collect::<Vec<_>>().join(", ")
    }
}

impl Action {
    /// The changes it makes.
    pub fn changes(&self) -> Vec<&Change> {
        match self {
            Action::Change { change, .. } => vec![change],
            Action::Reload(reload) => vec![&reload.change],
            Action::TcpReload(reload) => vec![&reload.change],
            Action::Cycle { changes, .. } => changes.iter().collect(),
            _ => Vec::new(),
        }
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
            Action::TcpReload(reload) => {
                format!("reload under TCP load on {}: {}", reload.listener, reload.change.label())
            }
            Action::Tcp(exchange) => format!("tcp {}: send {:?}", exchange.listener, exchange.send),
            Action::Stats(stats) => {
                let names: Vec<&str> = stats.iter().map(|s| s.name.as_str()).collect();
                format!("stats {}", names.join(", "))
            }
            Action::Logs(logs) => format!("log lines matching /{}/", logs.pattern.as_str()),
            Action::Cycle { times, changes } => format!("{times} changes round {} of them", changes.len()),
            Action::StopRegistry => "stop the registry".to_owned(),
            Action::ReplaceGateway => "replace the gateway with a new one".to_owned(),
            Action::RestartGateway => "restart the gateway in place".to_owned(),
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
            Change::Apply(resource) => {
                format!("apply {} {}/{}", resource.flavor.kind().name(), resource.namespace, resource.name)
            }
            Change::Delete { namespace, name } => format!("delete {namespace}/{name}"),
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
    /// `from` is what every connection answers before the change, `to`
    /// what each answers within `switch_within` of it.
    pub version: VersionSpec,
    pub errors: Errors,
    pub status: u16,
    pub closes: Closes,
    pub switch_within: Duration,
    /// With long streams: one started before the change is answered after
    /// the gateway took it.
    pub across: bool,
    /// What the other checks compare with, as `version` implies; the
    /// mutation audit changes one at a time.
    pub claims: ReloadClaims,
}

/// What tells the old version from the new: a response header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSpec {
    pub header: String,
    pub from: String,
    pub to: String,
}

/// A change applied while TCP connections run through one of the
/// gateway's TCP listeners.
#[derive(Debug, Clone)]
pub struct TcpReload {
    pub listener: String,
    pub load: TcpLoadPlan,
    /// When the change is applied, after the load starts.
    pub after: Duration,
    pub change: Change,
    /// The stamps every answer carries before the change.
    pub from: String,
    /// The stamps every connection opened `switch_within` after the change
    /// began carries.
    pub to: String,
    /// Exchanges that may fail (a connection the proxy closes is not one).
    pub errors: Errors,
    /// `none`: the proxy closes no connection; `drain`: it closes each held
    /// connection of the old listener when the drain time in force ends.
    pub closes: Closes,
    pub switch_within: Duration,
    /// What a connection opened before the change answers after the
    /// gateway took it (`from`); the mutation audit changes it.
    pub held_after: String,
}

/// How many short requests may fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errors {
    /// `expect.errors: N`.
    AtMost(u32),
    /// Every one (a mutant's claim: it holds with the scenario's only when
    /// no request was made at all).
    All,
}

/// The values the reload's checks beyond `from` and `to` expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadClaims {
    /// What a connection answers once it answered `to` (`to`).
    pub after_switch: String,
    /// What a long stream started before the change answers (`from`).
    pub long_before: String,
    /// What a long stream started `switch_within` after the change answers (`to`).
    pub long_after: String,
    /// How every long stream ends.
    pub long_end: LongEnd,
}

impl ReloadClaims {
    /// The claims `version` implies.
    pub fn of(version: &VersionSpec) -> Self {
        ReloadClaims {
            after_switch: version.to.clone(),
            long_before: version.from.clone(),
            long_after: version.to.clone(),
            long_end: LongEnd::Completed,
        }
    }
}

/// How long streams end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongEnd {
    /// Each receives every chunk and the end of its body.
    Completed,
    /// None completes (a mutant's claim: it holds with `Completed` only
    /// when there is no long stream).
    Cut,
}

/// One stat a `stats` step checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatExpect {
    pub name: String,
    /// Its value, or (`delta`) its change since the last `stats` step that read it.
    pub range: StatRange,
    pub delta: bool,
}

/// Inclusive bounds; `min == max` for an exact value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatRange {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

impl StatRange {
    pub fn exactly(value: i64) -> Self {
        StatRange { min: Some(value), max: Some(value) }
    }

    pub fn holds(&self, value: i64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }
}

impl std::fmt::Display for StatRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.min, self.max) {
            (Some(min), Some(max)) if min == max => write!(f, "{min}"),
            (Some(min), Some(max)) => write!(f, "{min} to {max}"),
            (Some(min), None) => write!(f, "at least {min}"),
            (None, Some(max)) => write!(f, "at most {max}"),
            (None, None) => write!(f, "any value"),
        }
    }
}

/// A `logs` step's expectation.
#[derive(Debug, Clone)]
pub struct LogsExpect {
    pub pattern: regex::Regex,
    /// Exactly this many matching lines; none: at least one.
    pub count: Option<usize>,
}

#[derive(Debug, Clone)]
pub enum Action {
    Request {
        request: RequestSpec,
        expect: Box<Expect>,
    },
    Filters(FilterOrder),
    Tcp(TcpExchange),
    Stats(Vec<StatExpect>),
    Logs(LogsExpect),
    /// A change, then the wait (up to `within`) for the gateway to take or
    /// refuse it; `expect` says which it must be.
    Change {
        change: Change,
        expect: Option<UpdateExpect>,
        within: Duration,
    },
    Reload(Box<Reload>),
    TcpReload(Box<TcpReload>),
    /// `times` changes, round `changes`, each taken before the next.
    Cycle {
        times: u32,
        changes: Vec<Change>,
    },
    StopRegistry,
    /// The gateway ends and a new one starts in its place, with a file
    /// system of its own (an empty Wasm cache), as when a gateway Pod is
    /// recreated; the step waits until the new one is ready.
    ReplaceGateway,
    /// The gateway ends and is started again in place (`gateway: restart`),
    /// as a kubelet restarts a container: the same Pod and volumes; the
    /// step waits until it is ready again.
    RestartGateway,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Mismatch;

    fn mark(kind: Option<FailureKind>, patterns: &[&str]) -> ExpectedFailure {
        ExpectedFailure {
            reason: "known".into(),
            kind,
            matches: patterns.iter().map(|p| regex::Regex::new(p).expect("a valid regex")).collect(),
            when: Vec::new(),
            unless: Vec::new(),
        }
    }

    fn failed(checks: &[(&str, &str)]) -> Failure {
        let mismatches: Vec<Mismatch> =
            checks.iter().map(|(e, a)| Mismatch { expected: e.to_string(), actual: a.to_string() }).collect();
        Failure { kind: FailureKind::Expectation, message: "the diff".into(), mismatches }
    }

    #[test]
    fn a_mark_names_every_failed_check_and_nothing_else() {
        let one = failed(&[("status: 200", "status: 503")]);
        assert_eq!(mark(None, &[r"\+status: 503"]).accepts(&one), Ok(()));
        assert_eq!(mark(Some(FailureKind::Expectation), &[r"-status: 200\n\+status: 503"]).accepts(&one), Ok(()));
        let two = failed(&[("status: 200", "status: 503"), ("header x: \"1\"", "header x: (absent)")]);
        let error = mark(None, &[r"\+status: 503"]).accepts(&two).expect_err("the header is not named");
        assert_eq!(error, "failed checks the mark does not name: -header x: \"1\" / +header x: (absent)");
        assert_eq!(mark(None, &[r"\+status: 503", r"\+header x"]).accepts(&two), Ok(()));
    }

    #[test]
    fn a_mark_whose_pattern_or_kind_fits_nothing_refuses() {
        let one = failed(&[("status: 200", "status: 503")]);
        assert_eq!(
            mark(None, &[r"\+status: 503", "drain"]).accepts(&one),
            Err("no failed check matches /drain/".into())
        );
        assert_eq!(
            mark(Some(FailureKind::Rejected), &["503"]).accepts(&one),
            Err("the failure is of kind expectation, not rejected".into())
        );
        // A failure that is not a check's is named by its message.
        let deadline = Failure::new(FailureKind::Deadline, "the gateway did not act within 30s");
        assert_eq!(mark(None, &["did not act"]).accepts(&deadline), Ok(()));
    }

    #[test]
    fn a_multiline_check_is_named_line_by_line() {
        let chain = Mismatch { expected: "filter b\nfilter a".into(), actual: "filter a\nfilter b\nfilter r".into() };
        assert_eq!(chain.lines(), "-filter b\n-filter a\n+filter a\n+filter b\n+filter r");
    }
}
