//! Where each step of a scenario is executed: one file per step action.

mod change;
mod filters;
mod reload;
mod request;

use std::time::{Duration, Instant};

pub use change::publish;

use crate::assert::eventually::{eventually, Attempts};
use crate::assert::reload::{summary, Analysis};
use crate::profiles::{Deployment, Stage};
use crate::scenario::{Action, Step};

/// What a step needs from the run; changes (`push`, `apply`, `delete`) go
/// through the stage and the deployment.
pub struct StepContext<'a, 'b> {
    pub deployment: &'a mut Deployment,
    pub stage: &'a mut Stage<'b>,
    pub http: &'a reqwest::Client,
}

#[derive(Debug, Clone)]
pub struct StepResult {
    pub line: u64,
    pub label: String,
    pub passed: bool,
    pub attempts: u32,
    pub elapsed: Duration,
    /// For a failure: the last diff or error; for a reload step, then its
    /// summary (pass or fail).
    pub detail: Option<String>,
    /// The step failed as its `expected_failure` says it does.
    pub expected_failure: Option<String>,
    /// What a reload step measured.
    pub reload: Option<Analysis>,
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

pub async fn run(step: &Step, ctx: &mut StepContext<'_, '_>) -> StepResult {
    let label = step.label();
    let started = Instant::now();
    let once = |outcome: Result<(), String>| {
        let passed = outcome.is_ok();
        (passed, Attempts { count: 1, elapsed: started.elapsed(), last_failure: outcome.err() }, false)
    };
    let repeated = |outcome: Result<Attempts, Attempts>| match outcome {
        Ok(attempts) => (true, attempts, true),
        Err(attempts) => (false, attempts, true),
    };
    let mut measured = None;
    let (passed, Attempts { count, elapsed, last_failure }, retried) = match &step.action {
        Action::Request { request, expect } => {
            let (deployment, http) = (&*ctx.deployment, ctx.http);
            repeated(
                eventually(step.times, step.within, step.every, || request::attempt(deployment, http, request, expect))
                    .await,
            )
        }
        Action::Filters(order) => {
            let deployment = &*ctx.deployment;
            repeated(eventually(step.times, step.within, step.every, || filters::attempt(deployment, order)).await)
        }
        Action::Change(change) => once(change::run(ctx.stage, ctx.deployment, change).await),
        Action::StopRegistry => {
            ctx.stage.registry.halt();
            once(Ok(()))
        }
        Action::Reload(plan) => once(reload::run(ctx, plan).await.and_then(|(verdict, analysis)| {
            measured = Some(analysis);
            if verdict.holds() {
                Ok(())
            } else {
                Err(verdict.diff())
            }
        })),
    };
    let mut detail = (!passed).then(|| {
        let last = last_failure.unwrap_or_default();
        if retried {
            format!(
                "did not hold {} time(s) in a row within {:?} ({count} attempts); the last attempt:\n{last}",
                step.times, step.within
            )
        } else {
            last
        }
    });
    if let Some(analysis) = &measured {
        let text = summary(analysis);
        detail = Some(match detail {
            Some(failure) => format!("{failure}\n{text}"),
            None => text,
        });
    }
    // A known failure still runs in full; it passes only by failing.
    let (passed, detail, expected_failure) = match (&step.expected_failure, passed) {
        (None, _) => (passed, detail, None),
        (Some(reason), false) => (true, detail, Some(reason.clone())),
        (Some(reason), true) => (
            false,
            Some(format!(
                "passed, but is marked `expected_failure: {reason}`; remove the mark{}",
                detail.map(|d| format!("\n{d}")).unwrap_or_default()
            )),
            None,
        ),
    };
    StepResult { line: step.line, label, passed, attempts: count, elapsed, detail, expected_failure, reload: measured }
}
