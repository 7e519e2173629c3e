//! The container runtime: a target's gateway programs run from an image,
//! through testcontainers over a Docker-API socket (Docker's, or Podman's).
//!
//! A container joins the harness's network namespace (`host` when the
//! harness runs in the machine's own, else Podman's `ns:` path), so the
//! run's loopback addresses, ports and backends are the same for a
//! container as for a process. The host folders a launch shares are
//! mounted at the same path, so the xDS files, modules and logs it names
//! are where it expects them. Its stdout and stderr go to the launch's log
//! file. Each container carries the owner's label (`engine::OWNER`):
//! stopped with its component, removed when dropped, and, when the run is
//! killed outright, removed by the run's `reaper` (and, failing that, by
//! the next start's `engine::sweep`).

pub mod engine;
mod images;
pub mod reaper;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use testcontainers::core::Mount;
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

pub use engine::ContainerError;
pub use images::{run_once, Built, ImageKind, ImageLayout, LocalImage, NamedImage, IMAGE_LAYOUT};

use super::component::{Launch, Program, Running, Runtime, RuntimeError};

/// An image ready to run, and where its programs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// What a container runs: the image's id (`sha256:...`).
    pub id: String,
    /// As the user named it, or as plugproof tagged the one it built.
    pub reference: String,
    /// The repository digest of a pulled image, when the engine knows one.
    pub digest: Option<String>,
    pub layout: ImageLayout,
}

impl Image {
    /// As reports name it: the reference, and the digest or id.
    pub fn describe(&self) -> String {
        let id = self.id.trim_start_matches("sha256:");
        match &self.digest {
            Some(digest) => format!("{} ({digest})", self.reference),
            None => format!("{} (image {})", self.reference, &id[..id.len().min(12)]),
        }
    }
}

/// Runs a target's programs as containers of one image.
#[derive(Debug, Clone)]
pub struct ContainerRuntime {
    pub image: Image,
}

#[async_trait]
impl Runtime for ContainerRuntime {
    fn path(&self, program: Program) -> Result<PathBuf, RuntimeError> {
        let layout = &self.image.layout;
        match program {
            Program::Envoy => Ok(layout.envoy.clone()),
            Program::Agent => layout.agent.clone().ok_or_else(|| self.lacks("pilot-agent")),
        }
    }

    fn bootstrap_template(&self) -> Result<PathBuf, RuntimeError> {
        self.image.layout.bootstrap_template.clone().ok_or_else(|| self.lacks("Envoy bootstrap template"))
    }

    async fn start(&self, launch: &Launch) -> Result<Box<dyn Running>, RuntimeError> {
        let program = self.path(launch.program)?;
        Ok(Box::new(Container::start(&self.image, &program, launch).await?))
    }
}

impl ContainerRuntime {
    fn lacks(&self, what: &'static str) -> RuntimeError {
        RuntimeError::NoProgram {
            program: what,
            runtime: format!("image {}", self.image.reference),
            hint: "name a gateway image (pilot-agent and Envoy, laid out as istio/proxyv2) for the istio profile"
                .into(),
        }
    }
}

/// A started container.
pub struct Container {
    name: String,
    log: PathBuf,
    /// Its id, until it is removed.
    id: Option<String>,
    /// How it ended, once its output ended.
    ended: Arc<Mutex<Option<String>>>,
    pumps: Vec<JoinHandle<()>>,
}

