//! The node: booted by the cluster's daemon inside network, mount and PID
//! namespaces of its own (as a kind node is a container), so that its fixed
//! ports, its bridge and iptables rules, and the paths its programs write
//! (`/run`, `/var/lib`, `/var/log`) are the node's alone. It runs etcd, the
//! API server, the controller manager, the scheduler, containerd, the
//! kubelet and kube-proxy, imports the cluster's images into containerd and
//! applies what Helm rendered of istio's charts.
//!
//! What the kubelet changes outside the namespaces (global sysctls, the
//! cgroups it makes) is recorded first and put back when the node stops,
//! or, when its daemon was killed outright, by the next start (`restore`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::mount::{mount, MsFlags};
use serde::{Deserialize, Serialize};

use super::config::{self, BRIDGE, NODE_IP, NODE_NAME};
use super::manifests;
use super::ClusterError;
use crate::components::apiserver::{ApiServer, Serving};
use crate::components::etcd::Etcd;
use crate::components::node::{NodeLaunch, NodeProgram};
use crate::provision::{ClusterKit, IstioKit};

/// The global sysctls the kubelet sets (`kubelet/cm/container_manager_linux.go`).
const KUBELET_SYSCTLS: &[&str] = &[
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];
/// The cgroup the kubelet puts Pods under (cgroupfs driver).
const POD_CGROUP: &str = "kubepods";
const SAVED: &str = "sysctls.json";
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// What the node needs: the programs, and its images as archives.
pub struct NodeInputs<'a> {
    pub cluster: &'a ClusterKit,
    pub istio: &'a IstioKit,
    /// `docker save` archives of the images Pods run.
    pub images: Vec<PathBuf>,
    /// The Pod sandbox image's reference.
    pub sandbox: String,
    /// Rendered manifests to apply once the node is Ready, in order.
    pub manifests: Vec<PathBuf>,
}

/// The node, running.
pub struct Node {
    // In stopping order.
    programs: Vec<NodeProgram>,
    apiserver: ApiServer,
    etcd: Etcd,
    state: PathBuf,
    /// The admin kubeconfig, against the API server on the node's address.
    pub kubeconfig: PathBuf,
}

