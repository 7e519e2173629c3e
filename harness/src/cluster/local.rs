//! The local cluster's life: `up` provisions what it needs (the kits; its
//! images, built from provisioned binaries and saved as archives; istio's
//! charts rendered by Helm), then starts its daemon in namespaces of its
//! own and waits until the node is Ready with istiod running; `down` stops
//! it and checks that nothing of it is left. One local cluster per machine,
//! its state in the cache (`cluster/`). A daemon killed outright takes its
//! node with it (it is the init of the node's PID namespace); what it
//! changed outside (sysctls, cgroups) and its state are put back and
//! removed by the next `up` or `down`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::facts::ISTIO_NAMESPACE;
use super::ingress;
use super::node::{restore, Node, NodeInputs};
use super::ClusterError;
use crate::components::envoy::access_log;
use crate::options::Options;
use crate::provision::{
    self, cluster_kit, envoy, istio_kit, Cache, ClusterKit, EnvoyBuild, EnvoySource, IstioKit, DEFAULT_PIN,
};
use crate::runtime::container::{engine, ImageKind, LocalImage};
use crate::runtime::owner;

/// Set in the daemon's environment: its state folder.
pub const DAEMON_ENV: &str = "PLUGPROOF_CLUSTER_DAEMON";
/// The daemon's `owner::identity` (its pid and start time).
const DAEMON_PID: &str = "daemon.pid";
const READY: &str = "ready.json";
const UP_TIMEOUT: Duration = Duration::from_secs(300);

/// A local cluster that is up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalCluster {
    /// The daemon, whose network namespace is the node's.
    pub pid: u32,
    pub kubeconfig: PathBuf,
    /// The gateway image the node holds.
    pub gateway_image: String,
    /// The istio pin installed.
    pub pin: String,
}

impl LocalCluster {
    /// A process in the node's network namespace (the daemon's child:
    /// `pid` is the `unshare` that made the namespaces), which a process
    /// joins to reach the node's addresses.
    pub fn node_pid(&self) -> Option<u32> {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid)).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }
}

fn state_dir(options: &Options) -> PathBuf {
    options.cache.join("cluster")
}

/// The local cluster, if it is up.
pub fn running(options: &Options) -> Option<LocalCluster> {
    let state = state_dir(options);
    let pid = daemon(&state)?;
    let mut cluster: LocalCluster = serde_json::from_slice(&std::fs::read(state.join(READY)).ok()?).ok()?;
    cluster.pid = pid;
    Some(cluster)
}

/// The daemon's pid, while it runs (not once it is a zombie, or its pid names another process).
fn daemon(state: &Path) -> Option<u32> {
    let identity = std::fs::read_to_string(state.join(DAEMON_PID)).ok()?;
    if owner::gone(&identity) {
        return None;
    }
    identity.split_whitespace().next()?.parse().ok()
}

/// What the local cluster runs, provisioned (cached, with progress): the
/// istio kit of the default pin, the cluster kit, and the default Envoy.
pub async fn kits(options: &Options) -> Result<(IstioKit, ClusterKit, EnvoyBuild), ClusterError> {
    let (cache, images) = (Cache::at(options.cache.clone())?, options.images.clone());
    Ok(provision::blocking(move || {
        let pin = provision::pin(&images, DEFAULT_PIN)?;
        Ok((istio_kit(&cache, &images, &pin)?, cluster_kit(&cache, &images)?, envoy(&cache, &EnvoySource::default())?))
    })
    .await?)
}

/// Brings the local cluster up (or finds it up).
pub async fn up(options: &Options) -> Result<LocalCluster, ClusterError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(ClusterError::NeedsRoot);
    }
    if let Some(cluster) = running(options) {
        return Ok(cluster);
    }
    let state = state_dir(options);
    clear(&state);
    let up = boot(options, &state).await;
    if up.is_err() {
        keep_logs(&state, &logs_dir(options));
        clear(&state);
    }
    up
}

