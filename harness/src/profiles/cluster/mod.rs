//! The cluster profile: the scenarios run on a Kubernetes cluster with
//! istio installed, each with a gateway of its own as a Pod of the cluster
//! (`runtime::pod`), from the gateway image its node holds, configured by
//! the cluster's own istiod. Each scenario's resources are applied to the
//! cluster as written, in namespaces of the scenario's own, and removed
//! when it ends. Where the cluster is, and so how the run reaches it, is
//! its `Site`: the local cluster (`local`) or one a kubeconfig names
//! (`named`). Given a gateway installed in the cluster (a label selector),
//! the scenarios drive that one instead, one at a time (a lease), with
//! their WasmPlugins in its namespace. Given `--registry in-cluster`, the
//! run starts a registry as a Pod of the cluster (`registry`), which the
//! scenarios share.

mod local;
mod named;
mod registry;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use self::registry::InClusterRegistry;
use super::istio::{self, kube, resources, ControlPlaneAccess, Endpoints, GatewayRun, InstalledGateway};
use super::{Booting, Clock, DeployError, Deployment, Isolation, Names, Profile, ProfileKind, Stage};
use crate::cluster::facts::{self, ControlPlanePlace, PodFacts};
use crate::cluster::{manifests, ClusterError};
use crate::options::{GatewaySelector, Options, RegistryAddress, SharedRegistry};
use crate::provision;
use crate::runtime::container::{ContainerRuntime, LocalImage};
use crate::runtime::owner;
use crate::runtime::pod::{PodNetwork, PodRuntime};
use crate::runtime::port_forward::PortForward;
use crate::scenario::Feature;
use crate::targets::Needs;

/// What an istio gateway can do, and more as a Pod: start again in place.
const FEATURES: &[Feature] = &[
    Feature::AgentFetch,
    Feature::NewGateway,
    Feature::RestartedGateway,
    Feature::GatewayEnv,
    Feature::GatewayConcurrency,
    Feature::OwnRegistry,
    Feature::NativeFilters,
    Feature::TcpListeners,
];
/// What a gateway installed in the cluster lacks: it is not the run's to
/// replace, restart or set the environment of.
const NOT_INSTALLED: &[Feature] =
    &[Feature::NewGateway, Feature::RestartedGateway, Feature::GatewayEnv, Feature::GatewayConcurrency];
/// Where istio's agent has its Envoy's admin API listen, on the Pod's loopback.
const ADMIN_PORT: u16 = 15000;

/// istiod's debug port, on its Pod.
const ISTIOD_DEBUG_PORT: u16 = 8080;
/// How long the cluster's namespace controller may take to remove a run's namespaces.
const NAMESPACE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Cluster {
    /// Where the locks of port blocks are kept: gateway Pods share the node's network.
    port_locks: PathBuf,
    site: Box<dyn Site>,
    /// The gateway installed in the cluster that the scenarios drive, if the run names one.
    installed: Option<GatewaySelector>,
    /// Where the leases of installed gateways are kept.
    leases: PathBuf,
    /// Where the control plane runs: istiod, or Higress's controller.
    control_plane: ControlPlanePlace,
    /// The registry the scenarios share, if the run names one.
    registry: Option<SharedRegistry>,
    /// The registry started in the cluster, once a scenario needs it.
    in_cluster: OnceCell<InClusterRegistry>,
    /// Where the registry image's definition is (`images/`), and the
    /// registry program the run was given, if any.
    images: PathBuf,
    registry_program: Option<PathBuf>,
    /// A client of the cluster's API, made once per run.
    client: OnceCell<::kube::Client>,
    /// The cluster's istiod, found once per run (when earlier runs'
    /// leftovers are swept).
    access: OnceCell<Access>,
}

/// A cluster the profile runs on: how the run reaches its API and Pods,
/// and where the gateway Pods go.
#[async_trait(?Send)]
trait Site: Send + Sync {
    fn kubeconfig(&self) -> Option<&Path>;

    fn isolation(&self) -> Isolation;

    /// Where the run's registry and echo backends listen, if not on the run's own address.
    fn serve_at(&self) -> Option<Ipv4Addr> {
        None
    }

