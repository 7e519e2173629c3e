//! `reload`: bounded background load through the gateway (HTTP, or TCP on
//! one of its TCP listeners) while a change is applied.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{change, StepContext};
use crate::assert::reload::{Taken, Window};
use crate::components::envoy::updates::{Acted, Resource, Update};
use crate::components::get_json;
use crate::failure::{Failure, FailureKind};
use crate::load::tcp::{self, TcpRecording};
use crate::load::{self, DrainInForce, LoadSpec, Recording};
use crate::scenario::{Change, Reload, TcpReload, DEFAULT_CHANGE_WITHIN};

/// What a reload observed: the load's record (with the gateway's drain
/// settings), when the change began and when the gateway took it and its
/// listeners (all since the load started), and what the gateway did with it.
pub struct Observed<R> {
    pub recording: R,
    pub applied_at: Duration,
    pub taken: Taken,
    pub update: Update,
}

/// Runs the HTTP load and the change; the change's own failure ends the step.
pub async fn observe(ctx: &mut StepContext<'_, '_>, reload: &Reload) -> Result<Observed<Recording>, Failure> {
    let spec = LoadSpec {
        target: ctx.deployment.gateway(),
        plan: reload.load.clone(),
        version_header: reload.version.header.clone(),
    };
    // An HTTP load times each slot's switch from its own requests: it needs no cue.
    let load = |started, _change_began| load::run(&spec, started);
    let mut observed = around(ctx, reload.after, &reload.change, load).await?;
    observed.recording.drain = drain_in_force(ctx).await;
    Ok(observed)
}

/// Runs the TCP load on the reload's listener and the change.
pub async fn observe_tcp(ctx: &mut StepContext<'_, '_>, reload: &TcpReload) -> Result<Observed<TcpRecording>, Failure> {
    let Some(target) = ctx.deployment.tcp_listener(&reload.listener) else {
        let message = format!("the gateway has no TCP listener `{}`", reload.listener);
        return Err(Failure::new(FailureKind::Setup, message));
    };
    let plan = &reload.load;
    let load = |started, change_began| tcp::run(target, plan, started, change_began);
    let mut observed = around(ctx, reload.after, &reload.change, load).await?;
    observed.recording.drain = drain_in_force(ctx).await;
    Ok(observed)
}

/// Runs a load and, `after` its start, the change; times are since the
/// load started. The load tells when it started, and is told when the
/// change begins.
async fn around<R, F: Future<Output = R>>(
    ctx: &mut StepContext<'_, '_>,
    after: Duration,
    change: &Change,
    load: impl FnOnce(oneshot::Sender<Instant>, oneshot::Receiver<()>) -> F,
) -> Result<Observed<R>, Failure> {
    let (started_tx, started_rx) = oneshot::channel();
    let (began_tx, began_rx) = oneshot::channel();
    let apply = async {
        let load_started = started_rx.await.unwrap_or_else(|_| Instant::now());
        tokio::time::sleep_until((load_started + after).into()).await;
        let applied_at = load_started.elapsed();
        let _ = began_tx.send(());
        let result = change::run(ctx.stage, ctx.deployment, change, DEFAULT_CHANGE_WITHIN).await;
        (load_started, applied_at, result)
    };
    let (recording, (load_started, applied_at, update)) = tokio::join!(load(started_tx, began_rx), apply);
    let update = update?;
    change::judge(&update, None)?;
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
