//! The Pod runtime: a target's gateway programs run as a Pod of a
//! Kubernetes cluster, from an image its nodes hold or pull, started by a
//! node's kubelet and container runtime.
//!
//! On the local cluster the Pod uses the node's network (`hostNetwork`),
//! and the harness runs in that network namespace too (it joins the node):
//! the run's loopback addresses, ports and backends are the same for the
//! Pod as for a process, so nothing is forwarded, and the host folders a
//! launch shares are `hostPath` volumes at the same path. On a cluster a
//! kubeconfig names, the Pod is on the cluster's Pod network: the harness
//! reaches its ports through the API's port-forward (`reach`), and the
//! folders a launch shares are the Pod's own (`emptyDir`). The Pod's file
//! system is its own either way; the paths a launch keeps private (the
//! agent's Wasm cache) are `emptyDir` volumes, which outlive a restart of
//! its container (its restart policy is a Deployment's, `Always`). Its log,
//! read through the API server, goes to the launch's log file. It lives in
//! the scenario's namespace, which the scenario removes when it ends (and
//! `plugproof cluster down` with the whole cluster, should the run be
//! killed outright).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use super::component::{Launch, Program, Running, Runtime, RuntimeError};
use super::container::ContainerRuntime;
use super::port_forward::PortForward;

/// How long a Pod may take from creation until its container runs.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a deleted Pod may take to be gone.
const DELETE_TIMEOUT: Duration = Duration::from_secs(30);
/// The variable that tells istio's agent its Pod's address.
const INSTANCE_IP: &str = "INSTANCE_IP";

#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("cannot {what} Pod {namespace}/{name} in the cluster: {source}")]
    Api {
        what: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("Pod {namespace}/{name} ({image}) did not start: {reason}; {hint}")]
    NotStarted { namespace: String, name: String, image: String, reason: String, hint: String },
    #[error("the container of Pod {name} was not started again within {waited:?} after it ended; it is {state}")]
    NotRestarted { name: String, waited: Duration, state: String },
    #[error("cannot listen on this machine's loopback to forward port {port} of Pod {name}: {source}")]
    Forward {
        name: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// Which network a Pod is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodNetwork {
    /// The node's, which the harness shares (the local cluster).
    Node,
    /// The cluster's Pod network, reached through port-forwards.
    Pods,
}

/// Runs a target's programs as Pods of one image, in one namespace.
pub struct PodRuntime {
    client: kube::Client,
    namespace: String,
    /// The image, and where its programs are.
    image: ContainerRuntime,
    network: PodNetwork,
    /// The port-forwards `reach` made, by Pod name and port; they last as long as the runtime.
    forwards: Mutex<Vec<(String, u16, PortForward)>>,
}

impl PodRuntime {
    pub fn new(client: kube::Client, namespace: String, image: ContainerRuntime, network: PodNetwork) -> Self {
        PodRuntime { client, namespace, image, network, forwards: Mutex::default() }
    }

    /// A Pod of the namespace that runs already (an installed gateway's),
    /// followed from now on: its log goes to `log`; it is left running.
    pub fn attach(&self, name: &str, log: &Path) -> Box<dyn Running> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let ended = Arc::new(Mutex::new(None));
        let params = LogParams { follow: true, since_seconds: Some(1), ..LogParams::default() };
        let pump = tokio::spawn(pump(pods.clone(), name.to_owned(), params, log.to_owned(), ended.clone()));
        Box::new(PodProcess { name: name.to_owned(), pods, log: log.to_owned(), live: false, ended, pump: Some(pump) })
    }
}

#[async_trait]
impl Runtime for PodRuntime {
    fn path(&self, program: Program) -> Result<PathBuf, RuntimeError> {
        self.image.path(program)
    }

    fn bootstrap_template(&self) -> Result<PathBuf, RuntimeError> {
        self.image.bootstrap_template()
    }

    async fn start(&self, launch: &Launch) -> Result<Box<dyn Running>, RuntimeError> {
        let program = self.path(launch.program)?;
        Ok(Box::new(PodProcess::start(self, &program, launch).await?))
    }

