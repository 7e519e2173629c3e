//! A control plane's starting state, made once per kit: etcd's data after
//! istio's and the Gateway API's CRDs (Established) and the namespaces
//! were applied. Each run
//! starts etcd from a copy, saving the seconds CRD registration takes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::kube::{self, KubeError};
use crate::components::apiserver::{ApiServer, Serving};
use crate::components::etcd::Etcd;
use crate::files::copy_tree;
use crate::profiles::DeployError;
use crate::provision::IstioKit;
use crate::report::progress::Progress;

use crate::mesh::{GATEWAY_NAMESPACE, ROOT_NAMESPACE};

/// The template's folder in the kit: named for what it holds, so that a
/// kit made before the Gateway API's CRDs were added makes it anew.
const TEMPLATE: &str = "etcd-template-gateway-api";

/// The etcd data folder to copy, made now if the kit has none yet.
pub async fn etcd_template(kit: &IstioKit, scratch: &Path) -> Result<PathBuf, DeployError> {
    let template = kit.state.join(TEMPLATE);
    if template.join("member").is_dir() {
        return Ok(template);
    }
    let lock_path = kit.state.join(format!("{TEMPLATE}.lock"));
    let lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let file = std::fs::File::create(&lock_path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .expect("taking a file lock does not panic")
    .map_err(DeployError::io("cannot lock the etcd template"))?;
    if template.join("member").is_dir() {
        return Ok(template);
    }
    let progress =
        Progress::start("preparing the control plane's starting state (istio and Gateway API CRDs), once per kit");
    let result = make(kit, scratch, &template).await;
    progress.finish(result.is_ok());
    drop(lock);
    result.map(|()| template)
}

async fn make(kit: &IstioKit, scratch: &Path, template: &Path) -> Result<(), DeployError> {
    let data = scratch.join("etcd");
    std::fs::create_dir_all(scratch).map_err(DeployError::io("cannot create the template's scratch folder"))?;
    let etcd = Etcd::start(&kit.etcd, &data, &scratch.join("etcd.log")).await?;
    let apiserver =
        ApiServer::start(&kit.apiserver, &kit.credentials, &scratch.join("apiserver"), Serving::Loopback).await?;
    install(kit).await?;
    apiserver.stop().await;
    etcd.stop().await;
    let partial = template.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    copy_tree(&data, &partial, &[]).map_err(DeployError::io("cannot save the etcd template"))?;
    std::fs::rename(&partial, template).map_err(DeployError::io("cannot save the etcd template"))
}

/// istio's and the Gateway API's CRDs, established, and the namespaces
/// the profile uses.
async fn install(kit: &IstioKit) -> Result<(), DeployError> {
    let client = kube::client()?;
    let mut names = Vec::new();
    for file in [&kit.crds, &kit.gateway_api_crds] {
        let text = std::fs::read_to_string(file).map_err(DeployError::io("cannot read the kit's CRDs"))?;
        let objects: Vec<Value> =
            serde_saphyr::from_multiple(&text).map_err(|e| KubeError::Invalid(format!("{}: {e}", file.display())))?;
        for crd in objects.iter().filter(|o| o["kind"] == "CustomResourceDefinition") {
            kube::apply(&client, crd).await?;
            names.push(crd["metadata"]["name"].as_str().unwrap_or_default().to_owned());
        }
    }
    for namespace in [ROOT_NAMESPACE, GATEWAY_NAMESPACE] {
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        kube::apply(&client, &object).await?;
    }
    kube::wait_established(&client, &names, Duration::from_secs(60)).await?;
    Ok(())
}
