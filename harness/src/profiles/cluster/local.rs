//! The local cluster `plugproof cluster up` boots: the run joins its
//! node's network namespace, where the gateway Pod (on the node's
//! network), the run's registry and echo backends, and istiod's Pod reach
//! each other directly.

use std::net::Ipv4Addr;
use std::path::Path;

use async_trait::async_trait;

use super::Site;
use crate::cluster::facts::PodFacts;
use crate::cluster::LocalCluster;
use crate::profiles::{DeployError, Isolation, Stage};
use crate::runtime::isolation::is_isolated;
use crate::runtime::pod::PodNetwork;
use crate::runtime::port_forward::PortForward;

/// The local cluster, if it is up.
pub(super) struct Local(pub Option<LocalCluster>);

#[async_trait(?Send)]
impl Site for Local {
    fn kubeconfig(&self) -> Option<&Path> {
        self.0.as_ref().map(|l| l.kubeconfig.as_path())
    }

    fn isolation(&self) -> Isolation {
        Isolation::Join(self.0.as_ref().and_then(LocalCluster::node_pid))
    }

    /// The node runs what `plugproof cluster up` installed: the target must be that.
    fn place(&self, stage: &Stage<'_>) -> Result<(PodNetwork, Ipv4Addr), DeployError> {
        if !is_isolated() {
            return Err(DeployError::NotIsolated);
        }
        let local = self.0.as_ref().ok_or(DeployError::NoCluster)?;
        let kit = stage.target.kit.as_ref().ok_or(DeployError::Unprovisioned("cluster"))?;
        if kit.pin != local.pin {
            return Err(DeployError::PinMismatch { running: local.pin.clone(), wanted: kit.pin.clone() });
        }
        let image = stage.target.image.as_ref().ok_or(DeployError::Unprovisioned("cluster"))?;
        if image.reference != local.gateway_image {
            return Err(DeployError::ClusterImage {
                holds: local.gateway_image.clone(),
                wanted: image.reference.clone(),
            });
        }
        Ok((PodNetwork::Node, stage.loopback.ip()))
    }

    /// Direct: the run is on the node's network, which reaches the Pods'.
    async fn pod_port(
        &self,
        _client: &::kube::Client,
        pod: &PodFacts,
        port: u16,
    ) -> Result<(String, Option<PortForward>), DeployError> {
        let ip = pod.ip.as_ref().ok_or_else(|| DeployError::NoAddress(pod.name.clone()))?;
        Ok((format!("{ip}:{port}"), None))
    }
}
