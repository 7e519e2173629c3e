//! Everything the library needs from outside, passed in as one value (as
//! Gateway API's conformance suite takes its options). Only the edges (the
//! CLI, the test binaries) read the environment, through `from_env`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The plugproof checkout this library was built from (a clone, or cargo's
/// checkout of a git dependency): where its plugins and pins are unless the
/// options say otherwise.
pub fn checkout() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Where fetched and built things are kept (Envoy, the istio kit, modules).
    pub cache: PathBuf,
    /// The Cargo workspace of the built-in test modules and its `modules.yaml`.
    pub plugins: PathBuf,
    /// The Go pins: `istio/<PIN>`, `kube-apiserver`, `etcd`.
    pub images: PathBuf,
    /// The `docker-registry` program; looked for on PATH when None.
    pub registry: Option<PathBuf>,
    /// Where reports and the evidence of failures go.
    pub report_dir: PathBuf,
    /// A control plane another process runs for this run (a nextest run's,
    /// see `profiles::istio::shared`); the istio profile boots its own when None.
    pub shared_control_plane: Option<Endpoints>,
    /// Credentials for the registries `oci:` modules come from.
    pub oci: OciAccess,
    /// The password of the scenarios' private registries and pull secrets
    /// (a new random one per scenario unless given: for tests that search
    /// what a run leaves for it).
    pub pull_password: Option<String>,
    /// The cluster the cluster target runs on, when not the local one.
    pub cluster: Option<NamedCluster>,
    /// A gateway installed in that cluster, which the cluster target's
    /// scenarios drive (one at a time) instead of each starting its own.
    pub installed_gateway: Option<GatewaySelector>,
    /// A registry the cluster target's scenarios share, pushing their
    /// modules to repositories of their own, instead of each running one.
    pub shared_registry: Option<SharedRegistry>,
    /// The cluster runs Higress's controller, which is the control plane
    /// of its (installed) gateway and translates Higress WasmPlugins.
    pub higress_controller: bool,
}

/// A registry the scenarios share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedRegistry {
    /// The user's (`--registry HOST:PORT`).
    Named(RegistryAddress),
    /// One the run starts as a Pod of the cluster (`--registry in-cluster`).
    InCluster,
}

/// A registry of the user's, serving plain HTTP: where this machine pushes
/// to it, and how the gateway names it (they differ for kind's local
/// registry: `localhost:5001` here, `kind-registry:5000` in the cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAddress {
    pub push: String,
    pub pull: String,
}

/// A gateway installed in a cluster: the namespace of its Pod, and labels
/// that select it there (`key=value`, comma-separated, as `kubectl -l`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySelector {
    pub namespace: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Letters, digits, `-`, `_`, `.` and `also`: a label key's or value's characters.
fn is_label(text: &str, also: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c) || also.contains(c))
}

