//! Where each step of a scenario is executed: one file per step action. A
//! step observes (sends a request, reads the filter chain, makes a change,
//! runs a load) and judges what it observed against its expectation; the
//! same observations can judge other expectations too (`Alternative`, the
//! mutation audit's mutants).

mod change;
mod filters;
mod logs;
mod reload;
mod request;
mod stats;
mod tcp;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub use change::publish;
pub use stats::StatsSeen;
pub use tcp::Connections as TcpConnections;

use crate::assert::eventually::{eventually, Attempts, Streak};
use crate::assert::http::{verify as verify_exchange, Exchange};
use crate::assert::logs::verify as verify_logs;
use crate::assert::reload::{analyze, verify as verify_reload, Analysis};
use crate::assert::stats::verify as verify_stats;
use crate::assert::tcp::verify as verify_tcp;
use crate::assert::tcp_reload::{verify as verify_tcp_reload, TcpAnalysis};
use crate::assert::{filters::verify as verify_chain, Check, Verdict};
use crate::components::envoy::updates::Update;
use crate::failure::{Failure, FailureKind};
use crate::load::tcp::TcpRecording;
use crate::profiles::{Deployment, Names, Stage};
use crate::scenario::{
    Action, Expect, FilterOrder, LogsExpect, Phase, Reload, Retry, Scenario, StatExpect, Step, TcpExchange, TcpReload,
    UpdateExpect, DEFAULT_CHANGE_WITHIN,
};
use crate::translate::IstiodVersion;

/// What a step needs from the run; changes (`push`, `apply`, `delete`) go
/// through the stage and the deployment.
pub struct StepContext<'a, 'b> {
    pub deployment: &'a mut dyn Deployment,
    pub stage: &'a mut Stage<'b>,
    pub http: &'a reqwest::Client,
    /// The TCP connections `tcp` steps named so far.
    pub connections: &'a mut TcpConnections,
    /// What the last `stats` step read.
    pub stats_seen: &'a mut StatsSeen,
}

#[derive(Debug, Clone)]
pub struct StepResult {
    pub line: u64,
    pub label: String,
    pub passed: bool,
    /// How many times a `request` or `filters` step observed; None for a
    /// step that acts once (a change, a reload, a registry stop, a new gateway).
    pub attempts: Option<u32>,
    /// Exactly one attempt was allowed (`eventually: once`).
    pub once: bool,
    pub elapsed: Duration,
    /// Why the step failed; for a step that failed as marked, how it failed.
    pub failure: Option<Failure>,
    /// The mark's reason, when the step failed as its `expected_failure` says.
    pub expected_failure: Option<String>,
    /// What the gateway did with a change (change and reload steps).
    pub update: Option<Update>,
    /// What a reload step measured.
    pub reload: Option<Analysis>,
    /// What a reload under TCP load measured.
    pub tcp_reload: Option<TcpAnalysis>,
    /// What a `stats` step last read of the stats it names.
    pub stats_read: Option<BTreeMap<String, i64>>,
    /// A `filters` step's expected order and the chain last seen.
    pub chain: Option<ChainSeen>,
}

/// The filter chain a `filters` step expected and saw, each filter with
/// what it is, for the report's picture.
#[derive(Debug, Clone)]
pub struct ChainSeen {
    pub expected: Vec<ChainFilter>,
    pub actual: Vec<ChainFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFilter {
    pub name: String,
    pub kind: FilterKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterKind {
    /// A WasmPlugin's filter: the plugin (`NAMESPACE/NAME`) and its phase.
    Wasm {
        plugin: String,
        phase: Phase,
    },
    /// Envoy's own (`envoy.filters.http.*`).
    Native,
    Other,
}

impl ChainFilter {
    fn of(name: &str, wasm: &[(String, String, Phase)]) -> Self {
        let kind = match wasm.iter().find(|(filter, ..)| filter == name) {
            Some((_, plugin, phase)) => FilterKind::Wasm { plugin: plugin.clone(), phase: *phase },
            None if name.starts_with("envoy.filters.http.") => FilterKind::Native,
            None => FilterKind::Other,
        };
        ChainFilter { name: name.to_owned(), kind }
    }
}

impl StepResult {
    /// `PASS`, `FAIL`, or `XFAIL` for a step that failed as marked.
    pub fn verdict(&self) -> &'static str {
        match (&self.expected_failure, self.passed) {
            (Some(_), _) => "XFAIL",
            (None, true) => "PASS",
            (None, false) => "FAIL",
        }
    }
}

/// Another expectation for a step, judged on the same observations as the
/// step's own, attempt by attempt, with its own streak: it holds if the
/// step, so written, would have passed on what was observed.
#[derive(Debug, Clone)]
pub struct Alternative {
    pub step: Step,
    streak: Streak,
}

impl Alternative {
    pub fn new(step: Step) -> Self {
        let retry = match step.action {
            Action::Request { .. } | Action::Tcp(_) | Action::Filters(_) | Action::Stats(_) | Action::Logs(_) => {
                step.retry
            }
            _ => Retry::Once,
        };
        Alternative { streak: Streak::new(retry), step }
    }

