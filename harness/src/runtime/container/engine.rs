//! The container engine behind the Docker-API socket: which socket, whether
//! it answers, joining the harness's network namespace, what became of a
//! container, and sweeping containers whose run was killed outright.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use testcontainers::bollard::models::HostConfig;
use testcontainers::bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;

use crate::runtime::owner;

/// The label naming the process that owns a container (`PID START_TIME`).
pub const OWNER: &str = "io.plugproof.owner";
/// The label naming the component a container runs (`envoy`, `pilot-agent`).
pub const COMPONENT: &str = "io.plugproof.component";
/// Podman's Docker-compatible socket, where plugproof's set-up starts it.
pub const PODMAN_SOCKET: &str = "/run/podman/podman.sock";
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(
        "no container engine answers at {socket}: {message}. Start one (Podman: `podman system service --time=0 \
         unix://{PODMAN_SOCKET} &`, which `ci/setup-containers` does; or Docker) and point DOCKER_HOST at its socket, \
         or run the target as host processes (drop `+container`)"
    )]
    NoEngine { socket: String, message: String },
    #[error("cannot start {name} from image {image}: {message}")]
    Start { name: String, image: String, message: String },
    #[error("image {reference}: {message}")]
    Image { reference: String, message: String },
    #[error("image {reference} has no {program} at {path}: {hint}")]
    Lacks { reference: String, program: &'static str, path: String, hint: String },
    #[error(
        "image {reference} runs Envoy {found}, but the target names Envoy {wanted}; name the image alone \
         (its Envoy is asked its version) or the Envoy it holds"
    )]
    EnvoyMismatch { reference: String, found: String, wanted: String },
    #[error("cannot build image {image} from {containerfile}: {message}")]
    Build { image: String, containerfile: String, message: String },
}

/// The socket the engine answers on, as `DOCKER_HOST` names it (what
/// testcontainers and bollard read).
pub fn socket() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| format!("unix://{DOCKER_SOCKET}"))
}

/// For the edges (the CLI, test binaries), before anything connects: with no
/// `DOCKER_HOST` and no Docker socket, Podman's socket where the set-up
/// starts it.
pub fn default_to_podman() {
    if std::env::var_os("DOCKER_HOST").is_none()
        && !Path::new(DOCKER_SOCKET).exists()
        && Path::new(PODMAN_SOCKET).exists()
    {
        // SAFETY: the edges call this first, before any other thread runs.
        unsafe { std::env::set_var("DOCKER_HOST", format!("unix://{PODMAN_SOCKET}")) };
    }
}

/// A client of the engine, once it answers.
pub async fn client() -> Result<Docker, ContainerError> {
    let no_engine = |message: String| ContainerError::NoEngine { socket: socket(), message };
    let docker = Docker::connect_with_defaults().map_err(|e| no_engine(e.to_string()))?;
    docker.ping().await.map_err(|e| no_engine(e.to_string()))?;
    Ok(docker)
}

/// Puts a container in the harness's network namespace: the machine's own
/// (`host`), or the one the harness runs in, by its path on the host.
pub fn join_network(config: &mut HostConfig) {
    let ours = std::fs::read_link("/proc/self/ns/net").ok();
    let machine = std::fs::read_link("/proc/1/ns/net").ok();
    config.network_mode = Some(if ours.is_some() && ours == machine {
        "host".to_owned()
    } else {
        format!("ns:/proc/{}/ns/net", owner::host_pid())
    });
}

/// How a container ended: its exit code, or why that is not known.
pub async fn exit_of(id: &str) -> String {
    let Some(inspect) = inspect(id).await else { return "the container is gone".to_owned() };
    match inspect["State"]["ExitCode"].as_i64() {
        Some(code) => format!("container exited with code {code}"),
        None => "the container ended".to_owned(),
    }
}

/// The engine's inspection of a container, as JSON.
pub async fn inspect(id: &str) -> Option<Value> {
    let docker = Docker::connect_with_defaults().ok()?;
    let inspect = docker.inspect_container(id, None::<InspectContainerOptions>).await.ok()?;
    serde_json::to_value(inspect).ok()
}

/// Removes the containers whose owner is gone; returns how many. Quiet when
/// no engine answers: then there is nothing of ours to sweep.
pub async fn sweep() -> usize {
    let Ok(docker) = Docker::connect_with_defaults() else { return 0 };
    let filters: HashMap<String, Vec<String>> = HashMap::from([("label".to_owned(), vec![OWNER.to_owned()])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let Ok(Ok(containers)) =
        tokio::time::timeout(std::time::Duration::from_secs(2), docker.list_containers(Some(options))).await
    else {
        return 0;
    };
    let mut swept = 0;
    for container in containers {
        let owner = container.labels.as_ref().and_then(|l| l.get(OWNER)).cloned().unwrap_or_default();
        let Some(id) = container.id.filter(|_| owner::gone(&owner)) else { continue };
        let remove = RemoveContainerOptionsBuilder::new().force(true).build();
        if docker.remove_container(&id, Some(remove)).await.is_ok() {
            swept += 1;
        }
    }
    swept
}

/// The containers `owner` owns: their ids.
pub async fn owned_by(owner: &str) -> Vec<String> {
    let Ok(docker) = Docker::connect_with_defaults() else { return Vec::new() };
    let filters: HashMap<String, Vec<String>> = HashMap::from([("label".to_owned(), vec![format!("{OWNER}={owner}")])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    docker.list_containers(Some(options)).await.unwrap_or_default().into_iter().filter_map(|c| c.id).collect()
}

/// Removes every container `owner` owns.
pub async fn remove_owned(owner: &str) {
    for id in owned_by(owner).await {
        remove(&id).await;
    }
}

/// Removes a container, killing what runs in it.
pub async fn remove(id: &str) {
    if let Ok(docker) = Docker::connect_with_defaults() {
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        let _ = docker.remove_container(id, Some(options)).await;
    }
}