impl GatewaySelector {
    /// From `--gateway-namespace` and `--gateway-selector`.
    pub fn parse(namespace: &str, selector: &str) -> Result<Self, String> {
        let labels = selector
            .split(',')
            .map(|term| match term.split_once('=') {
                Some((key, value)) if is_label(key, "/") && (value.is_empty() || is_label(value, "")) => {
                    Ok((key.to_owned(), value.to_owned()))
                }
                _ => Err(format!(
                    "the gateway selector `{selector}` has `{term}`; give labels as key=value, comma-separated \
                     (istio's ingress gateway: istio=ingressgateway); only equality selects a gateway here"
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(GatewaySelector { namespace: namespace.to_owned(), labels })
    }

    /// As `kubectl -l` takes it.
    pub fn selector(&self) -> String {
        self.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
    }
}

/// A Kubernetes cluster with istio installed, named by a kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCluster {
    pub kubeconfig: PathBuf,
    /// An address of this machine that the cluster's Pods reach: the run's
    /// registry and echo backends listen there.
    pub pods_reach: std::net::Ipv4Addr,
}

impl Options {
    /// The plugins and pins of the plugproof checkout at `root`, the user's
    /// cache folder, and reports in `report_dir`.
    pub fn for_checkout(root: &Path, report_dir: PathBuf) -> Self {
        Options {
            cache: dirs::cache_dir()
                .map_or_else(|| std::env::temp_dir().join("plugproof-cache"), |d| d.join("plugproof")),
            plugins: root.join("plugins"),
            images: root.join("images"),
            registry: None,
            report_dir,
            shared_control_plane: None,
            oci: OciAccess::default(),
            pull_password: None,
            cluster: None,
            installed_gateway: None,
            shared_registry: None,
            higress_controller: false,
        }
    }

    /// `for_checkout`, overridden by `PLUGPROOF_CACHE`, `PLUGPROOF_PLUGINS`,
    /// `PLUGPROOF_IMAGES`, `PLUGPROOF_REGISTRY` and `PLUGPROOF_REPORT_DIR`;
    /// `PLUGPROOF_OCI_USERNAME` and `PLUGPROOF_OCI_PASSWORD` log in to the
    /// registries of `oci:` modules, and `PLUGPROOF_OCI_CA_FILE` is the CA
    /// they are spoken to over TLS with. For the edges only.
    pub fn from_env(root: &Path, report_dir: PathBuf) -> Self {
        let var = |name| std::env::var_os(name).map(PathBuf::from);
        let defaults = Options::for_checkout(root, report_dir);
        Options {
            cache: var("PLUGPROOF_CACHE").unwrap_or(defaults.cache),
            plugins: var("PLUGPROOF_PLUGINS").unwrap_or(defaults.plugins),
            images: var("PLUGPROOF_IMAGES").unwrap_or(defaults.images),
            registry: var("PLUGPROOF_REGISTRY"),
            report_dir: var("PLUGPROOF_REPORT_DIR").unwrap_or(defaults.report_dir),
            shared_control_plane: None,
            oci: OciAccess {
                login: match (std::env::var("PLUGPROOF_OCI_USERNAME"), std::env::var("PLUGPROOF_OCI_PASSWORD")) {
                    (Ok(username), Ok(password)) => Some(OciAuth { username, password }),
                    _ => None,
                },
                ca: var("PLUGPROOF_OCI_CA_FILE"),
            },
            pull_password: None,
            cluster: None,
            installed_gateway: None,
            shared_registry: None,
            higress_controller: false,
        }
    }
}

/// How a gateway and the harness reach a control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// istiod's plaintext XDS (`HOST:PORT`).
    pub xds: String,
    /// istiod's debug API (`HOST:PORT`).
    pub debug: String,
    /// What it takes for istiod to answer there (a service account token), if anything.
    #[serde(default)]
    pub debug_token: Option<String>,
    /// The kit's pin, which a scenario's target must match.
    pub pin: String,
}

/// How to reach the registries the user names (`oci:`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OciAccess {
    pub login: Option<OciAuth>,
    /// A CA certificate (PEM) to trust: then every such registry is spoken
    /// to over TLS, a loopback one too (plain HTTP otherwise).
    pub ca: Option<PathBuf>,
}

/// Credentials for registries the user names (`oci:`), if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OciAuth {
    pub username: String,
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_selector_is_labels_by_equality() {
        let selector =
            GatewaySelector::parse("istio-ingress", "istio=ingressgateway,app.kubernetes.io/name=gw").unwrap();
        assert_eq!(selector.selector(), "app.kubernetes.io/name=gw,istio=ingressgateway");
        for wrong in ["istio!=x", "istio", "=x", "istio in (a)", "a=b=c", "a=b,"] {
            let error = GatewaySelector::parse("ns", wrong).expect_err(wrong);
            assert!(error.contains("give labels as key=value"), "{wrong}: {error}");
        }
    }
}