    pub fn held(&self) -> bool {
        self.streak.held()
    }
}

pub async fn run(step: &Step, ctx: &mut StepContext<'_, '_>, alternatives: &mut [Alternative]) -> StepResult {
    let started = Instant::now();
    let mut result = StepResult {
        line: step.line,
        label: step.label(),
        passed: false,
        attempts: None,
        once: step.retry == Retry::Once,
        elapsed: Duration::ZERO,
        failure: None,
        expected_failure: None,
        update: None,
        reload: None,
        tcp_reload: None,
        stats_read: None,
        chain: None,
    };
    let alternatives = RefCell::new(alternatives);
    let judged = |alternative_holds: &dyn Fn(&Action) -> Option<bool>| {
        for alternative in alternatives.borrow_mut().iter_mut() {
            if let Some(holds) = alternative_holds(&alternative.step.action) {
                alternative.streak.record(holds);
            }
        }
    };
    let failure = match &step.action {
        Action::Request { request, expect } => {
            let (deployment, http) = (&*ctx.deployment, ctx.http);
            let outcome = eventually(step.retry, || async {
                let observed = request::send(deployment, http, request, expect.details.is_some()).await;
                judged(&|action| match action {
                    Action::Request { expect, .. } => Some(judge_exchange(expect, &observed).is_ok()),
                    _ => None,
                });
                judge_exchange(expect, &observed)
            })
            .await;
            retried(step, &mut result, outcome)
        }
        Action::Tcp(exchange) => {
            let deployment = &*ctx.deployment;
            // Attempts run one after another; the lock only lends the connections to each.
            let connections = tokio::sync::Mutex::new(&mut *ctx.connections);
            let outcome = eventually(step.retry, || async {
                let observed = tcp::exchange(deployment, *connections.lock().await, exchange).await;
                judged(&|action| match action {
                    Action::Tcp(exchange) => Some(judge_tcp(exchange, &observed).is_ok()),
                    _ => None,
                });
                judge_tcp(exchange, &observed)
            })
            .await;
            retried(step, &mut result, outcome)
        }
        Action::Stats(expects) => {
            let (deployment, before) = (&*ctx.deployment, &*ctx.stats_seen);
            let last = RefCell::new(None);
            let outcome = eventually(step.retry, || async {
                let observed = stats::read(deployment).await;
                judged(&|action| match action {
                    Action::Stats(expects) => Some(judge_stats(expects, before, &observed).is_ok()),
                    _ => None,
                });
                let judged = judge_stats(expects, before, &observed);
                last.replace(observed.ok());
                judged
            })
            .await;
            if let Some(read) = last.into_inner() {
                let named: BTreeMap<String, i64> =
                    expects.iter().filter_map(|e| Some((e.name.clone(), *read.get(&e.name)?))).collect();
                ctx.stats_seen.extend(named.clone());
                result.stats_read = Some(named);
            }
            retried(step, &mut result, outcome)
        }
        Action::Logs(expect) => {
            let deployment = &*ctx.deployment;
            let outcome = eventually(step.retry, || async {
                let observed = logs::read(deployment);
                judged(&|action| match action {
                    Action::Logs(expect) => Some(judge_logs(expect, &observed).is_ok()),
                    _ => None,
                });
                judge_logs(expect, &observed)
            })
            .await;
            retried(step, &mut result, outcome)
        }
        Action::Filters(order) => {
            let (deployment, istiod, names) = (&*ctx.deployment, ctx.stage.target.istiod, &ctx.stage.names);
            let scenario = ctx.stage.scenario;
            let last_seen = RefCell::new(Vec::new());
            let outcome = eventually(step.retry, || async {
                let observed = filters::chain(deployment, order).await;
                judged(&|action| match action {
                    Action::Filters(order) => Some(judge_chain(order, istiod, names, scenario, &observed).is_ok()),
                    _ => None,
                });
                if let Ok(chain) = &observed {
                    last_seen.replace(chain.clone());
                }
                judge_chain(order, istiod, names, scenario, &observed)
            })
            .await;
            let wasm = ctx.stage.wasm_filters();
            let picture = |names: &[String]| names.iter().map(|n| ChainFilter::of(n, &wasm)).collect();
            let expected: Vec<String> =
                order.order.iter().map(|f| f.resolve(istiod, &ctx.stage.names, ctx.stage.scenario)).collect();
            result.chain = Some(ChainSeen { expected: picture(&expected), actual: picture(&last_seen.into_inner()) });
            retried(step, &mut result, outcome)
        }
        Action::Change { change, expect, within } => {
            match change::run(ctx.stage, ctx.deployment, change, *within).await {
                Ok(update) => {
                    judged(&|action| match action {
                        Action::Change { expect, .. } => Some(change::judge(&update, *expect).is_ok()),
                        _ => None,
                    });
                    let judged = change::judge(&update, *expect);
                    result.update = Some(update);
                    judged.err()
                }
                Err(failure) => Some(failure),
            }
        }
        Action::Cycle { times, changes } => {
            let mut failure = None;
            for (turn, change) in changes.iter().cycle().take(*times as usize).enumerate() {
                let update = change::run(ctx.stage, ctx.deployment, change, DEFAULT_CHANGE_WITHIN).await;
                match update.and_then(|update| change::judge(&update, Some(UpdateExpect::Applied)).map(|()| update)) {
                    Ok(update) => result.update = Some(update),
                    Err(why) => {
                        let message = format!("change {} of {times} ({}):\n{}", turn + 1, change.label(), why.message);
                        failure = Some(why.reworded(message));
                        break;
                    }
                }
            }
            failure
        }
        Action::StopRegistry => {
            let host = ctx.stage.registry.host().to_owned();
            match ctx.stage.registry.halt().await {
                Ok(()) => refuses_connections(&host).err(),
                Err(why) => Some(Failure::new(FailureKind::Setup, why)),
            }
        }
        Action::ReplaceGateway => ctx.deployment.replace_gateway(ctx.stage).await.err().map(|e| e.failure()),
        Action::RestartGateway => ctx.deployment.restart_gateway(ctx.stage).await.err().map(|e| e.failure()),
        Action::Reload(plan) => match reload::observe(ctx, plan).await {
            Ok(observed) => {
                judged(&|action| match action {
                    Action::Reload(plan) => Some(judge_reload(plan, &observed).1.is_ok()),
                    _ => None,
                });
                let (analysis, judged) = judge_reload(plan, &observed);
                result.update = Some(observed.update);
                result.reload = Some(analysis);
                judged.err()
            }
            Err(failure) => Some(failure),
        },
        Action::TcpReload(plan) => match reload::observe_tcp(ctx, plan).await {
            Ok(observed) => {
                judged(&|action| match action {
                    Action::TcpReload(plan) => Some(judge_tcp_reload(plan, &observed).1.is_ok()),
                    _ => None,
                });
                let (analysis, judged) = judge_tcp_reload(plan, &observed);
                result.update = Some(observed.update);
                result.tcp_reload = Some(analysis);
                judged.err()
            }
            Err(failure) => Some(failure),
        },
    };
    result.elapsed = started.elapsed();
    // A known failure still runs in full; it passes only by failing as marked.
    let features = ctx.stage.target.features();
    match (step.expected_failure.as_ref().filter(|mark| mark.applies(&features)), failure) {
        (None, failure) => {
            result.passed = failure.is_none();
            result.failure = failure;
        }
        (Some(mark), Some(failure)) => match mark.accepts(&failure) {
            Ok(()) => {
                result.passed = true;
                result.failure = Some(failure);
                result.expected_failure = Some(mark.reason.clone());
            }
            Err(difference) => {
                result.failure = Some(failure.reworded(format!(
                    "failed, but not as marked (`expected_failure` names {}; {difference}):\n{}",
                    mark.describe(),
                    failure.message
                )));
            }
        },
        (Some(mark), None) => {
            result.failure = Some(Failure::new(
                FailureKind::Expectation,
                format!("passed, but is marked `expected_failure: {}`; remove the mark", mark.reason),
            ));
        }
    }
    result
}

/// The failure of a retried check, if it did not hold.
fn retried(step: &Step, result: &mut StepResult, outcome: Result<Attempts, Attempts>) -> Option<Failure> {
    let (Ok(attempts) | Err(attempts)) = &outcome;
    let count = attempts.count;
    result.attempts = Some(count);
    let failure = outcome.err()?.last_failure?;
    let message = match step.retry {
        Retry::Once => format!("the one attempt (`eventually: once`) did not hold:\n{}", failure.message),
        Retry::Until { times, within, .. } => format!(
            "did not hold {times} time(s) in a row within {within:?} ({count} attempts); the last attempt:\n{}",
            failure.message
        ),
        Retry::Always { times, .. } => format!(
            "attempt {count} of {times} (`eventually: {{always: {times}}}`, each must hold) did not hold:\n{}",
            failure.message
        ),
    };
    Some(failure.reworded(message))
}

fn judge_exchange(expect: &Expect, observed: &Result<Exchange, Failure>) -> Result<(), Failure> {
    holds(verify_exchange(expect, observed.as_ref().map_err(Clone::clone)?))
}

fn judge_tcp(exchange: &TcpExchange, observed: &Result<Vec<u8>, Failure>) -> Result<(), Failure> {
    holds(verify_tcp(&exchange.expect, observed.as_ref().map_err(Clone::clone)?))
}

fn judge_stats(
    expects: &[StatExpect],
    before: &StatsSeen,
    observed: &Result<BTreeMap<String, i64>, Failure>,
) -> Result<(), Failure> {
    holds(verify_stats(expects, observed.as_ref().map_err(Clone::clone)?, before))
}

fn judge_logs(expect: &LogsExpect, observed: &Result<String, Failure>) -> Result<(), Failure> {
    holds(verify_logs(expect, observed.as_ref().map_err(Clone::clone)?))
}

fn judge_chain(
    order: &FilterOrder,
    istiod: IstiodVersion,
    names: &Names,
    scenario: &Scenario,
    observed: &Result<Vec<String>, Failure>,
) -> Result<(), Failure> {
    let expected: Vec<String> = order.order.iter().map(|f| f.resolve(istiod, names, scenario)).collect();
    holds(verify_chain(&expected, order.exact, observed.as_ref().map_err(Clone::clone)?))
}

fn judge_tcp_reload(plan: &TcpReload, observed: &reload::Observed<TcpRecording>) -> (TcpAnalysis, Result<(), Failure>) {
    let analysis = TcpAnalysis {
        recording: observed.recording.clone(),
        applied_at: observed.applied_at,
        taken: observed.taken,
        from: plan.from.clone(),
        to: plan.to.clone(),
    };
    let verdict = verify_tcp_reload(&analysis, plan);
    (analysis, holds(verdict))
}

fn judge_reload(plan: &Reload, observed: &reload::Observed<crate::load::Recording>) -> (Analysis, Result<(), Failure>) {
    let analysis = analyze(&observed.recording, plan, observed.applied_at, observed.taken);
    let verdict = verify_reload(&analysis, plan);
    (analysis, holds(verdict))
}

fn holds(verdict: Verdict) -> Result<(), Failure> {
    verdict.failure(FailureKind::Expectation).map_or(Ok(()), Err)
}

/// A stopped registry must be gone from its address: a fetch then fails
/// for the reason the scenario means, not by chance.
fn refuses_connections(host: &str) -> Result<(), Failure> {
    let addr: SocketAddr =
        host.parse().map_err(|e| Failure::new(FailureKind::Setup, format!("registry {host}: {e}")))?;
    let expected = format!("registry at {host}: refuses connections");
    let actual = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => expected.clone(),
        Err(e) => format!("registry at {host}: {e}"),
        Ok(_) => format!("registry at {host}: accepts connections"),
    };
    holds(Verdict { checks: vec![Check::new(expected, actual)] })
}
