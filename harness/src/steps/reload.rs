//! `reload`: bounded background load through the gateway while a change is
//! applied, then the analysis of what every connection saw.

use std::time::Instant;

use super::{change, StepContext};
use crate::assert::reload::{analyze, verify, Analysis};
use crate::assert::Verdict;
use crate::load::{self, LoadSpec};
use crate::scenario::Reload;

/// Runs the load and the change; the change's own failure ends the step.
pub async fn run(ctx: &mut StepContext<'_, '_>, reload: &Reload) -> Result<(Verdict, Analysis), String> {
    let spec = LoadSpec {
        target: ctx.deployment.gateway(),
        plan: reload.load.clone(),
        version_header: reload.version.header.clone(),
    };
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let apply = async {
        let load_started = started_rx.await.unwrap_or_else(|_| Instant::now());
        tokio::time::sleep_until((load_started + reload.after).into()).await;
        let applied_at = load_started.elapsed();
        let began = Instant::now();
        let result = change::run(ctx.stage, ctx.deployment, &reload.change).await;
        (applied_at, began.elapsed(), result)
    };
    let (recording, (applied_at, took, applied)) = tokio::join!(load::run(&spec, started_tx), apply);
    applied.map_err(|e| format!("the change failed: {e}"))?;
    let analysis = analyze(&recording, reload, applied_at, took);
    Ok((verify(&analysis, reload), analysis))
}
