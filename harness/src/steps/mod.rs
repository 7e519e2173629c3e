//! Where each step of a scenario is executed: one file per step action.

mod apply;
mod filters;
mod push;
mod request;

use std::time::{Duration, Instant};

pub use push::publish;

use crate::assert::eventually::{eventually, Attempts};
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
    /// For a failure: the last diff or error.
    pub detail: Option<String>,
}

pub async fn run(step: &Step, ctx: &mut StepContext<'_, '_>) -> StepResult {
    let label = step.label();
    let started = Instant::now();
    let once = |outcome: Result<(), String>| {
        let attempts = Attempts { count: 1, elapsed: started.elapsed(), last_failure: outcome.clone().err() };
        outcome.map(|()| attempts.clone()).map_err(|_| attempts)
    };
    let outcome = match &step.action {
        Action::Request { request, expect } => {
            let (deployment, http) = (&*ctx.deployment, ctx.http);
            eventually(step.times, step.within, || request::attempt(deployment, http, request, expect)).await
        }
        Action::Filters(order) => {
            let deployment = &*ctx.deployment;
            eventually(step.times, step.within, || filters::attempt(deployment, order)).await
        }
        Action::Push { plugin, module } => once(push::run(ctx.stage, ctx.deployment, plugin, module).await),
        Action::Apply(resource) => once(apply::apply(ctx.stage, ctx.deployment, resource).await),
        Action::Delete { namespace, name } => once(apply::delete(ctx.stage, ctx.deployment, namespace, name).await),
    };
    let retried = matches!(step.action, Action::Request { .. } | Action::Filters(_));
    let (passed, Attempts { count, elapsed, last_failure }) = match outcome {
        Ok(a) => (true, a),
        Err(a) => (false, a),
    };
    let detail = (!passed).then(|| {
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
    StepResult { line: step.line, label, passed, attempts: count, elapsed, detail }
}
