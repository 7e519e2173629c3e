//! `apply` and `delete`: change the WasmPlugins in force, as `kubectl apply`
//! and `kubectl delete` would; the profile brings the system in line.

use crate::profiles::{Deployment, Stage};
use crate::scenario::WasmPlugin;

pub async fn apply(stage: &mut Stage<'_>, deployment: &mut Deployment, resource: &WasmPlugin) -> Result<(), String> {
    match stage.resources.iter_mut().find(|r| r.namespace == resource.namespace && r.name == resource.name) {
        Some(existing) => *existing = resource.clone(),
        None => stage.resources.push(resource.clone()),
    }
    deployment.sync(stage).await.map_err(|e| e.to_string())
}

pub async fn delete(
    stage: &mut Stage<'_>,
    deployment: &mut Deployment,
    namespace: &str,
    name: &str,
) -> Result<(), String> {
    stage.resources.retain(|r| !(r.namespace == namespace && r.name == name));
    deployment.sync(stage).await.map_err(|e| e.to_string())
}
