//! The istio kit: istiod (pilot-discovery) and pilot-agent from the
//! `istio.io/istio` module, the kube-apiserver and etcd they run against,
//! and the files taken from the same istio module (Envoy's bootstrap
//! template, the CRDs). Everything is built once per pin and cached.

use std::path::{Path, PathBuf};

use std::process::Command;

use super::go::{self, GoProgram};
use super::{Cache, ProvisionError};
use crate::components::apiserver::{Credentials, TOKEN};
use crate::translate::IstiodVersion;

/// The version istiod and pilot-agent report (pilot-agent sends it to
/// istiod, which gates features on it) comes from `images/istio/build-version`:
/// the Go proxy serves only pseudo-versions of istio, which carry no release.
const ISTIO_BUILD_VERSION_VAR: &str = "istio.io/istio/pkg/version.buildVersion";
/// Served by the proxy but unknown to the checksum database.
const ISTIO_NOSUMDB: &str = "github.com/agentgateway/agentgateway";

const PILOT_DISCOVERY: GoProgram = GoProgram {
    name: "pilot-discovery",
    package: "istio.io/istio/pilot/cmd/pilot-discovery",
    tags: "vtprotobuf,disable_pgv",
    ldflags: "",
    build_version_var: Some(ISTIO_BUILD_VERSION_VAR),
    nosumdb: ISTIO_NOSUMDB,
    cold_build: "about 14 minutes on 2 cores",
};

const PILOT_AGENT: GoProgram = GoProgram {
    name: "pilot-agent",
    package: "istio.io/istio/pilot/cmd/pilot-agent",
    tags: "agent,disable_pgv",
    ldflags: "",
    build_version_var: Some(ISTIO_BUILD_VERSION_VAR),
    nosumdb: ISTIO_NOSUMDB,
    cold_build: "under a minute after istiod",
};

const KUBE_APISERVER: GoProgram = GoProgram {
    name: "kube-apiserver",
    package: "k8s.io/kubernetes/cmd/kube-apiserver",
    tags: "",
    ldflags: "-s -w -X k8s.io/component-base/version.gitVersion=v1.36.1 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36",
    build_version_var: None,
    nosumdb: "",
    cold_build: "about 10 minutes on 2 cores",
};

const ETCD: GoProgram = GoProgram {
    name: "etcd",
    package: "go.etcd.io/etcd/server/v3",
    tags: "",
    ldflags: "",
    build_version_var: None,
    nosumdb: "",
    cold_build: "about a minute",
};

/// The istio pin used unless a target names another: a folder of `images/istio`.
pub const DEFAULT_PIN: &str = "1.30-9739e10eb9d7";

/// The istio pins under `images`: the folders of `images/istio`, sorted.
pub fn pins(images: &Path) -> Vec<String> {
    let mut pins: Vec<String> = std::fs::read_dir(images.join("istio"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("go.mod").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    pins.sort();
    pins
}

/// The pin named `name`, or the only one starting with it.
pub fn pin(images: &Path, name: &str) -> Result<String, ProvisionError> {
    let all = pins(images);
    if all.iter().any(|p| p == name) {
        return Ok(name.to_owned());
    }
    match all.iter().filter(|p| p.starts_with(name)).collect::<Vec<_>>().as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(ProvisionError::UnknownPin {
            pin: name.to_owned(),
            images: images.join("istio"),
            known: all.join(", "),
        }),
    }
}

#[derive(Debug, Clone)]
pub struct IstioKit {
    /// The pin it was built from, and the version its istiod reports.
    pub pin: String,
    pub version: IstiodVersion,
    pub discovery: PathBuf,
    pub agent: PathBuf,
    pub apiserver: PathBuf,
    pub etcd: PathBuf,
    /// Envoy's bootstrap template for pilot-agent, from the istio module.
    pub bootstrap_template: PathBuf,
    /// istio's CRDs (`crd-all.gen.yaml`), from the istio module.
    pub crds: PathBuf,
    /// The Gateway API's standard CRDs, from the version the istio module requires.
    pub gateway_api_crds: PathBuf,
    /// The apiserver's service-account keys and admin token.
    pub credentials: Credentials,
    /// Where this kit keeps what it makes once (keys, the etcd template).
    pub state: PathBuf,
}

/// Blocking: builds what is missing for `pin` (the first time, about half
/// an hour on 2 cores), with progress.
pub fn istio_kit(cache: &Cache, images: &Path, pin: &str) -> Result<IstioKit, ProvisionError> {
    let pin_dir = images.join("istio").join(pin);
    let build_version = pin_dir.join("build-version");
    let text =
        std::fs::read_to_string(&build_version).map_err(ProvisionError::io("cannot read the pin", &build_version))?;
    let istiod =
        IstiodVersion::parse(&text).map_err(|message| ProvisionError::Catalog { path: build_version, message })?;
    let version = go::go_version()?;
    let discovery = go::build(cache, &PILOT_DISCOVERY, &pin_dir, &version)?;
    let agent = go::build(cache, &PILOT_AGENT, &pin_dir, &version)?;
    let apiserver = go::build(cache, &KUBE_APISERVER, &images.join("kube-apiserver"), &version)?;
    let etcd = go::build(cache, &ETCD, &images.join("etcd"), &version)?;
    let state = discovery.parent().expect("a built binary lives in a folder").join("kit");
    let kit = IstioKit {
        pin: pin.to_owned(),
        version: istiod,
        bootstrap_template: state.join("envoy_bootstrap.json"),
        crds: state.join("crd-all.gen.yaml"),
        gateway_api_crds: state.join("gateway-api-crds.yaml"),
        credentials: Credentials {
            service_account_key: state.join("sa.key"),
            service_account_pub: state.join("sa.pub"),
            token_file: state.join("tokens.csv"),
        },
        discovery,
        agent,
        apiserver,
        etcd,
        state,
    };
    // Parallel test processes provision at once: one makes the files, under
    // the lock, and the token file, made last, says they are complete.
    cache.fill(
        &format!("istio-kit-{pin}"),
        format!("preparing the istio kit of pin {pin} (templates, keys)"),
        || kit.credentials.token_file.exists(),
        || make_state(&kit, &pin_dir),
    )?;
    cache.fill(
        &format!("istio-kit-{pin}-gateway-api"),
        format!("taking the Gateway API CRDs istio pin {pin} requires"),
        || kit.gateway_api_crds.exists(),
        || gateway_api_crds(&kit.gateway_api_crds, &pin_dir),
    )?;
    Ok(kit)
}

/// The Gateway API's standard-channel CRDs, from the module the istio
/// module requires, in one file (written whole, then renamed into place).
fn gateway_api_crds(to: &Path, pin_dir: &Path) -> Result<(), ProvisionError> {
    let dir = module_dir(pin_dir, GATEWAY_API_MODULE)?.join("config/crd/standard");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(ProvisionError::io("cannot list the Gateway API CRDs", &dir))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("gateway.networking.k8s.io_")))
        .collect();
    files.sort();
    let mut all = String::new();
    for file in &files {
        all.push_str(&std::fs::read_to_string(file).map_err(ProvisionError::io("cannot read", file))?);
        all.push_str("\n---\n");
    }
    let partial = to.with_extension("partial");
    std::fs::write(&partial, all).map_err(ProvisionError::io("cannot write", &partial))?;
    std::fs::rename(&partial, to).map_err(ProvisionError::io("cannot write", to))
}

