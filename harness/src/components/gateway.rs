//! An istio ingress gateway: the real pilot-agent in router mode, running
//! the upstream Envoy, configured by istiod over plaintext XDS. The agent
//! fetches `oci://` modules itself and hands them to Envoy as files.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use super::envoy::{wait_until_loaded, Admin, Expected};
use super::ComponentError;
use crate::runtime::{Process, ProcessSpec};

/// Envoy's admin port as pilot-agent configures it (the run's namespace is its own).
const ADMIN_PORT: u16 = 15000;

pub struct GatewaySpec<'a> {
    pub agent: &'a Path,
    pub envoy: &'a Path,
    pub bootstrap_template: &'a Path,
    pub dir: &'a Path,
    pub name: &'a str,
    pub namespace: &'a str,
    /// The label the Gateway and WasmPlugin selectors match: `istio: <value>`.
    pub label: &'a str,
    pub ip: Ipv4Addr,
    /// `host:port` of the registry, allowed over plain HTTP.
    pub registry: &'a str,
    /// Added to the environment of the agent, and so of its Envoy.
    pub env: &'a BTreeMap<String, String>,
}

pub struct Gateway {
    process: Process,
    admin: Admin,
}

impl Gateway {
    pub fn start(spec: &GatewaySpec<'_>) -> Result<Self, ComponentError> {
        let config_path = spec.dir.join("etc/istio/proxy");
        std::fs::create_dir_all(&config_path).map_err(|source| ComponentError::Io {
            what: format!("cannot create {}", config_path.display()),
            source,
        })?;
        let proxy_config = format!(
            "discoveryAddress: {}\ncontrolPlaneAuthPolicy: NONE\nbinaryPath: {}\nconfigPath: {}\n\
             proxyBootstrapTemplatePath: {}\nproxyAdminPort: {ADMIN_PORT}\nstatusPort: 15020\nconcurrency: 1\n\
             drainDuration: 5s\nterminationDrainDuration: 1s\n\
             proxyStatsMatcher: {{inclusionPrefixes: [extension_config_discovery, listener_manager]}}\n",
            super::istiod::XDS_ADDRESS,
            spec.envoy.display(),
            config_path.display(),
            spec.bootstrap_template.display(),
        );
        let process_spec = ProcessSpec::new("pilot-agent", spec.agent, spec.dir.join("pilot-agent.log"))
            .cwd(spec.dir)
            .arg("proxy")
            .arg("router")
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
            .env("PROXY_CONFIG", proxy_config)
            .envs(spec.env);
        let process = Process::spawn(&process_spec)?;
        let admin = Admin::new((Ipv4Addr::LOCALHOST, ADMIN_PORT).into());
        Ok(Gateway { process, admin })
    }

    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// The admin API and the agent's process, whose log holds Envoy's.
    pub fn parts(&mut self) -> (&Admin, &mut Process) {
        (&self.admin, &mut self.process)
    }

    /// Waits until istiod's configuration, with every expected listener,
    /// route and Wasm filter, is loaded in Envoy.
    pub async fn wait_ready(&mut self, expected: &Expected, timeout: Duration) -> Result<(), ComponentError> {
        wait_until_loaded(&self.admin, expected, timeout, &mut self.process).await
    }

    pub async fn stop(self) {
        self.process.stop(Duration::from_secs(5)).await;
    }
}
