//! Reading scenario files: parse, then check every reference, reporting each
//! problem as `file:line:column: message`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use serde_json::Value;

use super::document::{
    Eventually, Expect, ExpectedFailureDoc, FailStrategy, FilterRef, GatewayAction, HumanDuration, JsonObject,
    PluginType, PrivateRegistryDoc, PushDoc, ReloadDoc, ResourceDoc, Retry as RetryDoc, RoutingApi, ScenarioDoc,
    StatBounds, StatDelta, StatDoc, StepDoc, TcpLoadDoc,
};
use super::{
    Action, Change, Closes, Errors, ExpectedFailure, Feature, Flavor, LoadPlan, LogsExpect, ModuleSource, Plugin,
    Policy, PrivateRegistry, PullSecret, Reference, Reload, ReloadClaims, Retry, Route, Scenario, Service,
    ServiceProtocol, StatExpect, StatRange, Step, TcpExchange, TcpListener, TcpLoadPlan, TcpReload, Translator,
    VersionSpec, WasmPlugin, WasmPluginSpec, WasmService, DEFAULT_CHANGE_WITHIN, DEFAULT_TIMES, DEFAULT_WITHIN,
};
use crate::mesh::{GATEWAY_NAMESPACE, ROOT_NAMESPACE};

const PLUGIN_SCHEME: &str = "plugin://";
/// Names a service of the scenario in a plugin's config: its cluster.
const SERVICE_SCHEME: &str = "service://";

/// The scenario's TCP listeners by name, for an error that names none of them.
fn declared_listeners(listeners: &[TcpListener]) -> String {
    if listeners.is_empty() {
        return "none".to_owned();
    }
    listeners.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
}
/// How `filters.network` names the gateway's HTTP listener.
pub const HTTP_LISTENER: &str = "http";
const MAX_CONNECTIONS: usize = 64;
const MAX_RATE: u32 = 20_000;
/// Concurrent streams on one HTTP/2 connection of a reload's load, short and long.
const MAX_STREAMS: usize = 64;
const MAX_DURATION: Duration = Duration::from_secs(60);
/// How soon after a reload's change every connection must see the new version.
const DEFAULT_SWITCH_WITHIN: Duration = Duration::from_secs(2);
/// Worker threads a scenario's gateway may have.
const MAX_WORKERS: u32 = 4;
/// Changes a `cycle` step may make.
const MAX_CYCLE: u32 = 500;
/// New connections a second a TCP load may open.
const MAX_TCP_RATE: u32 = 200;
/// How often a held TCP connection may exchange.
const MIN_TCP_EVERY: Duration = Duration::from_millis(10);
const MAX_TCP_EVERY: Duration = Duration::from_secs(1);

/// What a reload step's load of either kind is given: its change and times.
struct ReloadTiming {
    change: Change,
    after: Duration,
    duration: Duration,
    switch_within: Duration,
}

/// A field's value, or its default, and where to point at it (the field,
/// or `at` when it is not written).
fn field_or<T: Copy>(spanned: &Option<Spanned<T>>, default: T, at: Location) -> (T, Location) {
    spanned.as_ref().map_or((default, at), |s| (s.value, s.referenced))
}

/// One problem at one place in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read the scenario: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

impl LoadError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Invalid(d) => d,
            LoadError::Read { .. } => &[],
        }
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// Finds every `*.yaml` scenario below `root`, sorted by path.
pub fn discover(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Loads every scenario named by `paths` (files, or folders searched for
/// `*.yaml`). Ids are relative to the folder given, or to a file's folder.
pub fn load_all(paths: &[PathBuf], modules: &BTreeSet<String>) -> (Vec<Scenario>, Vec<LoadError>) {
    let (mut scenarios, mut errors) = (Vec::new(), Vec::new());
    for path in paths {
        let (root, files) = if path.is_dir() {
            match discover(path) {
                Ok(files) => (path.clone(), files),
                Err(source) => {
                    errors.push(LoadError::Read { path: path.clone(), source });
                    continue;
                }
            }
        } else {
            (path.parent().map(Path::to_path_buf).unwrap_or_default(), vec![path.clone()])
        };
        for file in files {
            match load_file(&file, &root, modules) {
                Ok(s) => scenarios.push(s),
                Err(e) => errors.push(e),
            }
        }
    }
    (scenarios, errors)
}

/// Loads and checks one scenario. `root` is the folder its id is relative to;
/// `modules` the test modules the plugins workspace can build.
pub fn load_file(path: &Path, root: &Path, modules: &BTreeSet<String>) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    load_str(&text, path, root, modules)
}

/// Checks one scenario given as text; `path` is where it came from (for its
/// id and for messages), `root` and `modules` as for [`load_file`].
pub fn load_str(text: &str, path: &Path, root: &Path, modules: &BTreeSet<String>) -> Result<Scenario, LoadError> {
    let id = path.strip_prefix(root).unwrap_or(path).with_extension("").to_string_lossy().into_owned();
    let mut checker = Checker { file: path.to_path_buf(), problems: Vec::new() };
    let doc: ScenarioDoc = match serde_saphyr::from_str(text) {
        Ok(doc) => doc,
        Err(err) => {
            let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
            checker.problems.push(Diagnostic { file: path.to_path_buf(), line, column, message: parse_message(&err) });
            return Err(LoadError::Invalid(checker.problems));
        }
    };
    let scenario = checker.check(doc, id, modules);
    if checker.problems.is_empty() {
        Ok(scenario)
    } else {
        Err(LoadError::Invalid(checker.problems))
    }
}

/// The parser's message without its source snippet and location (we print
/// the location ourselves, in the compiler's `file:line:column` form).
fn parse_message(err: &serde_saphyr::Error) -> String {
    let full = err.without_snippet().to_string();
    let first = full.lines().next().unwrap_or_default().trim();
    // The parser appends " at line L column C"; the diagnostic already says where.
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_owned(),
        None => first.to_owned(),
    }
}

/// What a scenario's steps are checked against, in order: its plugins, the
/// known modules, and the WasmPlugins that exist at the current step
/// (`NAMESPACE`, `NAME`).
struct StepScope<'a> {
    plugins: &'a BTreeMap<String, Plugin>,
    modules: &'a BTreeSet<String>,
    known: Vec<(String, String)>,
    features: &'a [Feature],
    pull_secrets: &'a [PullSecret],
    tcp_listeners: &'a [TcpListener],
    routes: &'a [Route],
    services: &'a [Service],
    /// The stats earlier `stats` steps read.
    stats_read: BTreeSet<String>,
    /// The TCP connections steps named so far, and their listeners.
    connections: BTreeMap<String, String>,
}

struct Checker {
    file: PathBuf,
    problems: Vec<Diagnostic>,
}

impl Checker {
    /// Unless the scenario declares `feature` (among `declared`), says at
    /// `at` that `what` needs it, and which targets skip such a scenario.
    fn require(&mut self, at: Location, declared: &[Feature], feature: Feature, what: &str, skipped_by: &str) {
        if !declared.contains(&feature) {
            let feature = feature.name();
            self.problem(at, format!("`{what}` needs the scenario's `features: [{feature}]` ({skipped_by} skip it)"));
        }
    }

    fn problem(&mut self, at: Location, message: impl Into<String>) {
        self.problems.push(Diagnostic {
            file: self.file.clone(),
            line: at.line(),
            column: at.column(),
            message: message.into(),
        });
    }

    /// What configures the gateway; a Gateway API gateway has no TCP
    /// listeners (TCPRoute is of the experimental channel, which the run
    /// does not install) and no Higress WasmPlugins (their rules name an
    /// Istio VirtualService's routes and hosts).
    fn routing(&mut self, doc: &ScenarioDoc) -> RoutingApi {
        let Some(api) = doc.gateway.as_ref().and_then(|g| g.value.api.clone()) else { return RoutingApi::Istio };
        if api.value == RoutingApi::Istio {
            return RoutingApi::Istio;
        }
        let skipped_by = "targets that cannot configure their gateway by the Gateway API (cluster; istiod before 1.30)";
        self.require(api.referenced, &doc.features, Feature::GatewayApi, "gateway.api: gateway-api", skipped_by);
        if let Some(listener) = doc.tcp_listeners.first() {
            self.problem(
                listener.referenced,
                "tcp_listeners on a Gateway API gateway: they would need TCPRoutes, of the Gateway API's experimental \
                 channel, which the run does not install; drop `gateway.api` or the TCP listeners",
            );
        }
        // The model keeps a host's routes in the scenario's order, as a
        // VirtualService does; HTTPRoutes follow the Gateway API's precedence.
        let mut hosts = BTreeSet::new();
        for route in &doc.routes {
            if let Some(host) = route.value.hosts.iter().find(|h| !hosts.insert(h.as_str())) {
                self.problem(
                    route.referenced,
                    format!(
                        "route `{}`: a second route for host `{host}` on a Gateway API gateway, whose HTTPRoutes are \
                         ordered by the Gateway API's precedence, not the scenario's; give each host one route",
                        route.value.name
                    ),
                );
            }
        }
        let applied = doc.steps.iter().filter_map(|s| s.value.apply.as_ref());
        for resource in doc.resources.iter().chain(applied) {
            let api_version = &resource.value.api_version;
            if api_version.value == Flavor::HIGRESS_API {
                self.problem(
                    api_version.referenced,
                    "a Higress WasmPlugin on a Gateway API gateway: its rules name the routes and hosts of an Istio \
                     VirtualService; use an Istio WasmPlugin (extensions.istio.io/v1alpha1), or drop `gateway.api`",
                );
            }
        }
        api.value
    }

    fn check(&mut self, doc: ScenarioDoc, id: String, modules: &BTreeSet<String>) -> Scenario {
        let plugins = self.plugins(&doc, modules);
        let services = self.services(&doc);
        let routes = self.routes(&doc, &services);
        let tcp_listeners = self.tcp_listeners(&doc, &services, &routes);
        let wasm_services = self.wasm_services(&doc, &plugins);
        let pull_secrets = self.pull_secrets(&doc);
        let mut resources: Vec<WasmPlugin> = Vec::new();
        for decl in &doc.resources {
            if let Some(res) = self.resource(decl, &plugins, &pull_secrets, &doc.features, &services) {
                if resources.iter().any(|r| r.namespace == res.namespace && r.name == res.name) {
                    self.problem(
                        decl.referenced,
                        format!(
                            "resource {}/{} is declared twice (names are one per namespace, whatever the kind)",
                            res.namespace, res.name
                        ),
                    );
                }
                resources.push(res);
            }
        }
        let policies = self.policies(&doc);
        let mut scope = StepScope {
            plugins: &plugins,
            modules,
            known: resources.iter().map(|r| (r.namespace.clone(), r.name.clone())).collect(),
            features: &doc.features,
            pull_secrets: &pull_secrets,
            tcp_listeners: &tcp_listeners,
            routes: &routes,
            services: &services,
            connections: BTreeMap::new(),
            stats_read: BTreeSet::new(),
        };
        let steps = doc.steps.iter().filter_map(|s| self.step(s, &mut scope)).collect();
        let gateway_env = match &doc.gateway {
            Some(gateway) if !gateway.value.env.is_empty() => {
                let skipped_by = "targets whose gateway is not the run's own, such as an installed one,";
                self.require(gateway.referenced, &doc.features, Feature::GatewayEnv, "gateway.env", skipped_by);
                gateway.value.env.clone()
            }
            _ => BTreeMap::new(),
        };
        let routing = self.routing(&doc);
        let concurrency = match doc.gateway.as_ref().and_then(|g| g.value.concurrency.clone()) {
            None => 1,
            Some(workers) => {
                if !(1..=MAX_WORKERS).contains(&workers.value) {
                    let problem = format!("gateway.concurrency: {}; 1 to {MAX_WORKERS} worker threads", workers.value);
                    self.problem(workers.referenced, problem);
                }
                let skipped_by = "targets whose gateway is not the run's own, such as an installed one,";
                let what = "gateway.concurrency";
                self.require(workers.referenced, &doc.features, Feature::GatewayConcurrency, what, skipped_by);
                workers.value
            }
        };
        let translator = match &doc.translator {
            Some(translator) if translator.value == Translator::HigressController => {
                if !resources.iter().any(|r| r.flavor == Flavor::Higress) {
                    self.problem(
                        translator.referenced,
                        "`translator: higress-controller` says what translates the scenario's Higress WasmPlugins, \
                         and it has none: add one (apiVersion: extensions.higress.io/v1alpha1), or leave translator out",
                    );
                }
                let skipped_by = "targets on a cluster without Higress's controller (every target but \
                                  `cluster --higress-controller`)";
                let what = "translator: higress-controller";
                self.require(translator.referenced, &doc.features, Feature::HigressController, what, skipped_by);
                translator.value
            }
            _ => Translator::Plugproof,
        };
        if doc.steps.is_empty() {
            self.problem(Location::UNKNOWN, "`steps` is empty: a scenario must check something");
        }
        let private_registry = self.private_registry(&doc);
        Scenario {
            name: doc.name.unwrap_or_else(|| id.clone()),
            id,
            file: self.file.clone(),
            description: doc.description,
            features: doc.features,
            plugins,
            services,
            routes,
            tcp_listeners,
            wasm_services,
            resources,
            policies,
            gateway_env,
            routing,
            concurrency,
            translator,
            pull_secrets,
            private_registry,
            steps,
        }
    }

