//! The local cluster's kit (`plugproof cluster up`): the Kubernetes programs
//! built from the `images/kubernetes` pin (kube-controller-manager,
//! kube-scheduler, kubelet, kube-proxy; the API server and etcd are the
//! istio kit's),
//! Helm from the `images/helm` pin (it renders istio's charts), Debian's
//! containerd, runc and CNI plugins (`ci/setup-cluster` installs them), and
//! a static `pause` for the Pod sandbox, compiled from `images/pause`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::go::{self, GoProgram};
use super::{Cache, ProvisionError};

/// Sets the version the programs report, as a release build does.
const KUBERNETES_LDFLAGS: &str = "-s -w -X k8s.io/component-base/version.gitVersion=v1.36.1 \
     -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36";

const CONTROLLER_MANAGER: GoProgram = GoProgram {
    name: "kube-controller-manager",
    package: "k8s.io/kubernetes/cmd/kube-controller-manager",
    tags: "",
    ldflags: KUBERNETES_LDFLAGS,
    build_version_var: None,
    nosumdb: "",
    cold_build: "a few minutes after the API server",
};

const SCHEDULER: GoProgram = GoProgram {
    name: "kube-scheduler",
    package: "k8s.io/kubernetes/cmd/kube-scheduler",
    tags: "",
    ldflags: KUBERNETES_LDFLAGS,
    build_version_var: None,
    nosumdb: "",
    cold_build: "a minute or two after the API server",
};

const KUBE_PROXY: GoProgram = GoProgram {
    name: "kube-proxy",
    package: "k8s.io/kubernetes/cmd/kube-proxy",
    tags: "",
    ldflags: KUBERNETES_LDFLAGS,
    build_version_var: None,
    nosumdb: "",
    cold_build: "a minute or two after the kubelet",
};

const KUBELET: GoProgram = GoProgram {
    name: "kubelet",
    package: "k8s.io/kubernetes/cmd/kubelet",
    tags: "",
    ldflags: KUBERNETES_LDFLAGS,
    build_version_var: None,
    nosumdb: "",
    cold_build: "about 7 minutes on 2 cores",
};

const HELM: GoProgram = GoProgram {
    name: "helm",
    package: "helm.sh/helm/v4/cmd/helm",
    tags: "",
    ldflags: "-s -w",
    build_version_var: None,
    nosumdb: "",
    cold_build: "a few minutes",
};

/// Debian's programs the node runs, and where its CNI plugins are.
const CONTAINERD: &str = "/usr/bin/containerd";
const CTR: &str = "/usr/bin/ctr";
const RUNC: &str = "/usr/sbin/runc";
pub const CNI_PLUGINS: &str = "/usr/lib/cni";

#[derive(Debug, Clone)]
pub struct ClusterKit {
    pub controller_manager: PathBuf,
    pub scheduler: PathBuf,
    pub kubelet: PathBuf,
    pub kube_proxy: PathBuf,
    pub helm: PathBuf,
    pub containerd: PathBuf,
    pub ctr: PathBuf,
    pub cni_plugins: PathBuf,
    /// The Pod sandbox's static program.
    pub pause: PathBuf,
}

/// Blocking: builds what is missing (the first time, about ten minutes on
/// 2 cores after the istio kit), with progress.
pub fn cluster_kit(cache: &Cache, images: &Path) -> Result<ClusterKit, ProvisionError> {
    for (program, path) in
        [("containerd", CONTAINERD), ("ctr", CTR), ("runc", RUNC), ("the CNI bridge plugin", "/usr/lib/cni/bridge")]
    {
        if !Path::new(path).exists() {
            return Err(ProvisionError::Missing {
                what: program.to_owned(),
                path: path.into(),
                hint: "run ci/setup-cluster (Debian's containerd, runc and containernetworking-plugins)".into(),
            });
        }
    }
    let version = go::go_version()?;
    let kubernetes = images.join("kubernetes");
    let controller_manager = go::build(cache, &CONTROLLER_MANAGER, &kubernetes, &version)?;
    let scheduler = go::build(cache, &SCHEDULER, &kubernetes, &version)?;
    let kubelet = go::build(cache, &KUBELET, &kubernetes, &version)?;
    let kube_proxy = go::build(cache, &KUBE_PROXY, &kubernetes, &version)?;
    let helm = go::build(cache, &HELM, &images.join("helm"), &version)?;
    let pause = pause(cache, &images.join("pause/pause.c"))?;
    Ok(ClusterKit {
        controller_manager,
        scheduler,
        kubelet,
        kube_proxy,
        helm,
        containerd: CONTAINERD.into(),
        ctr: CTR.into(),
        cni_plugins: CNI_PLUGINS.into(),
        pause,
    })
}

/// `pause.c` compiled static, cached by its source.
fn pause(cache: &Cache, source: &Path) -> Result<PathBuf, ProvisionError> {
    use sha2::Digest;
    let text = std::fs::read(source).map_err(ProvisionError::io("cannot read", source))?;
    let key = hex::encode(&sha2::Sha256::digest(&text)[..8]);
    let dir = cache.path(&format!("pause-{key}"));
    let binary = dir.join("pause");
    cache.fill(
        &format!("pause-{key}"),
        "compiling the Pod sandbox's pause (gcc -static)".to_owned(),
        || binary.exists(),
        || {
            std::fs::create_dir_all(&dir).map_err(ProvisionError::io("cannot create", &dir))?;
            let mut cmd = Command::new("gcc");
            cmd.args(["-static", "-O2", "-o"]).arg(&binary).arg(source);
            super::run_logged(cmd, &dir.join("gcc.log"))
        },
    )?;
    Ok(binary)
}
