//! `push`: a module pushed under a plugin's repository and tag, re-pointing
//! the tag; WasmPlugins bound to the plugin's digest follow it.

use crate::oci::{repository, RegistryClient};
use crate::profiles::{Deployment, Published, Stage};
use crate::provision::Tools;
use crate::scenario::Plugin;

/// Pushes `module` as `plugin`'s repository and tag, in its layout.
pub async fn publish(tools: &Tools, registry: &str, plugin: &Plugin, module: &str) -> Result<Published, String> {
    let path = tools.modules.path(module);
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read module {}: {e}", path.display()))?;
    let repository = repository(&plugin.name);
    let client = RegistryClient::new(registry);
    let digest = client.push(&repository, &plugin.tag, &bytes, plugin.layout).await.map_err(|e| e.to_string())?;
    Ok(Published { repository, tag: plugin.tag.clone(), digest })
}

pub async fn run(stage: &mut Stage<'_>, deployment: &mut Deployment, plugin: &str, module: &str) -> Result<(), String> {
    let declared = &stage.scenario.plugins[plugin];
    let pushed = publish(stage.tools, stage.registry.host(), declared, module).await?;
    stage.published.insert(plugin.to_owned(), pushed);
    deployment.sync(stage).await.map_err(|e| e.to_string())
}
