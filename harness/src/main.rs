//! The `plugproof` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};

use plugproof::profiles::ProfileKind;
use plugproof::provision::ModuleCatalog;
use plugproof::report::{console, html, junit};
use plugproof::run::{Runner, Status};
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
            let Some(mut scenarios) = load(&paths, &catalog) else { return Ok(ExitCode::from(2)) };
            if profile.needs_isolation() && !is_isolated() {
                // Provision out here, where progress shows, then run again
                // inside the run's own namespaces.
                let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
                runtime.block_on(plugproof::provision::tools(&catalog, profile.runs_istio()))?;
                let status = rerun_isolated(std::env::args_os().skip(1))?;
                return Ok(exit_code(status));
            }
            if is_isolated() {
                bring_loopback_up().context("cannot bring up the loopback interface of the run's namespace")?;
            }
            if let Some(pattern) = &filter {
                scenarios.retain(|s| s.id.contains(pattern.as_str()));
            }
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(run(scenarios, profile, &catalog, report_dir))
        }
    }
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
