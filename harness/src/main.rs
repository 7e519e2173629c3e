//! The `plugproof` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};

use plugproof::audit::{load_justified, stale, Justification};
use plugproof::outcome::Status;
use plugproof::profiles::ProfileKind;
use plugproof::provision::ModuleCatalog;
use plugproof::report::{console, html, junit};
use plugproof::run::Runner;
use plugproof::runtime::isolation::{bring_loopback_up, is_isolated, rerun_isolated};
use plugproof::runtime::until_interrupted;
use plugproof::scenario::{load_all, Scenario};

#[derive(Parser)]
#[command(name = "plugproof", version, about = "Conformance scenarios for proxy-wasm plugins in real Envoy")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios and report.
    Run {
        /// Scenario files or folders.
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "envoy")]
        profile: ProfileKind,
        /// Run only scenarios whose id contains PATTERN.
        #[arg(long, value_name = "PATTERN")]
        filter: Option<String>,
        /// Where JUnit XML and the evidence of failures go.
        #[arg(long, value_name = "DIR", default_value = "plugproof-report")]
        report_dir: PathBuf,
    },
    /// Show that each scenario can fail: run it, judging every mutant of
    /// its expectations (one changed value, status, order, version) on the
    /// same observations; report the mutants that still pass.
    Audit {
        /// Scenario files or folders.
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "envoy")]
        profile: ProfileKind,
        /// Audit only scenarios whose id contains PATTERN.
        #[arg(long, value_name = "PATTERN")]
        filter: Option<String>,
        /// Survivors already explained: a YAML list of {scenario, profile, line, change, reason}.
        #[arg(long, value_name = "FILE")]
        justified: Option<PathBuf>,
        /// Where the evidence of scenarios that fail goes.
        #[arg(long, value_name = "DIR", default_value = "plugproof-report")]
        report_dir: PathBuf,
    },
    /// Check scenario files without running them.
    Validate {
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
    },
    /// List scenarios.
    List {
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
    },
    /// Fetch Envoy and build the test modules now (cached), with progress.
    Provision {
        /// Also build istio's kit (istiod, pilot-agent, kube-apiserver, etcd).
        #[arg(long)]
        istio: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The apiserver's certificate is self-signed on purpose.
                .unwrap_or_else(|_| "warn,kube_client::client::tls=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("plugproof: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let catalog = ModuleCatalog::load(&ModuleCatalog::default_workspace())?;
    match cli.command {
        Command::Validate { paths } => Ok(match load(&paths, &catalog) {
            Some(scenarios) => {
                println!("{} scenarios are valid", scenarios.len());
                ExitCode::SUCCESS
            }
            None => ExitCode::from(2),
        }),
        Command::List { paths } => Ok(match load(&paths, &catalog) {
            Some(scenarios) => {
                for s in &scenarios {
                    println!("{}\t{}", s.id, s.description.lines().next().unwrap_or_default());
                }
                ExitCode::SUCCESS
            }
            None => ExitCode::from(2),
        }),
        Command::Provision { istio: with_istio } => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(plugproof::provision::tools(&catalog, with_istio))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { paths, profile, filter, report_dir } => {
            let Some(scenarios) = selected(&paths, &catalog, filter.as_deref()) else { return Ok(ExitCode::from(2)) };
            if let Some(code) = isolate(profile, &catalog)? {
                return Ok(code);
            }
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(run(scenarios, profile, &catalog, report_dir))
        }
        Command::Audit { paths, profile, filter, justified, report_dir } => {
            let justified = justified.as_deref().map(load_justified).transpose()?.unwrap_or_default();
            let Some(scenarios) = selected(&paths, &catalog, filter.as_deref()) else { return Ok(ExitCode::from(2)) };
            if let Some(code) = isolate(profile, &catalog)? {
                return Ok(code);
            }
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(audit_all(scenarios, profile, &catalog, report_dir, &justified))
        }
    }
}

/// Loads the scenarios (printing every problem) and keeps those whose id
/// contains `filter`; `None` if any file is invalid.
fn selected(paths: &[PathBuf], catalog: &ModuleCatalog, filter: Option<&str>) -> Option<Vec<Scenario>> {
    let mut scenarios = load(paths, catalog)?;
    if let Some(pattern) = filter {
        scenarios.retain(|s| s.id.contains(pattern));
    }
    Some(scenarios)
}

/// For a profile that runs in its own namespaces: provisions out here,
/// where progress shows, then runs this command again inside them and
/// returns its exit code. Inside them, brings up their loopback.
fn isolate(profile: ProfileKind, catalog: &ModuleCatalog) -> anyhow::Result<Option<ExitCode>> {
    if is_isolated() {
        bring_loopback_up().context("cannot bring up the loopback interface of the run's namespace")?;
        return Ok(None);
    }
    if !profile.needs_isolation() {
        return Ok(None);
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(plugproof::provision::tools(catalog, profile.runs_istio()))?;
    let status = rerun_isolated(std::env::args_os().skip(1))?;
    Ok(Some(exit_code(status)))
}

async fn audit_all(
    scenarios: Vec<Scenario>,
    profile: ProfileKind,
    catalog: &ModuleCatalog,
    report_dir: PathBuf,
    justified: &[Justification],
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let work = async {
        let runner = Runner::prepare(profile, catalog, report_dir).await?;
        println!("auditing {} scenarios on profile {}", scenarios.len(), profile.name());
        let mut audits = Vec::new();
        for scenario in &scenarios {
            let audit = plugproof::audit::audit(&runner, scenario, justified).await;
            print!("{}", console::audit_lines(&audit));
            audits.push(audit);
        }
        anyhow::Ok(audits)
    };
    let audits = match until_interrupted(work).await {
        Ok(audits) => audits?,
        Err(interrupted) => {
            eprintln!("plugproof: {interrupted}");
            return Ok(ExitCode::from(130));
        }
    };
    let stale = stale(justified, &audits);
    println!("{}", console::audit_summary(&audits, &stale, started.elapsed()));
    let failed = audits.iter().any(|a| matches!(a.status, Status::Failed(_)) || a.unjustified().next().is_some());
    Ok(if failed || !stale.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The inner run's exit code; 130 if a signal ended it, as shells report Ctrl-C.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    status.code().and_then(|c| u8::try_from(c).ok()).map_or(ExitCode::from(130), ExitCode::from)
}

/// Loads scenarios, printing every problem; `None` if any file is invalid.
fn load(paths: &[PathBuf], catalog: &ModuleCatalog) -> Option<Vec<Scenario>> {
    let (scenarios, errors) = load_all(paths, &catalog.names());
    for error in &errors {
        eprintln!("{error}");
    }
    errors.is_empty().then_some(scenarios)
}

async fn run(
    scenarios: Vec<Scenario>,
    profile: ProfileKind,
    catalog: &ModuleCatalog,
    report_dir: PathBuf,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let work = async {
        let runner = Runner::prepare(profile, catalog, report_dir.clone()).await?;
        println!("running {} scenarios on profile {}", scenarios.len(), profile.name());
        let mut outcomes = Vec::new();
        for scenario in &scenarios {
            let outcome = runner.run(scenario).await;
            println!("{}", console::outcome_line(&outcome));
            print!("{}", console::step_notes(&outcome));
            if let Some(details) = console::failure_details(&outcome) {
                print!("{details}");
            }
            outcomes.push(outcome);
        }
        anyhow::Ok(outcomes)
    };
    let outcomes = match until_interrupted(work).await {
        Ok(outcomes) => outcomes?,
        Err(interrupted) => {
            eprintln!("plugproof: {interrupted}");
            return Ok(ExitCode::from(130));
        }
    };
    println!("{}", console::summary(&outcomes, started.elapsed()));
    let junit_path = report_dir.join("junit.xml");
    junit::write(&junit_path, profile.name(), &outcomes)
        .with_context(|| format!("cannot write {}", junit_path.display()))?;
    let html_path = report_dir.join("report.html");
    html::write(&html_path, profile.name(), &outcomes)
        .with_context(|| format!("cannot write {}", html_path.display()))?;
    println!("report: {}", html_path.display());
    let failed = outcomes.iter().any(|o| matches!(o.status, Status::Failed(_)));
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