    /// The Secrets the run makes, each named once per namespace; they need
    /// istio's agent, the one that reads them.
    fn private_registry(&mut self, doc: &ScenarioDoc) -> Option<PrivateRegistry> {
        let private = doc.private_registry.as_ref()?;
        let registry = match &private.value {
            PrivateRegistryDoc::On(false) => return None,
            PrivateRegistryDoc::On(true) => PrivateRegistry::default(),
            PrivateRegistryDoc::With(registry) => registry.clone(),
        };
        let skipped_by = "targets that push to a registry they do not start, or whose gateway cannot trust its CA,";
        self.require(private.referenced, &doc.features, Feature::PrivateRegistry, "private_registry", skipped_by);
        self.require(private.referenced, &doc.features, Feature::OwnRegistry, "private_registry", skipped_by);
        Some(registry)
    }

    fn pull_secrets(&mut self, doc: &ScenarioDoc) -> Vec<PullSecret> {
        let mut secrets: Vec<PullSecret> = Vec::new();
        for decl in &doc.pull_secrets {
            let at = decl.referenced;
            let namespace = decl.value.namespace.clone().unwrap_or_else(|| ROOT_NAMESPACE.to_owned());
            let login = decl.value.login;
            let secret = PullSecret { name: decl.value.name.clone(), namespace, login, line: at.line() };
            if !is_dns_subdomain(&secret.name) {
                let problem = format!(
                    "pull_secrets: `{}` is not a Kubernetes name: lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit",
                    secret.name
                );
                self.problem(at, problem);
            }
            if secrets.iter().any(|s| s.name == secret.name && s.namespace == secret.namespace) {
                self.problem(at, format!("pull_secrets: {}/{} is declared twice", secret.namespace, secret.name));
            }
            secrets.push(secret);
        }
        if let Some(first) = doc.pull_secrets.first() {
            let skipped_by = "targets whose gateway has no istio agent, such as envoy,";
            self.require(first.referenced, &doc.features, Feature::AgentFetch, "pull_secrets", skipped_by);
        }
        secrets
    }

    fn plugins(&mut self, doc: &ScenarioDoc, modules: &BTreeSet<String>) -> BTreeMap<String, Plugin> {
        let mut plugins = BTreeMap::new();
        for (name, decl) in &doc.plugins {
            if !is_repository_component(name) {
                self.problem(
                    decl.referenced,
                    format!("plugin name `{name}` must be lowercase letters, digits, `-`, `_` or `.` (it names a registry repository)"),
                );
            }
            let what = format!("plugin `{name}`");
            let Some(module) = self.source(decl.referenced, &what, &decl.value.sources(), modules) else { continue };
            plugins.insert(
                name.clone(),
                Plugin {
                    name: name.clone(),
                    module,
                    tag: decl.value.tag.clone().unwrap_or_else(|| "v1".to_owned()),
                    layout: decl.value.layout,
                    line: decl.referenced.line(),
                },
            );
        }
        plugins
    }

