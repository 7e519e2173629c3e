//! Running one scenario: stage (registry, pushed modules, echo backends),
//! deploy on the profile, execute the steps, keep evidence if it fails, and
//! stop everything it started.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::components::echo::EchoServer;
use crate::components::registry::{ModuleRegistry, NamedRegistry, Registry, RegistryLock};
use crate::failure::{Failure, FailureKind};
use crate::options::Options;
use crate::outcome::{Outcome, Status, Timings};
use crate::profiles::{profile, DeployError, Deployment, Early, InForce, Names, Profile, Published, PullLogin, Stage};
use crate::provision::{self, ModuleCatalog, ProvisionError, Tools};
use crate::report::bundle;
use crate::runtime::{rundir, Loopback};
use crate::scenario::{Scenario, ServiceProtocol};
use crate::steps::{self, Alternative, StatsSeen, StepContext, TcpConnections};
use crate::targets::{filters, Target, TargetSpec};

/// Runs scenarios on one target.
pub struct Runner {
    target: Target,
    /// What deploys scenarios on the target.
    profile: Box<dyn Profile>,
    tools: Tools,
    /// Where the evidence of this target's failures goes.
    evidence: PathBuf,
    http: reqwest::Client,
    /// The password of the scenarios' private registries and pull secrets,
    /// if given; else a new random one per scenario.
    pull_password: Option<String>,
}

impl Runner {
    /// Provisions the shared tools and the target (cached, with progress).
    pub async fn prepare(
        spec: &TargetSpec,
        options: &Options,
        catalog: &ModuleCatalog,
    ) -> Result<Self, ProvisionError> {
        let tools = provision::tools(options, catalog).await?;
        let profile = profile(spec.profile, options);
        let target = Target::resolve(spec, options, &tools, profile.needs()).await?;
        let mut runner = Runner::new(target, profile, tools, &options.report_dir);
        runner.pull_password.clone_from(&options.pull_password);
        Ok(runner)
    }

    /// A runner for a target already resolved, deployed by `profile`; its
    /// evidence goes to `report_dir/TARGET/SCENARIO`.
    pub fn new(target: Target, profile: Box<dyn Profile>, tools: Tools, report_dir: &Path) -> Self {
        let evidence = report_dir.join(crate::report::matrix::folder(target.name()));
        Runner { target, profile, tools, evidence, http: crate::http::client(), pull_password: None }
    }

