//! A cluster a kubeconfig names (`--kubeconfig`): the gateway Pod is on
//! the cluster's Pod network, and the harness reaches it and istiod's debug
//! API through the API's port-forwards; the run's registry and echo
//! backends listen on an address of this machine that the Pods reach. Its
//! nodes hold the gateway image plugproof built (the user loads it, as
//! `kind load` does).

use std::net::Ipv4Addr;
use std::path::Path;

use ::kube::api::Api;
use async_trait::async_trait;

use super::Site;
use crate::cluster::facts::PodFacts;
use crate::options::NamedCluster;
use crate::profiles::{DeployError, Isolation, Stage};
use crate::runtime::pod::PodNetwork;
use crate::runtime::port_forward::PortForward;

pub(super) struct Named(pub NamedCluster);

#[async_trait(?Send)]
impl Site for Named {
    fn kubeconfig(&self) -> Option<&Path> {
        Some(&self.0.kubeconfig)
    }

    fn isolation(&self) -> Isolation {
        Isolation::None
    }

    fn serve_at(&self) -> Option<Ipv4Addr> {
        Some(self.0.pods_reach)
    }

    /// The listener binds every address of the gateway Pod's own network
    /// namespace (a listener on its loopback alone, reached through the
    /// same port-forward, left `gateway: replace` waiting on a request in
    /// 2 of 4 runs, against none of many this way).
    fn place(&self, _stage: &Stage<'_>) -> Result<(PodNetwork, Ipv4Addr), DeployError> {
        Ok((PodNetwork::Pods, Ipv4Addr::UNSPECIFIED))
    }

    async fn pod_port(
        &self,
        client: &::kube::Client,
        pod: &PodFacts,
        port: u16,
    ) -> Result<(String, Option<PortForward>), DeployError> {
        let pods = Api::namespaced(client.clone(), &pod.namespace);
        let forward = PortForward::start(pods, &pod.name, port).await.map_err(DeployError::io(format!(
            "cannot listen on loopback to forward port {port} of Pod {}",
            pod.name
        )))?;
        Ok((forward.local().to_string(), Some(forward)))
    }
}
