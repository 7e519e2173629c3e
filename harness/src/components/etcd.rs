//! etcd, the store behind the kube-apiserver (istio profile, inside the
//! run's own network namespace, so its fixed ports cannot collide).

use std::path::Path;
use std::time::Duration;

use super::{answers, wait_healthy, ComponentError};
use crate::runtime::{Process, ProcessSpec};

pub const CLIENT_URL: &str = "http://127.0.0.1:2379";

pub struct Etcd {
    process: Process,
}

impl Etcd {
    pub async fn start(binary: &Path, data_dir: &Path, log: &Path) -> Result<Self, ComponentError> {
        let spec = ProcessSpec::new("etcd", binary, log.to_path_buf())
            .arg("--name=plugproof")
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--listen-client-urls={CLIENT_URL}"))
            .arg(format!("--advertise-client-urls={CLIENT_URL}"))
            .arg("--listen-peer-urls=http://127.0.0.1:2380")
            .arg("--initial-advertise-peer-urls=http://127.0.0.1:2380")
            .arg("--initial-cluster=plugproof=http://127.0.0.1:2380")
            .arg("--listen-metrics-urls=")
            // A single member on loopback: elect at once.
            .arg("--heartbeat-interval=10")
            .arg("--election-timeout=100")
            .arg("--log-level=warn");
        let mut process = Process::spawn(&spec)?;
        let http = crate::http::client();
        let url = format!("{CLIENT_URL}/health");
        wait_healthy(&mut process, Duration::from_secs(20), &url, || answers(&http, &url)).await?;
        Ok(Etcd { process })
    }

    pub async fn stop(self) {
        self.process.stop(Duration::from_secs(5)).await;
    }
}
