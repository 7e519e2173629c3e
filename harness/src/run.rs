//! Running one scenario: stage (registry, pushed modules, echo backends),
//! deploy on the profile, execute the steps, keep evidence if it fails, and
//! stop everything it started.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::components::echo::EchoServer;
use crate::components::registry::Registry;
use crate::outcome::{Failure, FailureKind, Outcome, Status, Timings};
use crate::profiles::{self, Deployment, InForce, ProfileKind, Published, Stage};
use crate::provision::{self, ModuleCatalog, ProvisionError, Tools};
use crate::report::bundle;
use crate::runtime::Loopback;
use crate::scenario::Scenario;
use crate::steps::{self, Alternative, StepContext};

/// Runs scenarios on one profile with provisioned tools.
pub struct Runner {
    profile: ProfileKind,
    tools: Tools,
    report_dir: PathBuf,
    http: reqwest::Client,
}

impl Runner {
    /// Provisions Envoy, the registry and the test modules (cached).
    pub async fn prepare(
        profile: ProfileKind,
        catalog: &ModuleCatalog,
        report_dir: PathBuf,
    ) -> Result<Self, ProvisionError> {
        let tools = provision::tools(catalog, profile.runs_istio()).await?;
        Ok(Runner { profile, tools, report_dir, http: crate::http::client() })
    }

    pub fn profile(&self) -> ProfileKind {
        self.profile
    }

    pub async fn run(&self, scenario: &Scenario) -> Outcome {
        self.run_judging(scenario, &mut BTreeMap::new()).await
    }

    /// Runs `scenario`, and judges `alternatives` (by step index) on the
    /// same observations as the steps' own expectations.
    pub async fn run_judging(
        &self,
        scenario: &Scenario,
        alternatives: &mut BTreeMap<usize, Vec<Alternative>>,
    ) -> Outcome {
        let started = Instant::now();
        let mut outcome = Outcome {
            id: scenario.id.clone(),
            name: scenario.name.clone(),
            file: scenario.file.clone(),
            status: Status::Passed,
            timings: Timings::default(),
            steps: Vec::new(),
            bundle: None,
            boot: Vec::new(),
        };
        if let Some(reason) = self.profile.skip_reason(scenario) {
            outcome.status = Status::Skipped(reason);
            return outcome;
        }
        let dir = match tempfile::Builder::new().prefix("plugproof-").tempdir() {
            Ok(dir) => dir,
            Err(e) => {
                outcome.status =
                    Status::Failed(Failure::new(FailureKind::Setup, format!("cannot create a run directory: {e}")));
                return outcome;
            }
        };
        self.execute(scenario, dir.path(), &mut outcome, alternatives).await;
        outcome.timings.total = started.elapsed();
        outcome
    }

    async fn execute(
        &self,
        scenario: &Scenario,
        dir: &Path,
        outcome: &mut Outcome,
        alternatives: &mut BTreeMap<usize, Vec<Alternative>>,
    ) {
        let loopback = Loopback::for_run();
        let stage_started = Instant::now();
        let registry_dir = dir.join("registry");
        let (registry, backends) = tokio::join!(
            Registry::start(&self.tools.registry, &loopback, &registry_dir),
            start_backends(scenario, loopback),
        );
        let staged = match (registry, backends) {
            (Ok(registry), Ok(backends)) => match self.publish(scenario, &registry).await {
                Ok(published) => Ok((registry, backends, published)),
                Err(e) => Err(Failure::new(FailureKind::Setup, e)),
            },
            (Err(e), _) => Err(Failure::new(e.kind(), e.to_string())),
            (_, Err(e)) => Err(Failure::new(FailureKind::Setup, format!("cannot start an echo backend: {e}"))),
        };
        let (mut registry, backends, published) = match staged {
            Ok(staged) => staged,
            Err(error) => return self.fail(outcome, scenario, dir, None, error).await,
        };
        outcome.timings.stage = stage_started.elapsed();

        let mut stage = Stage {
            scenario,
            dir,
            loopback,
            tools: &self.tools,
            registry: &mut registry,
            backends: backends
                .iter()
                .map(|b| (b.name().to_owned(), b.addr()))
                .collect::<BTreeMap<String, SocketAddr>>(),
            published,
            resources: InForce::initial(&scenario.resources),
        };
        let deploy_started = Instant::now();
        let mut deployment = match profiles::deploy(self.profile, &stage).await {
            Ok(d) => d,
            Err(error) => return self.fail(outcome, scenario, dir, None, error.failure()).await,
        };
        outcome.timings.deploy = deploy_started.elapsed();
        outcome.boot = deployment.boot_phases();

        let steps_started = Instant::now();
        let mut failure = None;
        for (index, step) in scenario.steps.iter().enumerate() {
            let mut ctx = StepContext { deployment: &mut deployment, stage: &mut stage, http: &self.http };
            let judged = alternatives.get_mut(&index).map(Vec::as_mut_slice).unwrap_or_default();
            let result = steps::run(step, &mut ctx, judged).await;
            if let (false, Some(step_failure)) = (result.passed, &result.failure) {
                let message =
                    format!("step at {} ({}): {}", scenario.at(step.line), result.label, step_failure.message);
                failure = Some(Failure::new(step_failure.kind, message));
            }
            outcome.steps.push(result);
            if failure.is_some() {
                break;
            }
        }
        outcome.timings.steps = steps_started.elapsed();
        if let Some(error) = failure {
            self.fail(outcome, scenario, dir, Some(&deployment), error).await;
        }
        drop(stage);
        deployment.stop().await;
        registry.stop().await;
    }

    async fn publish(&self, scenario: &Scenario, registry: &Registry) -> Result<BTreeMap<String, Published>, String> {
        let mut published = BTreeMap::new();
        for plugin in scenario.plugins.values() {
            let pushed = steps::publish(&self.tools, registry.client(), plugin, &plugin.module).await?;
            published.insert(plugin.name.clone(), pushed);
        }
        Ok(published)
    }

    async fn fail(
        &self,
        outcome: &mut Outcome,
        scenario: &Scenario,
        dir: &Path,
        deployment: Option<&Deployment>,
        failure: Failure,
    ) {
        let (config_dump, extra) = match deployment {
            Some(d) => (d.config_dump().await.ok(), d.extra_evidence().await),
            None => (None, Vec::new()),
        };
        let target = self.report_dir.join(&scenario.id);
        outcome.bundle = match bundle::write(&target, dir, config_dump.as_ref(), &extra, &failure, &outcome.steps) {
            Ok(()) => Some(target),
            Err(e) => {
                tracing::warn!("could not keep the evidence of {} in {}: {e}", scenario.id, target.display());
                None
            }
        };
        outcome.status = Status::Failed(failure);
    }
}

async fn start_backends(scenario: &Scenario, loopback: Loopback) -> std::io::Result<Vec<EchoServer>> {
    let mut servers = Vec::new();
    for service in &scenario.services {
        servers.push(EchoServer::start(&service.name, loopback.ip()).await?);
    }
    Ok(servers)
}
