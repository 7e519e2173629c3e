//! The cluster profile: the scenarios run on a Kubernetes cluster with
//! istio installed, each with a gateway of its own as a Pod of the cluster
//! (`runtime::pod`), from the gateway image its node holds, configured by
//! the cluster's own istiod. Each scenario's resources are applied to the
//! cluster as written, in namespaces of the scenario's own, and removed
//! when it ends. The cluster is one of two sites:
//! - the local one `plugproof cluster up` boots: the run joins its node's
//!   network namespace, where the gateway Pod (on the node's network), the
//!   run's registry and echo backends, and istiod's Pod reach each other
//!   directly;
//! - one a kubeconfig names (`NamedCluster`): the gateway Pod is on the
//!   cluster's Pod network, and the harness reaches it and istiod's debug
//!   API through the API's port-forwards; the run's registry and echo
//!   backends listen on an address of this machine that the Pods reach.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::kube::api::{Api, PostParams};
use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use tokio::sync::OnceCell;

use super::istio::{self, kube, resources, ControlPlaneAccess, Endpoints, GatewayRun};
use super::{Clock, DeployError, Deployment, Isolation, Names, Profile, ProfileKind, Stage};
use crate::cluster::{facts, manifests, LocalCluster};
use crate::options::{NamedCluster, Options};
use crate::runtime::container::ContainerRuntime;
use crate::runtime::isolation::is_isolated;
use crate::runtime::owner;
use crate::runtime::pod::{PodNetwork, PodRuntime};
use crate::runtime::port_forward::PortForward;
use crate::targets::Needs;

/// istiod's plaintext XDS and debug ports, on its Pod.
const ISTIOD_XDS_PORT: u16 = 15010;
const ISTIOD_DEBUG_PORT: u16 = 8080;
/// istiod's service account (istio's chart names it), and the audience its tokens are checked for.
const ISTIOD_ACCOUNT: &str = "istiod";
const ISTIOD_AUDIENCE: &str = "istio-ca";
/// How long the cluster's namespace controller may take to remove a run's namespaces.
const NAMESPACE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Cluster {
    /// Where the locks of port blocks are kept: gateway Pods share the node's network.
    port_locks: PathBuf,
    site: Site,
    /// The cluster's API and istiod, found once per run (when earlier
    /// runs' leftovers are swept).
    access: OnceCell<Access>,
}

/// Which cluster the scenarios run on.
enum Site {
    /// The local cluster, if it is up.
    Local(Option<LocalCluster>),
    Named(NamedCluster),
}

struct Access {
    client: ::kube::Client,
    endpoints: Endpoints,
    /// The port-forward to istiod's debug API, on a named cluster.
    _debug: Option<PortForward>,
}

impl Cluster {
    pub fn new(options: &Options) -> Self {
        let site = match &options.cluster {
            Some(named) => Site::Named(named.clone()),
            None => Site::Local(crate::cluster::running(options)),
        };
        Cluster { port_locks: options.cache.join("ports"), site, access: OnceCell::new() }
    }

    fn kubeconfig(&self) -> Option<&std::path::Path> {
        match &self.site {
            Site::Local(local) => local.as_ref().map(|l| l.kubeconfig.as_path()),
            Site::Named(named) => Some(&named.kubeconfig),
        }
    }
}

