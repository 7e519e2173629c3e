//! Applying resources to the run's kube-apiserver with the `kube` crate
//! (server-side apply, as `kubectl apply --server-side` does).

use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::{json, Value};

use crate::components::apiserver::{TOKEN, URL};

const FIELD_MANAGER: &str = "plugproof";

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("cannot reach the kube-apiserver: {0}")]
    Client(#[source] kube::Error),
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("the CRDs were not established within {0:?}: {1}")]
    NotEstablished(Duration, String),
}

/// A client for the run's apiserver (self-signed certificate, admin token).
pub fn client() -> Result<Client, KubeError> {
    crate::http::install_crypto_provider();
    let mut config = kube::Config::new(URL.parse().expect("a valid URL"));
    config.accept_invalid_certs = true;
    config.auth_info.token = Some(TOKEN.to_owned().into());
    Client::try_from(config).map_err(KubeError::Client)
}

fn api_for(client: &Client, object: &Value) -> Result<(Api<DynamicObject>, String), KubeError> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    if kind.is_empty() || name.is_empty() {
        return Err(KubeError::Invalid(format!("an object without kind or name: {object}")));
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    let api = match object["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    Ok((api, name))
}

/// Creates or updates `object`.
pub async fn apply(client: &Client, object: &Value) -> Result<(), KubeError> {
    let (api, name) = api_for(client, object)?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(object)).await.map_err(|source| KubeError::Apply {
        kind: object["kind"].as_str().unwrap_or_default().to_owned(),
        name,
        source,
    })?;
    Ok(())
}

/// Deletes `object` (gone already counts as done).
pub async fn delete(client: &Client, object: &Value) -> Result<(), KubeError> {
    let (api, name) = api_for(client, object)?;
    match api.delete(&name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(KubeError::Apply {
            kind: format!("{} (delete)", object["kind"].as_str().unwrap_or_default()),
            name,
            source,
        }),
    }
}

/// Removes an emptied namespace. With no controller manager to finalize
/// it, the harness does what its namespace controller would: delete, then
/// clear the finalizers.
pub async fn remove_namespace(client: &Client, name: &str) -> Result<(), KubeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let failed = |source| KubeError::Apply { kind: "Namespace (delete)".into(), name: name.to_owned(), source };
    match api.delete(name, &Default::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
        Err(source) => return Err(failed(source)),
    }
    let finalized =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {"finalizers": []}});
    match api.replace_subresource("finalize", name, &PostParams::default(), &finalized).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(failed(source)),
    }
}

/// Deletes the namespaces labelled `label=value` whose owner (annotation
/// `owner`, a `runtime::owner` identity) is gone: what runs killed outright
/// left. The cluster's namespace controller removes what is in them.
pub async fn sweep_namespaces(client: &Client, label: &str, owner: &str) -> Result<Vec<String>, KubeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut swept = Vec::new();
    for (namespace, owned_by) in labelled_namespaces(client, label, owner).await? {
        let Some(name) = namespace.metadata.name else { continue };
        if namespace.metadata.deletion_timestamp.is_none() && crate::runtime::owner::gone(&owned_by) {
            match api.delete(&name, &Default::default()).await {
                Ok(_) => swept.push(name),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => return Err(KubeError::Apply { kind: "Namespace (delete)".into(), name, source }),
            }
        }
    }
    Ok(swept)
}

/// Whether a namespace is being removed, or is gone.
pub async fn namespace_terminating(client: &Client, name: &str) -> Result<bool, KubeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let namespace = api.get_opt(name).await.map_err(KubeError::Client)?;
    Ok(namespace.is_none_or(|n| n.metadata.deletion_timestamp.is_some()))
}

/// The namespaces labelled `label=plugproof` whose annotation `owner` is `me`.
pub async fn owned_namespaces(client: &Client, label: &str, owner: &str, me: &str) -> Result<Vec<String>, KubeError> {
    let labelled = labelled_namespaces(client, label, owner).await?;
    Ok(labelled.into_iter().filter(|(_, owned_by)| owned_by == me).filter_map(|(n, _)| n.metadata.name).collect())
}

/// The namespaces labelled `label=plugproof`, each with its annotation `owner` (empty if none).
async fn labelled_namespaces(client: &Client, label: &str, owner: &str) -> Result<Vec<(Namespace, String)>, KubeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let list = api
        .list(&kube::api::ListParams::default().labels(&format!("{label}=plugproof")))
        .await
        .map_err(KubeError::Client)?;
    Ok(list
        .items
        .into_iter()
        .map(|n| {
            let owned_by = n.metadata.annotations.as_ref().and_then(|a| a.get(owner)).cloned().unwrap_or_default();
            (n, owned_by)
        })
        .collect())
}

/// Whether a namespace still exists.
pub async fn namespace_exists(client: &Client, name: &str) -> Result<bool, KubeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.get_opt(name).await.map(|n| n.is_some()).map_err(KubeError::Client)
}

/// Waits until every CRD in `names` is Established.
pub async fn wait_established(client: &Client, names: &[String], timeout: Duration) -> Result<(), KubeError> {
    let resource =
        ApiResource::from_gvk(&GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"));
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let started = Instant::now();
    loop {
        let list = api.list(&Default::default()).await.map_err(KubeError::Client)?;
        let established: Vec<String> = list
            .items
            .iter()
            .filter(|crd| {
                crd.data["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            })
            .filter_map(|crd| crd.metadata.name.clone())
            .collect();
        let missing: Vec<&String> = names.iter().filter(|n| !established.contains(n)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(KubeError::NotEstablished(timeout, format!("{missing:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The audience istiod checks the tokens it is given for (its CA's, and
/// its XDS and debug APIs').
pub const ISTIOD_AUDIENCE: &str = "istio-ca";

/// A token of the service account `namespace/account` for istiod, valid an hour.
pub async fn istiod_token(client: &Client, namespace: &str, account: &str) -> Result<String, KubeError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request: TokenRequest = serde_json::from_value(json!({
        "spec": {"audiences": [ISTIOD_AUDIENCE], "expirationSeconds": 3600}
    }))
    .expect("a TokenRequest");
    let issued =
        accounts.create_token_request(account, &PostParams::default(), &request).await.map_err(KubeError::Client)?;
    Ok(issued.status.and_then(|s| s.token).unwrap_or_default())
}