    /// Whether the stage can run here; if so, the gateway Pod's network and
    /// the address its listener binds.
    fn place(&self, stage: &Stage<'_>) -> Result<(PodNetwork, Ipv4Addr), DeployError>;

    /// Where the harness reaches `port` of a Pod on the cluster's Pod
    /// network (istiod's debug API, the registry in the cluster), and the
    /// port-forward that carries it there, if one does.
    async fn pod_port(
        &self,
        client: &::kube::Client,
        pod: &PodFacts,
        port: u16,
    ) -> Result<(String, Option<PortForward>), DeployError>;
}

struct Access {
    endpoints: Endpoints,
    /// The installed gateway's Pod, if the run names one.
    installed: Option<PodFacts>,
    /// The port-forward to istiod's debug API, on a named cluster.
    _debug: Option<PortForward>,
}

impl Cluster {
    pub fn new(options: &Options) -> Self {
        let site: Box<dyn Site> = match &options.cluster {
            Some(named) => Box::new(named::Named(named.clone())),
            None => Box::new(local::Local(crate::cluster::running(options))),
        };
        Cluster {
            port_locks: options.cache.join("ports"),
            site,
            installed: options.installed_gateway.clone(),
            leases: options.cache.join("gateways"),
            control_plane: if options.higress_controller { facts::HIGRESS } else { facts::ISTIOD },
            registry: options.shared_registry.clone(),
            in_cluster: OnceCell::new(),
            images: options.images.clone(),
            registry_program: options.registry.clone(),
            client: OnceCell::new(),
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
        let lacks = |f: &Feature| {
            (self.installed.is_some() && NOT_INSTALLED.contains(f))
                || (self.registry.is_some() && *f == Feature::OwnRegistry)
        };
        let mut features: Vec<Feature> = FEATURES.iter().copied().filter(|f| !lacks(f)).collect();
        if self.control_plane == facts::HIGRESS {
            features.push(Feature::HigressController);
        }
        Needs { features, programs: istio::PROGRAMS }
    }

    async fn shared_registry(&self) -> Result<Option<RegistryAddress>, DeployError> {
        match &self.registry {
            None => Ok(None),
            Some(SharedRegistry::Named(address)) => Ok(Some(address.clone())),
            Some(SharedRegistry::InCluster) => {
                let started = self.in_cluster.get_or_try_init(|| self.start_registry()).await?;
                Ok(Some(started.address.clone()))
            }
        }
    }

    fn isolation(&self) -> Isolation {
        self.site.isolation()
    }

    fn serve_at(&self) -> Option<Ipv4Addr> {
        self.site.serve_at()
    }

    fn names(&self) -> Names {
        match &self.installed {
            Some(installed) => Names::unique().on_installed_gateway(&installed.namespace),
            None => Names::unique(),
        }
    }

    async fn cluster_facts(&self) -> Option<facts::Facts> {
        let client = self.client().await.ok()?;
        let mut facts = facts::read(client).await.ok()?;
        if let Some(installed) = &self.installed {
            facts.installed_gateway = facts::installed_gateway(client, installed).await.ok();
        }
        Some(facts)
    }

    /// Removes the registry it started in the cluster, if any, then waits
    /// until the cluster's namespace controller has removed the namespaces
    /// of this run's scenarios and registry (each deleted when it ended;
    /// the controller waits 5 s before it starts), and says if any is left.
    async fn shutdown(&self) {
        if let Some(registry) = self.in_cluster.get() {
            registry.remove().await;
        }
        // Never connected: nothing deployed, none to wait for.
        let Some(client) = self.client.get() else { return };
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

    async fn deploy(&self, stage: &Stage<'_>, _booting: Booting) -> Result<Box<dyn Deployment>, DeployError> {
        let mut clock = Clock::default();
        let kit = stage.target.kit.as_ref().ok_or(DeployError::Unprovisioned("cluster"))?;
        let image = stage.target.image.clone().ok_or(DeployError::Unprovisioned("cluster"))?;
        let (network, bind) = self.site.place(stage)?;
        let access = self.access.get_or_try_init(|| self.connect(&kit.pin)).await?;
        let client = self.client().await?;
        clock.lap("control plane");
        let runtime =
            PodRuntime::new(client.clone(), stage.names.gateway_namespace(), ContainerRuntime { image }, network);
        let installed = match (&self.installed, &access.installed) {
            (Some(selector), Some(pod)) => {
                let lease = lease(&self.leases, selector).await?;
                clock.lap("installed gateway free");
                Some(InstalledGateway {
                    pod: runtime.attach(&pod.name, &stage.dir.join("gateway.log")),
                    namespace: pod.namespace.clone(),
                    labels: selector.labels.clone(),
                    admin_port: ADMIN_PORT,
                    lease,
                })
            }
            _ => None,
        };
        let control_plane =
            ControlPlaneAccess { endpoints: &access.endpoints, client: client.clone(), namespace_controller: true };
        let gateway = GatewayRun { runtime: Arc::new(runtime), bind, installed };
        Ok(Box::new(istio::deploy(stage, control_plane, gateway, &self.port_locks, clock).await?))
    }
}

/// Waits until no other scenario, of this process or another, drives the
/// installed gateway; the lease lasts as long as the file stays open.
async fn lease(dir: &Path, selector: &GatewaySelector) -> Result<std::fs::File, DeployError> {
    std::fs::create_dir_all(dir).map_err(DeployError::io(format!("cannot create {}", dir.display())))?;
    let name: String = format!("{}-{}", selector.namespace, selector.selector())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    let path = dir.join(format!("{name}.lock"));
    let file = std::fs::File::create(&path).map_err(DeployError::io(format!("cannot create {}", path.display())))?;
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .expect("the lease's task does not panic")
        .map_err(DeployError::io(format!("cannot lock {}", path.display())))
}

impl Cluster {
    /// The run's client of the cluster's API.
    async fn client(&self) -> Result<&::kube::Client, DeployError> {
        let connect = || async {
            let kubeconfig = self.site.kubeconfig().ok_or(DeployError::NoCluster)?;
            Ok::<_, DeployError>(manifests::client(kubeconfig).await?)
        };
        self.client.get_or_try_init(connect).await
    }

    /// istiod's endpoints on its Pod; first removes what runs killed
    /// outright left.
    async fn connect(&self, pin: &str) -> Result<Access, DeployError> {
        let client = self.client().await?;
        facts::may_create_namespaces(client).await?;
        let swept = kube::sweep_namespaces(client, resources::MANAGED_BY, resources::OWNER).await?;
        if !swept.is_empty() {
            tracing::info!("removing the namespaces runs killed outright left: {}", swept.join(", "));
        }
        let place = &self.control_plane;
        let missing = || if *place == facts::HIGRESS { DeployError::NoHigress } else { DeployError::NoIstiod };
        let istiod = facts::control_plane(client, place).await?.ok_or_else(missing)?;
        let ip = istiod.ip.clone().ok_or_else(missing)?;
        let (debug, forward) = self.site.pod_port(client, &istiod, ISTIOD_DEBUG_PORT).await?;
        let installed = match &self.installed {
            Some(selector) => Some(facts::installed_gateway(client, selector).await?),
            None => None,
        };
        let endpoints = Endpoints {
            xds: format!("{ip}:{}", facts::ISTIOD_XDS_PORT),
            debug,
            // istiod's debug API takes a token of its own service account
            // from callers beyond its loopback (as it takes istioctl's).
            debug_token: Some(kube::istiod_token(client, place.namespace, place.account).await?),
            pin: pin.to_owned(),
        };
        Ok(Access { endpoints, installed, _debug: forward })
    }
}

impl Cluster {
    /// The registry in the cluster, from plugproof's registry image (built
    /// here if need be; the cluster's nodes must hold it).
    async fn start_registry(&self) -> Result<InClusterRegistry, DeployError> {
        let client = self.client().await?;
        let program = provision::registry_binary(self.registry_program.as_deref()).map_err(ClusterError::from)?;
        let image = LocalImage::registry(&self.images, &program).build().await.map_err(ClusterError::from)?;
        InClusterRegistry::start(client, self.site.as_ref(), &image.reference).await
    }
}
