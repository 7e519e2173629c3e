//! `plugproof audit`: each scenario run once on a target, every mutant of
//! its expectations judged on the same observations.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use plugproof::audit::{audit, load_justified, stale};
use plugproof::outcome::Status;
use plugproof::report::console;
use plugproof::run::Runner;

use super::TargetArgs;

pub fn main(
    paths: &[PathBuf],
    target: &TargetArgs,
    filter: Option<&str>,
    justified: Option<&Path>,
    report_dir: PathBuf,
) -> anyhow::Result<ExitCode> {
    let (spec, options) = (target.spec()?, target.options(report_dir)?);
    let catalog = super::catalog(&options)?;
    let justified = justified.map(load_justified).transpose()?.unwrap_or_default();
    let Some(scenarios) = super::selected(paths, &catalog, filter) else { return Ok(ExitCode::from(2)) };
    if let Some(code) = super::isolate(std::slice::from_ref(&spec), &options, &catalog)? {
        return Ok(code);
    }
    let started = Instant::now();
    let work = async {
        let runner = Runner::prepare(&spec, &options, &catalog).await?;
        println!("auditing {} scenarios on {}", scenarios.len(), runner.target().describe());
        let mut audits = Vec::new();
        for scenario in &scenarios {
            let audit = audit(&runner, scenario, &justified).await;
            print!("{}", console::audit_lines(&audit));
            audits.push(audit);
        }
        runner.shutdown().await;
        anyhow::Ok(audits)
    };
    let Some(audits) = super::block_on(work)? else { return Ok(ExitCode::from(super::INTERRUPTED)) };
    let stale = stale(&justified, &audits);
    println!("{}", console::audit_summary(&audits, &stale, started.elapsed()));
    let failed = audits.iter().any(|a| matches!(a.status, Status::Failed(_)) || a.unjustified().next().is_some());
    Ok(if failed || !stale.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
