//! The OCI registry: Debian's `docker-registry` (CNCF Distribution), one per
//! run, on the run's loopback address with its own storage.

use std::path::Path;
use std::time::Duration;

use super::{answers, wait_healthy, ComponentError};
use crate::oci::RegistryClient;
use crate::runtime::{Loopback, Process, ProcessSpec};

const START_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Registry {
    /// None once a step has stopped it.
    process: Option<Process>,
    host: String,
    client: RegistryClient,
}

impl Registry {
    pub async fn start(binary: &Path, loopback: &Loopback, dir: &Path) -> Result<Self, ComponentError> {
        let io = |what: &str| {
            let what = format!("{what} in {}", dir.display());
            move |source| ComponentError::Io { what, source }
        };
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage).map_err(io("cannot create the registry storage"))?;
        let addr = loopback.free_addr().map_err(io("no free port for the registry"))?;
        let config = dir.join("config.yml");
        let text = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            storage.display()
        );
        std::fs::write(&config, text).map_err(io("cannot write the registry config"))?;
        let spec = ProcessSpec::new("registry", binary, dir.join("registry.log")).arg("serve").arg(&config);
        let mut process = Process::spawn(&spec)?;
        let host = addr.to_string();
        let url = format!("http://{host}/v2/");
        let http = crate::http::client();
        wait_healthy(&mut process, START_TIMEOUT, &url, || answers(&http, &url)).await?;
        let client = RegistryClient::new(&host);
        Ok(Registry { process: Some(process), host, client })
    }

    /// `IP:PORT`, as it appears in image references.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The run's client for this registry.
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// Kills the registry in the middle of a run and waits until it is
    /// gone (its address stays in every reference already made).
    pub async fn halt(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill().await;
        }
    }

    pub async fn stop(self) {
        if let Some(process) = self.process {
            process.stop(Duration::from_secs(2)).await;
        }
    }
}
