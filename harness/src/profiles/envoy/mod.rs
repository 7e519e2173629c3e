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

use super::{Clock, DeployError, Deployment, Module, Profile, ProfileKind, Stage};
use crate::components::envoy::updates::Update;
use crate::components::envoy::{await_update, Admin, Baseline, Envoy, EnvoyStart};
use crate::runtime::Program;
use crate::scenario::{Feature, Reference, HTTP_LISTENER};
use crate::targets::Needs;
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

    async fn deploy(&self, stage: &Stage<'_>) -> Result<Box<dyn Deployment>, DeployError> {
        Ok(Box::new(deploy(stage).await?))
    }
}

pub struct EnvoyDeployment {
    envoy: Envoy,
    /// Render and pull, then Envoy's start until ready.
    boot: Vec<(&'static str, Duration)>,
    gateway: SocketAddr,
    /// The scenario's TCP listeners, by name.
    tcp: BTreeMap<String, SocketAddr>,
    admin: SocketAddr,
    xds_dir: PathBuf,
    access_log: PathBuf,
}

#[async_trait(?Send)]
impl Deployment for EnvoyDeployment {
    fn gateway(&self) -> SocketAddr {
        self.gateway
    }

    fn admin(&self) -> &Admin {
        self.envoy.admin()
    }

    fn tcp_listener(&self, name: &str) -> Option<SocketAddr> {
        self.tcp.get(name).copied()
    }

    fn envoy_listener(&self, listener: &str) -> Option<String> {
        match listener {
            HTTP_LISTENER => Some(xds::LISTENER.to_owned()),
            tcp => self.tcp.contains_key(tcp).then(|| xds::tcp_listener_name(tcp)),
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
        let listeners = Listeners { gateway: self.gateway, tcp: &self.tcp, admin: self.admin };
        let (files, _) = render(stage, &self.xds_dir, &self.access_log, &listeners).await?;
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

async fn deploy(stage: &Stage<'_>) -> Result<EnvoyDeployment, DeployError> {
    let io = |what: &'static str| DeployError::io(what);
    let gateway = stage.loopback.free_addr().map_err(io("no free port for the gateway listener"))?;
    let admin = stage.loopback.free_addr().map_err(io("no free port for Envoy's admin API"))?;
    let mut tcp = BTreeMap::new();
    for listener in &stage.scenario.tcp_listeners {
        tcp.insert(listener.name.clone(), stage.loopback.free_addr().map_err(io("no free port for a TCP listener"))?);
    }
    let xds_dir = stage.dir.join("xds");
    let access_log = stage.dir.join(ACCESS_LOG);
    let mut clock = Clock::default();
    let (files, plugins) = render(stage, &xds_dir, &access_log, &Listeners { gateway, tcp: &tcp, admin }).await?;
    xds::write(&xds_dir, &files.changes(&xds_dir)).map_err(io("cannot write the xDS files"))?;
    clock.lap("pull + render");
    let start = EnvoyStart {
        bootstrap: &xds_dir.join(xds::BOOTSTRAP),
        admin,
        log: stage.dir.join("envoy.log"),
        dir: stage.dir,
        concurrency: stage.scenario.concurrency,
        env: &stage.scenario.gateway_env,
    };
    let mut envoy = Envoy::start(stage.target.runtime.as_ref(), start).await?;
    let listeners = std::iter::once(xds::LISTENER.to_owned())
        .chain(stage.scenario.tcp_listeners.iter().map(|l| xds::tcp_listener_name(&l.name)));
    envoy.wait_ready(&stage.expected(listeners.collect(), &plugins), READY_TIMEOUT).await?;
    clock.lap("envoy ready");
    Ok(EnvoyDeployment { envoy, boot: clock.laps, gateway, tcp, admin, xds_dir, access_log })
}

/// Where Envoy listens: its HTTP listener, the TCP ones and its admin API.
struct Listeners<'a> {
    gateway: SocketAddr,
    tcp: &'a BTreeMap<String, SocketAddr>,
    admin: SocketAddr,
}

/// The xDS files for the stage's current WasmPlugins, with their modules
/// pulled from the registry (each digest once).
async fn render(
    stage: &Stage<'_>,
    xds_dir: &Path,
    access_log: &Path,
    listeners: &Listeners<'_>,
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
        gateway: listeners.gateway,
        tcp: listeners.tcp,
        admin: listeners.admin,
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
