//! The standalone profile: real Envoy fed by files. plugproof pulls each
//! module from the registry by digest, translates the resources as istiod
//! would (see `translate::placement` for the ordering model) and writes the
//! bootstrap and filesystem xDS; later changes rewrite the files, which
//! Envoy watches.

mod xds;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use super::{Booting, Clock, DeployError, Deployment, Early, Module, Profile, ProfileKind, Stage};
use crate::components::envoy::updates::Update;
use crate::components::envoy::{await_update, Admin, Baseline, Envoy, EnvoyStart};
use crate::runtime::{Loopback, Program};
use crate::scenario::{Feature, Reference, Scenario, HTTP_LISTENER};
use crate::targets::{Needs, Target};
use crate::translate::IstioWasmPlugin;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Envoy's access log, in the scenario's folder (kept with its evidence).
const ACCESS_LOG: &str = "access.log";

/// The standalone profile.
pub struct Standalone;

#[async_trait(?Send)]
impl Profile for Standalone {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Envoy
    }

    fn needs(&self) -> Needs {
        Needs {
            features: vec![
                Feature::DirectDelivery,
                Feature::GatewayEnv,
                Feature::GatewayConcurrency,
                Feature::OwnRegistry,
                Feature::TcpListeners,
                Feature::WasmServices,
                Feature::GatewayApi,
            ],
            programs: &[Program::Envoy],
        }
    }

    /// Envoy boots on its bootstrap while the stage is made ready, and gets
    /// its listeners, clusters and filters from the files written after. A
    /// scenario with Wasm services boots later: its bootstrap names their
    /// modules, pulled from the stage's registry.
    async fn boot_early(&self, early: &Early<'_>) -> Result<Booting, DeployError> {
        if !early.scenario.wasm_services.is_empty() {
            return Ok(Booting::default());
        }
        let ports = Ports::allocate(early.loopback, early.scenario)?;
        let xds_dir = early.dir.join("xds");
        xds::write(&xds_dir, &xds::before_stage(&xds_dir, ports.admin))
            .map_err(DeployError::io("cannot write the xDS files"))?;
        let envoy = start(early.target, early.scenario, early.dir, &xds_dir, ports.admin).await?;
        Ok(Booting::of(Booted { envoy, ports }))
    }

    async fn deploy(&self, stage: &Stage<'_>, booting: Booting) -> Result<Box<dyn Deployment>, DeployError> {
        Ok(Box::new(deploy(stage, booting.take()).await?))
    }
}

/// Envoy started before the stage was ready, and where it listens.
struct Booted {
    envoy: Envoy,
    ports: Ports,
}

pub struct EnvoyDeployment {
    envoy: Envoy,
    /// Render and pull, then Envoy's start until ready.
    boot: Vec<(&'static str, Duration)>,
    ports: Ports,
    xds_dir: PathBuf,
    access_log: PathBuf,
}

#[async_trait(?Send)]
impl Deployment for EnvoyDeployment {
    fn gateway(&self) -> SocketAddr {
        self.ports.gateway
    }

    fn admin(&self) -> &Admin {
        self.envoy.admin()
    }

    fn tcp_listener(&self, name: &str) -> Option<SocketAddr> {
        self.ports.tcp.get(name).copied()
    }

    fn envoy_listener(&self, listener: &str) -> Option<String> {
        match listener {
            HTTP_LISTENER => Some(xds::LISTENER.to_owned()),
            tcp => self.ports.tcp.contains_key(tcp).then(|| xds::tcp_listener_name(tcp)),
        }
    }

    fn access_log(&self) -> &Path {
        &self.access_log
    }

    fn gateway_log(&self) -> &Path {
        self.envoy.log_path()
    }

    fn boot_phases(&self) -> Vec<(&'static str, Duration)> {
        self.boot.clone()
    }

    async fn extra_evidence(&self) -> Vec<(String, serde_json::Value)> {
        self.envoy.evidence().await
    }

    /// Rewrites the files that changed, which Envoy picks up by itself, and
    /// waits (up to `within`) until Envoy has taken or refused each update.
    async fn sync(&mut self, stage: &Stage<'_>, within: Duration) -> Result<Update, DeployError> {
        let (files, _) = render(stage, &self.xds_dir, &self.access_log, &self.ports).await?;
        let changes = files.changes(&self.xds_dir);
        let (admin, process) = self.envoy.parts();
        let baseline = Baseline::take(admin, process).await?;
        xds::write(&self.xds_dir, &changes).map_err(DeployError::io("cannot write the xDS files"))?;
        let resources = changes.into_iter().filter_map(|c| c.resource).collect();
        Ok(await_update(admin, process, resources, baseline, within).await?)
    }

    /// Loaders refuse `gateway: replace` without the `new-gateway` feature,
    /// which this profile lacks.
    async fn replace_gateway(&mut self, _stage: &Stage<'_>) -> Result<(), DeployError> {
        Err(DeployError::CannotReplace("envoy"))
    }

