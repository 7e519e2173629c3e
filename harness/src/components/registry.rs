//! Where a scenario's modules are pushed, and its gateway fetches them:
//! the run's own OCI registry (Debian's `docker-registry`, CNCF
//! Distribution), one per scenario, on the run's address with its own
//! storage; or a registry the user names (`NamedRegistry`), shared, in
//! repositories of the scenario's own.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{answers, wait_healthy, ComponentError};

pub use lock::RegistryLock;

mod lock;
use crate::oci::{OciError, RegistryClient};
use crate::runtime::{Loopback, Process, ProcessSpec};
use crate::scenario::Layout;

const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A scenario's registry.
#[async_trait]
pub trait ModuleRegistry: Send + Sync {
    /// `HOST:PORT` as the gateway names it in image references.
    fn host(&self) -> &str;

    /// The run's client for it.
    fn client(&self) -> &RegistryClient;

    /// The CA (PEM) its certificate comes from, if it speaks TLS with a CA of the run's.
    fn ca_pem(&self) -> Option<&str> {
        None
    }

    /// The repository of `plugin`'s module.
    fn repository(&self, plugin: &str) -> String {
        format!("plugproof/{plugin}")
    }

    /// Pushes `module` as `repository:tag`; its manifest digest.
    async fn push(&self, repository: &str, tag: &str, module: &[u8], layout: Layout) -> Result<String, OciError> {
        self.client().push(repository, tag, module, layout).await
    }

    /// Stops it in the middle of a run and waits until it is gone (its
    /// address stays in every reference already made); why not, if it is
    /// not the run's to stop.
    async fn halt(&mut self) -> Result<(), String>;

    /// Ends it, or what the scenario put in it.
    async fn stop(self: Box<Self>);
}

pub struct Registry {
    /// None once a step has stopped it.
    process: Option<Process>,
    host: String,
    client: RegistryClient,
    /// The CA of its certificate, if it is locked.
    ca_pem: Option<String>,
}

impl Registry {
    /// A registry anyone may push to and pull from, over plain HTTP.
    pub async fn start(binary: &Path, loopback: &Loopback, dir: &Path) -> Result<Self, ComponentError> {
        Self::spawn(binary, loopback, dir, None).await
    }

    /// A registry that speaks TLS only, with a certificate of `lock`'s CA,
    /// and serves only clients that log in as `lock` says (htpasswd).
    pub async fn start_locked(
        binary: &Path,
        loopback: &Loopback,
        dir: &Path,
        lock: &RegistryLock,
    ) -> Result<Self, ComponentError> {
        Self::spawn(binary, loopback, dir, Some(lock)).await
    }

    async fn spawn(
        binary: &Path,
        loopback: &Loopback,
        dir: &Path,
        lock: Option<&RegistryLock>,
    ) -> Result<Self, ComponentError> {
        let io = |what: &str| {
            let what = format!("{what} in {}", dir.display());
            move |source| ComponentError::Io { what, source }
        };
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage).map_err(io("cannot create the registry storage"))?;
        let addr = loopback.free_addr().map_err(io("no free port for the registry"))?;
        let config = dir.join("config.yml");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            storage.display()
        );
        if let Some(lock) = lock {
            text.push_str(
                &lock.write(dir, addr.ip()).map_err(io("cannot write the registry's certificate and logins"))?,
            );
        }
        std::fs::write(&config, text).map_err(io("cannot write the registry config"))?;
        let spec = ProcessSpec::new("registry", binary, dir.join("registry.log")).arg("serve").arg(&config);
        let mut process = Process::spawn(&spec)?;
        let host = addr.to_string();
        let client = match lock {
            None => {
                let (url, http) = (format!("http://{host}/v2/"), crate::http::client());
                wait_healthy(&mut process, START_TIMEOUT, &url, || answers(&http, &url)).await?;
                RegistryClient::new(&host)
            }
            Some(lock) => {
                // Every answer asks for a login: a registry listening is a registry up.
                let listens = || async move { tokio::net::TcpStream::connect(addr).await.is_ok() };
                wait_healthy(&mut process, START_TIMEOUT, &format!("https://{host}/v2/"), listens).await?;
                let login = Some((lock.user.as_str(), lock.password.as_str()));
                RegistryClient::login(&host, login, Some(lock.ca_pem().as_bytes()))
            }
        };
        Ok(Registry { process: Some(process), host, client, ca_pem: lock.map(|l| l.ca_pem().to_owned()) })
    }
}

