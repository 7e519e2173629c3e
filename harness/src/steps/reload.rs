//! `reload`: bounded background load through the gateway while a change is
//! applied, then the analysis of what every connection and stream saw.

use std::time::{Duration, Instant};

use super::{change, StepContext};
use crate::assert::reload::{Taken, Window};
use crate::components::envoy::updates::{Acted, Resource, Update};
use crate::components::get_json;
use crate::failure::Failure;
use crate::load::{self, DrainInForce, LoadSpec, Recording};
use crate::scenario::{Reload, DEFAULT_CHANGE_WITHIN};

/// What a reload observed: the load's record (with the gateway's drain
/// settings), when the change began and when the gateway took it and its
/// listeners (all since the load started), and what the gateway did with it.
pub struct Observed {
    pub recording: Recording,
    pub applied_at: Duration,
    pub taken: Taken,
    pub update: Update,
}

/// Runs the load and the change; the change's own failure ends the step.
pub async fn observe(ctx: &mut StepContext<'_, '_>, reload: &Reload) -> Result<Observed, Failure> {
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
        let result = change::run(ctx.stage, ctx.deployment, &reload.change, DEFAULT_CHANGE_WITHIN).await;
        (load_started, applied_at, result)
    };
    let (mut recording, (load_started, applied_at, update)) = tokio::join!(load::run(&spec, started_tx), apply);
    let update = update?;
    change::judge(&update, None)?;
    recording.drain = drain_in_force(ctx).await;
    let since = |at: Instant| at.saturating_duration_since(load_started);
    let window = |acted: Acted| Window { after: since(acted.after), by: since(acted.by) };
    let taken = Taken {
        all: update.acted.map(window),
        listeners: update.acted_each.get(&Resource::Listeners).copied().map(window),
    };
    Ok(Observed { recording, applied_at, taken, update })
}

/// The drain time and strategy the gateway's Envoy runs with, which decide
/// what a listener change does to a stream still open: from its command
/// line, as the admin API's `/server_info` reports it (the istio profile's
/// pilot-agent sets them from its proxy config's `drainDuration`).
async fn drain_in_force(ctx: &StepContext<'_, '_>) -> Option<DrainInForce> {
    let url = format!("{}/server_info", ctx.deployment.admin().base());
    let info = get_json(ctx.http, &url).await.ok()?;
    let options = &info["command_line_options"];
    Some(DrainInForce {
        time: options["drain_time"].as_str()?.to_owned(),
        strategy: options["drain_strategy"].as_str()?.to_owned(),
    })
}
