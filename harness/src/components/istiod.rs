//! istiod (pilot-discovery) reading its configuration from the
//! kube-apiserver, serving plaintext XDS on loopback. Settings that keep
//! istio-only filters out of what the upstream (core) Envoy receives:
//! metadata exchange and ALPN filters off, no metrics provider.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::envoy::access_log;
use super::{answers, wait_healthy, ComponentError};
use crate::runtime::{Process, ProcessSpec};

pub const XDS_ADDRESS: &str = "127.0.0.1:15010";
pub const HTTP_ADDRESS: &str = "127.0.0.1:8080";
use crate::mesh::ROOT_NAMESPACE;

/// No `configSources`: with a kubeconfig, istiod reads the CRDs. No auto
/// mTLS: there is no CA here, and clusters waiting for certificates would
/// keep the gateway from ever being ready.
/// Every gateway logs each request as a JSON line on its stdout (what a
/// request step that asks for Envoy's response details reads).
fn mesh_config() -> String {
    format!(
        "rootNamespace: istio-system
enablePrometheusMerge: false
enableAutoMtls: false
accessLogFile: /dev/stdout
accessLogEncoding: JSON
accessLogFormat: '{}'
defaultConfig:
  discoveryAddress: 127.0.0.1:15010
  controlPlaneAuthPolicy: NONE
",
        access_log::json_format()
    )
}

pub struct Istiod {
    process: Process,
}

impl Istiod {
    pub async fn start(binary: &Path, kubeconfig: &Path, dir: &Path) -> Result<Self, ComponentError> {
        let mesh = dir.join("mesh.yaml");
        std::fs::write(&mesh, mesh_config())
            .map_err(|source| ComponentError::Io { what: format!("cannot write {}", mesh.display()), source })?;
        let spec = ProcessSpec::new("istiod", binary, dir.join("istiod.log"))
            .cwd(dir)
            .arg("discovery")
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!("--meshConfig={}", mesh.display()))
            // Services come from ServiceEntries only: a Kubernetes registry
            // would add the apiserver's own Service, with auto-mTLS that no CA here can serve.
            .arg("--registries=")
            .arg(format!("--grpcAddr={XDS_ADDRESS}"))
            .arg("--secureGRPCAddr=")
            .arg(format!("--httpAddr={HTTP_ADDRESS}"))
            .arg("--httpsAddr=")
            .arg("--monitoringAddr=127.0.0.1:15014")
            .arg("--ctrlz_address=127.0.0.1")
            .arg("--ctrlz_port=9876")
            .arg("--domain=cluster.local")
            .env("POD_NAMESPACE", ROOT_NAMESPACE)
            .env("POD_NAME", "istiod")
            // Gateways connect over plaintext XDS with their service
            // account's token, as over mTLS in a cluster: istiod knows who
            // each is and hands it its WasmPlugins' pull secrets.
            .env("XDS_AUTH_PLAINTEXT", "true")
            .env("ENABLE_CA_SERVER", "false")
            .env("PILOT_CERT_PROVIDER", "none")
            .env("PILOT_ENABLE_METADATA_EXCHANGE", "false")
            .env("PILOT_ENABLE_ALPN_FILTER", "false")
            .env("PILOT_ENABLE_ANALYSIS", "false")
            .env("INJECTION_WEBHOOK_CONFIG_NAME", "")
            .env("VALIDATION_WEBHOOK_CONFIG_NAME", "");
        let mut process = Process::spawn(&spec)?;
        let http = crate::http::client();
        let url = format!("http://{HTTP_ADDRESS}/ready");
        wait_healthy(&mut process, Duration::from_secs(60), &url, || answers(&http, &url)).await?;
        Ok(Istiod { process })
    }

    pub async fn stop(self) {
        self.process.stop(Duration::from_secs(5)).await;
    }
}

/// istiod's debug API (plain HTTP), where the caller reaches it.
pub struct Debug {
    http: reqwest::Client,
    address: String,
    /// A Kubernetes service account token: istiod answers callers other
    /// than its own loopback only with one.
    token: Option<String>,
}

impl Default for Debug {
    /// That of the istiod in the caller's network namespace.
    fn default() -> Self {
        Debug::at(HTTP_ADDRESS, None)
    }
}

impl Debug {
    /// At `address` (`HOST:PORT`), sending `token` if given.
    pub fn at(address: &str, token: Option<String>) -> Self {
        Debug { http: crate::http::client(), address: address.to_owned(), token }
    }

    async fn get(&self, path: &str) -> Result<Value, ComponentError> {
        let url = format!("http://{}{path}", self.address);
        let http_err = |source| ComponentError::Http { what: format!("GET {url}"), source };
        let mut request = self.http.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(http_err)?;
        response.error_for_status().map_err(http_err)?.json().await.map_err(http_err)
    }

    /// istiod's view of one proxy's configuration (`/debug/config_dump`).
    pub async fn config_dump(&self, proxy_id: &str) -> Result<Value, ComponentError> {
        self.get(&format!("/debug/config_dump?proxyID={proxy_id}")).await
    }

    /// Whether a proxy whose id contains `proxy_id` is connected (`/debug/connections`).
    pub async fn connected(&self, proxy_id: &str) -> Result<bool, ComponentError> {
        let connections = self.get("/debug/connections").await?;
        Ok(connections["clients"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["connectionId"].as_str().is_some_and(|id| id.contains(proxy_id))))
    }
}