    /// The one module source of a plugin or a push (`what`), checked: a
    /// built-in module the workspace builds, a file that exists, a folder
    /// with a Cargo.toml or a go.mod, an image reference.
    fn source(
        &mut self,
        at: Location,
        what: &str,
        given: &[(&'static str, &Spanned<String>)],
        modules: &BTreeSet<String>,
    ) -> Option<ModuleSource> {
        let [(key, value)] = given else {
            let keys: Vec<&str> = given.iter().map(|(k, _)| *k).collect();
            let problem = if keys.is_empty() {
                "names no module".to_owned()
            } else {
                format!("names {} modules", keys.join(" and "))
            };
            self.problem(
                at,
                format!("{what} {problem}: give exactly one of `module` (built-in), `file`, `oci`, `cargo`, `go`"),
            );
            return None;
        };
        let here = self.file.parent().unwrap_or(Path::new("")).to_owned();
        let (text, place) = (value.value.as_str(), value.referenced);
        let exists = |checker: &mut Checker, dir: &Path, needs: &str| {
            if !dir.join(needs).is_file() {
                let problem = format!(
                    "{what}: `{}` has no {needs} (relative paths start at the scenario's folder)",
                    dir.display()
                );
                checker.problem(place, problem);
            }
        };
        Some(match *key {
            "module" => {
                if !modules.contains(text) {
                    let known = modules.iter().cloned().collect::<Vec<_>>().join(", ");
                    self.problem(
                        place,
                        format!(
                            "{what}: unknown module `{text}`; the plugins workspace builds: {known} \
                             (add a module to plugins/modules.yaml, or name yours with `file`, `oci`, `cargo` or `go`)"
                        ),
                    );
                }
                ModuleSource::Builtin(text.to_owned())
            }
            "file" => {
                let path = here.join(text);
                if let Err(problem) = wasm_file(&path) {
                    self.problem(place, format!("{what}: `{}` {problem}", path.display()));
                }
                ModuleSource::File(path)
            }
            "cargo" => {
                let dir = here.join(text);
                exists(self, &dir, "Cargo.toml");
                ModuleSource::Cargo(dir)
            }
            "go" => {
                let dir = here.join(text);
                exists(self, &dir, "go.mod");
                ModuleSource::Go(dir)
            }
            _ => {
                if text.parse::<oci_client::Reference>().is_err() {
                    self.problem(
                        place,
                        format!("{what}: `{text}` is not an image reference like HOST:PORT/REPOSITORY:TAG"),
                    );
                }
                ModuleSource::Oci(text.to_owned())
            }
        })
    }

    fn services(&mut self, doc: &ScenarioDoc) -> Vec<Service> {
        let mut seen = BTreeSet::new();
        let mut services = Vec::new();
        for decl in &doc.services {
            let s = &decl.value;
            if !seen.insert(s.name.clone()) {
                self.problem(decl.referenced, format!("service `{}` is declared twice", s.name));
            }
            let protocol = s.protocol.unwrap_or_default();
            let default_port = match protocol {
                ServiceProtocol::Http => 80,
                ServiceProtocol::Tcp => 9000,
            };
            services.push(Service {
                name: s.name.clone(),
                host: s.host.clone().unwrap_or_else(|| format!("{}.default.svc.cluster.local", s.name)),
                port: s.port.unwrap_or(default_port),
                protocol,
                down: s.down,
            });
        }
        services
    }

    fn tcp_listeners(&mut self, doc: &ScenarioDoc, services: &[Service], routes: &[Route]) -> Vec<TcpListener> {
        let mut listeners: Vec<TcpListener> = Vec::new();
        for decl in &doc.tcp_listeners {
            let l = &decl.value;
            if listeners.iter().any(|other| other.name == l.name) {
                self.problem(decl.referenced, format!("tcp listener `{}` is declared twice", l.name));
            }
            if l.name.is_empty() || !l.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                let problem = format!(
                    "tcp listener `{}`: name it with lower-case letters, digits and `-` (it names the gateway's \
                     server port)",
                    l.name
                );
                self.problem(decl.referenced, problem);
            }
            if routes.iter().any(|r| r.name == l.name) {
                self.problem(decl.referenced, format!("tcp listener `{}` has the name of an HTTP route", l.name));
            }
            match services.iter().find(|s| s.name == l.service.value) {
                None => self.problem(
                    l.service.referenced,
                    format!("tcp listener `{}`: no service named `{}` in `services`", l.name, l.service.value),
                ),
                Some(s) if s.protocol != ServiceProtocol::Tcp => self.problem(
                    l.service.referenced,
                    format!(
                        "tcp listener `{}`: service `{}` is an HTTP service; give it `protocol: TCP` (its backend \
                         then echoes bytes)",
                        l.name, s.name
                    ),
                ),
                Some(_) => {}
            }
            listeners.push(TcpListener { name: l.name.clone(), service: l.service.value.clone() });
        }
        if let Some(decl) = doc.tcp_listeners.first() {
            let skipped_by = "targets that cannot give the gateway TCP listeners";
            self.require(decl.referenced, &doc.features, Feature::TcpListeners, "tcp_listeners", skipped_by);
        }
        listeners
    }

    fn wasm_services(&mut self, doc: &ScenarioDoc, plugins: &BTreeMap<String, Plugin>) -> Vec<WasmService> {
        let mut services: Vec<WasmService> = Vec::new();
        for decl in &doc.wasm_services {
            let w = &decl.value;
            if services.iter().any(|other| other.name == w.name) {
                self.problem(decl.referenced, format!("wasm service `{}` is declared twice", w.name));
            }
            if !plugins.contains_key(&w.plugin.value) {
                let known = plugins.keys().cloned().collect::<Vec<_>>().join(", ");
                let problem = format!(
                    "wasm service `{}`: no plugin named `{}` in `plugins` (declared: {known})",
                    w.name, w.plugin.value
                );
                self.problem(w.plugin.referenced, problem);
            }
            services.push(WasmService {
                name: w.name.clone(),
                plugin: w.plugin.value.clone(),
                config: w.config.clone(),
                vm_id: w.vm_id.clone(),
            });
        }
        if let Some(decl) = doc.wasm_services.first() {
            let skipped_by = "targets whose gateway's bootstrap is not plugproof's to write (istio's agent writes it)";
            self.require(decl.referenced, &doc.features, Feature::WasmServices, "wasm_services", skipped_by);
        }
        services
    }

    fn routes(&mut self, doc: &ScenarioDoc, services: &[Service]) -> Vec<Route> {
        let mut seen = BTreeSet::new();
        let mut routes = Vec::new();
        for decl in &doc.routes {
            let r = &decl.value;
            if !seen.insert(r.name.clone()) {
                self.problem(decl.referenced, format!("route `{}` is declared twice", r.name));
            }
            if r.name.split('/').filter(|p| !p.is_empty()).count() != 2 {
                self.problem(
                    decl.referenced,
                    format!("route name `{}` must be NAMESPACE/NAME, as Higress names an Ingress's route", r.name),
                );
            }
            if r.hosts.is_empty() {
                self.problem(
                    decl.referenced,
                    format!("route `{}` has no hosts (use `[\"*\"]` for every host)", r.name),
                );
            }
            match services.iter().find(|s| s.name == r.service.value) {
                None => self.problem(
                    r.service.referenced,
                    format!("route `{}`: no service named `{}` in `services`", r.name, r.service.value),
                ),
                Some(s) if s.protocol == ServiceProtocol::Tcp => self.problem(
                    r.service.referenced,
                    format!(
                        "route `{}`: service `{}` is a TCP service; an HTTP route needs an HTTP one (a TCP service \
                         is reached through `tcp_listeners`)",
                        r.name, s.name
                    ),
                ),
                Some(_) => {}
            }
            let path = r.path.clone().unwrap_or_else(|| "/".to_owned());
            if !path.starts_with('/') {
                self.problem(decl.referenced, format!("route `{}`: path `{path}` must start with `/`", r.name));
            }
            routes.push(Route {
                name: r.name.clone(),
                hosts: r.hosts.clone(),
                path_prefix: path,
                service: r.service.value.clone(),
            });
        }
        routes
    }

    fn resource(
        &mut self,
        decl: &Spanned<ResourceDoc>,
        plugins: &BTreeMap<String, Plugin>,
        pull_secrets: &[PullSecret],
        declared: &[Feature],
        services: &[Service],
    ) -> Option<WasmPlugin> {
        let r = &decl.value;
        let flavor = match r.api_version.value.as_str() {
            Flavor::ISTIO_API => Flavor::Istio,
            Flavor::HIGRESS_API => Flavor::Higress,
            other => {
                self.problem(
                    r.api_version.referenced,
                    format!(
                        "unsupported apiVersion `{other}`; use `{}` or `{}`",
                        Flavor::ISTIO_API,
                        Flavor::HIGRESS_API
                    ),
                );
                return None;
            }
        };
        let flavor = match (flavor, r.kind.value.as_str()) {
            (_, "WasmPlugin") => flavor,
            (Flavor::Istio, "TrafficExtension") => Flavor::TrafficExtension,
            (_, other) => {
                let problem = format!(
                    "unsupported kind `{other}`; resources are `WasmPlugin`s, or `TrafficExtension`s of apiVersion `{}`",
                    Flavor::ISTIO_API
                );
                self.problem(r.kind.referenced, problem);
                return None;
            }
        };
        let mut lifted = self.lift_wasm(flavor, decl, declared)?;
        self.bind_services(&mut lifted, services, decl.referenced);
        let spec = &lifted;
        if flavor != Flavor::Higress {
            let higress_only = [
                ("defaultConfig", spec.default_config.as_ref().map(|s| s.referenced)),
                ("defaultConfigDisable", spec.default_config_disable.as_ref().map(|s| s.referenced)),
                ("matchRules", spec.match_rules.as_ref().map(|s| s.referenced)),
            ];
            for (field, at) in higress_only {
                if let Some(at) = at {
                    self.problem(
                        at,
                        format!(
                            "`{field}` is a Higress field; use apiVersion `{}` or `pluginConfig`",
                            Flavor::HIGRESS_API
                        ),
                    );
                }
            }
        }
        let attachments = [
            ("selector", spec.selector.as_ref().map(|s| s.referenced)),
            ("targetRef", spec.target_ref.as_ref().map(|t| t.referenced)),
            ("targetRefs", spec.target_refs.as_ref().map(|t| t.referenced)),
        ];
        let given: Vec<(&str, Location)> = attachments.iter().filter_map(|(f, at)| at.map(|at| (*f, at))).collect();
        for (field, at) in &given {
            if flavor == Flavor::Higress {
                let problem = format!("`{field}` is an Istio WasmPlugin field; use apiVersion `{}`", Flavor::ISTIO_API);
                self.problem(*at, problem);
            }
        }
        if let [_, (field, at), ..] = given.as_slice() {
            let problem = format!(
                "`{field}` beside `{}`: istio's API refuses a WasmPlugin with more than one of selector, \
                 targetRef and targetRefs (\"only one of targetRefs or selector can be set\"); keep one",
                given[0].0
            );
            self.problem(*at, problem);
        }
        let refs = spec.target_ref.iter().map(|t| (&t.value, t.referenced));
        let refs = refs.chain(spec.target_refs.iter().flat_map(|t| t.value.iter().map(|r| (r, t.referenced))));
        for (target, at) in refs {
            if target.namespace.is_some() {
                let problem = format!(
                    "targetRef to {} {}: `namespace` is refused by istio's API (\"cross namespace referencing is not \
                     currently supported\"); leave it out, a target is in the WasmPlugin's namespace",
                    target.kind, target.name
                );
                self.problem(at, problem);
            }
        }
        let network = spec.plugin_type == Some(PluginType::Network);
        if network {
            let skipped_by = "targets whose istiod predates the model of it (1.30), such as envoy+istiod@1.24,";
            self.require(decl.referenced, declared, Feature::NetworkPlugins, "type: NETWORK", skipped_by);
        }
        if spec.plugin_type.is_some() && flavor == Flavor::Higress {
            let problem = format!("`type` is an Istio WasmPlugin field; use apiVersion `{}`", Flavor::ISTIO_API);
            self.problem(decl.referenced, problem);
        }
        if let Some(traffic) = &spec.traffic {
            if network && traffic.value.iter().any(|t| !t.ports.is_empty()) {
                self.problem(
                    traffic.referenced,
                    "`match[].ports` on a NETWORK plugin is not modelled: istiod matches it per listener, and the \
                     TCP listeners' ports are the run's own; leave ports out",
                );
            }
            if flavor == Flavor::Higress {
                let problem = format!("`match` is an Istio WasmPlugin field; use apiVersion `{}`", Flavor::ISTIO_API);
                self.problem(traffic.referenced, problem);
            }
            let ports = traffic.value.iter().flat_map(|t| &t.ports);
            for port in ports.filter(|p| !(1..=65535).contains(&p.number)) {
                let problem = format!(
                    "`match[].ports[].number` {} is not a port: write 1-65535 ({} stands for the gateway's HTTP \
                     listener)",
                    port.number,
                    crate::mesh::GATEWAY_PORT
                );
                self.problem(traffic.referenced, problem);
            }
        }
        let url = &spec.url;
        let (plugin, reference) = match parse_plugin_url(&url.value) {
            Some((name, reference)) if plugins.contains_key(name) => (name.to_owned(), reference),
            Some((name, _)) => {
                let known = plugins.keys().cloned().collect::<Vec<_>>().join(", ");
                self.problem(
                    url.referenced,
                    format!("url `{}`: no plugin named `{name}` in `plugins` (declared: {known})", url.value),
                );
                return None;
            }
            None => {
                self.problem(
                    url.referenced,
                    format!(
                        "url `{}`: write `plugin://NAME` (bound to the pushed digest) or `plugin://NAME:TAG`, naming an entry of `plugins`",
                        url.value
                    ),
                );
                return None;
            }
        };
        let namespace = r.metadata.namespace.clone().unwrap_or_else(|| {
            match flavor {
                Flavor::Istio | Flavor::TrafficExtension => ROOT_NAMESPACE,
                Flavor::Higress => GATEWAY_NAMESPACE,
            }
            .to_owned()
        });
        if spec.fail_strategy == Some(FailStrategy::FailReload) {
            let skipped_by = "targets whose istiod predates it (1.27), such as envoy+istiod@1.24,";
            self.require(decl.referenced, declared, Feature::FailReload, "failStrategy: FAIL_RELOAD", skipped_by);
        }
        if let Some(secret) = &spec.image_pull_secret {
            if !pull_secrets.iter().any(|s| s.name == *secret && s.namespace == namespace) {
                let problem = format!(
                    "imagePullSecret `{secret}`: the scenario's pull_secrets hold no Secret of that name in namespace \
                     {namespace}, where istiod looks for it (the WasmPlugin's own); declare `- {{name: {secret}, \
                     namespace: {namespace}}}` under pull_secrets"
                );
                self.problem(decl.referenced, problem);
            }
        }
        Some(WasmPlugin {
            flavor,
            name: r.metadata.name.clone(),
            namespace,
            plugin,
            reference,
            spec: lifted,
            line: decl.referenced.line(),
        })
    }

    /// The spec as a WasmPlugin's: a TrafficExtension's `wasm` lifted to the
    /// top, where a WasmPlugin has those fields; `None` when the resource
    /// has no module to name.
    fn lift_wasm(
        &mut self,
        flavor: Flavor,
        decl: &Spanned<ResourceDoc>,
        declared: &[Feature],
    ) -> Option<WasmPluginSpec> {
        let spec = &decl.value.spec;
        let at = decl.referenced;
        if flavor != Flavor::TrafficExtension {
            if let Some(wasm) = &spec.wasm {
                self.problem(
                    wasm.referenced,
                    "`wasm` is a TrafficExtension field; a WasmPlugin has `url` and the rest at the top of its spec",
                );
            }
            if spec.url.value.is_empty() {
                self.problem(at, "spec.url is missing: write `url: plugin://NAME`, naming an entry of `plugins`");
                return None;
            }
            return Some(spec.clone());
        }
        self.require(
            at,
            declared,
            Feature::TrafficExtensions,
            "kind: TrafficExtension",
            "targets whose istiod predates it (1.30), such as envoy+istiod@1.24,",
        );
        let at_top = [
            ("url", !spec.url.value.is_empty()),
            ("sha256", spec.sha256.is_some()),
            ("imagePullPolicy", spec.image_pull_policy.is_some()),
            ("imagePullSecret", spec.image_pull_secret.is_some()),
            ("pluginConfig", spec.plugin_config.is_some()),
            ("pluginName", spec.plugin_name.is_some()),
            ("failStrategy", spec.fail_strategy.is_some()),
            ("vmConfig", spec.vm_config.is_some()),
        ];
        for (field, _) in at_top.iter().filter(|(_, written)| *written) {
            self.problem(at, format!("spec.{field}: a TrafficExtension has it under `spec.wasm`; move it there"));
        }
        if let Some(target) = &spec.target_ref {
            self.problem(
                target.referenced,
                "`targetRef` is a WasmPlugin field; a TrafficExtension has `targetRefs` (a list)",
            );
        }
        let Some(wasm) = &spec.wasm else {
            self.problem(at, "a TrafficExtension needs `spec.wasm` (with `url: plugin://NAME`): plugproof runs Wasm extensions, not `lua`");
            return None;
        };
        let wasm = wasm.value.clone();
        Some(WasmPluginSpec {
            url: wasm.url,
            sha256: wasm.sha256,
            image_pull_policy: wasm.image_pull_policy,
            image_pull_secret: wasm.image_pull_secret,
            plugin_config: wasm.plugin_config,
            plugin_name: wasm.plugin_name,
            fail_strategy: wasm.fail_strategy,
            vm_config: wasm.vm_config,
            plugin_type: wasm.plugin_type,
            wasm: None,
            ..spec.clone()
        })
    }

    /// `service://NAME` in a plugin's configs (a whole string value) stands
    /// for the cluster of the scenario's service `NAME`, as istiod names it
    /// (`outbound|PORT||HOST`): what a plugin's callout names.
    fn bind_services(&mut self, spec: &mut WasmPluginSpec, services: &[Service], at: Location) {
        let mut configs: Vec<(String, &mut JsonObject)> =
            spec.plugin_config.iter_mut().map(|c| ("pluginConfig".to_owned(), c)).collect();
        configs.extend(spec.default_config.iter_mut().map(|c| ("defaultConfig".to_owned(), &mut c.value)));
        if let Some(rules) = spec.match_rules.as_mut() {
            let rules = rules.value.iter_mut().enumerate();
            configs.extend(rules.filter_map(|(i, r)| Some((format!("matchRules[{i}].config"), r.config.as_mut()?))));
        }
        fn walk(value: &mut Value, path: String, services: &[Service], unknown: &mut Vec<(String, String)>) {
            match value {
                Value::String(text) => {
                    let Some(name) = text.strip_prefix(SERVICE_SCHEME) else { return };
                    match services.iter().find(|s| s.name == name) {
                        Some(service) => *text = service.cluster_name(),
                        None => unknown.push((path, name.to_owned())),
                    }
                }
                Value::Array(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        walk(item, format!("{path}[{i}]"), services, unknown);
                    }
                }
                Value::Object(fields) => {
                    for (key, item) in fields.iter_mut() {
                        walk(item, format!("{path}.{key}"), services, unknown);
                    }
                }
                _ => {}
            }
        }
        let mut unknown = Vec::new();
        for (path, config) in configs {
            for (key, value) in config.iter_mut() {
                walk(value, format!("{path}.{key}"), services, &mut unknown);
            }
        }
        for (path, name) in unknown {
            let declared: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
            self.problem(
                at,
                format!(
                    "{path}: `{SERVICE_SCHEME}{name}` names no service of the scenario's (declared: {}); declare it in \
                     `services`, or write a cluster name for a cluster the gateway lacks",
                    if declared.is_empty() { "none".to_owned() } else { declared.join(", ") }
                ),
            );
        }
    }

