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

/// The namespace istio is installed in.
pub const ISTIO_NAMESPACE: &str = "istio-system";
/// The label of scenarios' namespaces, whose value is `plugproof`.
pub const SCENARIO_LABEL: &str = "app.kubernetes.io/managed-by";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub server: String,
    pub nodes: Vec<NodeFacts>,
    pub istio_pods: Vec<PodFacts>,
    /// Namespaces of scenarios (labelled as plugproof's), being removed or not.
    #[serde(default)]
    pub scenario_namespaces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    pub name: String,
    pub ready: bool,
    pub kubelet: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodFacts {
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
    let istio_pods = pods
        .items
        .into_iter()
        .map(|pod| {
            let status = pod.status.unwrap_or_default();
            PodFacts {
                name: pod.metadata.name.unwrap_or_default(),
                phase: status.phase.unwrap_or_default(),
                images: pod
                    .spec
                    .map(|s| s.containers.into_iter().filter_map(|c| c.image).collect())
                    .unwrap_or_default(),
                ip: status.pod_ip,
            }
        })
        .collect();
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(&format!("{SCENARIO_LABEL}=plugproof")))
        .await
        .map_err(unreachable)?;
    let scenario_namespaces = namespaces.items.into_iter().filter_map(|n| n.metadata.name).collect();
    Ok(Facts { server, nodes, istio_pods, scenario_namespaces })
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
        self.istio_pods.iter().find(|p| p.name.starts_with("istiod") && p.phase == "Running" && p.ip.is_some())
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
        match self.scenario_namespaces.as_slice() {
            [] => writeln!(f, "scenario namespaces: none")?,
            names => writeln!(f, "scenario namespaces: {}", names.join(" "))?,
        }
        Ok(())
    }
}