/// Where the logs of a cluster that failed to come up are kept (until the next failure).
fn logs_dir(options: &Options) -> PathBuf {
    options.cache.join("cluster-logs")
}

/// Copies the logs of the node's programs and Pods out of `state` (not
/// those inside images or containerd's store).
fn keep_logs(state: &Path, logs: &Path) {
    let _ = std::fs::remove_dir_all(logs);
    copy_logs(state, logs);
}

fn copy_logs(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).into_iter().flatten().filter_map(Result::ok) {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if !["containerd", "var-lib", "images"].iter().any(|skip| entry.file_name() == *skip) {
                copy_logs(&path, &to.join(entry.file_name()));
            }
        } else if path.extension().is_some_and(|e| e == "log") {
            let _ = std::fs::create_dir_all(to);
            let _ = std::fs::copy(&path, to.join(entry.file_name()));
        }
    }
}

async fn boot(options: &Options, state: &Path) -> Result<LocalCluster, ClusterError> {
    let state = state.to_owned();
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| ClusterError::Io { what, source }
    };
    std::fs::create_dir_all(state.join("images")).map_err(io("cannot create the cluster's folder"))?;
    std::fs::create_dir_all(state.join("manifests")).map_err(io("cannot create the cluster's folder"))?;
    let (istio, cluster, envoy) = kits(options).await?;
    let definitions = &options.images;
    let pause = LocalImage {
        name: "pause",
        definitions: definitions.clone(),
        version: "1".into(),
        binaries: Vec::new(),
        files: vec![(cluster.pause.clone(), "/pause".into())],
        owned: &[],
    }
    .build()
    .await?;
    let pilot = LocalImage {
        name: "pilot",
        definitions: definitions.clone(),
        version: istio.pin.clone(),
        binaries: vec![(istio.discovery.clone(), "/usr/local/bin/pilot-discovery".into())],
        files: Vec::new(),
        owned: &["tmp", "var/lib/istio"],
    }
    .build()
    .await?;
    let version = format!("{}-envoy-{}", istio.pin, envoy.version);
    let gateway = LocalImage::gateway(
        ImageKind::Gateway,
        definitions,
        version,
        &envoy.path,
        Some(&istio.agent),
        Some(&istio.bootstrap_template),
    )
    .build()
    .await?;
    let registry = provision::registry_binary(options.registry.as_deref())?;
    let registry = LocalImage::registry(definitions, &registry).build().await?;
    for (name, built) in [("pause", &pause), ("pilot", &pilot), ("gateway", &gateway), ("registry", &registry)] {
        save(&built.reference, &state.join("images").join(format!("{name}.tar"))).await?;
    }
    std::fs::write(state.join("sandbox"), &pause.reference).map_err(io("cannot write the sandbox image"))?;
    render_istio(&cluster.helm, &istio.pin, &pilot.reference, &options.images, &state)?;
    let pending = LocalCluster {
        pid: 0,
        kubeconfig: state.join("kubeconfig"),
        gateway_image: gateway.reference.clone(),
        pin: istio.pin.clone(),
    };
    std::fs::write(state.join("cluster.json"), serde_json::to_vec(&pending).expect("serialises"))
        .map_err(io("cannot write the cluster's state"))?;
    start_daemon(&state)?;
    wait_up(&state, options).await
}

/// Stops the local cluster (if up) and removes what it left.
pub async fn down(options: &Options) -> Result<(), ClusterError> {
    let state = state_dir(options);
    if let Some(cluster) = running(options) {
        let pid = nix::unistd::Pid::from_raw(cluster.pid as i32);
        // To the group: `unshare` ignores SIGTERM while it waits; the daemon, its child, stops the node.
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGTERM);
        let started = Instant::now();
        while daemon(&state).is_some() && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    clear(&state);
    Ok(())
}