/// The files of the kit taken from the istio module (Envoy's bootstrap
/// template, the CRDs), and the apiserver's credentials.
fn make_state(kit: &IstioKit, pin_dir: &Path) -> Result<(), ProvisionError> {
    std::fs::create_dir_all(&kit.state).map_err(ProvisionError::io("cannot create", &kit.state))?;
    let module = module_dir(pin_dir, "istio.io/istio")?;
    for (from, to) in [
        ("tools/packaging/common/envoy_bootstrap.json", &kit.bootstrap_template),
        ("manifests/charts/base/files/crd-all.gen.yaml", &kit.crds),
    ] {
        let src = module.join(from);
        std::fs::copy(&src, to).map_err(ProvisionError::io("cannot copy from the istio module", &src))?;
    }
    credentials(&kit.state, &kit.credentials)
}

/// A service-account signing key (ECDSA P-256, made with openssl) and a
/// token file naming the admin token, the token file last.
fn credentials(state: &Path, credentials: &Credentials) -> Result<(), ProvisionError> {
    let key = credentials.service_account_key.to_string_lossy().into_owned();
    let public = credentials.service_account_pub.to_string_lossy().into_owned();
    for args in [
        vec!["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &key],
        vec!["ec", "-in", &key, "-pubout", "-out", &public],
    ] {
        let mut cmd = Command::new("openssl");
        cmd.args(&args);
        super::run_logged(cmd, &state.join("openssl.log")).map_err(|e| match e {
            ProvisionError::Spawn { command, message } => {
                ProvisionError::Spawn { command, message: format!("{message}; install openssl (ci/setup does)") }
            }
            other => other,
        })?;
    }
    std::fs::write(&credentials.token_file, format!("{TOKEN},admin,admin,\"system:masters\"\n"))
        .map_err(ProvisionError::io("cannot write", &credentials.token_file))
}

/// The istio module of `pin` (a folder of `images/istio`), in the Go module
/// cache: its charts and packaging files.
pub fn istio_module(images: &Path, pin: &str) -> Result<PathBuf, ProvisionError> {
    module_dir(&images.join("istio").join(pin), "istio.io/istio")
}

/// The module the Gateway API's CRDs come from.
const GATEWAY_API_MODULE: &str = "sigs.k8s.io/gateway-api";

/// The folder, in the Go module cache, of `module` as the pin requires it.
fn module_dir(pin: &Path, module: &str) -> Result<PathBuf, ProvisionError> {
    let out = go::go(pin, ISTIO_NOSUMDB)
        .args(["list", "-m", "-f", "{{.Dir}}", module])
        .output()
        .map_err(|e| ProvisionError::GoMissing(e.to_string()))?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !Path::new(&dir).is_dir() {
        return Err(ProvisionError::Build {
            command: format!("go list -m {module}"),
            log: pin.to_owned(),
            tail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_made_with_openssl() {
        let state = tempfile::tempdir().expect("a temp dir");
        let made = Credentials {
            service_account_key: state.path().join("sa.key"),
            service_account_pub: state.path().join("sa.pub"),
            token_file: state.path().join("tokens.csv"),
        };
        credentials(state.path(), &made).expect("openssl makes the keys");
        let key = std::fs::read_to_string(&made.service_account_key).expect("the key");
        assert!(key.contains("BEGIN EC PRIVATE KEY"), "{key}");
        let public = std::fs::read_to_string(&made.service_account_pub).expect("the public key");
        assert!(public.contains("BEGIN PUBLIC KEY"), "{public}");
        let tokens = std::fs::read_to_string(&made.token_file).expect("the token file");
        assert!(tokens.ends_with(",admin,admin,\"system:masters\"\n"), "{tokens}");
    }
}