    pub fn target(&self) -> &Target {
        &self.target
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
            target: self.target.name().to_owned(),
            id: scenario.id.clone(),
            name: scenario.name.clone(),
            file: scenario.file.clone(),
            status: Status::Passed,
            timings: Timings::default(),
            steps: Vec::new(),
            bundle: None,
            boot: Vec::new(),
            modules: Vec::new(),
        };
        if let Some(reason) = self.target.skip_reason(scenario) {
            outcome.status = Status::Skipped(reason);
            return outcome;
        }
        let names = self.profile.names();
        let misnamed = filters::misnamed(scenario, self.target.istiod, &names, self.target.name());
        if !misnamed.is_empty() {
            outcome.status = Status::Failed(Failure::new(FailureKind::Setup, misnamed.join("\n")));
            return outcome;
        }
        let dir = match rundir::create("run") {
            Ok(dir) => dir,
            Err(e) => {
                outcome.status =
                    Status::Failed(Failure::new(FailureKind::Setup, format!("cannot create a run directory: {e}")));
                return outcome;
            }
        };
        self.execute(scenario, names, dir.path(), &mut outcome, alternatives).await;
        outcome.timings.total = started.elapsed();
        outcome
    }

    async fn execute(
        &self,
        scenario: &Scenario,
        names: Names,
        dir: &Path,
        outcome: &mut Outcome,
        alternatives: &mut BTreeMap<usize, Vec<Alternative>>,
    ) {
        let loopback = self.profile.serve_at().map_or_else(Loopback::for_run, Loopback::at);
        let stage_started = Instant::now();
        let registry_dir = dir.join("registry");
        let mut pull_login = PullLogin::unique();
        if let Some(password) = &self.pull_password {
            pull_login.password.clone_from(password);
        }
        let lock = scenario.private_registry.as_ref().map(|private| (&pull_login, private.realm.as_deref()));
        let staged = async {
            let (registry, backends) = tokio::join!(
                self.registry(&names, &loopback, &registry_dir, lock),
                start_backends(scenario, &loopback)
            );
            let (registry, backends) = match (registry, backends) {
                (Ok(registry), Ok(backends)) => (registry, backends),
                (Err(e), _) => return Err(e.failure()),
                (_, Err(e)) => {
                    return Err(Failure::new(FailureKind::Setup, format!("cannot start an echo backend: {e}")))
                }
            };
            let published = self.publish(scenario, registry.as_ref(), outcome).await?;
            Ok((registry, backends, published))
        };
        // What the profile can start without the stage boots beside it.
        let early = Early { scenario, target: &self.target, dir, loopback: &loopback };
        let (staged, booting) = tokio::join!(staged, self.profile.boot_early(&early));
        let (mut registry, backends, published) = match staged {
            Ok(staged) => staged,
            Err(error) => return self.fail(outcome, scenario, dir, None, error).await,
        };
        let booting = match booting {
            Ok(booting) => booting,
            Err(error) => return self.fail(outcome, scenario, dir, None, error.failure()).await,
        };
        outcome.timings.stage = stage_started.elapsed();

        let mut stage = Stage {
            scenario,
            target: &self.target,
            names,
            dir,
            loopback,
            tools: &self.tools,
            registry: registry.as_mut(),
            backends: backends
                .iter()
                .map(|b| (b.name().to_owned(), b.addr()))
                .collect::<BTreeMap<String, SocketAddr>>(),
            published,
            modules: outcome.modules.clone(),
            resources: InForce::initial(&scenario.resources),
            pull_login,
        };
        let deploy_started = Instant::now();
        let mut deployment = match self.profile.deploy(&stage, booting).await {
            Ok(d) => d,
            Err(error) => return self.fail(outcome, scenario, dir, None, error.failure()).await,
        };
        outcome.timings.deploy = deploy_started.elapsed();
        outcome.boot = deployment.boot_phases();

        let steps_started = Instant::now();
        let mut failure = None;
        let mut connections = TcpConnections::new();
        let mut stats_seen = StatsSeen::new();
        for (index, step) in scenario.steps.iter().enumerate() {
            let mut ctx = StepContext {
                deployment: deployment.as_mut(),
                stage: &mut stage,
                http: &self.http,
                connections: &mut connections,
                stats_seen: &mut stats_seen,
            };
            let judged = alternatives.get_mut(&index).map(Vec::as_mut_slice).unwrap_or_default();
            let result = steps::run(step, &mut ctx, judged).await;
            outcome.modules.clone_from(&stage.modules);
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
        drop(connections);
        outcome.timings.steps = steps_started.elapsed();
        if let Some(error) = failure {
            self.fail(outcome, scenario, dir, Some(deployment.as_ref()), error).await;
        }
        drop(stage);
        let (teardown, ()) = tokio::join!(deployment.stop(), registry.stop());
        if let (Err(error), Status::Passed) = (teardown, &outcome.status) {
            let failure = Failure::new(error.kind(), format!("teardown: {error}"));
            self.fail(outcome, scenario, dir, None, failure).await;
        }
    }

    /// Stops what the target kept between scenarios (a control plane).
    /// What the cluster the target runs on says of itself, if it runs on one.
    pub async fn cluster_facts(&self) -> Option<crate::cluster::facts::Facts> {
        self.profile.cluster_facts().await
    }

    pub async fn shutdown(&self) {
        self.profile.shutdown().await;
    }

    /// The scenario's registry: the one the profile shares, in
    /// repositories under the scenario's prefix; else one of its own.
    async fn registry(
        &self,
        names: &Names,
        loopback: &Loopback,
        dir: &Path,
        lock: Option<(&PullLogin, Option<&str>)>,
    ) -> Result<Box<dyn ModuleRegistry>, DeployError> {
        Ok(match self.profile.shared_registry().await? {
            Some(shared) => {
                let prefix = names
                    .prefix()
                    .map_or_else(|| Names::unique().prefix().unwrap_or_default().to_owned(), str::to_owned);
                Box::new(NamedRegistry::open(&shared.push, &shared.pull, &prefix).await?)
            }
            None => match lock {
                None => Box::new(Registry::start(&self.tools.registry, loopback, dir).await?),
                Some((login, realm)) => {
                    let lock = RegistryLock::new(&login.user, &login.password, realm).map_err(|e| DeployError::Io {
                        what: "cannot make the registry's CA".into(),
                        source: std::io::Error::other(e),
                    })?;
                    Box::new(Registry::start_locked(&self.tools.registry, loopback, dir, &lock).await?)
                }
            },
        })
    }

    /// Pushes each plugin's module, recording them in `outcome`.
    async fn publish(
        &self,
        scenario: &Scenario,
        registry: &dyn ModuleRegistry,
        outcome: &mut Outcome,
    ) -> Result<BTreeMap<String, Published>, Failure> {
        let mut published = BTreeMap::new();
        for plugin in scenario.plugins.values() {
            let at = scenario.at(plugin.line);
            let (pushed, record) = steps::publish(&self.tools, registry, plugin, &plugin.module, &at).await?;
            published.insert(plugin.name.clone(), pushed);
            outcome.modules.push(record);
        }
        Ok(published)
    }

    async fn fail(
        &self,
        outcome: &mut Outcome,
        scenario: &Scenario,
        dir: &Path,
        deployment: Option<&dyn Deployment>,
        failure: Failure,
    ) {
        let (config_dump, extra) = match deployment {
            Some(d) => (d.admin().config_dump().await.ok(), d.extra_evidence().await),
            None => (None, Vec::new()),
        };
        let notes = deployment.map(|d| d.notes()).unwrap_or_default();
        let failure = if notes.is_empty() {
            failure
        } else {
            failure.reworded(format!("{}\n{}", failure.message, notes.join("\n")))
        };
        let target = self.evidence.join(&scenario.id);
        outcome.bundle = match bundle::write(&target, dir, config_dump.as_ref(), &extra, &failure, outcome) {
            Ok(()) => Some(target),
            Err(e) => {
                tracing::warn!("could not keep the evidence of {} in {}: {e}", scenario.id, target.display());
                None
            }
        };
        outcome.status = Status::Failed(failure);
    }
}