    async fn stop(self: Box<Self>) -> Result<(), DeployError> {
        self.envoy.stop().await;
        Ok(())
    }
}

async fn deploy(stage: &Stage<'_>, booted: Option<Booted>) -> Result<EnvoyDeployment, DeployError> {
    let xds_dir = stage.dir.join("xds");
    let access_log = stage.dir.join(ACCESS_LOG);
    let mut clock = Clock::default();
    let (booted, ports) = match booted {
        Some(Booted { envoy, ports }) => (Some(envoy), ports),
        None => (None, Ports::allocate(&stage.loopback, stage.scenario)?),
    };
    let (files, plugins) = render(stage, &xds_dir, &access_log, &ports).await?;
    xds::write(&xds_dir, &files.changes(&xds_dir)).map_err(DeployError::io("cannot write the xDS files"))?;
    clock.lap("pull + render");
    let mut envoy = match booted {
        Some(envoy) => envoy,
        None => start(stage.target, stage.scenario, stage.dir, &xds_dir, ports.admin).await?,
    };
    let listeners = std::iter::once(xds::LISTENER.to_owned())
        .chain(stage.scenario.tcp_listeners.iter().map(|l| xds::tcp_listener_name(&l.name)));
    envoy.wait_ready(&stage.expected(listeners.collect(), &plugins), READY_TIMEOUT).await?;
    clock.lap("envoy ready");
    Ok(EnvoyDeployment { envoy, boot: clock.laps, ports, xds_dir, access_log })
}

/// Envoy on the bootstrap in `xds_dir`, as the target runs it.
async fn start(
    target: &Target,
    scenario: &Scenario,
    dir: &Path,
    xds_dir: &Path,
    admin: SocketAddr,
) -> Result<Envoy, DeployError> {
    let start = EnvoyStart {
        bootstrap: &xds_dir.join(xds::BOOTSTRAP),
        admin,
        log: dir.join("envoy.log"),
        dir,
        concurrency: scenario.concurrency,
        env: &scenario.gateway_env,
    };
    Ok(Envoy::start(target.runtime.as_ref(), start).await?)
}

/// Where Envoy listens: its HTTP listener, the scenario's TCP listeners (by
/// name) and its admin API.
struct Ports {
    gateway: SocketAddr,
    tcp: BTreeMap<String, SocketAddr>,
    admin: SocketAddr,
}

impl Ports {
    fn allocate(loopback: &Loopback, scenario: &Scenario) -> Result<Self, DeployError> {
        let io = |what: &'static str| DeployError::io(what);
        let gateway = loopback.free_addr().map_err(io("no free port for the gateway listener"))?;
        let admin = loopback.free_addr().map_err(io("no free port for Envoy's admin API"))?;
        let mut tcp = BTreeMap::new();
        for listener in &scenario.tcp_listeners {
            tcp.insert(listener.name.clone(), loopback.free_addr().map_err(io("no free port for a TCP listener"))?);
        }
        Ok(Ports { gateway, tcp, admin })
    }
}

/// The xDS files for the stage's current WasmPlugins, with their modules
/// pulled from the registry (each digest once).
async fn render(
    stage: &Stage<'_>,
    xds_dir: &Path,
    access_log: &Path,
    ports: &Ports,
) -> Result<(xds::Files, Vec<IstioWasmPlugin>), DeployError> {
    let plugins = stage.reaching(&stage.plugins()?);
    let modules_dir = stage.dir.join("modules");
    std::fs::create_dir_all(&modules_dir).map_err(DeployError::io("cannot create the modules directory"))?;
    let mut modules = Vec::new();
    for plugin in &plugins {
        modules.push(pull(stage, stage.module(plugin), &modules_dir).await?);
    }
    let mut service_modules = Vec::new();
    for service in &stage.scenario.wasm_services {
        service_modules.push(pull(stage, stage.module_of(&service.plugin, &Reference::Digest), &modules_dir).await?);
    }
    let files = xds::render(&xds::Input {
        dir: xds_dir,
        access_log,
        gateway: ports.gateway,
        tcp: &ports.tcp,
        admin: ports.admin,
        scenario: stage.scenario,
        backends: &stage.backends,
        plugins: plugins.iter().zip(&modules).collect(),
        services: stage.scenario.wasm_services.iter().zip(&service_modules).collect(),
    });
    Ok((files, plugins))
}

/// The file of `module`, pulled from the stage's registry into `dir` (each digest once).
async fn pull(stage: &Stage<'_>, module: Module<'_>, dir: &Path) -> Result<PathBuf, DeployError> {
    let registry = stage.registry.client();
    let repository = &module.published.repository;
    let digest = match module.tag {
        Some(tag) => registry.digest_of(repository, tag).await?,
        None => module.published.digest.clone(),
    };
    let path = dir.join(format!("{}.wasm", digest.trim_start_matches("sha256:")));
    if !path.exists() {
        let module = registry.pull_module(repository, &digest).await?;
        std::fs::write(&path, module).map_err(DeployError::io(format!("cannot write {}", path.display())))?;
    }
    Ok(path)
}
