//! Where each step of a scenario is executed: one file per step action.

mod filters;
mod request;

use std::time::Duration;

use crate::assert::eventually::{eventually, Attempts};
use crate::profiles::Deployment;
use crate::scenario::{Action, Step};

/// What a step needs from the run.
pub struct StepContext<'a> {
    pub deployment: &'a Deployment,
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

pub async fn run(step: &Step, ctx: &StepContext<'_>) -> StepResult {
    let outcome = match &step.action {
        Action::Request { request, expect } => {
            eventually(step.times, step.within, || request::attempt(ctx, request, expect)).await
        }
        Action::Filters(order) => eventually(step.times, step.within, || filters::attempt(ctx, order)).await,
    };
    let (passed, attempts) = match outcome {
        Ok(a) => (true, a),
        Err(a) => (false, a),
    };
    let Attempts { count, elapsed, last_failure } = attempts;
    let detail = (!passed).then(|| {
        format!(
            "did not hold {} time(s) in a row within {:?} ({count} attempts); the last attempt:\n{}",
            step.times,
            step.within,
            last_failure.unwrap_or_default()
        )
    });
    StepResult { line: step.line, label: step.label(), passed, attempts: count, elapsed, detail }
}