#[async_trait(?Send)]
impl Profile for Cluster {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Cluster
    }

    fn needs(&self) -> Needs {
        istio::NEEDS
    }

    fn isolation(&self) -> Isolation {
        match &self.site {
            Site::Local(local) => Isolation::Join(local.as_ref().and_then(LocalCluster::node_pid)),
            Site::Named(_) => Isolation::None,
        }
    }

    fn serve_at(&self) -> Option<std::net::Ipv4Addr> {
        match &self.site {
            Site::Local(_) => None,
            Site::Named(named) => Some(named.pods_reach),
        }
    }

    fn names(&self) -> Names {
        Names::unique()
    }

    async fn cluster_facts(&self) -> Option<facts::Facts> {
        let client = manifests::client(self.kubeconfig()?).await.ok()?;
        facts::read(&client).await.ok()
    }

    /// Waits until the cluster's namespace controller has removed the
    /// namespaces of this run's scenarios (each deleted when it ended; the
    /// controller waits 5 s before it starts), and says if any is left.
    async fn shutdown(&self) {
        // No scenario deployed: none to wait for.
        let Some(Access { client, .. }) = self.access.get() else { return };
        let me = owner::me();
        let started = Instant::now();
        loop {
            match kube::owned_namespaces(client, resources::MANAGED_BY, resources::OWNER, &me).await {
                Ok(left) if left.is_empty() => return,
                Ok(left) if started.elapsed() > NAMESPACE_TIMEOUT => {
                    tracing::error!(
                        "the cluster still holds this run's namespaces {} {NAMESPACE_TIMEOUT:?} after they were deleted; \
                         the next run on it removes them",
                        left.join(", ")
                    );
                    return;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                Err(e) => {
                    tracing::error!("cannot list this run's namespaces in the cluster: {e}");
                    return;
                }
            }
        }
    }

    async fn deploy(&self, stage: &Stage<'_>) -> Result<Box<dyn Deployment>, DeployError> {
        let mut clock = Clock::default();
        let kit = stage.target.kit.as_ref().ok_or(DeployError::Unprovisioned("cluster"))?;
        let image = stage.target.image.clone().ok_or(DeployError::Unprovisioned("cluster"))?;
        let (network, bind) = match &self.site {
            Site::Local(local) => {
                if !is_isolated() {
                    return Err(DeployError::NotIsolated);
                }
                let local = local.as_ref().ok_or(DeployError::NoCluster)?;
                if kit.pin != local.pin {
                    return Err(DeployError::PinMismatch { running: local.pin.clone(), wanted: kit.pin.clone() });
                }
                if image.reference != local.gateway_image {
                    return Err(DeployError::ClusterImage {
                        holds: local.gateway_image.clone(),
                        wanted: image.reference,
                    });
                }
                (PodNetwork::Node, stage.loopback.ip())
            }
            // Its nodes hold the image plugproof built (the user loads it, as `kind load` does).
            Site::Named(_) => (PodNetwork::Pods, std::net::Ipv4Addr::UNSPECIFIED),
        };
        let access = self.access.get_or_try_init(|| self.connect(&kit.pin)).await?;
        clock.lap("control plane");
        let runtime = Arc::new(PodRuntime::new(
            access.client.clone(),
            stage.names.gateway_namespace(),
            ContainerRuntime { image },
            network,
        ));
        let control_plane = ControlPlaneAccess {
            endpoints: &access.endpoints,
            client: access.client.clone(),
            namespace_controller: true,
        };
        let gateway = GatewayRun { runtime, bind };
        Ok(Box::new(istio::deploy(stage, control_plane, gateway, &self.port_locks, clock).await?))
    }
}

impl Cluster {
    /// A client of the cluster's API, and istiod's endpoints on its Pod
    /// (its debug API forwarded, on a named cluster); first removes what
    /// runs killed outright left.
    async fn connect(&self, pin: &str) -> Result<Access, DeployError> {
        let client = manifests::client(self.kubeconfig().ok_or(DeployError::NoCluster)?).await?;
        facts::may_create_namespaces(&client).await?;
        let swept = kube::sweep_namespaces(&client, resources::MANAGED_BY, resources::OWNER).await?;
        if !swept.is_empty() {
            tracing::info!("removing the namespaces runs killed outright left: {}", swept.join(", "));
        }
        let facts = facts::read(&client).await?;
        let istiod = facts.istiod().ok_or(DeployError::NoIstiod)?;
        let ip = istiod.ip.clone().ok_or(DeployError::NoIstiod)?;
        let (debug, forward) = match &self.site {
            Site::Local(_) => (format!("{ip}:{ISTIOD_DEBUG_PORT}"), None),
            Site::Named(_) => {
                let pods = Api::namespaced(client.clone(), facts::ISTIO_NAMESPACE);
                let forward = PortForward::start(pods, &istiod.name, ISTIOD_DEBUG_PORT)
                    .await
                    .map_err(DeployError::io("cannot listen on loopback to forward istiod's debug API"))?;
                (forward.local().to_string(), Some(forward))
            }
        };
        let endpoints = Endpoints {
            xds: format!("{ip}:{ISTIOD_XDS_PORT}"),
            debug,
            debug_token: Some(debug_token(&client).await?),
            pin: pin.to_owned(),
        };
        Ok(Access { client, endpoints, _debug: forward })
    }
}

/// A token of istiod's own service account, which its debug API takes
/// from callers beyond its loopback (as it takes istioctl's).
async fn debug_token(client: &::kube::Client) -> Result<String, DeployError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), facts::ISTIO_NAMESPACE);
    let request: TokenRequest = serde_json::from_value(serde_json::json!({
        "spec": {"audiences": [ISTIOD_AUDIENCE], "expirationSeconds": 3600}
    }))
    .expect("a TokenRequest");
    let issued = accounts
        .create_token_request(ISTIOD_ACCOUNT, &PostParams::default(), &request)
        .await
        .map_err(istio::KubeError::Client)?;
    Ok(issued.status.and_then(|s| s.token).unwrap_or_default())
}
