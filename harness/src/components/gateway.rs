//! An istio ingress gateway: the real pilot-agent in router mode, running
//! the upstream Envoy, configured by istiod over plaintext XDS. The agent
//! fetches `oci://` modules itself and hands them to Envoy as files.
//!
//! Several gateways share a network namespace (one per scenario, on one
//! control plane), so each gets its own block of ports for what the agent
//! and Envoy bind on every interface, and a Wasm cache of its own (the
//! agent's fixed /var/lib/istio/data): as a host process in a mount and PID
//! namespace of its own, as a container in its own file system.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use super::envoy::{access_log, wait_until_loaded, Admin, Expected};
use super::ComponentError;
use crate::runtime::ports::PortBlock;
use crate::runtime::{Launch, Program, Running, Runtime};

/// The fixed path of the agent's Wasm cache, which each gateway gets its own of.
const WASM_CACHE: &str = "/var/lib/istio/data";
/// How long an ended gateway may go on answering.
const END_TIMEOUT: Duration = Duration::from_secs(30);

pub struct GatewaySpec<'a> {
    pub dir: &'a Path,
    pub name: &'a str,
    pub namespace: &'a str,
    /// The label the Gateway and WasmPlugin selectors match: `istio: <value>`.
    pub label: &'a str,
    pub ip: Ipv4Addr,
    /// istiod's XDS address.
    pub discovery: &'a str,
    /// Ports for the agent and Envoy: admin, status, Envoy status, Envoy metrics.
    pub ports: &'a PortBlock,
    /// `host:port` of the registry, allowed over plain HTTP.
    pub registry: &'a str,
    /// Added to the environment of the agent, and so of its Envoy.
    pub env: &'a BTreeMap<String, String>,
}

pub struct Gateway {
    process: Box<dyn Running>,
    admin: Admin,
}

impl Gateway {
    /// Starts the agent as `runtime` runs it (with its Envoy and bootstrap
    /// template where the runtime has them).
    pub async fn start(runtime: &dyn Runtime, spec: &GatewaySpec<'_>) -> Result<Self, ComponentError> {
        let process = runtime.start(&launch(runtime, spec)?).await?;
        Ok(Gateway { process, admin: Admin::new((Ipv4Addr::LOCALHOST, spec.ports.port(0)).into()) })
    }

    /// Ends this gateway and starts a new one in its place from `spec`, on
    /// the same ports, as when its Pod is recreated (`spec.dir` a folder of
    /// its own, so an empty Wasm cache); `wait_ready` waits for it.
    pub async fn replace(&mut self, runtime: &dyn Runtime, spec: &GatewaySpec<'_>) -> Result<(), ComponentError> {
        let launch = launch(runtime, spec)?;
        let ended = std::mem::replace(&mut self.process, Box::new(Replaced { log: launch.log.clone() }));
        ended.kill().await;
        wait_gone(SocketAddr::from((Ipv4Addr::LOCALHOST, spec.ports.port(0)))).await?;
        self.process = runtime.start(&launch).await?;
        Ok(())
    }

    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// The agent's log, which holds its Envoy's log and access log.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// The admin API and the agent's process, whose log holds Envoy's.
    pub fn parts(&mut self) -> (&Admin, &mut dyn Running) {
        (&self.admin, self.process.as_mut())
    }

    /// Evidence of how it ran beyond its log (a container's inspection).
    pub async fn evidence(&self) -> Vec<(String, serde_json::Value)> {
        self.process.evidence().await
    }

    /// Waits until istiod's configuration, with every expected listener,
    /// route and Wasm filter, is loaded in Envoy.
    pub async fn wait_ready(&mut self, expected: &Expected, timeout: Duration) -> Result<(), ComponentError> {
        wait_until_loaded(&self.admin, expected, timeout, self.process.as_mut()).await
    }

    /// Ends the agent and its Envoy at once: a scenario's gateway has
    /// nothing left to drain when the scenario is over.
    pub async fn stop(self) {
        self.process.kill().await;
    }
}

