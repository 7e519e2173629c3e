//! Talking to a cluster from a kubeconfig: the client, applying manifests
//! as written (server-side apply; each kind's scope and plural found by the
//! API server's discovery, so any kind a chart renders can be applied),
//! and waiting for the node and workloads to be ready.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{pinned_kind, Scope};
use kube::Client;
use serde_json::Value;

use super::node::until;
use super::ClusterError;

const FIELD_MANAGER: &str = "plugproof";

/// A client from `kubeconfig` (its current context).
pub async fn client(kubeconfig: &Path) -> Result<Client, ClusterError> {
    crate::http::install_crypto_provider();
    let text = std::fs::read_to_string(kubeconfig)
        .map_err(|source| ClusterError::Io { what: format!("cannot read {}", kubeconfig.display()), source })?;
    let config = kube::config::Kubeconfig::from_yaml(&text)
        .map_err(|e| ClusterError::Kubeconfig(format!("{}: {e}", kubeconfig.display())))?;
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(config, &options)
        .await
        .map_err(|e| ClusterError::Kubeconfig(format!("{}: {e}", kubeconfig.display())))?;
    Client::try_from(config).map_err(|e| ClusterError::Kubeconfig(e.to_string()))
}

/// Every object of a multi-document YAML file, CustomResourceDefinitions and
/// Namespaces first (what the others need), then in file order.
pub fn objects(text: &str) -> Result<Vec<Value>, String> {
    let mut objects: Vec<Value> = Vec::new();
    for document in serde_saphyr::from_multiple::<Value>(text).map_err(|e| e.to_string())? {
        match document {
            Value::Null => {}
            Value::Object(o) if o.is_empty() => {}
            Value::Object(o) if o.get("kind").and_then(Value::as_str) == Some("List") => {
                objects.extend(o.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
            }
            object => objects.push(object),
        }
    }
    let first = |o: &Value| !matches!(o["kind"].as_str(), Some("CustomResourceDefinition" | "Namespace"));
    objects.sort_by_key(first);
    Ok(objects)
}

/// Applies every object of a manifest file.
pub async fn apply_file(client: &Client, file: &Path) -> Result<(), ClusterError> {
    let text = std::fs::read_to_string(file)
        .map_err(|source| ClusterError::Io { what: format!("cannot read {}", file.display()), source })?;
    let objects = objects(&text).map_err(|e| ClusterError::Manifest(format!("{}: {e}", file.display())))?;
    let mut crds = false;
    for object in &objects {
        let is_crd = object["kind"] == "CustomResourceDefinition";
        if crds && !is_crd {
            // The API server serves a new kind once its definition is established.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        crds = is_crd;
        apply(client, object).await?;
    }
    Ok(())
}

/// Creates or updates `object` as written.
pub async fn apply(client: &Client, object: &Value) -> Result<(), ClusterError> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let failed = |message: String| ClusterError::Apply { kind: kind.to_owned(), name: name.to_owned(), message };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = pinned_kind(client, &gvk).await.map_err(|e| failed(e.to_string()))?;
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Namespaced => {
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default");
            Api::namespaced_with(client.clone(), namespace, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(name, &params, &Patch::Apply(object)).await.map_err(|e| failed(e.to_string()))?;
    Ok(())
}

/// Waits until the node reports Ready.
pub async fn wait_node_ready(client: &Client, name: &str, timeout: Duration) -> Result<(), ClusterError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let ready = || async {
        let node = nodes.get_opt(name).await.ok().flatten();
        let conditions = node.and_then(|n| n.status).and_then(|s| s.conditions).unwrap_or_default();
        conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
    };
    if until(timeout, ready).await {
        Ok(())
    } else {
        Err(ClusterError::NotReady(format!("node {name} (its kubelet's log says why)")))
    }
}

/// Waits until a Deployment has every replica available.
pub async fn wait_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let ready = || async {
        let deployment = deployments.get_opt(name).await.ok().flatten();
        deployment.is_some_and(|d| {
            let wanted = d.spec.and_then(|s| s.replicas).unwrap_or(1);
            d.status.and_then(|s| s.available_replicas).unwrap_or(0) >= wanted
        })
    };
    if until(timeout, ready).await {
        Ok(())
    } else {
        Err(ClusterError::NotReady(format!("Deployment {namespace}/{name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_and_namespaces_come_first() {
        let text = "kind: ServiceAccount\nmetadata: {name: a}\n---\n---\nkind: Namespace\nmetadata: {name: n}\n---\n\
                    kind: CustomResourceDefinition\nmetadata: {name: c}\n";
        let kinds: Vec<String> =
            objects(text).unwrap().iter().map(|o| o["kind"].as_str().unwrap().to_owned()).collect();
        assert_eq!(kinds, ["Namespace", "CustomResourceDefinition", "ServiceAccount"]);
    }
}