    fn step(&mut self, decl: &Spanned<StepDoc>, scope: &mut StepScope<'_>) -> Option<Step> {
        let s = &decl.value;
        let at = decl.referenced;
        let actions = [
            ("request", s.request.is_some()),
            ("tcp", s.tcp.is_some()),
            ("stats", s.stats.is_some()),
            ("logs", s.logs.is_some()),
            ("filters", s.filters.is_some()),
            ("push", s.push.is_some()),
            ("apply", s.apply.is_some()),
            ("delete", s.delete.is_some()),
            ("reload", s.reload.is_some()),
            ("cycle", s.cycle.is_some()),
            ("registry", s.registry.is_some()),
            ("gateway", s.gateway.is_some()),
        ];
        let given: Vec<&str> = actions.iter().filter(|(_, set)| *set).map(|(name, _)| *name).collect();
        if given.len() != 1 {
            let problem = if given.is_empty() {
                "a step needs one action: `request` (with `expect`), `tcp`, `stats`, `logs`, `filters`, `push`, `apply`, `delete`, `reload`, `cycle`, `registry` or `gateway`"
                    .to_owned()
            } else {
                format!("a step has one action, this one has {}", given.join(" and "))
            };
            self.problem(at, problem);
            return None;
        }
        if s.expect.is_some() && s.request.is_none() {
            self.problem(at, "`expect` belongs to a `request` step");
            return None;
        }
        let eventually = s.eventually.as_ref();
        let action = if let Some(request) = &s.request {
            Action::Request { request: request.clone(), expect: Box::new(self.expectation(s, at)?) }
        } else if let Some(tcp) = &s.tcp {
            self.tcp_step(tcp, scope)?
        } else if let Some(stats) = &s.stats {
            Action::Stats(self.stats_step(stats, scope)?)
        } else if let Some(logs) = &s.logs {
            let pattern = match regex::Regex::new(&logs.value.matches.value) {
                Ok(pattern) => pattern,
                Err(e) => {
                    self.problem(
                        logs.value.matches.referenced,
                        format!("logs.matches is not a regular expression: {e}"),
                    );
                    return None;
                }
            };
            Action::Logs(LogsExpect { pattern, count: logs.value.count })
        } else if let Some(filters) = &s.filters {
            if filters.order.is_empty() {
                self.problem(at, "`filters.order` is empty: list the filter names expected, in order");
                return None;
            }
            if let Some(listener) = &filters.network {
                if listener != HTTP_LISTENER && !scope.tcp_listeners.iter().any(|l| &l.name == listener) {
                    let problem = format!(
                        "filters.network `{listener}`: write `{HTTP_LISTENER}` (the HTTP listener) or the name of \
                         one of `tcp_listeners` (declared: {})",
                        declared_listeners(scope.tcp_listeners)
                    );
                    self.problem(at, problem);
                }
            }
            for filter in &filters.order {
                if let FilterRef::Wasm { namespace, name } = filter {
                    if !scope.known.iter().any(|(ns, n)| ns == namespace && n == name) {
                        self.problem(at, format!("filters: no WasmPlugin {namespace}/{name} exists at this step"));
                    }
                }
            }
            Action::Filters(filters.clone())
        } else if s.registry.is_some() {
            let skipped_by = "runs that push to a registry of yours";
            self.require(at, scope.features, Feature::OwnRegistry, "registry: stop", skipped_by);
            Action::StopRegistry
        } else if let Some(gateway) = s.gateway {
            let (action, feature, can) = match gateway {
                GatewayAction::Replace => (Action::ReplaceGateway, Feature::NewGateway, "replace their gateway"),
                GatewayAction::Restart => {
                    (Action::RestartGateway, Feature::RestartedGateway, "restart their gateway in place")
                }
            };
            let step = format!("gateway: {}", format!("{gateway:?}").to_lowercase());
            self.require(at, scope.features, feature, &step, &format!("targets that cannot {can}"));
            action
        } else if let Some(reload) = &s.reload {
            self.reload(reload, scope)?
        } else if let Some(cycle) = &s.cycle {
            let times = cycle.value.times.value;
            if !(1..=MAX_CYCLE).contains(&times) {
                self.problem(cycle.value.times.referenced, format!("cycle.times: {times}; 1 to {MAX_CYCLE} changes"));
            }
            if cycle.value.changes.len() < 2 {
                self.problem(
                    cycle.referenced,
                    "cycle.changes: list two changes or more, each undoing the last's effect: a change made again \
                     is no change, and each of a cycle's must reach the gateway",
                );
            }
            let changes: Vec<Change> = cycle
                .value
                .changes
                .iter()
                .filter_map(|c| self.change(c.referenced, &c.value.push, &c.value.apply, &c.value.delete, scope))
                .collect();
            if changes.len() != cycle.value.changes.len() {
                return None;
            }
            Action::Cycle { times, changes }
        } else {
            let change = self.change(at, &s.push, &s.apply, &s.delete, scope)?;
            Action::Change { change, expect: s.expect_update, within: self.change_within(eventually)? }
        };
        if s.expect_update.is_some() && !matches!(action, Action::Change { .. }) {
            self.problem(at, "`expect_update` belongs to a `push`, `apply` or `delete` step");
        }
        let retry = match &action {
            Action::Tcp(TcpExchange { connection: Some(_), .. }) => {
                if let Some(eventually) = eventually {
                    let problem = "`eventually` on a tcp step with a `connection`: each attempt would write on the \
                                   same connection; it is attempted once";
                    self.problem(eventually.referenced, problem);
                }
                Retry::Once
            }
            Action::Request { .. } | Action::Tcp(_) | Action::Filters(_) | Action::Stats(_) | Action::Logs(_) => {
                self.retry(eventually)
            }
            Action::Change { .. } => Retry::default(),
            Action::Reload(_)
            | Action::TcpReload(_)
            | Action::Cycle { .. }
            | Action::StopRegistry
            | Action::ReplaceGateway
            | Action::RestartGateway => {
                if let Some(eventually) = eventually {
                    self.problem(
                        eventually.referenced,
                        "`eventually` belongs to `request`, `tcp`, `filters` and change steps",
                    );
                }
                Retry::default()
            }
        };
        let expected_failure = s.expected_failure.as_ref().and_then(|mark| self.expected_failure(mark));
        Some(Step { line: at.line(), name: s.name.clone(), action, retry, expected_failure })
    }

    /// A `stats` step: each stat's expectation; a `delta` needs an earlier
    /// `stats` step that read the same stat.
    fn stats_step(
        &mut self,
        stats: &Spanned<BTreeMap<String, Spanned<StatDoc>>>,
        scope: &mut StepScope<'_>,
    ) -> Option<Vec<StatExpect>> {
        if stats.value.is_empty() {
            self.problem(stats.referenced, "`stats` is empty: name the stats to check, each with its value");
            return None;
        }
        let range = |bounds: StatBounds| StatRange { min: bounds.min, max: bounds.max };
        let mut expects = Vec::new();
        for (name, doc) in &stats.value {
            let (range, delta) = match doc.value {
                StatDoc::Equals(value) => (StatRange::exactly(value), false),
                StatDoc::Bounds(bounds) => (range(bounds), false),
                StatDoc::Delta { delta: StatDelta::Equals(value) } => (StatRange::exactly(value), true),
                StatDoc::Delta { delta: StatDelta::Bounds(bounds) } => (range(bounds), true),
            };
            if range.min.is_none() && range.max.is_none() {
                self.problem(
                    doc.referenced,
                    format!("stats.{name}: give `min`, `max` or both: a stat with any value proves nothing"),
                );
            } else if range.min.zip(range.max).is_some_and(|(min, max)| min > max) {
                self.problem(doc.referenced, format!("stats.{name}: `min` is above `max`, which no value meets"));
            }
            if delta && !scope.stats_read.contains(name) {
                self.problem(
                    doc.referenced,
                    format!("stats.{name}: a `delta` is the change since an earlier `stats` step read it, and none did; read it first"),
                );
            }
            expects.push(StatExpect { name: name.clone(), range, delta });
        }
        scope.stats_read.extend(stats.value.keys().cloned());
        Some(expects)
    }

    /// A `tcp` step, aimed at one of the scenario's TCP listeners.
    fn tcp_step(&mut self, tcp: &Spanned<TcpExchange>, scope: &mut StepScope<'_>) -> Option<Action> {
        let exchange = &tcp.value;
        if !scope.tcp_listeners.iter().any(|l| l.name == exchange.listener) {
            let what = if scope.routes.iter().any(|r| r.name == exchange.listener) {
                "is an HTTP route: a tcp step speaks bytes to a TCP listener, a `request` step HTTP to a route"
            } else {
                "is not declared"
            };
            let problem = format!(
                "tcp.listener `{}` {what}; name one of `tcp_listeners` (declared: {})",
                exchange.listener,
                declared_listeners(scope.tcp_listeners)
            );
            self.problem(tcp.referenced, problem);
            return None;
        }
        if let Some(connection) = &exchange.connection {
            match scope.connections.get(connection) {
                Some(listener) if *listener != exchange.listener => {
                    let problem = format!(
                        "tcp.connection `{connection}` was opened to listener `{listener}`; a connection stays on \
                         its listener: name another connection for `{}`",
                        exchange.listener
                    );
                    self.problem(tcp.referenced, problem);
                }
                _ => {
                    scope.connections.insert(connection.clone(), exchange.listener.clone());
                }
            }
        }
        if exchange.send.is_empty() || exchange.expect.is_empty() {
            self.problem(
                tcp.referenced,
                "tcp: `send` and `expect` must not be empty (the check reads as many bytes as `expect` has)",
            );
            return None;
        }
        Some(Action::Tcp(exchange.clone()))
    }

