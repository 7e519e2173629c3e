//! `plugproof run`: the scenarios on one target, reported as they finish,
//! then JUnit XML, report.html and conformance.yaml.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use plugproof::outcome::{Outcome, Status};
use plugproof::report::conformance::{Entry, Report};
use plugproof::report::{console, html, junit};
use plugproof::run::{run_all, Runner};

use super::TargetArgs;

pub fn main(
    paths: &[PathBuf],
    target: &TargetArgs,
    filter: Option<&str>,
    report_dir: PathBuf,
    jobs: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let (spec, options) = (target.spec()?, target.options(report_dir.clone())?);
    let catalog = super::catalog(&options)?;
    let Some(scenarios) = super::selected(paths, &catalog, filter) else { return Ok(ExitCode::from(2)) };
    if let Some(code) = super::isolate(std::slice::from_ref(&spec), &options, &catalog)? {
        return Ok(code);
    }
    let jobs = jobs.unwrap_or_else(super::default_jobs);
    let started = Instant::now();
    let work = async {
        let runner = Runner::prepare(&spec, &options, &catalog).await?;
        println!("running {} scenarios on {}, {jobs} at a time", scenarios.len(), runner.target().describe());
        let outcomes = run_all(std::slice::from_ref(&runner), &scenarios, jobs, print_outcome).await;
        let outcomes = outcomes.into_iter().next().unwrap_or_default();
        println!("{}", console::summary(&outcomes, started.elapsed()));
        let target = runner.target();
        let junit_path = report_dir.join("junit.xml");
        junit::write(&junit_path, target.name(), &outcomes)
            .with_context(|| format!("cannot write {}", junit_path.display()))?;
        let html_path = report_dir.join("report.html");
        html::write(&html_path, &target.describe(), &outcomes)
            .with_context(|| format!("cannot write {}", html_path.display()))?;
        let conformance = report_dir.join("conformance.yaml");
        Report::new(vec![Entry::new(target, &outcomes).on_cluster(runner.cluster_facts().await)])
            .write(&conformance)
            .with_context(|| format!("cannot write {}", conformance.display()))?;
        println!("report: {} (and junit.xml, conformance.yaml)", html_path.display());
        let failed = outcomes.iter().any(|o| matches!(o.status, Status::Failed(_)));
        anyhow::Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    };
    Ok(super::block_on(work)?.unwrap_or(ExitCode::from(super::INTERRUPTED)))
}

/// A line per scenario as it finishes, and what a reader needs of it.
pub fn print_outcome(outcome: &Outcome) {
    println!("{}", console::outcome_line(outcome));
    print!("{}", console::step_notes(outcome));
    if let Some(details) = console::failure_details(outcome) {
        print!("{details}");
    }
}