    /// On the Pod network, a loopback port forwarded to the Pod's port (one
    /// per port, which reaches a Pod that replaces it under its name too).
    async fn reach(&self, name: &str, addr: SocketAddr) -> Result<SocketAddr, RuntimeError> {
        if self.network == PodNetwork::Node {
            return Ok(addr);
        }
        let port = addr.port();
        let known = |forwards: &[(String, u16, PortForward)]| {
            forwards.iter().find(|(n, p, _)| n == name && *p == port).map(|(_, _, f)| f.local())
        };
        if let Some(local) = known(&self.forwards.lock().expect("not poisoned")) {
            return Ok(local);
        }
        let pods = Api::namespaced(self.client.clone(), &self.namespace);
        let forward = PortForward::start(pods, name, port).await.map_err(|source| PodError::Forward {
            name: name.to_owned(),
            port,
            source,
        })?;
        let local = forward.local();
        self.forwards.lock().expect("not poisoned").push((name.to_owned(), port, forward));
        Ok(local)
    }
}

/// The Pod of one launch.
fn manifest(image: &str, program: &Path, launch: &Launch, network: PodNetwork) -> Value {
    let on_node = network == PodNetwork::Node;
    let (volumes, mounts): (Vec<Value>, Vec<Value>) = launch
        .shared
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let name = format!("shared-{i}");
            let volume = if on_node {
                json!({"name": name, "hostPath": {"path": dir, "type": "Directory"}})
            } else {
                json!({"name": name, "emptyDir": {}})
            };
            (volume, json!({"name": name, "mountPath": dir}))
        })
        // Paths that must be the Pod's own are its volumes, which outlive a
        // restart of its container (istio's injected gateway keeps its
        // agent's Wasm cache in such an `emptyDir`).
        .chain(launch.private.iter().enumerate().map(|(i, path)| {
            let name = format!("private-{i}");
            (json!({"name": name, "emptyDir": {}}), json!({"name": name, "mountPath": path}))
        }))
        .unzip();
    let env: Vec<Value> = launch
        .env
        .iter()
        .map(|(k, v)| match k.to_str() {
            // On the Pod network the Pod's address is known once it is scheduled.
            Some(INSTANCE_IP) if !on_node => {
                json!({"name": INSTANCE_IP, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
            }
            _ => json!({"name": k.to_string_lossy(), "value": v.to_string_lossy()}),
        })
        .collect();
    let args: Vec<String> = launch.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": launch.name,
            "labels": {"app.kubernetes.io/managed-by": "plugproof", "plugproof.dev/component": launch.name},
        },
        "spec": {
            "hostNetwork": on_node,
            // As a Deployment's Pod: a container that ends is started again
            // in place. That an end happened is still reported (`exited`).
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "containers": [{
                "name": launch.name,
                "image": image,
                // The local node holds the image; a cluster's nodes may pull it.
                "imagePullPolicy": if on_node { "Never" } else { "IfNotPresent" },
                "command": [program],
                "args": args,
                "workingDir": launch.dir,
                "env": env,
                "volumeMounts": mounts,
            }],
            "volumes": volumes,
        },
    })
}

/// A started Pod.
pub struct PodProcess {
    name: String,
    pods: Api<Pod>,
    log: PathBuf,
    /// Whether it is still to be deleted.
    live: bool,
    /// How it ended, once its log ended.
    ended: Arc<Mutex<Option<String>>>,
    pump: Option<JoinHandle<()>>,
}

