//! The programs of a Kubernetes node and its controllers, as the local
//! cluster runs them (inside the node's own namespaces, so their fixed
//! ports and paths are the node's): containerd, the kubelet, kube-proxy,
//! kube-controller-manager and kube-scheduler. Each is a process of its
//! own, ready when its health endpoint answers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{answers, self_signed_client, wait_healthy, ComponentError};
use crate::runtime::{Process, ProcessSpec};

/// One of them, running.
pub struct NodeProgram {
    process: Process,
}

/// How a node program is started and when it is ready.
pub struct NodeLaunch<'a> {
    pub name: &'static str,
    pub binary: &'a Path,
    pub args: Vec<String>,
    pub log: PathBuf,
    /// An HTTP(S) URL that answers 2xx once it is ready (HTTPS ones are the
    /// program's own self-signed certificate).
    pub health: Option<String>,
    /// Or a socket that exists once it is ready.
    pub socket: Option<PathBuf>,
    pub timeout: Duration,
}

impl NodeProgram {
    pub async fn start(launch: NodeLaunch<'_>) -> Result<Self, ComponentError> {
        let spec = ProcessSpec::new(launch.name, launch.binary, launch.log.clone()).args(&launch.args);
        let mut process = Process::spawn(&spec)?;
        if let Some(url) = &launch.health {
            let http = self_signed_client(Duration::from_secs(2));
            wait_healthy(&mut process, launch.timeout, url, || answers(&http, url)).await?;
        }
        if let Some(socket) = &launch.socket {
            let what = socket.display().to_string();
            wait_healthy(&mut process, launch.timeout, &what, || async { socket.exists() }).await?;
        }
        Ok(NodeProgram { process })
    }

    pub async fn stop(self) {
        self.process.stop(Duration::from_secs(5)).await;
    }
}
