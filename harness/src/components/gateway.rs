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
use crate::runtime::{Launch, Program, Running, Runtime, RuntimeError};

/// The fixed path of the agent's Wasm cache, which each gateway gets its own of.
const WASM_CACHE: &str = "/var/lib/istio/data";
/// How long an ended gateway may go on answering.
const END_TIMEOUT: Duration = Duration::from_secs(30);

pub struct GatewaySpec<'a> {
    pub dir: &'a Path,
    pub name: &'a str,
    pub namespace: &'a str,
    /// The labels the Gateway and WasmPlugin selectors match.
    pub labels: &'a BTreeMap<String, String>,
    pub ip: Ipv4Addr,
    /// istiod's XDS address.
    pub discovery: &'a str,
    /// Ports for the agent and Envoy: admin, status, Envoy status, Envoy metrics.
    pub ports: &'a PortBlock,
    /// `host:port` of the registry: allowed over plain HTTP, unless it
    /// speaks TLS with a certificate of `registry_ca` (PEM), which the agent then trusts.
    pub registry: &'a str,
    pub registry_ca: Option<&'a str>,
    /// Added to the environment of the agent, and so of its Envoy.
    pub env: &'a BTreeMap<String, String>,
    /// Envoy's worker threads.
    pub concurrency: u32,
    /// A token of its service account for istiod, which the agent sends
    /// with its XDS requests: istiod then knows who it is (and hands it
    /// the pull secrets of its WasmPlugins).
    pub token: &'a str,
}

/// Where the agent reads its token, from its working folder (as in a Pod).
const TOKEN_PATH: &str = "var/run/secrets/tokens/istio-token";
/// The CA of a private registry, in the gateway's folder, which Go's TLS
/// (the agent's fetch) trusts through `SSL_CERT_FILE`.
const REGISTRY_CA: &str = "registry-ca.pem";

pub struct Gateway {
    process: Box<dyn Running>,
    admin: Admin,
}

impl Gateway {
    /// Starts the agent as `runtime` runs it (with its Envoy and bootstrap
    /// template where the runtime has them).
    pub async fn start(runtime: &dyn Runtime, spec: &GatewaySpec<'_>) -> Result<Self, ComponentError> {
        let process = runtime.start(&launch(runtime, spec)?).await?;
        Gateway::of(runtime, process, spec.ports.port(0)).await
    }

    /// A gateway that runs already (`process`, one installed in a cluster),
    /// its Envoy's admin API on `admin_port` of its loopback.
    pub async fn of(runtime: &dyn Runtime, process: Box<dyn Running>, admin_port: u16) -> Result<Self, ComponentError> {
        let admin = runtime.reach(process.name(), (Ipv4Addr::LOCALHOST, admin_port).into()).await?;
        Ok(Gateway { process, admin: Admin::new(admin) })
    }

    /// Where the harness reaches the gateway's `addr` (a listener), as its runtime runs it.
    pub async fn reach(&self, runtime: &dyn Runtime, addr: SocketAddr) -> Result<SocketAddr, ComponentError> {
        Ok(runtime.reach(self.process.name(), addr).await?)
    }

    /// Ends this gateway and starts a new one in its place from `spec`, on
    /// the same ports, as when its Pod is recreated (`spec.dir` a folder of
    /// its own, so an empty Wasm cache); `wait_ready` waits for it.
    pub async fn replace(&mut self, runtime: &dyn Runtime, spec: &GatewaySpec<'_>) -> Result<(), ComponentError> {
        let launch = launch(runtime, spec)?;
        let ended = std::mem::replace(&mut self.process, Box::new(Replaced { log: launch.log.clone() }));
        ended.kill().await;
        // Where the gateway shares the harness's network; elsewhere nothing answers there.
        wait_gone(SocketAddr::from((Ipv4Addr::LOCALHOST, spec.ports.port(0)))).await?;
        self.process = runtime.start(&launch).await?;
        Ok(())
    }