    /// How a `request`, `tcp` or `filters` step is attempted.
    fn retry(&mut self, eventually: Option<&Spanned<Eventually>>) -> Retry {
        let Some(eventually) = eventually else { return Retry::default() };
        match eventually.value {
            Eventually::Once => Retry::Once,
            Eventually::Retry(RetryDoc { always: Some(times), times: None, within: None, every }) => {
                if times == 0 {
                    self.problem(eventually.referenced, "`eventually.always` must be at least 1");
                }
                Retry::Always { times, every: every.unwrap_or_default() }
            }
            Eventually::Retry(RetryDoc { always: Some(_), .. }) => {
                self.problem(
                    eventually.referenced,
                    "`eventually.always` is a number of attempts that must all hold: it takes `every`, \
                     not `times` or `within`",
                );
                Retry::default()
            }
            Eventually::Retry(r) => {
                let times = r.times.unwrap_or(DEFAULT_TIMES);
                if times == 0 {
                    self.problem(
                        eventually.referenced,
                        "`eventually.times` must be at least 1 (or write `eventually: once`)",
                    );
                }
                Retry::Until { times, within: r.within.unwrap_or(DEFAULT_WITHIN), every: r.every.unwrap_or_default() }
            }
        }
    }

    /// A change step's deadline for the gateway to act: `eventually.within` only.
    fn change_within(&mut self, eventually: Option<&Spanned<Eventually>>) -> Option<Duration> {
        let Some(eventually) = eventually else { return Some(DEFAULT_CHANGE_WITHIN) };
        match eventually.value {
            Eventually::Retry(RetryDoc { always: None, times: None, every: None, within }) => {
                Some(within.unwrap_or(DEFAULT_CHANGE_WITHIN))
            }
            _ => {
                self.problem(
                    eventually.referenced,
                    "a change acts once: its `eventually` takes only `within`, how long the gateway may take to act on it",
                );
                None
            }
        }
    }

    fn expected_failure(&mut self, mark: &Spanned<ExpectedFailureDoc>) -> Option<ExpectedFailure> {
        let (doc, at) = (&mark.value.0, mark.referenced);
        if doc.reason.trim().is_empty() {
            self.problem(at, "`expected_failure.reason` is empty: say why the step fails");
        }
        let Some(patterns) = doc.matches.as_ref().filter(|m| !m.items().is_empty()) else {
            self.problem(
                at,
                "`expected_failure` must name the failing check: `matches: REGEX` (or a list of them), \
                 each matching a failed check's diff lines (`-expected` / `+actual`, e.g. '\\+status: 503'); \
                 every failed check of the step must be named, and `kind` may narrow it further",
            );
            return None;
        };
        let mut matches = Vec::new();
        for pattern in patterns.items() {
            match regex::Regex::new(pattern) {
                Ok(re) => matches.push(re),
                Err(e) => {
                    self.problem(at, format!("`expected_failure.matches` `{pattern}` is not a valid regex: {e}"));
                    return None;
                }
            }
        }
        Some(ExpectedFailure {
            reason: doc.reason.clone(),
            kind: doc.kind,
            matches,
            when: doc.when.clone(),
            unless: doc.unless.clone(),
        })
    }

    /// One of `push`, `apply`, `delete` (a step's, or a reload's `change`).
    fn change(
        &mut self,
        at: Location,
        push: &Option<PushDoc>,
        apply: &Option<Spanned<ResourceDoc>>,
        delete: &Option<Spanned<String>>,
        scope: &mut StepScope<'_>,
    ) -> Option<Change> {
        let StepScope { plugins, modules, known, pull_secrets, features, services, .. } = scope;
        match (push, apply, delete) {
            (Some(push), None, None) => {
                if !plugins.contains_key(&push.plugin.value) {
                    let problem = format!("push: no plugin named `{}` in `plugins`", push.plugin.value);
                    self.problem(push.plugin.referenced, problem);
                }
                let module = self.source(at, "push", &push.sources(), modules)?;
                Some(Change::Push { plugin: push.plugin.value.clone(), module, line: at.line() })
            }
            (None, Some(resource), None) => {
                let resource = self.resource(resource, plugins, pull_secrets, features, services)?;
                let key = (resource.namespace.clone(), resource.name.clone());
                if !known.contains(&key) {
                    known.push(key);
                }
                Some(Change::Apply(Box::new(resource)))
            }
            (None, None, Some(target)) => {
                let matches: Vec<(String, String)> = known
                    .iter()
                    .filter(|(ns, name)| match target.value.split_once('/') {
                        Some((want_ns, want_name)) => ns == want_ns && name == want_name,
                        None => *name == target.value,
                    })
                    .cloned()
                    .collect();
                let [(namespace, name)] = matches.as_slice() else {
                    let problem = if matches.is_empty() {
                        "no such WasmPlugin exists at this step"
                    } else {
                        "several WasmPlugins have that name; write NAMESPACE/NAME"
                    };
                    self.problem(target.referenced, format!("delete `{}`: {problem}", target.value));
                    return None;
                };
                known.retain(|(ns, n)| !(ns == namespace && n == name));
                Some(Change::Delete { namespace: namespace.clone(), name: name.clone() })
            }
            _ => {
                self.problem(at, "a change is exactly one of `push`, `apply`, `delete`");
                None
            }
        }
    }

    /// A `reload` step: an HTTP load, or a TCP one (`load.tcp`), around a change.
    fn reload(&mut self, decl: &Spanned<ReloadDoc>, scope: &mut StepScope<'_>) -> Option<Action> {
        let (r, at) = (&decl.value, decl.referenced);
        let change = &r.change;
        let change = self.change(at, &change.push, &change.apply, &change.delete, scope)?;
        let (HumanDuration(duration), duration_at) =
            field_or(&r.load.duration, HumanDuration(Duration::from_secs(5)), at);
        let after = r.after.unwrap_or(Duration::from_secs(1));
        if duration > MAX_DURATION {
            self.problem(
                duration_at,
                format!("reload.load.duration: {duration:?}; a load lasts at most {MAX_DURATION:?}"),
            );
        } else if after >= duration {
            self.problem(at, format!("reload: `after` ({after:?}) must fall within the load ({duration:?})"));
        }
        if r.version.from == r.version.to {
            self.problem(
                at,
                format!(
                    "reload.version: `from` and `to` are both `{}`, so no switch could be seen; name the value before the change and the one after",
                    r.version.from
                ),
            );
        }
        let switch_within = r.expect.switch_within.unwrap_or(DEFAULT_SWITCH_WITHIN);
        let rest = duration.saturating_sub(after);
        if switch_within >= rest {
            self.problem(
                at,
                format!(
                    "reload.expect.switch_within ({switch_within:?}) must be shorter than the load after the change ({rest:?}), \
                     so that the load goes on to show every connection stays switched; lengthen the load or shorten switch_within"
                ),
            );
        }
        let timing = ReloadTiming { change, after, duration, switch_within };
        match &r.load.tcp {
            Some(tcp) => Some(Action::TcpReload(Box::new(self.tcp_reload(r, at, tcp, timing, scope)?))),
            None => Some(Action::Reload(Box::new(self.http_reload(r, at, timing)?))),
        }
    }

    /// A reload's HTTP load and what it must show.
    fn http_reload(&mut self, r: &ReloadDoc, at: Location, timing: ReloadTiming) -> Option<Reload> {
        use crate::components::echo;
        let ReloadTiming { change, after, duration, switch_within } = timing;
        let doc = &r.load;
        let Some(header) = r.version.header.clone() else {
            self.problem(at, "reload.version.header: name the response header whose value tells the versions apart");
            return None;
        };
        let Some(host) = doc.host.clone() else {
            self.problem(
                at,
                "reload.load.host: name the host the load's requests are for (or give `load.tcp` for a TCP load)",
            );
            return None;
        };
        let (http1, _) = field_or(&doc.http1, 4, at);
        let (http2, _) = field_or(&doc.http2, 2, at);
        let (streams, streams_at) = field_or(&doc.streams, 1, at);
        let (rate, rate_at) = field_or(&doc.rate, 1000, at);
        // Load is bounded: a reload must not turn into a stress test.
        let long = doc.long.as_ref().map(|spanned| {
            let (long, long_at) = (&spanned.value, spanned.referenced);
            let (lanes1, _) = field_or(&long.http1, 0, long_at);
            let (lanes2, lanes2_at) = field_or(&long.http2, 0, long_at);
            let (HumanDuration(delay), delay_at) = field_or(&long.delay, HumanDuration(Duration::ZERO), long_at);
            let (chunks, chunks_at) = field_or(&long.chunks, 10, long_at);
            let (HumanDuration(every), every_at) =
                field_or(&long.every, HumanDuration(Duration::from_millis(500)), long_at);
            let (size, size_at) = field_or(&long.size, 64, long_at);
            if lanes1 == 0 && lanes2 == 0 {
                self.problem(
                    long_at,
                    "reload.load.long opens no stream: give `http1` (lanes on connections of their own) \
                     and/or `http2` (lanes on each HTTP/2 connection)",
                );
            }
            if lanes2 > 0 && http2 == 0 {
                self.problem(lanes2_at, "reload.load.long.http2: lanes on HTTP/2 connections, but `http2` is 0");
            }
            // Saturating: the counts are not bounded yet (a huge one must not
            // overflow). A `streams` out of bounds is reported as such, below.
            if lanes2 > 0 && streams <= MAX_STREAMS && streams.saturating_add(lanes2) > MAX_STREAMS {
                self.problem(
                    lanes2_at,
                    format!(
                        "reload.load.long.http2: {streams} short and {lanes2} long streams on each HTTP/2 connection; \
                         at most {MAX_STREAMS} in all"
                    ),
                );
            }
            let mut within = true;
            let mut bound = |holds: bool, at: Location, message: String| {
                if !holds {
                    within = false;
                    self.problem(at, message);
                }
            };
            bound(
                delay <= echo::MAX_DELAY,
                delay_at,
                format!("reload.load.long.delay: {delay:?} is longer than a backend waits, at most {:?}", echo::MAX_DELAY),
            );
            bound(
                chunks <= echo::MAX_CHUNKS,
                chunks_at,
                format!("reload.load.long.chunks: {chunks} is more than a backend streams, at most {}", echo::MAX_CHUNKS),
            );
            bound(
                every <= echo::MAX_EVERY,
                every_at,
                format!("reload.load.long.every: {every:?} is longer than a backend waits between chunks, at most {:?}", echo::MAX_EVERY),
            );
            bound(
                (echo::MIN_SIZE..=echo::MAX_SIZE).contains(&size),
                size_at,
                format!("reload.load.long.size: {size} bytes; a chunk holds {} to {} bytes", echo::MIN_SIZE, echo::MAX_SIZE),
            );
            let shape = echo::StreamShape { delay, chunks, every, size };
            if within {
                let length = shape.length();
                if length.is_zero() {
                    self.problem(long_at, "reload.load.long: a stream of 0s is not long; give a `delay`, or `chunks` and `every`");
                } else if length > duration {
                    self.problem(
                        long_at,
                        format!(
                            "reload.load.long: a stream lasts {length:?} (delay + chunks × every), longer than the load ({duration:?}); \
                             a lane opens only streams that end before the load does: shorten the stream or lengthen the load"
                        ),
                    );
                }
            }
            crate::load::LongStreams { http1: lanes1, http2: lanes2, shape }
        });
        let load = LoadPlan {
            host,
            path: doc.path.clone().unwrap_or_else(|| "/".to_owned()),
            http1,
            http2,
            streams,
            rate,
            duration,
            long,
        };
        // Not `load.slots()`: the counts are not bounded yet, and a huge one
        // must not overflow (the sum saturates; the message then says so).
        if http1 == 0 && http2 == 0 {
            self.problem(at, "reload.load needs a connection for short requests (http1 + http2): they show the switch");
        }
        let slots = http1.saturating_add(http2).saturating_add(load.long.as_ref().map_or(0, |l| l.http1));
        if slots > MAX_CONNECTIONS {
            let slots = if slots == usize::MAX { "too many".to_owned() } else { slots.to_string() };
            self.problem(
                at,
                format!(
                    "reload.load opens {slots} connections (http1 + http2 + long.http1); at most {MAX_CONNECTIONS}"
                ),
            );
        }
        if !(1..=MAX_STREAMS).contains(&streams) {
            self.problem(
                streams_at,
                format!(
                    "reload.load.streams: {streams}; each HTTP/2 connection carries 1 to {MAX_STREAMS} short streams"
                ),
            );
        } else if doc.streams.is_some() && http2 == 0 {
            self.problem(streams_at, "reload.load.streams: streams of HTTP/2 connections, but `http2` is 0");
        }
        if rate == 0 || rate > MAX_RATE {
            self.problem(rate_at, format!("reload.load.rate: {rate}; it must be 1 to {MAX_RATE} requests per second"));
        }
        if r.expect.across.is_some() && load.long.is_none() {
            self.problem(at, "reload.expect.across is about long streams, and `load.long` has none");
        }
        let version = VersionSpec { header, from: r.version.from.clone(), to: r.version.to.clone() };
        Some(Reload {
            switch_within,
            load,
            after,
            change,
            claims: ReloadClaims::of(&version),
            version,
            errors: Errors::AtMost(r.expect.errors.unwrap_or(0)),
            status: r.expect.status.unwrap_or(200),
            closes: r.expect.closes.unwrap_or(Closes::None),
            across: r.expect.across.unwrap_or(true),
        })
    }