#[async_trait]
impl ModuleRegistry for Registry {
    fn host(&self) -> &str {
        &self.host
    }

    fn client(&self) -> &RegistryClient {
        &self.client
    }

    fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    async fn halt(&mut self) -> Result<(), String> {
        if let Some(process) = self.process.take() {
            process.kill().await;
        }
        Ok(())
    }

    async fn stop(self: Box<Self>) {
        if let Some(process) = self.process {
            process.stop(Duration::from_secs(2)).await;
        }
    }
}

/// A registry the user names, which this machine pushes to at `push` and
/// the gateway fetches from as `pull` (kind's local registry is
/// `localhost:5001` here, `kind-registry:5000` in the cluster). Each
/// scenario pushes to repositories of its own, and deletes its manifests
/// when it ends.
pub struct NamedRegistry {
    pull: String,
    client: RegistryClient,
    /// What the scenario's repositories are under: `plugproof/PREFIX`.
    under: String,
    push: String,
    /// Every manifest pushed, to delete at the end: (repository, digest).
    pushed: Mutex<Vec<(String, String)>>,
}

impl NamedRegistry {
    /// Checks that it answers at `push`; `prefix` is the scenario's.
    pub async fn open(push: &str, pull: &str, prefix: &str) -> Result<Self, ComponentError> {
        let url = format!("http://{push}/v2/");
        if !answers(&crate::http::client(), &url).await {
            return Err(ComponentError::Unreachable {
                what: format!("the registry at {push} (--registry)"),
                hint: "start it, or name one that answers over plain HTTP at that address".into(),
            });
        }
        Ok(NamedRegistry {
            pull: pull.to_owned(),
            client: RegistryClient::new(push),
            under: format!("plugproof/{prefix}"),
            push: push.to_owned(),
            pushed: Mutex::default(),
        })
    }
}

#[async_trait]
impl ModuleRegistry for NamedRegistry {
    fn host(&self) -> &str {
        &self.pull
    }

    fn client(&self) -> &RegistryClient {
        &self.client
    }

    fn repository(&self, plugin: &str) -> String {
        format!("{}/{plugin}", self.under)
    }

    async fn push(&self, repository: &str, tag: &str, module: &[u8], layout: Layout) -> Result<String, OciError> {
        let digest = self.client.push(repository, tag, module, layout).await?;
        self.pushed.lock().expect("not poisoned").push((repository.to_owned(), digest.clone()));
        Ok(digest)
    }

    async fn halt(&mut self) -> Result<(), String> {
        Err(format!(
            "the registry at {} is yours, not the run's to stop; a scenario with `registry: stop` declares \
             `features: [own-registry]`, which a run with --registry lacks",
            self.push
        ))
    }

    /// Deletes what the scenario pushed (the registry must allow deletes;
    /// if it does not, says that its repositories are left).
    async fn stop(self: Box<Self>) {
        let http = crate::http::client();
        let pushed = std::mem::take(&mut *self.pushed.lock().expect("not poisoned"));
        for (repository, digest) in pushed {
            let url = format!("http://{}/v2/{repository}/manifests/{digest}", self.push);
            match http.delete(&url).send().await {
                Ok(response) if response.status().is_success() || response.status().as_u16() == 404 => {}
                Ok(response) => tracing::warn!(
                    "the registry at {} kept {repository}@{digest} ({}): let it delete (REGISTRY_STORAGE_DELETE_ENABLED=true) \
                     or remove {}/ yourself",
                    self.push,
                    response.status(),
                    self.under
                ),
                Err(e) => tracing::warn!("cannot delete {repository}@{digest} from {}: {e}", self.push),
            }
        }
    }
}