impl PodProcess {
    async fn start(runtime: &PodRuntime, program: &Path, launch: &Launch) -> Result<Self, PodError> {
        let namespace = runtime.namespace.clone();
        let name = launch.name.clone();
        let api = |what| {
            let (namespace, name) = (namespace.clone(), name.clone());
            move |source| PodError::Api { what, namespace, name, source: Box::new(source) }
        };
        let host_folders = if runtime.network == PodNetwork::Node { launch.shared.as_slice() } else { &[] };
        for dir in host_folders {
            // The image's user (istio's 1337) writes there too.
            super::container::open_up(dir).map_err(|e| PodError::NotStarted {
                namespace: namespace.clone(),
                name: name.clone(),
                image: runtime.image.image.reference.clone(),
                reason: format!("cannot open {} to it: {e}", dir.display()),
                hint: "run plugproof as root".into(),
            })?;
        }
        let pods: Api<Pod> = Api::namespaced(runtime.client.clone(), &namespace);
        let pod: Pod =
            serde_json::from_value(manifest(&runtime.image.image.reference, program, launch, runtime.network))
                .expect("the Pod manifest is a Pod");
        pods.create(&PostParams::default(), &pod).await.map_err(api("create"))?;
        let mut started = PodProcess {
            name: name.clone(),
            pods: pods.clone(),
            log: launch.log.clone(),
            live: true,
            ended: Arc::new(Mutex::new(None)),
            pump: None,
        };
        if let Err(reason) = wait_running(&pods, &name).await {
            return Err(PodError::NotStarted {
                namespace,
                name,
                image: runtime.image.image.reference.clone(),
                hint: hint(&reason),
                reason,
            });
        }
        started.pump = Some(tokio::spawn(pump(pods, name, follow(), launch.log.clone(), started.ended.clone())));
        tracing::debug!(name = %launch.name, namespace = %runtime.namespace, "Pod started");
        Ok(started)
    }

    /// Deletes it at once and waits until the API no longer lists it (the
    /// kubelet ends its containers soon after: waiting for that here, until
    /// its followed log ends, measured about 2.5 s more per cluster
    /// scenario; `Gateway::replace` waits for it where it matters).
    async fn delete(&mut self) {
        if let Some(pump) = self.pump.take() {
            pump.abort();
        }
        if std::mem::take(&mut self.live) {
            remove(self.pods.clone(), self.name.clone()).await;
        }
    }
}

async fn remove(pods: Api<Pod>, name: String) {
    let _ = pods.delete(&name, &DeleteParams::default().grace_period(0)).await;
    let since = Instant::now();
    while since.elapsed() < DELETE_TIMEOUT && matches!(pods.get_opt(&name).await, Ok(Some(_))) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the Pod's container runs; else why it does not.
pub(crate) async fn wait_running(pods: &Api<Pod>, name: &str) -> Result<(), String> {
    let since = Instant::now();
    let mut last = String::from("not scheduled yet");
    while since.elapsed() < START_TIMEOUT {
        match pods.get(name).await {
            Ok(pod) => match state(&pod) {
                State::Running => return Ok(()),
                State::Ended(how) => return Err(how),
                State::Waiting(why) if is_fatal(&why) => return Err(why),
                State::Waiting(why) => last = why,
            },
            Err(e) => last = format!("cannot read it: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("still {last} after {START_TIMEOUT:?}"))
}

enum State {
    Running,
    Waiting(String),
    Ended(String),
}

/// The status of the Pod's one container, once it has one.
fn container(pod: &Pod) -> Option<&ContainerStatus> {
    pod.status.as_ref().and_then(|s| s.container_statuses.as_ref()).and_then(|c| c.first())
}

/// Where the Pod's one container is.
fn state(pod: &Pod) -> State {
    let status = pod.status.as_ref();
    let Some(state) = container(pod).and_then(|c| c.state.as_ref()) else {
        let phase = status.and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into());
        let reason = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.status == "False"))
            .and_then(|c| c.message.clone().or_else(|| c.reason.clone()));
        return State::Waiting(reason.map_or(phase.clone(), |r| format!("{phase}: {r}")));
    };
    if state.running.is_some() {
        return State::Running;
    }
    if let Some(done) = &state.terminated {
        let reason = done.reason.clone().unwrap_or_default();
        return State::Ended(format!("container exited with code {} ({reason})", done.exit_code));
    }
    let waiting = state.waiting.as_ref();
    let reason = waiting.and_then(|w| w.reason.clone()).unwrap_or_else(|| "waiting".into());
    State::Waiting(match waiting.and_then(|w| w.message.clone()) {
        Some(message) => format!("{reason}: {message}"),
        None => reason,
    })
}

/// Waiting reasons that do not resolve by waiting.
fn is_fatal(why: &str) -> bool {
    [
        "ErrImageNeverPull",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerError",
        "CrashLoopBackOff",
    ]
    .iter()
    .any(|reason| why.starts_with(reason))
}

pub(crate) fn hint(reason: &str) -> String {
    if reason.starts_with("ErrImageNeverPull") {
        "the node does not hold the image: on the local cluster, run `plugproof cluster up` again (it loads \
         plugproof's images); on a cluster you name, load it into its nodes (for kind: `podman save IMAGE -o \
         image.tar && kind load image-archive image.tar`)"
            .into()
    } else if ["ErrImagePull", "ImagePullBackOff"].iter().any(|r| reason.starts_with(r)) {
        "the cluster's nodes neither hold nor can pull the image: load it into them \
         (for kind: `podman save IMAGE -o image.tar && kind load image-archive image.tar`)"
            .into()
    } else {
        "see the node's kubelet and containerd logs (`plugproof cluster status`)".into()
    }
}

/// The whole log of the Pod's container, followed.
fn follow() -> LogParams {
    LogParams { follow: true, ..LogParams::default() }
}

/// Appends the Pod's log, as `params` asks for it, to `log` while it runs;
/// then records how it ended.
async fn pump(pods: Api<Pod>, name: String, params: LogParams, log: PathBuf, ended: Arc<Mutex<Option<String>>>) {
    if let (Ok(stream), Ok(mut file)) = (
        pods.log_stream(&name, &params).await,
        tokio::fs::OpenOptions::new().create(true).append(true).open(&log).await,
    ) {
        let mut lines = stream.lines();
        while let Some(Ok(line)) = lines.next().await {
            if file.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                break;
            }
            let _ = file.flush().await;
        }
    }
    let how = match pods.get(&name).await {
        Ok(pod) => match state(&pod) {
            State::Ended(how) => how,
            State::Running | State::Waiting(_) => "its log ended".into(),
        },
        Err(e) => format!("gone ({e})"),
    };
    *ended.lock().expect("not poisoned") = Some(how);
}