    /// A reload's TCP load and what it must show.
    fn tcp_reload(
        &mut self,
        r: &ReloadDoc,
        at: Location,
        tcp: &Spanned<TcpLoadDoc>,
        timing: ReloadTiming,
        scope: &mut StepScope<'_>,
    ) -> Option<TcpReload> {
        let ReloadTiming { change, after, duration, switch_within } = timing;
        let (doc, tcp_at) = (&r.load, tcp.referenced);
        let http_fields = [
            ("host", doc.host.is_some()),
            ("path", doc.path.is_some()),
            ("http1", doc.http1.is_some()),
            ("http2", doc.http2.is_some()),
            ("streams", doc.streams.is_some()),
            ("rate", doc.rate.is_some()),
            ("long", doc.long.is_some()),
        ];
        for (name, _) in http_fields.iter().filter(|(_, given)| *given) {
            self.problem(
                tcp_at,
                format!("reload.load.{name} is for an HTTP load; a TCP load (`load.tcp`) takes `duration`, and `held`, `every` and `rate` under `tcp`"),
            );
        }
        if r.version.header.is_some() {
            self.problem(
                at,
                "reload.version.header: a TCP load tells versions by the stamps before each answer; drop `header`",
            );
        }
        if r.expect.status.is_some() || r.expect.across.is_some() {
            self.problem(
                at,
                "reload.expect.status and .across are about HTTP responses and long streams; a TCP load has neither",
            );
        }
        let closes = r.expect.closes.unwrap_or(Closes::None);
        if closes == Closes::Graceful {
            self.problem(
                at,
                "reload.expect.closes: graceful needs a notice before the close, and TCP has none; write `none` or `drain`",
            );
        }
        let load = &tcp.value;
        if !scope.tcp_listeners.iter().any(|l| l.name == load.listener) {
            self.problem(
                tcp_at,
                format!(
                    "reload.load.tcp.listener `{}` is not declared; name one of `tcp_listeners` (declared: {})",
                    load.listener,
                    declared_listeners(scope.tcp_listeners)
                ),
            );
        }
        let (held, held_at) = field_or(&load.held, 4, tcp_at);
        let (HumanDuration(every), every_at) = field_or(&load.every, HumanDuration(Duration::from_millis(100)), tcp_at);
        let (rate, rate_at) = field_or(&load.rate, 20, tcp_at);
        // Bounded: a reload must not turn into a stress test.
        if held == 0 || held > MAX_CONNECTIONS {
            let problem = format!(
                "reload.load.tcp.held: {held}; 1 to {MAX_CONNECTIONS} connections held across the change show what it does to them"
            );
            self.problem(held_at, problem);
        }
        if !(MIN_TCP_EVERY..=MAX_TCP_EVERY).contains(&every) {
            let problem =
                format!("reload.load.tcp.every: {every:?}; a held connection exchanges every {MIN_TCP_EVERY:?} to {MAX_TCP_EVERY:?}");
            self.problem(every_at, problem);
        }
        if rate == 0 || rate > MAX_TCP_RATE {
            self.problem(
                rate_at,
                format!("reload.load.tcp.rate: {rate}; it must be 1 to {MAX_TCP_RATE} new connections a second"),
            );
        }
        Some(TcpReload {
            listener: load.listener.clone(),
            load: TcpLoadPlan { held, every, rate, duration },
            after,
            change,
            held_after: r.version.from.clone(),
            from: r.version.from.clone(),
            to: r.version.to.clone(),
            errors: Errors::AtMost(r.expect.errors.unwrap_or(0)),
            closes,
            switch_within,
        })
    }

    fn expectation(&mut self, s: &StepDoc, at: Location) -> Option<Expect> {
        let Some(expect) = &s.expect else {
            self.problem(at, "a `request` step needs `expect`: a request that asserts nothing proves nothing");
            return None;
        };
        let asserts = expect.status.is_some()
            || expect.details.is_some()
            || !expect.headers.is_empty()
            || expect.body.as_ref().is_some_and(|b| b.contains.is_some() || b.equals.is_some() || !b.json.is_empty())
            || expect.backend.as_ref().is_some_and(|b| {
                b.service.is_some() || b.method.is_some() || b.path.is_some() || !b.headers.is_empty()
            });
        if !asserts {
            self.problem(at, "`expect` asserts nothing: give a status, details, headers, body or backend");
            return None;
        }
        for pointer in expect.body.iter().flat_map(|b| b.json.keys()) {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                self.problem(at, format!("body.json key `{pointer}` must be a JSON pointer such as `/service`"));
            }
        }
        Some(expect.clone())
    }

    /// Native security resources: istio profile only, as written.
    fn policies(&mut self, doc: &ScenarioDoc) -> Vec<Policy> {
        const KINDS: &[&str] = &["AuthorizationPolicy", "RequestAuthentication"];
        let mut policies = Vec::new();
        for decl in &doc.policies {
            let document = Value::Object(decl.value.clone());
            let api = document["apiVersion"].as_str().unwrap_or_default();
            let kind = document["kind"].as_str().unwrap_or_default();
            if !api.starts_with("security.istio.io/") || !KINDS.contains(&kind) {
                self.problem(
                    decl.referenced,
                    format!("policies hold security.istio.io {}, not `{api}` `{kind}`", KINDS.join(" or ")),
                );
                continue;
            }
            if document["metadata"]["name"].as_str().is_none() {
                self.problem(decl.referenced, "a policy needs metadata.name");
                continue;
            }
            if !doc.features.contains(&Feature::NativeFilters) {
                self.problem(decl.referenced, "policies need `features: [native-filters]` (only istiod places them)");
            }
            policies.push(Policy { document, line: decl.referenced.line() });
        }
        policies
    }
}

/// `plugin://NAME` (by digest) or `plugin://NAME:TAG`.
fn parse_plugin_url(url: &str) -> Option<(&str, Reference)> {
    let rest = url.strip_prefix(PLUGIN_SCHEME)?;
    Some(match rest.split_once(':') {
        Some((name, tag)) => (name, Reference::Tag(tag.to_owned())),
        None => (rest, Reference::Digest),
    })
}

