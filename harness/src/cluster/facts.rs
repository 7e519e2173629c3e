//! What a cluster says of itself, read through its API: the server's
//! version, its nodes (ready or not, their kubelets' versions), and the
//! Pods of istio's namespace with their images. What the cluster target
//! records of the cluster it runs on, and what `cluster status` shows.

use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::Client;
use serde::{Deserialize, Serialize};

use super::ClusterError;
use crate::options::GatewaySelector;

/// The namespace istio is installed in.
pub const ISTIO_NAMESPACE: &str = "istio-system";
/// istiod's plaintext XDS port, on its Pod.
pub const ISTIOD_XDS_PORT: u16 = 15010;
/// The label of scenarios' namespaces, whose value is `plugproof`.
pub const SCENARIO_LABEL: &str = "app.kubernetes.io/managed-by";

/// Where a cluster's control plane runs, and the service account whose
/// tokens its debug API takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlPlanePlace {
    pub namespace: &'static str,
    /// What its Pod's name starts with.
    pub pod: &'static str,
    pub account: &'static str,
}

/// istio's istiod, as its charts install it.
pub const ISTIOD: ControlPlanePlace =
    ControlPlanePlace { namespace: ISTIO_NAMESPACE, pod: "istiod", account: "istiod" };
/// Higress's controller, as its chart installs it: its Pod's `discovery`
/// container is Higress's istiod, which serves its gateways.
pub const HIGRESS: ControlPlanePlace =
    ControlPlanePlace { namespace: "higress-system", pod: "higress-controller", account: "higress-controller" };

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub server: String,
    pub nodes: Vec<NodeFacts>,
    pub istio_pods: Vec<PodFacts>,
    /// Namespaces of scenarios (labelled as plugproof's), being removed or not.
    #[serde(default)]
    pub scenario_namespaces: Vec<String>,
    /// The installed gateway the run drove, if it drove one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_gateway: Option<PodFacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    pub name: String,
    pub ready: bool,
    pub kubelet: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodFacts {
    #[serde(default)]
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub images: Vec<String>,
    /// Its address, once it has one.
    pub ip: Option<String>,
}

/// Reads them.
pub async fn read(client: &Client) -> Result<Facts, ClusterError> {
    let unreachable = |e: kube::Error| ClusterError::Unreachable(e.to_string());
    let server = client.apiserver_version().await.map_err(unreachable)?.git_version;
    let nodes = Api::<Node>::all(client.clone()).list(&ListParams::default()).await.map_err(unreachable)?;
    let nodes = nodes
        .items
        .into_iter()
        .map(|node| {
            let status = node.status.unwrap_or_default();
            let ready = status.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Ready" && c.status == "True");
            NodeFacts {
                name: node.metadata.name.unwrap_or_default(),
                ready,
                kubelet: status.node_info.map(|i| i.kubelet_version).unwrap_or_default(),
            }
        })
        .collect();
    let pods = Api::<Pod>::namespaced(client.clone(), ISTIO_NAMESPACE)
        .list(&ListParams::default())
        .await
        .map_err(unreachable)?;
    let istio_pods = pods.items.into_iter().map(PodFacts::of).collect();
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(&format!("{SCENARIO_LABEL}=plugproof")))
        .await
        .map_err(unreachable)?;
    let scenario_namespaces = namespaces.items.into_iter().filter_map(|n| n.metadata.name).collect();
    Ok(Facts { server, nodes, istio_pods, scenario_namespaces, installed_gateway: None })
}

/// The running Pod, with an address, of the control plane at `place`.
pub async fn control_plane(client: &Client, place: &ControlPlanePlace) -> Result<Option<PodFacts>, ClusterError> {
    let pods = Api::<Pod>::namespaced(client.clone(), place.namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| ClusterError::Unreachable(e.to_string()))?;
    Ok(pods.items.into_iter().map(PodFacts::of).find(|p| p.is(place)))
}

/// The one running Pod that `selector` selects: an installed gateway's.
pub async fn installed_gateway(client: &Client, selector: &GatewaySelector) -> Result<PodFacts, ClusterError> {
    let labels = selector.selector();
    let pods = Api::<Pod>::namespaced(client.clone(), &selector.namespace)
        .list(&ListParams::default().labels(&labels))
        .await
        .map_err(|e| ClusterError::Unreachable(e.to_string()))?;
    let (running, others): (Vec<PodFacts>, Vec<PodFacts>) =
        pods.items.into_iter().map(PodFacts::of).partition(|p| p.phase == "Running" && p.ip.is_some());
    let namespace = selector.namespace.clone();
    match <[PodFacts; 1]>::try_from(running) {
        Ok([pod]) => Ok(pod),
        Err(running) if running.is_empty() => Err(ClusterError::NoGateway {
            namespace,
            selector: labels,
            others: others.iter().map(|p| format!("{} {}", p.name, p.phase)).collect::<Vec<_>>().join(", "),
        }),
        Err(running) => Err(ClusterError::Gateways {
            namespace,
            selector: labels,
            count: running.len(),
            pods: running.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "),
        }),
    }
}

impl PodFacts {
    /// Whether it is the control plane at `place`, running with an address.
    fn is(&self, place: &ControlPlanePlace) -> bool {
        self.name.starts_with(place.pod) && self.phase == "Running" && self.ip.is_some()
    }

    pub fn of(pod: Pod) -> Self {
        let status = pod.status.unwrap_or_default();
        PodFacts {
            namespace: pod.metadata.namespace.unwrap_or_default(),
            name: pod.metadata.name.unwrap_or_default(),
            phase: status.phase.unwrap_or_default(),
            images: pod.spec.map(|s| s.containers.into_iter().filter_map(|c| c.image).collect()).unwrap_or_default(),
            ip: status.pod_ip,
        }
    }
}

/// Fails unless the client's user may create namespaces (each scenario
/// runs in namespaces of its own), as the API's access review says.
pub async fn may_create_namespaces(client: &Client) -> Result<(), ClusterError> {
    let review: SelfSubjectAccessReview = serde_json::from_value(serde_json::json!({
        "spec": {"resourceAttributes": {"verb": "create", "resource": "namespaces"}}
    }))
    .expect("a SelfSubjectAccessReview");
    let reviewed = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| ClusterError::Unreachable(e.to_string()))?;
    match reviewed.status {
        Some(status) if status.allowed => Ok(()),
        status => Err(ClusterError::Forbidden {
            what: "create namespaces".into(),
            reason: status.and_then(|s| s.reason).unwrap_or_default(),
        }),
    }
}

impl Facts {
    /// istiod's Pod, if one runs.
    pub fn istiod(&self) -> Option<&PodFacts> {
        self.istio_pods.iter().find(|p| p.is(&ISTIOD))
    }
}

impl std::fmt::Display for Facts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "server {}", self.server)?;
        for node in &self.nodes {
            let ready = if node.ready { "Ready" } else { "NotReady" };
            writeln!(f, "node {} {ready} kubelet {}", node.name, node.kubelet)?;
        }
        for pod in &self.istio_pods {
            writeln!(f, "pod {ISTIO_NAMESPACE}/{} {} {}", pod.name, pod.phase, pod.images.join(","))?;
        }
        if let Some(pod) = &self.installed_gateway {
            writeln!(f, "installed gateway {}/{} {} {}", pod.namespace, pod.name, pod.phase, pod.images.join(","))?;
        }
        match self.scenario_namespaces.as_slice() {
            [] => writeln!(f, "scenario namespaces: none")?,
            names => writeln!(f, "scenario namespaces: {}", names.join(" "))?,
        }
        Ok(())
    }
}
