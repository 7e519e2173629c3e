//! The standalone profile: real Envoy fed by files. plugproof pulls each
//! module from the registry by digest, translates the resources as istiod
//! would (see `translate::placement` for the ordering model) and writes the
//! bootstrap and filesystem xDS.

mod xds;

use std::net::SocketAddr;
use std::time::Duration;

use super::{istio_plugins, DeployError, Stage};
use crate::components::envoy::{Admin, Envoy, Expected};
use crate::oci::RegistryClient;
use crate::translate::IstioWasmPlugin;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// One worker keeps boot fast on small CI machines; each worker holds its own Wasm VMs.
const CONCURRENCY: u32 = 1;

pub struct EnvoyDeployment {
    envoy: Envoy,
    gateway: SocketAddr,
}

impl EnvoyDeployment {
    pub fn gateway(&self) -> SocketAddr {
        self.gateway
    }

    pub fn admin(&self) -> &Admin {
        self.envoy.admin()
    }

    pub async fn stop(self) {
        self.envoy.stop().await;
    }
}

pub async fn deploy(stage: &Stage<'_>) -> Result<EnvoyDeployment, DeployError> {
    let plugins = istio_plugins(stage)?;
    let modules_dir = stage.dir.join("modules");
    std::fs::create_dir_all(&modules_dir).map_err(DeployError::io("cannot create the modules directory"))?;
    let registry = RegistryClient::new(stage.registry.host());
    let mut modules = Vec::new();
    for plugin in &plugins {
        let published = &stage.published[&plugin.plugin];
        let path = modules_dir.join(format!("{}.wasm", plugin.plugin));
        if !path.exists() {
            let module = registry.pull_module(&published.repository, &published.digest).await?;
            std::fs::write(&path, module).map_err(DeployError::io(format!("cannot write {}", path.display())))?;
        }
        modules.push(path);
    }
    let loopback = stage.loopback;
    let io = |what: &'static str| DeployError::io(what);
    let gateway = loopback.free_addr().map_err(io("no free port for the gateway listener"))?;
    let admin = loopback.free_addr().map_err(io("no free port for Envoy's admin API"))?;
    let xds_dir = stage.dir.join("xds");
    let files = xds::render(&xds::Input {
        dir: &xds_dir,
        gateway,
        admin,
        scenario: stage.scenario,
        backends: &stage.backends,
        plugins: plugins.iter().zip(&modules).collect(),
    });
    files.write(&xds_dir).map_err(io("cannot write the xDS files"))?;
    let mut envoy = Envoy::start(
        &stage.tools.envoy,
        &xds_dir.join(xds::BOOTSTRAP),
        admin,
        &stage.dir.join("envoy.log"),
        CONCURRENCY,
    )?;
    let expected = Expected {
        listeners: vec![xds::LISTENER.to_owned()],
        ecds: plugins.iter().map(IstioWasmPlugin::filter_name).collect(),
        routes: stage.scenario.routes.iter().map(|r| r.name.clone()).collect(),
    };
    envoy.wait_ready(&expected, READY_TIMEOUT).await?;
    Ok(EnvoyDeployment { envoy, gateway })
}