/// Registry repository path components: `[a-z0-9]+([._-][a-z0-9]+)*`.
/// A Kubernetes object name (RFC 1123 subdomain).
fn is_dns_subdomain(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= 253
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

fn is_repository_component(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Whether `path` is a readable file that starts like a Wasm module.
fn wasm_file(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut head = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut head));
    match read {
        Err(e) => Err(format!("cannot be read ({e}); relative paths start at the scenario's folder")),
        Ok(n) if n < 4 || &head != b"\0asm" => Err("is not a Wasm module (it does not start with \\0asm)".into()),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    //! Inputs the fuzzer (`ci/fuzz`) found to panic the loader, and steps
    //! that need a feature the scenario must declare.
    use super::*;

    /// Loads `text` as `fuzz.yaml`: the diagnostics, as `(line, message)`.
    fn problems(text: &str) -> Vec<(u64, String)> {
        let modules = ["stamp", "stamp-v2"].map(str::to_owned).into();
        match load_str(text, Path::new("fuzz.yaml"), Path::new(""), &modules) {
            Ok(_) => Vec::new(),
            Err(e) => e.diagnostics().iter().map(|d| (d.line, d.message.clone())).collect(),
        }
    }

    /// A scenario whose one step is a reload with `load` (a flow map's body).
    fn reload_with_load(load: &str) -> String {
        format!(
            "plugins: {{stamp: {{module: stamp}}}}\n\
             steps:\n\
             - reload:\n    \
                 load: {{host: a.example.com, {load}}}\n    \
                 change: {{push: {{plugin: stamp, module: stamp-v2}}}}\n    \
                 version: {{header: x-version, from: v1, to: v2}}\n"
        )
    }

    #[test]
    fn huge_connection_counts_are_reported_not_overflowed() {
        let found = problems(&reload_with_load("http1: 18446744073709551614, http2: 2"));
        assert!(found.iter().any(|(line, m)| *line == 4 && m.contains("at most 64")), "{found:?}");
        let found = problems(&reload_with_load("http1: 1, long: {http1: 18446744073709551615, chunks: 1, every: 1s}"));
        assert!(found.iter().any(|(_, m)| m.contains("at most 64")), "{found:?}");
    }

    #[test]
    fn huge_long_stream_lanes_are_reported_not_overflowed() {
        let found = problems(&reload_with_load(
            "streams: 2, long: {http1: 18446744073709551615, http2: 18446744073709551615, chunks: 1, every: 1s}",
        ));
        assert!(found.iter().any(|(_, m)| m.contains("long.http2") && m.contains("at most 64 in all")), "{found:?}");
    }

    /// `found` is empty when `problem` is none, else one diagnostic saying it.
    fn refused_for(found: &[(u64, String)], problem: Option<&str>) {
        match problem {
            None => assert_eq!(found, &[]),
            Some(problem) => assert!(found.len() == 1 && found[0].1.contains(problem), "{found:?}"),
        }
    }

    /// A scenario with a TCP listener `raw` whose one step is a reload under
    /// TCP load: `load` and `rest` (more of the reload's fields) as flow
    /// maps' bodies.
    fn tcp_reload(load: &str, rest: &str) -> String {
        format!(
            "features: [tcp-listeners]\n\
             plugins: {{stamp: {{module: stamp}}}}\n\
             services: [{{name: bytes, protocol: TCP}}]\n\
             tcp_listeners: [{{name: raw, service: bytes}}]\n\
             steps:\n\
             - reload:\n    \
                 load: {{{load}}}\n    \
                 change: {{push: {{plugin: stamp, module: stamp-v2}}}}\n    \
                 version: {{from: '[a]', to: '[b]'{rest}}}\n"
        )
    }

    #[rstest::rstest]
    #[case::a_tcp_load(tcp_reload("tcp: {listener: raw}", ""), None)]
    #[case::an_undeclared_listener(
        tcp_reload("tcp: {listener: web}", ""),
        Some("`web` is not declared; name one of `tcp_listeners` (declared: raw)")
    )]
    #[case::http_fields_beside_it(
        tcp_reload("tcp: {listener: raw}, http1: 2", ""),
        Some("reload.load.http1 is for an HTTP load")
    )]
    #[case::a_header(
        tcp_reload("tcp: {listener: raw}", ", header: x-v"),
        Some("tells versions by the stamps before each answer; drop `header`")
    )]
    #[case::no_header_for_http(
        tcp_reload("host: a.example.com", ""),
        Some("reload.version.header: name the response header")
    )]
    #[case::no_host_for_http(tcp_reload("http1: 1", ", header: x-v"), Some("reload.load.host: name the host"))]
    #[case::no_held_connection(
        tcp_reload("tcp: {listener: raw, held: 0}", ""),
        Some("reload.load.tcp.held: 0; 1 to 64")
    )]
    #[case::too_fast(tcp_reload("tcp: {listener: raw, every: 1ms}", ""), Some("reload.load.tcp.every: 1ms"))]
    #[case::too_many_new_connections(
        tcp_reload("tcp: {listener: raw, rate: 1000}", ""),
        Some("reload.load.tcp.rate: 1000; it must be 1 to 200")
    )]
    fn a_tcp_load_names_a_tcp_listener_and_only_its_own_fields(#[case] text: String, #[case] problem: Option<&str>) {
        let found = problems(&text);
        refused_for(&found, problem);
    }

    #[rstest::rstest]
    #[case::a_service_of_the_scenarios("{cluster: 'service://echo'}", None)]
    #[case::an_undeclared_service(
        "{callouts: {a: {cluster: 'service://auth'}}}",
        Some("pluginConfig.callouts.a.cluster: `service://auth` names no service of the scenario's (declared: echo)")
    )]
    fn a_plugin_config_names_services_the_scenario_declares(#[case] config: &str, #[case] problem: Option<&str>) {
        let text = format!(
            "plugins: {{stamp: {{module: stamp}}}}\nservices: [{{name: echo}}]\nresources:\n\
             - {{apiVersion: extensions.istio.io/v1alpha1, kind: WasmPlugin, metadata: {{name: s}}, \
             spec: {{url: 'plugin://stamp', pluginConfig: {config}}}}}\nsteps:\n{REQUEST}"
        );
        let found = problems(&text);
        refused_for(&found, problem);
    }

    #[rstest::rstest]
    #[case::values_and_bounds("- stats: {a.b: 1, c.d: {min: 2}}\n- stats: {a.b: {delta: {max: 3}}}\n", None)]
    #[case::a_delta_first(
        "- stats: {a.b: {delta: 1}}\n",
        Some("stats.a.b: a `delta` is the change since an earlier `stats` step read it")
    )]
    #[case::no_bound("- stats: {a.b: {}}\n", Some("stats.a.b: give `min`, `max` or both"))]
    #[case::bounds_no_value_meets("- stats: {a.b: {min: 3, max: 2}}\n", Some("stats.a.b: `min` is above `max`"))]
    #[case::nothing("- stats: {}\n", Some("`stats` is empty"))]
    #[case::a_log_pattern("- logs: {matches: 'request \\d+'}\n", None)]
    #[case::a_bad_log_pattern("- logs: {matches: 'request ('}\n", Some("logs.matches is not a regular expression"))]
    fn stats_and_logs_steps_are_checked(#[case] steps: &str, #[case] problem: Option<&str>) {
        let found = problems(&format!("steps:\n{steps}"));
        refused_for(&found, problem);
    }

    #[test]
    fn a_tcp_connection_cannot_close_with_notice() {
        let text = tcp_reload("tcp: {listener: raw}", "}\n    expect: {closes: graceful");
        let found = problems(&text);
        assert!(found.len() == 1 && found[0].1.contains("TCP has none; write `none` or `drain`"), "{found:?}");
    }

    /// A request step, to follow a step or section under test.
    const REQUEST: &str = "- request: {host: a.example.com}\n  expect: {status: 200}\n";

    /// What needs a feature the scenario must declare, the line it is told
    /// at, and the feature.
    #[rstest::rstest]
    #[case::replacing_the_gateway(&format!("steps:\n- gateway: replace\n{REQUEST}"), 2, "`gateway: replace`", "new-gateway")]
    #[case::restarting_the_gateway(&format!("steps:\n- gateway: restart\n{REQUEST}"), 2, "`gateway: restart`", "restarted-gateway")]
    #[case::stopping_the_registry(&format!("steps:\n- registry: stop\n{REQUEST}"), 2, "`registry: stop`", "own-registry")]
    #[case::the_gateways_environment(&format!("gateway:\n  env: {{A: b}}\nsteps:\n{REQUEST}"), 2, "`gateway.env`", "gateway-env")]
    #[case::fail_reload(&format!("plugins:\n  stamp: {{module: stamp}}\nresources:\n- apiVersion: extensions.istio.io/v1alpha1\n  kind: WasmPlugin\n  metadata: {{name: stamp}}\n  spec: {{url: 'plugin://stamp', failStrategy: FAIL_RELOAD}}\nsteps:\n{REQUEST}"), 4, "`failStrategy: FAIL_RELOAD`", "fail-reload")]
    #[case::a_gateway_api_gateway(&format!("gateway:\n  api: gateway-api\nsteps:\n{REQUEST}"), 2, "`gateway.api: gateway-api`", "gateway-api")]
    #[case::pull_secrets(&format!("pull_secrets:\n- name: regcred\nsteps:\n{REQUEST}"), 2, "`pull_secrets`", "agent-fetch")]
    #[case::the_clusters_higress_controller(&format!("translator: higress-controller\n{HIGRESS_PLUGIN}steps:\n{REQUEST}"), 1, "`translator: higress-controller`", "higress-controller")]
    fn what_needs_a_feature_is_refused_until_the_scenario_declares_it(
        #[case] text: &str,
        #[case] line: u64,
        #[case] what: &str,
        #[case] feature: &str,
    ) {
        let found = problems(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, line);
        let needs = format!("{what} needs the scenario's `features: [{feature}]`");
        assert!(found[0].1.contains(&needs), "{found:?}");
        assert_eq!(problems(&format!("features: [{feature}]\n{text}")), Vec::new());
    }

    #[test]
    fn a_gateway_api_gateway_has_no_tcp_listener_and_no_higress_wasm_plugin() {
        let gateway = "features: [gateway-api, tcp-listeners]\ngateway: {api: gateway-api}\n";
        let tcp = "services: [{name: bytes, protocol: TCP}]\ntcp_listeners: [{name: raw, service: bytes}]\n";
        let found = problems(&format!("{gateway}{tcp}steps:\n{REQUEST}"));
        assert!(found.len() == 1 && found[0].0 == 4 && found[0].1.contains("would need TCPRoutes"), "{found:?}");
        let found = problems(&format!("{gateway}{HIGRESS_PLUGIN}steps:\n{REQUEST}"));
        assert!(found.len() == 1 && found[0].0 == 6 && found[0].1.contains("use an Istio WasmPlugin"), "{found:?}");
        assert_eq!(problems(&format!("{gateway}steps:\n{REQUEST}")), Vec::new());
        let routes = "services: [{name: echo}]\nroutes:\n- {name: d/a, hosts: [x.com], service: echo}\n\
                      - {name: d/b, hosts: [y.com, x.com], service: echo}\n";
        let found = problems(&format!("{gateway}{routes}steps:\n{REQUEST}"));
        assert!(
            found.len() == 1 && found[0].0 == 6 && found[0].1.contains("route `d/b`: a second route for host `x.com`"),
            "{found:?}"
        );
    }

    /// A Higress WasmPlugin of the plugin `stamp`.
    const HIGRESS_PLUGIN: &str =
        "plugins:\n  stamp: {module: stamp}\nresources:\n- apiVersion: extensions.higress.io/v1alpha1\n  \
                                  kind: WasmPlugin\n  metadata: {name: stamp}\n  spec: {url: 'plugin://stamp'}\n";

    #[test]
    fn the_higress_controller_translates_only_higress_wasm_plugins() {
        let declared = "features: [higress-controller]\ntranslator: higress-controller\n";
        let found = problems(&format!("{declared}steps:\n{REQUEST}"));
        assert!(found.len() == 1 && found[0].0 == 2 && found[0].1.contains("and it has none"), "{found:?}");
        let modules = ["stamp"].map(str::to_owned).into();
        let text = format!("{declared}{HIGRESS_PLUGIN}steps:\n{REQUEST}");
        let scenario = load_str(&text, Path::new("a.yaml"), Path::new(""), &modules).expect("loads");
        assert_eq!(scenario.translator, Translator::HigressController);
        let text = format!("{HIGRESS_PLUGIN}steps:\n{REQUEST}");
        let scenario = load_str(&text, Path::new("a.yaml"), Path::new(""), &modules).expect("loads");
        assert_eq!(scenario.translator, Translator::Plugproof);
    }

    /// An Istio WasmPlugin (in istio-system) naming the pull secret `regcred`.
    const WITH_SECRET: &str = "plugins:\n  stamp: {module: stamp}\nresources:\n- apiVersion: extensions.istio.io/v1alpha1\n  \
                               kind: WasmPlugin\n  metadata: {name: stamp}\n  spec: {url: 'plugin://stamp', imagePullSecret: regcred}\n";

    #[rstest::rstest]
    #[case::declared_in_its_namespace("- name: regcred", None)]
    #[case::declared_nowhere(
        "- name: other",
        Some("the scenario's pull_secrets hold no Secret of that name in namespace istio-system")
    )]
    #[case::declared_in_another_namespace(
        "- {name: regcred, namespace: higress-system}",
        Some("declare `- {name: regcred, namespace: istio-system}`")
    )]
    #[case::not_a_kubernetes_name("- name: RegCred\n- name: regcred", Some("`RegCred` is not a Kubernetes name"))]
    #[case::twice(
        "- name: regcred\n- {name: regcred, namespace: istio-system}",
        Some("istio-system/regcred is declared twice")
    )]
    fn an_image_pull_secret_names_a_pull_secret_of_its_namespace(#[case] secrets: &str, #[case] problem: Option<&str>) {
        let found =
            problems(&format!("features: [agent-fetch]\npull_secrets:\n{secrets}\n{WITH_SECRET}steps:\n{REQUEST}"));
        refused_for(&found, problem);
    }

    #[rstest::rstest]
    #[case::on_higress("extensions.higress.io/v1alpha1", "[{mode: CLIENT}]", "`match` is an Istio WasmPlugin field")]
    #[case::port_zero("extensions.istio.io/v1alpha1", "[{ports: [{number: 0}]}]", "`match[].ports[].number` 0")]
    #[case::port_too_high(
        "extensions.istio.io/v1alpha1",
        "[{mode: CLIENT, ports: [{number: 80}, {number: 65536}]}]",
        "`match[].ports[].number` 65536 is not a port"
    )]
    #[case::unknown_mode("extensions.istio.io/v1alpha1", "[{mode: INBOUND}]", "INBOUND")]
    fn a_match_is_istios_by_mode(#[case] api: &str, #[case] traffic: &str, #[case] problem: &str) {
        let text = format!(
            "plugins:\n  stamp: {{module: stamp}}\nresources:\n- apiVersion: {api}\n  kind: WasmPlugin\n  \
             metadata: {{name: stamp}}\n  spec: {{url: 'plugin://stamp', match: {traffic}}}\nsteps:\n{REQUEST}"
        );
        let found = problems(&text);
        assert!(found.len() == 1 && found[0].1.contains(problem), "{found:?}");
        let fine = text.replace(api, "extensions.istio.io/v1alpha1").replace(traffic, "[{mode: SERVER}]");
        assert_eq!(problems(&fine), Vec::new());
    }

    /// A TrafficExtension has its module under `wasm`, needs an istiod that
    /// knows it, and is istio's alone; a WasmPlugin has no `wasm`.
    #[rstest::rstest]
    #[case::without_the_feature(
        "",
        "TrafficExtension",
        "{wasm: {url: 'plugin://stamp'}}",
        Some("`kind: TrafficExtension` needs the scenario's `features: [traffic-extensions]`")
    )]
    #[case::url_at_the_top(
        TE,
        "TrafficExtension",
        "{url: 'plugin://stamp', wasm: {url: 'plugin://stamp'}}",
        Some("spec.url: a TrafficExtension has it under `spec.wasm`")
    )]
    #[case::no_wasm(TE, "TrafficExtension", "{phase: AUTHN}", Some("a TrafficExtension needs `spec.wasm`"))]
    #[case::target_ref(
        TE,
        "TrafficExtension",
        "{targetRef: {kind: Gateway, name: g}, wasm: {url: 'plugin://stamp'}}",
        Some("`targetRef` is a WasmPlugin field")
    )]
    #[case::wasm_on_a_wasm_plugin(
        "",
        "WasmPlugin",
        "{url: 'plugin://stamp', wasm: {url: 'plugin://stamp'}}",
        Some("`wasm` is a TrafficExtension field")
    )]
    #[case::no_url("", "WasmPlugin", "{phase: AUTHN}", Some("spec.url is missing"))]
    #[case::fine(
        TE,
        "TrafficExtension",
        "{phase: AUTHN, wasm: {url: 'plugin://stamp', failStrategy: FAIL_OPEN}}",
        None
    )]
    fn a_traffic_extension_has_its_module_under_wasm(
        #[case] features: &str,
        #[case] kind: &str,
        #[case] spec: &str,
        #[case] problem: Option<&str>,
    ) {
        let text = format!(
            "{features}plugins:\n  stamp: {{module: stamp}}\nresources:\n- apiVersion: extensions.istio.io/v1alpha1\n  \
             kind: {kind}\n  metadata: {{name: x}}\n  spec: {spec}\nsteps:\n{REQUEST}"
        );
        let found = problems(&text);
        refused_for(&found, problem);
    }

    const TE: &str = "features: [traffic-extensions]\n";

    #[test]
    fn a_traffic_extension_is_istios() {
        let text = format!(
            "{TE}plugins:\n  stamp: {{module: stamp}}\nresources:\n- apiVersion: extensions.higress.io/v1alpha1\n  \
             kind: TrafficExtension\n  metadata: {{name: x}}\n  spec: {{wasm: {{url: 'plugin://stamp'}}}}\nsteps:\n{REQUEST}"
        );
        let found = problems(&text);
        assert!(
            found.len() == 1 && found[0].1.contains("`TrafficExtension`s of apiVersion `extensions.istio.io/v1alpha1`"),
            "{found:?}"
        );
    }

    /// TCP listeners, their services and the steps that speak to them.
    #[rstest::rstest]
    #[case::fine("", "- tcp: {listener: raw, send: a, expect: a}\n", None)]
    #[case::at_an_http_route(
        "",
        "- tcp: {listener: default/web, send: a, expect: a}\n",
        Some("tcp.listener `default/web` is an HTTP route")
    )]
    #[case::undeclared(
        "",
        "- tcp: {listener: other, send: a, expect: a}\n",
        Some("tcp.listener `other` is not declared; name one of `tcp_listeners` (declared: raw)")
    )]
    #[case::empty_expect("", "- tcp: {listener: raw, send: a, expect: ''}\n", Some("must not be empty"))]
    #[case::connection_retried(
        "",
        "- tcp: {listener: raw, connection: c, send: a, expect: a}\n  eventually: {times: 2}\n",
        Some("attempted once")
    )]
    #[case::http_service_behind_listener(
        "    protocol: TCP\n",
        "- tcp: {listener: raw, send: a, expect: a}\n",
        Some("route `default/web`: service `bytes` is a TCP service")
    )]
    #[case::network_filters_of_unknown(
        "",
        "- filters: {network: other, order: [envoy.filters.network.tcp_proxy]}\n",
        Some("filters.network `other`")
    )]
    #[case::network_filters_of_http(
        "",
        "- filters: {network: http, order: [envoy.filters.network.http_connection_manager]}\n",
        None
    )]
    fn tcp_listeners_and_steps(#[case] echo: &str, #[case] steps: &str, #[case] problem: Option<&str>) {
        let text = format!(
            "features: [tcp-listeners]\nplugins:\n  stamp: {{module: stamp}}\nservices:\n  - name: echo\n  - name: bytes\n    protocol: TCP\n\
             routes:\n  - name: default/web\n    hosts: ['*']\n    service: {}\ntcp_listeners:\n  - {{name: raw, service: bytes}}\nsteps:\n{steps}",
            if echo.is_empty() { "echo" } else { "bytes" }
        );
        let found = problems(&text);
        refused_for(&found, problem);
    }

    #[test]
    fn a_tcp_listener_needs_a_tcp_service_the_feature_and_one_listener_per_connection() {
        let base = "plugins:\n  stamp: {module: stamp}\nservices:\n  - name: echo\n  - {name: bytes, protocol: TCP}\n\
                    tcp_listeners:\n  - {name: raw, service: bytes}\n  - {name: web, service: echo}\nsteps:\n\
                    - tcp: {listener: raw, connection: c, send: a, expect: a}\n- tcp: {listener: web, connection: c, send: a, expect: a}\n";
        let found: Vec<String> = problems(base).into_iter().map(|(_, m)| m).collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].contains("tcp listener `web`: service `echo` is an HTTP service; give it `protocol: TCP`"),
            "{found:?}"
        );
        assert!(found[1].contains("`tcp_listeners` needs the scenario's `features: [tcp-listeners]`"), "{found:?}");
        assert!(found[2].contains("tcp.connection `c` was opened to listener `raw`"), "{found:?}");
    }

    #[test]
    fn a_network_plugin_names_no_ports() {
        let text = format!(
            "features: [network-plugins]\nplugins:\n  stamp: {{module: stamp}}\nresources:\n- apiVersion: extensions.istio.io/v1alpha1\n  kind: WasmPlugin\n  \
             metadata: {{name: n}}\n  spec: {{url: 'plugin://stamp', type: NETWORK, match: [{{ports: [{{number: 80}}]}}]}}\nsteps:\n{REQUEST}"
        );
        let found = problems(&text);
        assert!(found.len() == 1 && found[0].1.contains("`match[].ports` on a NETWORK plugin"), "{found:?}");
        assert_eq!(problems(&text.replace("type: NETWORK, ", "")), Vec::new());
    }

    #[rstest::rstest]
    #[case::fine("features: [wasm-services]\n", "stamp", None)]
    #[case::without_the_feature("", "stamp", Some("`wasm_services` needs the scenario's `features: [wasm-services]`"))]
    #[case::unknown_plugin(
        "features: [wasm-services]\n",
        "other",
        Some("wasm service `s`: no plugin named `other` in `plugins` (declared: stamp)")
    )]
    fn a_wasm_service_runs_a_declared_plugin(
        #[case] features: &str,
        #[case] plugin: &str,
        #[case] problem: Option<&str>,
    ) {
        let text = format!(
            "{features}plugins:\n  stamp: {{module: stamp}}\nwasm_services:\n  - {{name: s, plugin: {plugin}, config: {{a: b}}}}\nsteps:\n{REQUEST}"
        );
        let found = problems(&text);
        refused_for(&found, problem);
    }

    #[rstest::rstest]
    #[case::fine("features: [agent-fetch, private-registry, own-registry]\n", "login: wrong", None)]
    #[case::without_the_features(
        "features: [agent-fetch]\n",
        "login: right",
        Some("`private_registry` needs the scenario's `features: [private-registry]`")
    )]
    #[case::unknown_login("features: [agent-fetch, private-registry, own-registry]\n", "login: maybe", Some("maybe"))]
    fn a_private_registry_and_its_logins(#[case] features: &str, #[case] login: &str, #[case] problem: Option<&str>) {
        let text = format!(
            "{features}private_registry: true\nplugins:\n  stamp: {{module: stamp}}\npull_secrets:\n  - {{name: regcred, {login}}}\nsteps:\n{REQUEST}"
        );
        let found = problems(&text);
        match problem {
            None => assert_eq!(found, Vec::new()),
            Some(problem) => assert!(found.iter().any(|(_, m)| m.contains(problem)), "{found:?}"),
        }
    }

    #[test]
    fn a_private_registry_may_name_its_realm() {
        let text = |registry: &str| {
            format!(
                "features: [private-registry, own-registry]\nprivate_registry: {registry}\nplugins:\n  stamp: {{module: stamp}}\nsteps:\n{REQUEST}"
            )
        };
        let modules = ["stamp"].map(str::to_owned).into();
        let load = |registry: &str| load_str(&text(registry), Path::new("s.yaml"), Path::new(""), &modules);
        let realm = load("{realm: Registry Realm}").expect("loads").private_registry.expect("private").realm;
        assert_eq!(realm.as_deref(), Some("Registry Realm"));
        assert_eq!(load("true").expect("loads").private_registry, Some(PrivateRegistry::default()));
        assert_eq!(load("false").expect("loads").private_registry, None);
        assert!(load("{realms: x}").is_err());
    }

    /// Gateway API style attachment, with what istio's API refuses.
    #[rstest::rstest]
    #[case::selector_and_target_ref(
        "extensions.istio.io/v1alpha1",
        "selector: {matchLabels: {istio: ingressgateway}}, targetRef: {kind: Gateway, name: g}",
        "`targetRef` beside `selector`"
    )]
    #[case::target_ref_and_target_refs(
        "extensions.istio.io/v1alpha1",
        "targetRef: {kind: Gateway, name: g}, targetRefs: [{kind: Gateway, name: g}]",
        "only one of targetRefs or selector"
    )]
    #[case::another_namespace(
        "extensions.istio.io/v1alpha1",
        "targetRefs: [{kind: Gateway, name: g, namespace: elsewhere}]",
        "cross namespace referencing"
    )]
    #[case::on_higress(
        "extensions.higress.io/v1alpha1",
        "targetRef: {kind: Gateway, name: g}",
        "`targetRef` is an Istio WasmPlugin field"
    )]
    fn a_target_ref_is_refused_as_istios_api_refuses_it(
        #[case] api: &str,
        #[case] fields: &str,
        #[case] problem: &str,
    ) {
        let text = format!(
            "plugins:\n  stamp: {{module: stamp}}\nresources:\n- apiVersion: {api}\n  kind: WasmPlugin\n  \
             metadata: {{name: stamp}}\n  spec: {{url: 'plugin://stamp', {fields}}}\nsteps:\n{REQUEST}"
        );
        let found = problems(&text);
        assert!(found.len() == 1 && found[0].1.contains(problem), "{found:?}");
        let fine =
            text.replace(api, "extensions.istio.io/v1alpha1").replace(fields, "targetRef: {kind: Gateway, name: g}");
        assert_eq!(problems(&fine), Vec::new());
    }

    #[test]
    fn restarting_the_gateway_is_not_replacing_it() {
        let steps = format!("steps:\n- gateway: restart\n{REQUEST}");
        assert_eq!(problems(&format!("features: [new-gateway]\n{steps}")).len(), 1);
    }
}