/// Dropped without being stopped (a failed start's cleanup, a panic): removed off the caller's path.
impl Drop for PodProcess {
    fn drop(&mut self) {
        if let Some(pump) = self.pump.take() {
            pump.abort();
        }
        if self.live && tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(remove(self.pods.clone(), self.name.clone()));
        }
    }
}

#[async_trait]
impl Running for PodProcess {
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
        self.delete().await;
    }

    async fn kill(mut self: Box<Self>) {
        self.delete().await;
    }

    async fn restarts(&self) -> Option<u32> {
        let pod = self.pods.get(&self.name).await.ok()?;
        Some(container(&pod).map_or(0, |c| u32::try_from(c.restart_count).unwrap_or(0)))
    }

    /// Waits until the kubelet has started the container again (its
    /// restart count past `after`, running), then follows its new log.
    async fn await_restart(&mut self, after: u32) -> Result<(), RuntimeError> {
        let since = Instant::now();
        loop {
            let pod = self.pods.get(&self.name).await.ok();
            let restarted = pod.as_ref().and_then(container).is_some_and(|c| {
                u32::try_from(c.restart_count).unwrap_or(0) > after
                    && c.state.as_ref().is_some_and(|s| s.running.is_some())
            });
            if restarted {
                break;
            }
            if since.elapsed() > START_TIMEOUT {
                let state = pod.as_ref().map_or_else(
                    || "unreadable".to_owned(),
                    |p| match state(p) {
                        State::Running => "running, not restarted".to_owned(),
                        State::Waiting(why) | State::Ended(why) => why,
                    },
                );
                return Err(PodError::NotRestarted { name: self.name.clone(), waited: START_TIMEOUT, state }.into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(pump) = self.pump.take() {
            pump.abort();
        }
        *self.ended.lock().expect("not poisoned") = None;
        self.pump = Some(tokio::spawn(pump(
            self.pods.clone(),
            self.name.clone(),
            follow(),
            self.log.clone(),
            self.ended.clone(),
        )));
        Ok(())
    }

    async fn evidence(&self) -> Vec<(String, Value)> {
        match self.pods.get(&self.name).await {
            Ok(pod) => vec![(format!("pod-{}.json", self.name), serde_json::to_value(pod).unwrap_or_default())],
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_becomes_a_pod_on_the_nodes_network_with_its_folders_at_the_same_path() {
        let launch = Launch::new(Program::Agent, Path::new("/run/x/gateway"), "/run/x/gateway/log".into())
            .args(["proxy", "router"])
            .env("POD_NAME", "gw")
            .private(Path::new("/var/lib/istio/data"));
        let pod = manifest(
            "localhost/plugproof/gateway:1",
            Path::new("/usr/local/bin/pilot-agent"),
            &launch,
            PodNetwork::Node,
        );
        let container = &pod["spec"]["containers"][0];
        assert_eq!(pod["spec"]["hostNetwork"], true);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(container["imagePullPolicy"], "Never");
        assert_eq!(container["command"], json!(["/usr/local/bin/pilot-agent"]));
        assert_eq!(container["args"], json!(["proxy", "router"]));
        assert_eq!(container["env"], json!([{"name": "POD_NAME", "value": "gw"}]));
        assert_eq!(
            container["volumeMounts"],
            json!([
                {"name": "shared-0", "mountPath": "/run/x/gateway"},
                {"name": "private-0", "mountPath": "/var/lib/istio/data"}
            ])
        );
        assert_eq!(pod["spec"]["volumes"][0]["hostPath"]["path"], "/run/x/gateway");
        // The agent's Wasm cache outlives a restart of the container, as in istio's injected gateway.
        assert_eq!(pod["spec"]["volumes"][1], json!({"name": "private-0", "emptyDir": {}}));
        serde_json::from_value::<Pod>(pod).expect("a Pod");
    }

    #[test]
    fn on_the_pod_network_a_launch_has_its_own_address_and_folders_and_may_pull_its_image() {
        let launch = Launch::new(Program::Agent, Path::new("/run/x/gateway"), "/run/x/gateway/log".into())
            .env("INSTANCE_IP", "127.0.0.1")
            .env("POD_NAME", "gw");
        let pod = manifest(
            "docker.io/istio/proxyv2:1.30.0",
            Path::new("/usr/local/bin/pilot-agent"),
            &launch,
            PodNetwork::Pods,
        );
        let container = &pod["spec"]["containers"][0];
        assert_eq!(pod["spec"]["hostNetwork"], false);
        assert_eq!(container["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            container["env"],
            json!([
                {"name": "INSTANCE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "POD_NAME", "value": "gw"}
            ])
        );
        assert_eq!(pod["spec"]["volumes"], json!([{"name": "shared-0", "emptyDir": {}}]));
        assert_eq!(container["volumeMounts"], json!([{"name": "shared-0", "mountPath": "/run/x/gateway"}]));
        serde_json::from_value::<Pod>(pod).expect("a Pod");
    }

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).expect("a Pod")
    }

    #[test]
    fn an_image_the_node_lacks_fails_the_start_at_once_and_says_what_to_do() {
        let waiting = pod(json!({"phase": "Pending", "containerStatuses": [{
            "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "Container image \"i\" is not present"}}
        }]}));
        let State::Waiting(why) = state(&waiting) else { panic!("waiting") };
        assert!(is_fatal(&why), "{why}");
        assert!(hint(&why).contains("plugproof cluster up"));
        let pull = "ErrImagePull: failed to pull and unpack image \"localhost/plugproof/gateway:1\"";
        assert!(is_fatal(pull));
        assert!(hint(pull).contains("kind load image-archive"), "{}", hint(pull));
    }

    #[test]
    fn an_unscheduled_pod_is_waiting_and_a_finished_one_says_its_exit_code() {
        let State::Waiting(why) = state(&pod(json!({"phase": "Pending"}))) else { panic!("waiting") };
        assert!(!is_fatal(&why), "{why}");
        let done = pod(json!({"phase": "Failed", "containerStatuses": [{
            "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "reason": "Error"}}
        }]}));
        let State::Ended(how) = state(&done) else { panic!("ended") };
        assert_eq!(how, "container exited with code 1 (Error)");
    }
}