impl Node {
    /// Boots it in `state` (inside the daemon's namespaces).
    pub async fn boot(inputs: &NodeInputs<'_>, state: &Path) -> Result<Node, ClusterError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| ClusterError::Io { what, source }
        };
        private_paths(state)?;
        network()?;
        save_sysctls(state)?;
        let etcd = Etcd::start(&inputs.istio.etcd, &state.join("etcd"), &state.join("etcd.log")).await?;
        let apiserver_dir = state.join("apiserver");
        let apiserver = ApiServer::start(
            &inputs.istio.apiserver,
            &inputs.istio.credentials,
            &apiserver_dir,
            Serving::Node { advertise: NODE_IP },
        )
        .await?;
        let ca = ApiServer::certificate(&apiserver_dir);
        let kubeconfig = state.join("kubeconfig");
        std::fs::write(&kubeconfig, config::kubeconfig(&format!("https://{NODE_IP}:6443"), &ca))
            .map_err(io("cannot write the kubeconfig"))?;
        fn kube<'a>(
            state: &Path,
            name: &'static str,
            binary: &'a Path,
            args: Vec<String>,
            health: Option<String>,
        ) -> NodeLaunch<'a> {
            NodeLaunch {
                name,
                binary,
                args,
                log: state.join(format!("{name}.log")),
                health,
                socket: None,
                timeout: Duration::from_secs(60),
            }
        }
        let k = kubeconfig.display();
        // What the controller manager and the scheduler share: the admin kubeconfig, health on loopback, no leader.
        let controller = || -> Vec<String> {
            vec![
                format!("--kubeconfig={k}"),
                format!("--authentication-kubeconfig={k}"),
                format!("--authorization-kubeconfig={k}"),
                "--bind-address=127.0.0.1".into(),
                "--leader-elect=false".into(),
                "--v=1".into(),
            ]
        };
        let mut programs = Vec::new();
        programs.push(
            NodeProgram::start(kube(
                state,
                "kube-controller-manager",
                &inputs.cluster.controller_manager,
                [
                    controller(),
                    vec![
                        "--use-service-account-credentials=true".into(),
                        format!(
                            "--service-account-private-key-file={}",
                            inputs.istio.credentials.service_account_key.display()
                        ),
                        format!("--root-ca-file={}", ca.display()),
                        format!("--cluster-name={NODE_NAME}"),
                    ],
                ]
                .concat(),
                Some("https://127.0.0.1:10257/healthz".into()),
            ))
            .await?,
        );
        programs.push(
            NodeProgram::start(kube(
                state,
                "kube-scheduler",
                &inputs.cluster.scheduler,
                controller(),
                Some("https://127.0.0.1:10259/healthz".into()),
            ))
            .await?,
        );
        let containerd_dir = state.join("containerd");
        let cni_conf = state.join("cni/conf");
        for dir in [&containerd_dir, &cni_conf, &state.join("cni/data")] {
            std::fs::create_dir_all(dir).map_err(io("cannot create the node's folders"))?;
        }
        std::fs::write(cni_conf.join("10-plugproof.conflist"), config::cni(&state.join("cni/data")))
            .map_err(io("cannot write the CNI network"))?;
        let containerd_config = containerd_dir.join("config.toml");
        std::fs::write(
            &containerd_config,
            config::containerd(&containerd_dir, &inputs.sandbox, &inputs.cluster.cni_plugins, &cni_conf),
        )
        .map_err(io("cannot write containerd's config"))?;
        let socket = containerd_dir.join("containerd.sock");
        programs.push(
            NodeProgram::start(NodeLaunch {
                name: "containerd",
                binary: &inputs.cluster.containerd,
                args: vec![format!("--config={}", containerd_config.display())],
                log: state.join("containerd.log"),
                health: None,
                socket: Some(socket.clone()),
                timeout: Duration::from_secs(30),
            })
            .await?,
        );
        for image in &inputs.images {
            import(&inputs.cluster.ctr, &socket, image)?;
        }
        let kubelet_dir = state.join("kubelet");
        std::fs::create_dir_all(&kubelet_dir).map_err(io("cannot create the kubelet's folder"))?;
        let kubelet_config = kubelet_dir.join("config.yaml");
        std::fs::write(&kubelet_config, config::kubelet(&socket, &kubelet_dir))
            .map_err(io("cannot write the kubelet's config"))?;
        programs.push(
            NodeProgram::start(kube(
                state,
                "kubelet",
                &inputs.cluster.kubelet,
                vec![
                    format!("--config={}", kubelet_config.display()),
                    format!("--kubeconfig={k}"),
                    format!("--cert-dir={}", kubelet_dir.join("pki").display()),
                    format!("--hostname-override={NODE_NAME}"),
                    format!("--node-ip={NODE_IP}"),
                    "--v=1".into(),
                ],
                Some("http://127.0.0.1:10248/healthz".into()),
            ))
            .await?,
        );
        let proxy_config = state.join("kube-proxy.yaml");
        std::fs::write(&proxy_config, config::kube_proxy(&kubeconfig))
            .map_err(io("cannot write kube-proxy's config"))?;
        programs.push(
            NodeProgram::start(kube(
                state,
                "kube-proxy",
                &inputs.cluster.kube_proxy,
                vec![format!("--config={}", proxy_config.display()), "--v=1".into()],
                Some("http://127.0.0.1:10256/healthz".into()),
            ))
            .await?,
        );
        let client = manifests::client(&kubeconfig).await?;
        manifests::wait_node_ready(&client, NODE_NAME, READY_TIMEOUT).await?;
        for file in &inputs.manifests {
            manifests::apply_file(&client, file).await?;
        }
        programs.reverse();
        Ok(Node { programs, apiserver, etcd, state: state.to_owned(), kubeconfig })
    }

    /// Stops every program and every container, then puts back what the
    /// kubelet changed outside the node.
    pub async fn stop(self) {
        for program in self.programs {
            program.stop().await;
        }
        self.apiserver.stop().await;
        self.etcd.stop().await;
        // The daemon is the namespace's init: this ends every container left.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), nix::sys::signal::Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(200));
        restore(&self.state);
    }
}

