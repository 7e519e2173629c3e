//! `plugproof matrix`: the scenarios on every target, in parallel where the
//! machine allows; a compatibility table, `matrix.html`, `conformance.yaml`,
//! and each target's own report under `DIR/TARGET/`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use plugproof::outcome::Status;
use plugproof::profiles::{profile, ProfileKind};
use plugproof::provision;
use plugproof::report::conformance::{Entry, Report};
use plugproof::report::{console, html, junit, matrix};
use plugproof::run::{run_all, Runner};
use plugproof::targets::{Target, TargetSpec};

/// Which targets: the profile with each Envoy version (on istio, each pin
/// with each Envoy version), plus any written out whole.
pub struct Plan {
    pub profile: ProfileKind,
    pub envoy: Vec<String>,
    pub istio: Vec<String>,
    pub targets: Option<String>,
}

impl Plan {
    fn specs(&self) -> anyhow::Result<Vec<TargetSpec>> {
        let envoys: Vec<Option<&String>> =
            if self.envoy.is_empty() { vec![None] } else { self.envoy.iter().map(Some).collect() };
        let mut texts = Vec::new();
        match self.profile {
            ProfileKind::Envoy => {
                anyhow::ensure!(self.istio.is_empty(), "--istio names pins for the istio profile; add --profile istio");
                texts.extend(envoys.iter().map(|e| e.map_or("envoy".to_owned(), |e| format!("envoy@{e}"))));
            }
            ProfileKind::Cluster => {
                anyhow::ensure!(
                    self.istio.is_empty() && self.envoy.is_empty(),
                    "the cluster profile runs what `plugproof cluster up` installed; --envoy and --istio do not apply"
                );
                texts.push("cluster".to_owned());
            }
            ProfileKind::Istio => {
                let pins: Vec<Option<&String>> =
                    if self.istio.is_empty() { vec![None] } else { self.istio.iter().map(Some).collect() };
                for pin in &pins {
                    for envoy in &envoys {
                        let mut text = pin.map_or("istio".to_owned(), |p| format!("istio@{p}"));
                        if let Some(envoy) = envoy {
                            text.push_str(&format!("+envoy@{envoy}"));
                        }
                        texts.push(text);
                    }
                }
            }
        }
        let mut specs =
            texts.iter().map(|t| TargetSpec::parse(t)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
        if let Some(more) = &self.targets {
            specs.extend(TargetSpec::parse_list(more).map_err(anyhow::Error::msg)?);
        }
        Ok(specs)
    }
}

pub fn main(
    paths: &[PathBuf],
    plan: &Plan,
    filter: Option<&str>,
    report_dir: PathBuf,
    jobs: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let specs = plan.specs()?;
    let options = super::options(report_dir.clone());
    let catalog = super::catalog(&options)?;
    let Some(scenarios) = super::selected(paths, &catalog, filter) else { return Ok(ExitCode::from(2)) };
    if let Some(code) = super::isolate(&specs, &options, &catalog)? {
        return Ok(code);
    }
    let jobs = jobs.unwrap_or_else(super::default_jobs);
    let started = Instant::now();
    let work = async {
        let tools = provision::tools(&options, &catalog).await?;
        let mut runners = Vec::new();
        for spec in &specs {
            let profile = profile(spec.profile, &options);
            let target = Target::resolve(spec, &options, &tools, profile.needs()).await?;
            println!("{}", target.describe());
            runners.push(Runner::new(target, profile, tools.clone(), &report_dir));
        }
        println!("running {} scenarios on {} targets, {jobs} at a time", scenarios.len(), runners.len());
        let outcomes =
            run_all(&runners, &scenarios, jobs, |o| println!("{:<28} {}", o.target, console::outcome_line(o))).await;
        let mut entries = Vec::new();
        for (runner, outcomes) in runners.iter().zip(&outcomes) {
            entries.push(Entry::new(runner.target(), outcomes).on_cluster(runner.cluster_facts().await));
        }
        for (runner, outcomes) in runners.iter().zip(&outcomes) {
            let dir = report_dir.join(matrix::folder(runner.target().name()));
            junit::write(&dir.join("junit.xml"), runner.target().name(), outcomes)
                .with_context(|| format!("cannot write {}", dir.display()))?;
            html::write(&dir.join("report.html"), &runner.target().describe(), outcomes)
                .with_context(|| format!("cannot write {}", dir.display()))?;
        }
        let report = Report::new(entries);
        print!("{}", console::matrix_table(&report.entries));
        println!("{} runs in {:.1}s", outcomes.iter().map(Vec::len).sum::<usize>(), started.elapsed().as_secs_f64());
        let (html_path, yaml_path) = (report_dir.join("matrix.html"), report_dir.join("conformance.yaml"));
        matrix::write(&html_path, &report).with_context(|| format!("cannot write {}", html_path.display()))?;
        report.write(&yaml_path).with_context(|| format!("cannot write {}", yaml_path.display()))?;
        println!("matrix: {} and {}", html_path.display(), yaml_path.display());
        let failed = outcomes.iter().flatten().any(|o| matches!(o.status, Status::Failed(_)));
        anyhow::Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    };
    Ok(super::block_on(work)?.unwrap_or(ExitCode::from(super::INTERRUPTED)))
}
