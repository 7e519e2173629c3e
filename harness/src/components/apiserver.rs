//! The kube-apiserver: for the istio profile the one istiod reads its
//! configuration from (on loopback, no kubelet, no nodes); for the local
//! cluster its node's (on every address of the node, advertising the node's
//! address, with the kubelet behind it). A static admin token, its own
//! self-signed serving certificate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{self_signed_client, wait_healthy, ComponentError};
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

/// Where it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// On loopback, with no node to reach it from: the istio profile's.
    Loopback,
    /// On every address of a node, advertising `advertise` (the address
    /// Pods reach it at, behind the `kubernetes` Service).
    Node { advertise: std::net::Ipv4Addr },
}

pub struct ApiServer {
    process: Process,
}

impl ApiServer {
    pub async fn start(
        binary: &Path,
        credentials: &Credentials,
        dir: &Path,
        serving: Serving,
    ) -> Result<Self, ComponentError> {
        let spec = ProcessSpec::new("kube-apiserver", binary, dir.join("kube-apiserver.log"))
            .arg(format!("--etcd-servers={}", super::etcd::CLIENT_URL));
        let spec = match serving {
            Serving::Loopback => spec
                .arg("--bind-address=127.0.0.1")
                .arg("--advertise-address=127.0.0.1")
                // No nodes, no kubelet: nothing to reconcile endpoints for.
                .arg("--endpoint-reconciler-type=none"),
            Serving::Node { advertise } => spec
                .arg("--bind-address=0.0.0.0")
                .arg(format!("--advertise-address={advertise}"))
                .arg("--kubelet-preferred-address-types=InternalIP")
                // Webhooks and aggregated APIs reach their Pods directly.
                .arg("--enable-aggregator-routing=true"),
        };
        let spec = spec
            .arg("--secure-port=6443")
            .arg(format!("--cert-dir={}", dir.join("certs").display()))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", credentials.service_account_pub.display()))
            .arg(format!("--service-account-signing-key-file={}", credentials.service_account_key.display()))
            .arg(format!("--token-auth-file={}", credentials.token_file.display()))
            .arg("--authorization-mode=RBAC")
            .arg("--service-cluster-ip-range=10.96.0.0/16")
            .arg("--enable-priority-and-fairness=false")
            .arg("--profiling=false")
            .arg("--v=1");
        let mut process = Process::spawn(&spec)?;
        // Its certificate is self-signed, made at its start.
        let http = self_signed_client(Duration::from_secs(5));
        let url = format!("{URL}/readyz");
        let probe = || async {
            let response = http.get(&url).bearer_auth(TOKEN).send().await;
            response.is_ok_and(|r| r.status().is_success())
        };
        wait_healthy(&mut process, Duration::from_secs(60), &url, probe).await?;
        Ok(ApiServer { process })
    }

    /// Its self-signed serving certificate (the cluster's CA, to its Pods).
    pub fn certificate(dir: &Path) -> PathBuf {
        dir.join("certs/apiserver.crt")
    }

    pub async fn stop(self) {
        self.process.stop(Duration::from_secs(5)).await;
    }
}
