//! The kube-apiserver istiod reads its configuration from: no kubelet, no
//! nodes, a static admin token, its own self-signed serving certificate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{wait_healthy, ComponentError};
use crate::runtime::{Process, ProcessSpec};

pub const URL: &str = "https://127.0.0.1:6443";
pub const TOKEN: &str = "plugproof-admin-token";

/// Keys and the token file the apiserver needs (made once per kit).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub service_account_key: PathBuf,
    pub service_account_pub: PathBuf,
    pub token_file: PathBuf,
}

pub struct ApiServer {
    process: Process,
}

impl ApiServer {
    pub async fn start(binary: &Path, credentials: &Credentials, dir: &Path) -> Result<Self, ComponentError> {
        let spec = ProcessSpec::new("kube-apiserver", binary, dir.join("kube-apiserver.log"))
            .arg(format!("--etcd-servers={}", super::etcd::CLIENT_URL))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg("--secure-port=6443")
            .arg(format!("--cert-dir={}", dir.join("certs").display()))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", credentials.service_account_pub.display()))
            .arg(format!("--service-account-signing-key-file={}", credentials.service_account_key.display()))
            .arg(format!("--token-auth-file={}", credentials.token_file.display()))
            .arg("--authorization-mode=RBAC")
            .arg("--service-cluster-ip-range=10.96.0.0/16")
            // No nodes, no kubelet: nothing to reconcile endpoints for.
            .arg("--endpoint-reconciler-type=none")
            .arg("--enable-priority-and-fairness=false")
            .arg("--profiling=false")
            .arg("--v=1");
        let mut process = Process::spawn(&spec)?;
        let http = insecure_client();
        let url = format!("{URL}/readyz");
        let probe = || async {
            let response = http.get(&url).bearer_auth(TOKEN).send().await;
            response.is_ok_and(|r| r.status().is_success())
        };
        wait_healthy(&mut process, Duration::from_secs(60), &url, probe).await?;
        Ok(ApiServer { process })
    }

    pub async fn stop(self) {
        self.process.stop(Duration::from_secs(5)).await;
    }
}

/// The apiserver's certificate is self-signed, made at its start.
fn insecure_client() -> reqwest::Client {
    crate::http::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client with these settings always builds")
}