async fn start_backends(scenario: &Scenario, loopback: &Loopback) -> std::io::Result<Vec<EchoServer>> {
    let mut servers = Vec::new();
    for service in &scenario.services {
        servers.push(match (service.down, service.protocol) {
            (true, _) => EchoServer::refusing(&service.name, loopback)?,
            (false, ServiceProtocol::Http) => EchoServer::start(&service.name, loopback).await?,
            (false, ServiceProtocol::Tcp) => EchoServer::start_tcp(&service.name, loopback).await?,
        });
    }
    Ok(servers)
}

/// Runs every scenario on every runner's target, up to `jobs` at once, and
/// calls `done` as each finishes; returns the outcomes per runner, in
/// scenario order. Targets that run in the process's own namespaces keep a
/// control plane there on fixed ports, so they go one target at a time
/// (their scenarios still `jobs` at once), each shut down before the next.
pub async fn run_all(
    runners: &[Runner],
    scenarios: &[Scenario],
    jobs: usize,
    done: impl FnMut(&Outcome),
) -> Vec<Vec<Outcome>> {
    use futures::stream::{self, StreamExt};

    let jobs = jobs.max(1);
    let done = std::cell::RefCell::new(done);
    let (isolated, free): (Vec<usize>, Vec<usize>) =
        (0..runners.len()).partition(|r| runners[*r].profile.needs_isolation());
    let run = |(r, s): (usize, usize)| {
        let done = &done;
        async move {
            let outcome = runners[r].run(&scenarios[s]).await;
            (done.borrow_mut())(&outcome);
            (r, s, outcome)
        }
    };
    let mut longest_first: Vec<usize> = (0..scenarios.len()).collect();
    longest_first.sort_by_key(|s| std::cmp::Reverse(scenarios[*s].clock_time()));
    let longest_first = &longest_first;
    let pairs = move |r: usize| longest_first.iter().map(move |s| (r, *s));
    let free = stream::iter(free.into_iter().flat_map(pairs)).map(run).buffer_unordered(jobs).collect::<Vec<_>>();
    let isolated = async {
        let mut outcomes = Vec::new();
        for r in isolated {
            outcomes.extend(stream::iter(pairs(r)).map(run).buffer_unordered(jobs).collect::<Vec<_>>().await);
            runners[r].shutdown().await;
        }
        outcomes
    };
    let (free, isolated) = futures::join!(free, isolated);
    let mut by_runner: Vec<Vec<Option<Outcome>>> = vec![vec![None; scenarios.len()]; runners.len()];
    for (r, s, outcome) in free.into_iter().chain(isolated) {
        by_runner[r][s] = Some(outcome);
    }
    by_runner.into_iter().map(|outcomes| outcomes.into_iter().map(|o| o.expect("every pair ran")).collect()).collect()
}