/// For the edges, at start: what a local cluster whose daemon was killed
/// outright left (its state, the sysctls and cgroups its kubelet changed)
/// is put back and removed. Its processes died with the daemon, the init of
/// their PID namespace.
pub fn sweep(options: &Options) {
    let state = state_dir(options);
    if state.join(DAEMON_PID).exists() && daemon(&state).is_none() {
        clear(&state);
    }
}

/// Puts back what a node that ran in `state` changed, and removes `state`.
fn clear(state: &Path) {
    if state.exists() {
        restore(state);
        let _ = std::fs::remove_dir_all(state);
    }
}

/// The daemon, in network, mount and PID namespaces of its own and a
/// session of its own (so the terminal's Ctrl-C does not reach it).
fn start_daemon(state: &Path) -> Result<(), ClusterError> {
    use std::os::unix::process::CommandExt;
    let io = |source| ClusterError::Io { what: "cannot start the cluster's daemon".into(), source };
    let log = File::create(state.join("daemon.log")).map_err(io)?;
    let exe = std::env::current_exe().map_err(io)?;
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc", "--kill-child", "--"])
        .arg(exe)
        .env(DAEMON_ENV, state)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io)?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    let child = cmd.spawn().map_err(io)?;
    let identity = owner::identity(child.id()).unwrap_or_default();
    std::fs::write(state.join(DAEMON_PID), identity).map_err(io)?;
    // Not waited for: it outlives this process, until `down`.
    std::mem::forget(child);
    Ok(())
}