/// The node's own `/run`, `/var/lib` and `/var/log` (the daemon's mount
/// namespace is private, so the machine's stay as they are).
fn private_paths(state: &Path) -> Result<(), ClusterError> {
    let fail = |what: String| move |e: nix::Error| ClusterError::Io { what, source: e.into() };
    mount(Some("tmpfs"), "/run", Some("tmpfs"), MsFlags::empty(), None::<&str>)
        .map_err(fail("cannot mount the node's /run".into()))?;
    for (own, path) in [("var-lib", "/var/lib"), ("var-log", "/var/log")] {
        let own = state.join(own);
        std::fs::create_dir_all(&own)
            .map_err(|source| ClusterError::Io { what: format!("cannot create {}", own.display()), source })?;
        mount(Some(&own), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(fail(format!("cannot mount the node's {path}")))?;
    }
    for dir in ["/run/netns", "/var/lib/kubelet", "/var/log/pods"] {
        std::fs::create_dir_all(dir)
            .map_err(|source| ClusterError::Io { what: format!("cannot create {dir}"), source })?;
    }
    Ok(())
}

/// The node's loopback up, and its bridge made ahead of the first Pod, with
/// the node's address on it (the kubelet checks that its node IP exists).
fn network() -> Result<(), ClusterError> {
    let ip = |args: &[&str]| run(Command::new("ip").args(args)).map_err(ClusterError::Network);
    ip(&["link", "set", "lo", "up"])?;
    ip(&["link", "add", BRIDGE, "type", "bridge"])?;
    ip(&["addr", "add", &format!("{NODE_IP}/24"), "dev", BRIDGE])?;
    ip(&["link", "set", BRIDGE, "up"])
}

/// `ctr images import` of a `docker save` archive into the CRI's namespace.
fn import(ctr: &Path, socket: &Path, archive: &Path) -> Result<(), ClusterError> {
    run(Command::new(ctr)
        .arg(format!("--address={}", socket.display()))
        .args(["--namespace=k8s.io", "images", "import", "--no-unpack=false"])
        .arg(archive))
    .map_err(ClusterError::Image)
}

/// Runs a command to its end; Err says the command and what it printed.
fn run(command: &mut Command) -> Result<(), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let said = |what: String| format!("{program} {}: {what}", args.join(" "));
    let out = command.output().map_err(|e| said(format!("cannot run: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(said(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Sysctl {
    path: String,
    value: String,
}

fn save_sysctls(state: &Path) -> Result<(), ClusterError> {
    let saved: Vec<Sysctl> = KUBELET_SYSCTLS
        .iter()
        .filter_map(|path| {
            let value = std::fs::read_to_string(format!("/proc/sys/{path}")).ok()?;
            Some(Sysctl { path: (*path).to_owned(), value: value.trim().to_owned() })
        })
        .collect();
    let text = serde_json::to_vec_pretty(&saved).expect("sysctls serialise");
    std::fs::write(state.join(SAVED), text)
        .map_err(|source| ClusterError::Io { what: "cannot save the sysctls".into(), source })
}

/// Puts back what a node that ran in `state` changed outside itself: the
/// global sysctls the kubelet set, and the (empty) cgroups it made.
pub fn restore(state: &Path) {
    if let Ok(bytes) = std::fs::read(state.join(SAVED)) {
        let saved: Vec<Sysctl> = serde_json::from_slice(&bytes).unwrap_or_default();
        for sysctl in saved {
            let _ = std::fs::write(format!("/proc/sys/{}", sysctl.path), &sysctl.value);
        }
    }
    // A cgroup goes once empty: the processes of a node killed outright may still be exiting.
    let started = Instant::now();
    loop {
        let left: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|hierarchy| hierarchy.path().join(POD_CGROUP))
            .filter(|cgroup| cgroup.exists())
            .collect();
        left.iter().for_each(|cgroup| remove_cgroup(cgroup));
        if left.iter().all(|cgroup| !cgroup.exists()) || started.elapsed() > Duration::from_secs(10) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes a cgroup and those below it, deepest first (a cgroup goes only
/// once empty; one still in use stays).
fn remove_cgroup(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().filter_map(Result::ok) {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Waits for `ready` up to `timeout`.
pub(super) async fn until<F, Fut>(timeout: Duration, mut ready: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < timeout {
        if ready().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
