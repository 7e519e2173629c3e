//! A registry the run starts in the cluster (`--registry in-cluster`): a
//! Pod of plugproof's registry image (`images/registry`: Debian's
//! docker-registry) in a namespace of the run's own, which the scenarios
//! share, each in repositories of its own. The gateways fetch from the
//! Pod's address on the cluster's Pod network (the local cluster has no
//! cluster DNS for a Service's name); the harness pushes to it as it
//! reaches istiod's Pod (`Site::pod_port`). Removed with its namespace when
//! the run ends; a run killed outright leaves the namespace to the next
//! run's sweep, as a scenario's.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::Site;
use crate::cluster::facts::PodFacts;
use crate::components::{answers, ComponentError};
use crate::options::RegistryAddress;
use crate::profiles::istio::{kube as istio_kube, resources, KubeError};
use crate::profiles::{DeployError, Names};
use crate::runtime::pod::{self, PodError};
use crate::runtime::port_forward::PortForward;

/// The port the image's registry serves on.
const PORT: u16 = 5000;
const NAME: &str = "registry";
/// How long its program may take to answer once its container runs.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

pub(super) struct InClusterRegistry {
    client: kube::Client,
    namespace: String,
    pub address: RegistryAddress,
    /// What carries pushes to it, on a cluster the run reaches through port-forwards.
    _forward: Option<PortForward>,
}

impl InClusterRegistry {
    /// Starts it from `image`, which the cluster's nodes must hold, and
    /// waits until it answers; a start that fails leaves nothing.
    pub async fn start(client: &kube::Client, site: &dyn Site, image: &str) -> Result<Self, DeployError> {
        let namespace = format!("{}-registry", Names::unique().prefix().expect("unique names have a prefix"));
        istio_kube::apply(client, &resources::owned_namespace(&namespace)).await?;
        match launch(client, site, image, &namespace).await {
            Ok((address, forward)) => {
                tracing::info!("the run's registry in the cluster: Pod {namespace}/{NAME} at {}", address.pull);
                Ok(InClusterRegistry { client: client.clone(), namespace, address, _forward: forward })
            }
            Err(e) => {
                remove(client, &namespace).await;
                Err(e)
            }
        }
    }

    pub async fn remove(&self) {
        remove(&self.client, &self.namespace).await;
    }
}

/// Its Pod in `namespace`, running and answering: where the harness
/// pushes to it and the gateways fetch from it.
async fn launch(
    client: &kube::Client,
    site: &dyn Site,
    image: &str,
    namespace: &str,
) -> Result<(RegistryAddress, Option<PortForward>), DeployError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let manifest: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": NAME, "namespace": namespace, "labels": {"app.kubernetes.io/name": "plugproof-registry"}},
        "spec": {
            "containers": [{
                "name": NAME,
                "image": image,
                // Built here and loaded into the nodes; never pulled.
                "imagePullPolicy": "Never",
                "ports": [{"containerPort": PORT}],
                "volumeMounts": [{"name": "storage", "mountPath": "/var/lib/registry"}],
            }],
            "volumes": [{"name": "storage", "emptyDir": {}}],
            "terminationGracePeriodSeconds": 0,
        },
    }))
    .expect("the registry's Pod manifest is a Pod");
    let pod_error = |reason: String| {
        pod_failed(PodError::NotStarted {
            namespace: namespace.into(),
            name: NAME.into(),
            image: image.into(),
            hint: pod::hint(&reason),
            reason,
        })
    };
    pods.create(&PostParams::default(), &manifest).await.map_err(|source| {
        pod_failed(PodError::Api {
            what: "create",
            namespace: namespace.into(),
            name: NAME.into(),
            source: Box::new(source),
        })
    })?;
    pod::wait_running(&pods, NAME).await.map_err(pod_error)?;
    let facts = PodFacts::of(pods.get(NAME).await.map_err(KubeError::Client)?);
    let ip = facts.ip.clone().ok_or_else(|| pod_error("it runs without an address".into()))?;
    let (push, forward) = site.pod_port(client, &facts, PORT).await?;
    let url = format!("http://{push}/v2/");
    let since = Instant::now();
    while !answers(&crate::http::client(), &url).await {
        if since.elapsed() > ANSWER_TIMEOUT {
            return Err(pod_error(format!("it runs, but did not answer at {url} within {ANSWER_TIMEOUT:?}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((RegistryAddress { push, pull: format!("{ip}:{PORT}") }, forward))
}

fn pod_failed(e: PodError) -> DeployError {
    ComponentError::Runtime(e.into()).into()
}

/// Deletes its namespace, with the Pod.
async fn remove(client: &kube::Client, namespace: &str) {
    if let Err(e) = istio_kube::delete(client, &resources::owned_namespace(namespace)).await {
        tracing::error!(
            "cannot delete the registry's namespace {namespace}: {e}; the next run on the cluster removes it"
        );
    }
}