/// How the agent of `spec` is launched (with its Envoy and bootstrap
/// template where the runtime has them).
fn launch(runtime: &dyn Runtime, spec: &GatewaySpec<'_>) -> Result<Launch, ComponentError> {
    let io = |what: String| move |source| ComponentError::Io { what, source };
    let config_path = spec.dir.join("etc/istio/proxy");
    std::fs::create_dir_all(&config_path).map_err(io(format!("cannot create {}", config_path.display())))?;
    let (admin, status, envoy_status, prometheus) =
        (spec.ports.port(0), spec.ports.port(1), spec.ports.port(2), spec.ports.port(3));
    let proxy_config = format!(
        "discoveryAddress: {}\ncontrolPlaneAuthPolicy: NONE\nbinaryPath: {}\nconfigPath: {}\n\
         proxyBootstrapTemplatePath: {}\nproxyAdminPort: {admin}\nstatusPort: {status}\nconcurrency: 1\n\
         drainDuration: 5s\nterminationDrainDuration: 1s\nfileFlushInterval: {flush}s\n\
         proxyStatsMatcher: {{inclusionPrefixes: [extension_config_discovery, listener_manager]}}\n",
        spec.discovery,
        runtime.path(Program::Envoy)?.display(),
        config_path.display(),
        runtime.bootstrap_template()?.display(),
        flush = access_log::FLUSH.as_secs_f64(),
    );
    Ok(Launch::new(Program::Agent, spec.dir, spec.dir.join("pilot-agent.log"))
        // The agent's Wasm cache is at a fixed path: each gateway its own.
        .private(Path::new(WASM_CACHE))
        .args(["proxy", "router"])
        .arg(format!("--domain={}.svc.cluster.local", spec.namespace))
        .arg("--proxyLogLevel=warning")
        .arg("--proxyComponentLogLevel=misc:error,wasm:info")
        .arg("--log_output_level=default:info")
        .env("POD_NAME", spec.name)
        .env("POD_NAMESPACE", spec.namespace)
        .env("INSTANCE_IP", spec.ip.to_string())
        .env("SERVICE_ACCOUNT", spec.name)
        .env("ISTIO_META_CLUSTER_ID", "Kubernetes")
        // No pod to read labels from: istiod takes them from the metadata.
        .env("ISTIO_METAJSON_LABELS", format!("{{\"istio\":\"{}\"}}", spec.label))
        // No CA: the gateway serves plain HTTP and needs no certificates.
        .env("FILE_MOUNTED_CERTS", "true")
        .env("WASM_INSECURE_REGISTRIES", spec.registry)
        .env("ENVOY_STATUS_PORT", envoy_status.to_string())
        .env("ENVOY_PROMETHEUS_PORT", prometheus.to_string())
        .env("PROXY_CONFIG", proxy_config)
        .envs(spec.env))
}

/// Waits until nothing answers on an ended gateway's admin address: its
/// Envoy, and so its listeners, are gone. (A Pod deleted at once leaves
/// the API before the kubelet has ended its containers; until then the
/// old Envoy would answer beside its successor, on the same ports.)
async fn wait_gone(admin: SocketAddr) -> Result<(), ComponentError> {
    let since = Instant::now();
    loop {
        match tokio::net::TcpStream::connect(admin).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(()),
            _ if since.elapsed() > END_TIMEOUT => {
                return Err(ComponentError::StillAnswering {
                    what: format!("the replaced gateway's Envoy (admin {admin})"),
                    waited: END_TIMEOUT,
                })
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// What stands for a gateway between its end and its successor's start,
/// and after a successor that could not start: a gateway that has ended.
struct Replaced {
    log: std::path::PathBuf,
}

#[async_trait::async_trait]
impl Running for Replaced {
    fn name(&self) -> &str {
        "pilot-agent"
    }

    fn log_path(&self) -> &Path {
        &self.log
    }

    fn exited(&mut self) -> Option<String> {
        Some("replaced, and its successor did not start".into())
    }

    async fn stop(self: Box<Self>, _grace: Duration) {}

    async fn kill(self: Box<Self>) {}
}
