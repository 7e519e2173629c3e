//! Systems under test. A profile deploys a scenario's resources onto real
//! components and hands back the gateway the steps talk to.

pub mod envoy;
pub mod istio;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::components::envoy::updates::Update;
use crate::components::envoy::Expected;
use crate::components::registry::Registry;
use crate::components::ComponentError;
use crate::oci::OciError;
use crate::outcome::{Failure, FailureKind};
use crate::provision::Tools;
use crate::runtime::isolation::IsolationError;
use crate::runtime::Loopback;
use crate::scenario::{Feature, Reference, Scenario, WasmPlugin};
use crate::translate::{self, placement, IstioWasmPlugin, TranslateError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileKind {
    /// Standalone Envoy; plugproof writes its bootstrap and xDS files.
    Envoy,
    /// Real istiod (over a real kube-apiserver) and pilot-agent driving Envoy.
    Istio,
}

impl ProfileKind {
    /// The profiles the test binaries run: `PLUGPROOF_PROFILES`,
    /// comma-separated (default `envoy`).
    pub fn from_env() -> Result<Vec<ProfileKind>, String> {
        let names = std::env::var("PLUGPROOF_PROFILES").unwrap_or_else(|_| "envoy".into());
        names
            .split(',')
            .map(|p| {
                <ProfileKind as clap::ValueEnum>::from_str(p.trim(), true)
                    .map_err(|e| format!("PLUGPROOF_PROFILES: `{p}`: {e}; the profiles are envoy and istio"))
            })
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            ProfileKind::Envoy => "envoy",
            ProfileKind::Istio => "istio",
        }
    }

    /// Whether provisioning must build the istio kit.
    pub fn runs_istio(self) -> bool {
        self == ProfileKind::Istio
    }

    /// Whether runs must execute in their own network and mount namespaces.
    pub fn needs_isolation(self) -> bool {
        self == ProfileKind::Istio
    }

    fn supports(self, feature: Feature) -> bool {
        !matches!(
            (self, feature),
            (ProfileKind::Envoy, Feature::AgentFetch | Feature::NativeFilters)
                | (ProfileKind::Istio, Feature::DirectDelivery | Feature::LegacyFailOpen)
        )
    }

    /// Why this profile cannot run `scenario`, if it cannot.
    pub fn skip_reason(self, scenario: &Scenario) -> Option<String> {
        let missing: Vec<&str> = scenario.features.iter().filter(|f| !self.supports(**f)).map(|f| f.name()).collect();
        (!missing.is_empty()).then(|| format!("profile {} lacks {}", self.name(), missing.join(", ")))
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

/// What every profile gets: the scenario, its run directory and address,
/// the registry holding its modules, the echo backends, and the current
/// state that steps change (WasmPlugins, pushed modules).
pub struct Stage<'a> {
    pub scenario: &'a Scenario,
    pub dir: &'a Path,
    pub loopback: Loopback,
    pub tools: &'a Tools,
    pub registry: &'a mut Registry,
    /// Service name -> echo backend address.
    pub backends: BTreeMap<String, SocketAddr>,
    pub published: BTreeMap<String, Published>,
    /// The WasmPlugins in force now: the scenario's, then as steps apply and delete.
    pub resources: Vec<InForce>,
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
        let tag = match &plugin.reference {
            Reference::Digest => None,
            Reference::Tag(tag) => Some(tag.as_str()),
        };
        Module { published: &self.published[&plugin.plugin], tag }
    }

    /// What must be loaded before the steps start: `listener`, every
    /// plugin's ECDS resource and every route.
    pub fn expected(&self, listener: String, plugins: &[IstioWasmPlugin]) -> Expected {
        Expected {
            listeners: vec![listener],
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
            | DeployError::Isolation(_)
            | DeployError::NotIsolated
            | DeployError::Oci(_)
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
    #[error("the istio profile must run in its own network namespace; run it through `plugproof run` or the nextest scenario tests, which arrange that")]
    NotIsolated,
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
}

impl DeployError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| DeployError::Io { what, source }
    }
}

/// A running system under test.
// One exists per scenario run: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Deployment {
    Envoy(envoy::EnvoyDeployment),
    Istio(istio::IstioDeployment),
}

impl Deployment {
    pub fn gateway(&self) -> SocketAddr {
        match self {
            Deployment::Envoy(d) => d.gateway(),
            Deployment::Istio(d) => d.gateway(),
        }
    }

    /// The gateway Envoy's `/config_dump`.
    pub async fn config_dump(&self) -> Result<Value, ComponentError> {
        match self {
            Deployment::Envoy(d) => d.admin().config_dump().await,
            Deployment::Istio(d) => d.admin().config_dump().await,
        }
    }

    /// Evidence beyond the run directory and Envoy's config dump, for a
    /// failure bundle: (file name, JSON).
    pub async fn extra_evidence(&self) -> Vec<(String, Value)> {
        match self {
            Deployment::Envoy(_) => Vec::new(),
            Deployment::Istio(d) => d.extra_evidence().await,
        }
    }

    /// How long each part took to start.
    pub fn boot_phases(&self) -> Vec<(&'static str, Duration)> {
        match self {
            Deployment::Envoy(d) => d.boot_phases(),
            Deployment::Istio(d) => d.boot_phases(),
        }
    }

    /// Brings the running system in line with the stage's current
    /// WasmPlugins and pushed modules (after an `apply`, `delete` or
    /// `push`), and waits up to `within` until the gateway has taken or
    /// refused what that changes for it.
    pub async fn sync(&mut self, stage: &Stage<'_>, within: Duration) -> Result<Update, DeployError> {
        match self {
            Deployment::Envoy(d) => d.sync(stage, within).await,
            Deployment::Istio(d) => d.sync(stage, within).await,
        }
    }

    pub async fn stop(self) {
        match self {
            Deployment::Envoy(d) => d.stop().await,
            Deployment::Istio(d) => d.stop().await,
        }
    }
}

pub async fn deploy(kind: ProfileKind, stage: &Stage<'_>) -> Result<Deployment, DeployError> {
    match kind {
        ProfileKind::Envoy => envoy::deploy(stage).await.map(Deployment::Envoy),
        ProfileKind::Istio => istio::deploy(stage).await.map(Deployment::Istio),
    }
}

/// The Istio WasmPlugins the scenario's resources become (Higress ones
/// through the translator), wherever they are.
fn istio_plugins(stage: &Stage<'_>) -> Result<Vec<IstioWasmPlugin>, DeployError> {
    let mut plugins = Vec::new();
    for InForce { resource, created } in &stage.resources {
        let converted = translate::to_istio(resource).map_err(|source| DeployError::Translate {
            at: stage.scenario.at(resource.line),
            name: format!("{}/{}", resource.namespace, resource.name),
            source,
        })?;
        plugins.extend(converted.map(|p| IstioWasmPlugin { created: *created, ..p }));
    }
    Ok(plugins)
}

/// Those of `plugins` that istiod gives the gateway, in the model.
fn reaching_gateway(plugins: &[IstioWasmPlugin]) -> Vec<IstioWasmPlugin> {
    plugins.iter().filter(|p| placement::reaches_gateway(p)).cloned().collect()
}