    /// Ends the gateway's Envoy (through its admin API), and so its agent,
    /// and waits until the runtime has started the agent again in place, as
    /// a kubelet restarts a container that ended: the same Pod, address and
    /// volumes. `wait_ready` waits for its configuration.
    pub async fn restart(&mut self) -> Result<(), ComponentError> {
        let name = self.process.name().to_owned();
        let before = self.process.restarts().await.ok_or(RuntimeError::NoRestart { name })?;
        self.admin.quit().await?;
        self.process.await_restart(before).await?;
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
    let trust = match spec.registry_ca {
        Some(pem) => {
            let path = spec.dir.join(REGISTRY_CA);
            std::fs::write(&path, pem).map_err(io(format!("cannot write {}", path.display())))?;
            ("SSL_CERT_FILE", path.into_os_string())
        }
        None => ("WASM_INSECURE_REGISTRIES", spec.registry.into()),
    };
    let token = spec.dir.join(TOKEN_PATH);
    std::fs::create_dir_all(token.parent().expect("a path in a folder"))
        .and_then(|()| std::fs::write(&token, spec.token))
        .map_err(io(format!("cannot write the gateway's token {}", token.display())))?;
    let (admin, status, envoy_status, prometheus) =
        (spec.ports.port(0), spec.ports.port(1), spec.ports.port(2), spec.ports.port(3));
    let proxy_config = format!(
        "discoveryAddress: {}\ncontrolPlaneAuthPolicy: NONE\nbinaryPath: {}\nconfigPath: {}\n\
         proxyBootstrapTemplatePath: {}\nproxyAdminPort: {admin}\nstatusPort: {status}\nconcurrency: {concurrency}\n\
         drainDuration: 5s\nterminationDrainDuration: 1s\nfileFlushInterval: {flush}s\n\
         proxyStatsMatcher: {{inclusionPrefixes: [extension_config_discovery, listener_manager]}}\n",
        spec.discovery,
        runtime.path(Program::Envoy)?.display(),
        config_path.display(),
        runtime.bootstrap_template()?.display(),
        flush = access_log::FLUSH.as_secs_f64(),
        concurrency = spec.concurrency,
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
        .env("ISTIO_METAJSON_LABELS", serde_json::to_string(spec.labels).expect("labels serialise"))
        // No CA: the gateway serves plain HTTP and needs no certificates.
        .env("FILE_MOUNTED_CERTS", "true")
        .env(trust.0, trust.1)
        .env("ENVOY_STATUS_PORT", envoy_status.to_string())
        .env("ENVOY_PROMETHEUS_PORT", prometheus.to_string())
        .env("PROXY_CONFIG", proxy_config)
        .envs(spec.env))
}

/// What the agent logs when it cannot fetch a module.
const FETCH_FAILED: &str = "cannot fetch Wasm module ";
/// The cause of a failed fetch when the registry's challenge names a realm istio's agent will not use.
const UNSAFE_REALM: &str = "rejected unsafe bearer realm";
/// The cause of a failed fetch when istiod sent an `imagePullSecret` empty.
const NO_SECRET: &str = "missing image pulling secret";
/// Causes of a failed fetch that mean the gateway cannot reach the registry at all.
const UNREACHABLE: &[&str] = &["connection refused", "i/o timeout", "no route to host", "network is unreachable"];

/// The modules the agent logged it could not fetch, each once, with why;
/// where the registry was out of the gateway's reach, what to do.
pub fn fetch_failures(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut notes, mut told): (Vec<String>, Vec<&str>) = (Vec::new(), Vec::new());
    for failed in text.lines().filter_map(|line| line.split_once(FETCH_FAILED).map(|(_, failed)| failed)) {
        let (url, cause) = failed.split_once(": ").unwrap_or((failed, ""));
        if told.contains(&url) {
            continue;
        }
        told.push(url);
        let mut note = format!("the gateway's agent could not fetch {url}: {cause}");
        if UNREACHABLE.iter().any(|u| cause.contains(u)) {
            note.push_str(
                "\nplugproof: the gateway could not reach the run's registry. Unless a step stopped it: on a \
                 cluster of yours, --pods-reach must name an address of this machine that the cluster's Pods reach \
                 (for kind, its network's gateway), or with --registry, --registry-as how they reach that registry; \
                 check that no firewall drops the registry's port",
            );
        } else if cause.contains(UNSAFE_REALM) {
            note.push_str(
                "\nplugproof: istio's agent reads the registry's login challenge as a bearer realm and refuses \
                 one that is not an http(s) URL on a public host; give the registry such a realm (for htpasswd, \
                 `auth.htpasswd.realm`)",
            );
        } else if cause.contains(NO_SECRET) {
            note.push_str(
                "\nplugproof: istiod sends a pull secret's content only to a gateway it has authenticated (mTLS XDS, \
                 or its token on plaintext XDS with istiod's XDS_AUTH_PLAINTEXT, as on the istio target); this \
                 one it has not, so it got the secret empty, whatever the Secret holds",
            );
        }
        notes.push(note);
    }
    notes
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

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSED: &str = "2026-12-04T16:14:57.483736Z\terror\twasm\terror in converting the wasm config to local: \
        cannot fetch Wasm module oci://127.0.0.1:42189/plugproof/stamp:1.0: could not fetch Wasm OCI image: \
        could not fetch manifest: Get \"http://127.0.0.1:42189/v2/\": dial tcp 127.0.0.1:42189: connect: connection refused";

    #[test]
    fn a_registry_out_of_the_gateways_reach_is_told_once_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pilot-agent.log");
        std::fs::write(&log, format!("{REFUSED}\n{REFUSED}\n")).unwrap();
        let notes = fetch_failures(&log);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("the gateway's agent could not fetch oci://127.0.0.1:42189/plugproof/stamp:1.0: could not fetch Wasm OCI image"));
        assert!(notes[0].contains("--pods-reach"), "{}", notes[0]);
    }

    #[test]
    fn a_pull_secret_sent_empty_is_told_with_why() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pilot-agent.log");
        let line = "error\twasm\terror in converting the wasm config to local: cannot fetch Wasm module \
            istio-system.p-stamp~istio-translated-wasmplugin: missing image pulling secret. applying deny RBAC filter";
        std::fs::write(&log, line).unwrap();
        let notes = fetch_failures(&log);
        assert!(notes.len() == 1 && notes[0].contains("only to a gateway it has authenticated"), "{notes:?}");
        assert!(!notes[0].contains("--pods-reach"), "{notes:?}");
    }

    #[test]
    fn a_module_the_registry_lacks_is_told_without_the_reach_hint() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pilot-agent.log");
        let missing =
            "error\twasm\tcannot fetch Wasm module oci://10.244.0.1:5000/plugproof/none:1.0: MANIFEST_UNKNOWN";
        std::fs::write(&log, format!("info\tnothing here\n{missing}\n")).unwrap();
        assert_eq!(
            fetch_failures(&log),
            vec!["the gateway's agent could not fetch oci://10.244.0.1:5000/plugproof/none:1.0: MANIFEST_UNKNOWN"]
        );
        assert!(fetch_failures(&dir.path().join("absent.log")).is_empty());
    }
}
