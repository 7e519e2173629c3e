//! `push`, `apply`, `delete`: changes to what is deployed. A push re-points
//! a plugin's tag at another module (WasmPlugins bound to the plugin's
//! digest follow it); apply and delete change the WasmPlugins in force, as
//! `kubectl apply` and `kubectl delete` would. The profile then brings the
//! running system in line.

use crate::oci::{repository, RegistryClient};
use crate::profiles::{Deployment, Published, Stage};
use crate::provision::Tools;
use crate::scenario::{Change, Plugin};

/// Pushes `module` as `plugin`'s repository and tag, in its layout.
pub async fn publish(
    tools: &Tools,
    registry: &RegistryClient,
    plugin: &Plugin,
    module: &str,
) -> Result<Published, String> {
    let path = tools.modules.path(module);
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read module {}: {e}", path.display()))?;
    let repository = repository(&plugin.name);
    let digest = registry.push(&repository, &plugin.tag, &bytes, plugin.layout).await.map_err(|e| e.to_string())?;
    Ok(Published { repository, tag: plugin.tag.clone(), digest })
}

pub async fn run(stage: &mut Stage<'_>, deployment: &mut Deployment, change: &Change) -> Result<(), String> {
    match change {
        Change::Push { plugin, module } => {
            let declared = &stage.scenario.plugins[plugin];
            let pushed = publish(stage.tools, stage.registry.client(), declared, module).await?;
            stage.published.insert(plugin.clone(), pushed);
        }
        Change::Apply(resource) => {
            match stage.resources.iter_mut().find(|r| r.namespace == resource.namespace && r.name == resource.name) {
                Some(existing) => *existing = (**resource).clone(),
                None => stage.resources.push((**resource).clone()),
            }
        }
        Change::Delete { namespace, name } => {
            stage.resources.retain(|r| !(&r.namespace == namespace && &r.name == name));
        }
    }
    deployment.sync(stage).await.map_err(|e| e.to_string())
}