impl Container {
    async fn start(image: &Image, program: &Path, launch: &Launch) -> Result<Self, ContainerError> {
        let failed = |message: String| ContainerError::Start {
            name: launch.name.clone(),
            image: image.reference.clone(),
            message,
        };
        for dir in &launch.shared {
            // The image's user (istio's 1337) writes there too.
            open_up(dir).map_err(|e| failed(format!("cannot open {} to the container: {e}", dir.display())))?;
        }
        let (repository, tag) = image.id.split_once(':').unwrap_or(("sha256", &image.id));
        let mut request = GenericImage::new(repository, tag)
            .with_entrypoint(&program.to_string_lossy())
            .with_cmd(launch.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .with_working_dir(launch.dir.to_string_lossy())
            .with_label(engine::OWNER, super::owner::me())
            .with_label(engine::COMPONENT, &launch.name)
            .with_startup_timeout(Duration::from_secs(60))
            .with_host_config_modifier(engine::join_network);
        for (key, value) in &launch.env {
            request = request.with_env_var(key.to_string_lossy(), value.to_string_lossy());
        }
        for dir in &launch.shared {
            let path = dir.to_string_lossy();
            request = request.with_mount(Mount::bind_mount(path.clone(), path));
        }
        // A container's file system is its own: its private paths need nothing.
        reaper::ensure();
        let container = request.start().await.map_err(|e| failed(e.to_string()))?;
        let ended = Arc::new(Mutex::new(None));
        let log = launch.log.clone();
        let pumps = vec![
            tokio::spawn(pump(container.stdout(true), log.clone(), Some((container.id().to_owned(), ended.clone())))),
            tokio::spawn(pump(container.stderr(true), log.clone(), None)),
        ];
        let id = container.id().to_owned();
        tracing::debug!(name = %launch.name, id, "started from {}", image.reference);
        // Removal is this component's own (`remove`, and the reaper):
        // testcontainers' removal on drop blocks on the async runtime, which
        // may be shutting down by then.
        std::mem::forget(container);
        Ok(Container { name: launch.name.clone(), log, id: Some(id), ended, pumps })
    }

    /// Removes it (the engine kills what runs) off the caller's path: a
    /// scenario's teardown does not wait for the engine's clean-up. Should
    /// the process end first, its reaper removes what is left.
    fn remove(&mut self) {
        if let Some(id) = self.id.take() {
            tokio::spawn(async move { engine::remove(&id).await });
        }
        for pump in self.pumps.drain(..) {
            pump.abort();
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.id.is_some() && tokio::runtime::Handle::try_current().is_ok() {
            self.remove();
        }
    }
}

/// Lets the container's user (istio's 1337) write in a shared host folder
/// and every folder in it (the run's own, removed with it).
pub(crate) fn open_up(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            open_up(&entry.path())?;
        }
    }
    Ok(())
}

/// Appends a container's output to its log; for stdout, records how the
/// container ended when the output ends.
async fn pump(
    mut from: std::pin::Pin<Box<dyn tokio::io::AsyncBufRead + Send>>,
    log: PathBuf,
    watch: Option<(String, Arc<Mutex<Option<String>>>)>,
) {
    if let Ok(mut file) = tokio::fs::OpenOptions::new().create(true).append(true).open(&log).await {
        let _ = tokio::io::copy_buf(&mut from, &mut file).await;
        let _ = file.flush().await;
    }
    if let Some((id, ended)) = watch {
        let how = engine::exit_of(&id).await;
        *ended.lock().expect("not poisoned") = Some(how);
    }
}

#[async_trait]
impl Running for Container {
    fn name(&self) -> &str {
        &self.name
    }

    fn log_path(&self) -> &Path {
        &self.log
    }

    fn exited(&mut self) -> Option<String> {
        self.ended.lock().expect("not poisoned").clone()
    }

    /// A gateway's programs have nothing to finish once a scenario is over:
    /// stopping is killing.
    async fn stop(mut self: Box<Self>, _grace: Duration) {
        self.remove();
    }

    async fn kill(mut self: Box<Self>) {
        self.remove();
    }

    async fn evidence(&self) -> Vec<(String, Value)> {
        let Some(id) = &self.id else { return Vec::new() };
        match engine::inspect(id).await {
            Some(inspect) => vec![(format!("container-{}.json", self.name), inspect)],
            None => Vec::new(),
        }
    }
}
