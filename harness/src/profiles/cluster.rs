//! The cluster profile: the scenarios run on a Kubernetes cluster with
//! istio installed, each with a gateway of its own as a Pod of the cluster
//! (`runtime::pod`), from the gateway image its node holds, configured by
//! the cluster's own istiod. Each scenario's resources are applied to the
//! cluster as written, in namespaces of the scenario's own, and removed
//! when it ends. The cluster is the local one `plugproof cluster up`
//! boots: the run joins its node's network namespace, where the gateway
//! Pod (on the node's network), the run's registry and echo backends, and
//! istiod's Pod reach each other directly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::kube::api::{Api, PostParams};
use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use tokio::sync::OnceCell;

use super::istio::{self, kube, resources, ControlPlaneAccess, Endpoints};
use super::{Clock, DeployError, Deployment, Isolation, Names, Profile, ProfileKind, Stage};
use crate::cluster::{facts, manifests, LocalCluster};
use crate::options::Options;
use crate::runtime::container::ContainerRuntime;
use crate::runtime::isolation::is_isolated;
use crate::runtime::owner;
use crate::runtime::pod::PodRuntime;
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
    /// The local cluster, if it is up.
    local: Option<LocalCluster>,
    /// The cluster's API and istiod, found once per run (when earlier
    /// runs' leftovers are swept).
    access: OnceCell<(::kube::Client, Endpoints)>,
}

impl Cluster {
    pub fn new(options: &Options) -> Self {
        Cluster {
            port_locks: options.cache.join("ports"),
            local: crate::cluster::running(options),
            access: OnceCell::new(),
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
        Isolation::Join(self.local.as_ref().and_then(LocalCluster::node_pid))
    }

    fn names(&self) -> Names {
        Names::unique()
    }

    async fn cluster_facts(&self) -> Option<facts::Facts> {
        let client = manifests::client(&self.local.as_ref()?.kubeconfig).await.ok()?;
        facts::read(&client).await.ok()
    }

    /// Waits until the cluster's namespace controller has removed the
    /// namespaces of this run's scenarios (each deleted when it ended; the
    /// controller waits 5 s before it starts), and says if any is left.
    async fn shutdown(&self) {
        // No scenario deployed: none to wait for.
        let Some((client, _)) = self.access.get() else { return };
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
        if !is_isolated() {
            return Err(DeployError::NotIsolated);
        }
        let mut clock = Clock::default();
        let local = self.local.as_ref().ok_or(DeployError::NoCluster)?;
        let kit = stage.target.kit.as_ref().ok_or(DeployError::Unprovisioned("cluster"))?;
        if kit.pin != local.pin {
            return Err(DeployError::PinMismatch { running: local.pin.clone(), wanted: kit.pin.clone() });
        }
        let image = stage.target.image.clone().ok_or(DeployError::Unprovisioned("cluster"))?;
        if image.reference != local.gateway_image {
            return Err(DeployError::ClusterImage { holds: local.gateway_image.clone(), wanted: image.reference });
        }
        let (client, endpoints) = self.access.get_or_try_init(|| access(local)).await?;
        clock.lap("control plane");
        let runtime =
            Arc::new(PodRuntime::new(client.clone(), stage.names.gateway_namespace(), ContainerRuntime { image }));
        let control_plane = ControlPlaneAccess { endpoints, client: client.clone(), namespace_controller: true };
        Ok(Box::new(istio::deploy(stage, control_plane, runtime, &self.port_locks, clock).await?))
    }
}

/// A client of the cluster's API, and istiod's endpoints on its Pod; first
/// removes what runs killed outright left.
async fn access(local: &LocalCluster) -> Result<(::kube::Client, Endpoints), DeployError> {
    let client = manifests::client(&local.kubeconfig).await?;
    let swept = kube::sweep_namespaces(&client, resources::MANAGED_BY, resources::OWNER).await?;
    if !swept.is_empty() {
        tracing::info!("removing the namespaces runs killed outright left: {}", swept.join(", "));
    }
    let facts = facts::read(&client).await?;
    let ip = facts.istiod().and_then(|p| p.ip.clone()).ok_or(DeployError::NoIstiod)?;
    let endpoints = Endpoints {
        xds: format!("{ip}:{ISTIOD_XDS_PORT}"),
        debug: format!("{ip}:{ISTIOD_DEBUG_PORT}"),
        debug_token: Some(debug_token(&client).await?),
        pin: local.pin.clone(),
    };
    Ok((client, endpoints))
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