async fn wait_up(state: &Path, options: &Options) -> Result<LocalCluster, ClusterError> {
    let started = Instant::now();
    let pid = daemon(state).unwrap_or(0);
    loop {
        if let Some(cluster) = running(options) {
            return Ok(cluster);
        }
        let gone = daemon(state).is_none();
        if gone || started.elapsed() > UP_TIMEOUT {
            let log = logs_dir(options).join("daemon.log");
            let text = std::fs::read_to_string(state.join("daemon.log")).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let reason = if gone { "its daemon exited".to_owned() } else { format!("not up within {UP_TIMEOUT:?}") };
            let tail = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            return Err(ClusterError::NotUp { reason, log, tail });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The daemon: boots the node, says it is up, and stops it on SIGTERM or
/// SIGINT. Runs as the init of its namespaces.
pub async fn serve(state: &Path, options: &Options) -> Result<(), ClusterError> {
    let (istio, cluster, _) = kits(options).await?;
    let listed = |dir: &str| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(state.join(dir)).into_iter().flatten().filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        files
    };
    let sandbox = std::fs::read_to_string(state.join("sandbox"))
        .map_err(|source| ClusterError::Io { what: "cannot read the sandbox image".into(), source })?;
    let inputs = NodeInputs {
        cluster: &cluster,
        istio: &istio,
        images: listed("images"),
        sandbox: sandbox.trim().to_owned(),
        manifests: listed("manifests"),
    };
    let mut signals = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| ClusterError::Io { what: "cannot wait for signals".into(), source })?;
    let mut cluster: LocalCluster = serde_json::from_slice(
        &std::fs::read(state.join("cluster.json"))
            .map_err(|source| ClusterError::Io { what: "cannot read the cluster's state".into(), source })?,
    )
    .map_err(|e| ClusterError::Manifest(e.to_string()))?;
    let node = Node::boot(&inputs, state).await?;
    let client = super::manifests::client(&node.kubeconfig).await?;
    super::manifests::wait_deployment(&client, ISTIO_NAMESPACE, "istiod", Duration::from_secs(180)).await?;
    install_gateway(&client, &cluster.gateway_image).await?;
    cluster.kubeconfig = node.kubeconfig.clone();
    let partial = state.join("ready.partial");
    std::fs::write(&partial, serde_json::to_vec(&cluster).expect("serialises"))
        .and_then(|()| std::fs::rename(&partial, state.join(READY)))
        .map_err(|source| ClusterError::Io { what: "cannot say the cluster is up".into(), source })?;
    eprintln!("plugproof: the local cluster is up");
    tokio::select! {
        _ = signals.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    node.stop().await;
    Ok(())
}

/// The ingress gateway a user's cluster has (`ingress`), configured by istiod's Pod.
async fn install_gateway(client: &kube::Client, image: &str) -> Result<(), ClusterError> {
    let facts = super::facts::read(client).await?;
    let istiod =
        facts.istiod().and_then(|p| p.ip.clone()).ok_or_else(|| ClusterError::NotReady("istiod's Pod".into()))?;
    for object in ingress::manifests(image, &format!("{istiod}:{}", super::facts::ISTIOD_XDS_PORT)) {
        super::manifests::apply(client, &object).await?;
    }
    super::manifests::wait_deployment(client, ingress::NAMESPACE, ingress::NAME, Duration::from_secs(120)).await
}

/// `docker save` of an image, through the engine, to `file`.
async fn save(reference: &str, file: &Path) -> Result<(), ClusterError> {
    let docker = engine::client().await?;
    let mut archive = docker.export_image(reference);
    let mut out = tokio::fs::File::create(file)
        .await
        .map_err(|source| ClusterError::Io { what: format!("cannot write {}", file.display()), source })?;
    while let Some(chunk) = archive.next().await {
        let chunk = chunk.map_err(|e| ClusterError::Image(format!("saving {reference}: {e}")))?;
        tokio::io::AsyncWriteExt::write_all(&mut out, &chunk)
            .await
            .map_err(|source| ClusterError::Io { what: format!("cannot write {}", file.display()), source })?;
    }
    Ok(())
}

/// istio's `base` (CRDs) and `istiod` charts of the pin, rendered by Helm
/// for this node: istiod from `pilot`, no validation webhook, no telemetry
/// filters the upstream Envoy lacks, every gateway's access log as JSON on
/// its stdout (as the istio profile's mesh config has it).
fn render_istio(helm: &Path, pin: &str, pilot: &str, images: &Path, state: &Path) -> Result<(), ClusterError> {
    let charts = provision::istio_module(images, pin)?.join("manifests/charts");
    let out = state.join("manifests");
    let write = |path: &Path, text: &[u8]| {
        std::fs::write(path, text)
            .map_err(|source| ClusterError::Io { what: format!("cannot write {}", path.display()), source })
    };
    let values = serde_json::json!({
        "image": pilot,
        "autoscaleEnabled": false,
        "replicaCount": 1,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "telemetry": {"enabled": false},
        "env": {"PILOT_ENABLE_METADATA_EXCHANGE": "false", "PILOT_ENABLE_ALPN_FILTER": "false"},
        "global": {"configValidation": false, "imagePullPolicy": "IfNotPresent"},
        "meshConfig": {
            "enablePrometheusMerge": false,
            "enableAutoMtls": false,
            "accessLogFile": "/dev/stdout",
            "accessLogEncoding": "JSON",
            "accessLogFormat": access_log::json_format().to_string(),
        },
    });
    let values_file = state.join("istiod-values.json");
    write(&values_file, values.to_string().as_bytes())?;
    let render = |name: &str, chart: &str, file: &str, values: Option<&Path>| -> Result<(), ClusterError> {
        let mut cmd = Command::new(helm);
        cmd.args(["template", name]).arg(charts.join(chart)).args(["--namespace", ISTIO_NAMESPACE]);
        if let Some(values) = values {
            cmd.arg("--values").arg(values);
        }
        let output = cmd.output().map_err(|e| ClusterError::Helm(format!("cannot run {}: {e}", helm.display())))?;
        if !output.status.success() {
            return Err(ClusterError::Helm(String::from_utf8_lossy(&output.stderr).into_owned()));
        }
        write(&out.join(file), &output.stdout)
    };
    let namespace = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ISTIO_NAMESPACE}\n");
    write(&out.join("0-namespace.yaml"), namespace.as_bytes())?;
    render("base", "base", "1-base.yaml", None)?;
    render("istiod", "istio-control/istio-discovery", "2-istiod.yaml", Some(&values_file))
}
