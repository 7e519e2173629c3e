//! `push`, `apply`, `delete`: changes to what is deployed. A push re-points
//! a plugin's tag at another module (WasmPlugins bound to the plugin's
//! digest follow it); apply and delete change the WasmPlugins in force, as
//! `kubectl apply` and `kubectl delete` would. The profile then brings the
//! running system in line, and the step lasts until the gateway has taken
//! or refused what that changes for it.

use std::time::Duration;

use crate::assert::{Check, Verdict};
use crate::components::envoy::updates::{Update, UpdateKind};
use crate::components::registry::ModuleRegistry;
use crate::failure::{Failure, FailureKind};
use crate::profiles::ModuleUse;
use crate::profiles::{Deployment, InForce, Published, Stage};
use crate::provision::{ModuleError, Tools};
use crate::scenario::{Change, ModuleSource, Plugin, UpdateExpect};

/// Finds, fetches or builds `module` and pushes it as `plugin`'s repository
/// and tag, in its layout; `at` says where the scenario names it.
pub async fn publish(
    tools: &Tools,
    registry: &dyn ModuleRegistry,
    plugin: &Plugin,
    module: &ModuleSource,
    at: &str,
) -> Result<(Published, ModuleUse), Failure> {
    let file = tools.sources.resolve(module).await.map_err(|error| {
        let kind = match error {
            ModuleError::Build { .. } | ModuleError::Pull { .. } => FailureKind::Provisioning,
            _ => FailureKind::Setup,
        };
        Failure::new(kind, format!("{at}: plugin `{}`: {error}", plugin.name))
    })?;
    let setup = |message: String| Failure::new(FailureKind::Setup, message);
    let bytes = std::fs::read(&file.path)
        .map_err(|e| setup(format!("{at}: cannot read the module {}: {e}", file.path.display())))?;
    let repository = registry.repository(&plugin.name);
    let digest = registry
        .push(&repository, &plugin.tag, &bytes, plugin.layout)
        .await
        .map_err(|e| setup(format!("{at}: plugin `{}`: {e}", plugin.name)))?;
    let published = Published { repository, tag: plugin.tag.clone(), digest };
    let record = published.record(&plugin.name, &file);
    Ok((published, record))
}

/// Makes the change and waits up to `within` for the gateway to act on it.
pub async fn run(
    stage: &mut Stage<'_>,
    deployment: &mut dyn Deployment,
    change: &Change,
    within: Duration,
) -> Result<Update, Failure> {
    match change {
        Change::Push { plugin, module, line } => {
            let declared = &stage.scenario.plugins[plugin];
            let at = stage.scenario.at(*line);
            let (pushed, record) = publish(stage.tools, &*stage.registry, declared, module, &at).await?;
            stage.published.insert(plugin.clone(), pushed);
            stage.modules.push(record);
        }
        Change::Apply(resource) => {
            let same =
                |r: &&mut InForce| r.resource.namespace == resource.namespace && r.resource.name == resource.name;
            match stage.resources.iter_mut().find(same) {
                Some(existing) => existing.resource = (**resource).clone(),
                None => {
                    let created = stage.resources.iter().map(|r| r.created + 1).max().unwrap_or(1);
                    stage.resources.push(InForce { resource: (**resource).clone(), created });
                }
            }
        }
        Change::Delete { namespace, name } => {
            stage.resources.retain(|r| !(&r.resource.namespace == namespace && &r.resource.name == name));
        }
    }
    deployment.sync(stage, within).await.map_err(|e| e.failure())
}

/// Whether what the gateway did is what the step expects: by default
/// anything but a rejection.
pub fn judge(update: &Update, expect: Option<UpdateExpect>) -> Result<(), Failure> {
    let holds = match expect {
        None => update.kind != UpdateKind::Rejected,
        Some(UpdateExpect::Applied) => update.kind == UpdateKind::Applied,
        Some(UpdateExpect::Rejected) => update.kind == UpdateKind::Rejected,
        Some(UpdateExpect::Unchanged) => update.kind == UpdateKind::Unchanged,
    };
    if holds {
        return Ok(());
    }
    let wanted = expect.map_or("applied or unchanged", UpdateExpect::name);
    let mut actual = format!("the gateway's update: {}", update.kind.name());
    if let Some(rejection) = &update.rejection {
        actual.push_str(&format!(" ({rejection})"));
    }
    let verdict = Verdict { checks: vec![Check::new(format!("the gateway's update: {wanted}"), actual)] };
    let kind = if update.kind == UpdateKind::Rejected { FailureKind::Rejected } else { FailureKind::Expectation };
    let failure = verdict.failure(kind).expect("the check did not hold");
    if expect.is_none() {
        let hint = "mark the step `expect_update: rejected` if the gateway is meant to refuse it\n";
        return Err(failure.reworded(format!("{}{hint}", failure.message)));
    }
    Err(failure)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn update(kind: UpdateKind) -> Update {
        Update { kind, ..Update::unchanged() }
    }

    #[rstest]
    #[case::default_takes_applied(None, UpdateKind::Applied, None)]
    #[case::default_takes_unchanged(None, UpdateKind::Unchanged, None)]
    #[case::default_refuses_rejected(None, UpdateKind::Rejected, Some(FailureKind::Rejected))]
    #[case::applied(Some(UpdateExpect::Applied), UpdateKind::Applied, None)]
    #[case::applied_needs_an_update(Some(UpdateExpect::Applied), UpdateKind::Unchanged, Some(FailureKind::Expectation))]
    #[case::rejected(Some(UpdateExpect::Rejected), UpdateKind::Rejected, None)]
    #[case::rejected_not_applied(Some(UpdateExpect::Rejected), UpdateKind::Applied, Some(FailureKind::Expectation))]
    #[case::unchanged(Some(UpdateExpect::Unchanged), UpdateKind::Unchanged, None)]
    #[case::unchanged_not_applied(Some(UpdateExpect::Unchanged), UpdateKind::Applied, Some(FailureKind::Expectation))]
    fn judges(#[case] expect: Option<UpdateExpect>, #[case] kind: UpdateKind, #[case] failure: Option<FailureKind>) {
        assert_eq!(judge(&update(kind), expect).err().map(|f| f.kind), failure);
    }
}
