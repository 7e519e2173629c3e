//! A kind-like local cluster (`plugproof cluster up | down`): one real
//! Kubernetes node, booted by a daemon in network, mount and PID namespaces
//! of its own (`node`), with istio installed from the pin's own charts
//! through Helm and its istiod and gateway running as Pods from images
//! built here (`local`), and an ingress gateway installed as a user's
//! cluster has one (`ingress`). The cluster profile (`profiles::cluster`) runs the
//! suite on it, or on a cluster a kubeconfig names.

mod config;
pub mod facts;
pub mod ingress;
mod local;
pub mod manifests;
mod node;

pub use config::{NODE_IP, NODE_NAME};
pub use local::{down, kits, running, serve, sweep, up, LocalCluster, DAEMON_ENV};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Component(#[from] crate::components::ComponentError),
    #[error(transparent)]
    Provision(#[from] crate::provision::ProvisionError),
    #[error(transparent)]
    Container(#[from] crate::runtime::container::ContainerError),
    #[error("the node's network: {0}")]
    Network(String),
    #[error("the node's images: {0}")]
    Image(String),
    #[error("the kubeconfig {0}; name one that reaches your cluster (--kubeconfig or KUBECONFIG)")]
    Kubeconfig(String),
    #[error("the cluster's API cannot be reached: {0}; is the cluster up (`plugproof cluster status`), and does the kubeconfig name it?")]
    Unreachable(String),
    #[error("the kubeconfig's user may not {what} in the cluster{}; plugproof runs each scenario in namespaces of its own and removes them after: use a user that may (on a test cluster, one bound to cluster-admin)", if reason.is_empty() { String::new() } else { format!(" ({reason})") })]
    Forbidden { what: String, reason: String },
    #[error("a manifest: {0}")]
    Manifest(String),
    #[error("applying {kind} {name}: {message}")]
    Apply { kind: String, name: String, message: String },
    #[error("{0} was not ready in time")]
    NotReady(String),
    #[error("rendering istio's charts with Helm: {0}")]
    Helm(String),
    #[error(
        "the local cluster did not come up: {reason}; its daemon's log ({}, beside the node's and its Pods' logs) ends:\n{tail}",
        log.display()
    )]
    NotUp { reason: String, log: std::path::PathBuf, tail: String },
    #[error("no running Pod in namespace {namespace} has the labels {selector}{}; name the gateway's Pod by its labels and namespace (`kubectl get pods -n {namespace} --show-labels` lists them), or leave out --gateway-selector to give each scenario a gateway Pod of its own", if others.is_empty() { String::new() } else { format!(" (these have them but do not run: {others})") })]
    NoGateway { namespace: String, selector: String, others: String },
    #[error("{count} running Pods in namespace {namespace} have the labels {selector} ({pods}); plugproof drives one gateway Pod: narrow the selector, or scale the gateway to one replica")]
    Gateways { namespace: String, selector: String, count: usize, pods: String },
    #[error("the local cluster needs root (its node runs in namespaces of its own); run as root")]
    NeedsRoot,
}
