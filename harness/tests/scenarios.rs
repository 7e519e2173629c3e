//! One test per scenario file and target (a `harness = false` target):
//! `cargo nextest run` lists them as `TARGET/ID` and runs each in its own
//! process, on its own loopback address, so they run in parallel without
//! collisions.
//!
//! The targets come from `PLUGPROOF_TARGETS` (comma-separated, default
//! `envoy`; e.g. `envoy,istio` or `envoy@1.38.3,envoy@1.40.0+istiod@1.24`).
//! A scenario needing a feature a target lacks is ignored there, and its
//! name says why.
//!
//! The istio tests of one nextest run share one control plane: the first
//! starts it, as a daemon (this binary again, `PLUGPROOF_SERVE_PLANE`), and
//! each runs inside its network namespace (see `profiles::istio::shared`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use plugproof::options::Options;
use plugproof::outcome::Status;
use plugproof::profiles::istio::shared;
use plugproof::profiles::profile;
use plugproof::provision::{self, ModuleCatalog};
use plugproof::report::{bundle, console};
use plugproof::run::Runner;
use plugproof::runtime::isolation::{bring_loopback_up, is_isolated, rerun_joining};
use plugproof::runtime::until_interrupted;
use plugproof::scenario::{discover, load_file, Scenario};
use plugproof::target::{ControlPlane, Target, TargetSpec};

/// The workspace, as the test runner says at run time (an archive run
/// from another folder remaps it).
fn workspace() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo or nextest sets CARGO_MANIFEST_DIR");
    PathBuf::from(manifest).join("..")
}

/// Set on this binary started as the shared control plane's daemon: its state folder.
const SERVE_PLANE: &str = "PLUGPROOF_SERVE_PLANE";
/// Set on a test run inside a shared control plane's namespace: its state folder.
const SHARED_PLANE: &str = "PLUGPROOF_SHARED_PLANE";
/// The daemon's target, and the process it watches.
const PLANE_TARGET: &str = "PLUGPROOF_PLANE_TARGET";
const PLANE_WATCH: &str = "PLUGPROOF_PLANE_WATCH";

fn main() -> ExitCode {
    let root = workspace();
    let report_dir = root.join("target/plugproof-report");
    let mut options = Options::from_env(&root, report_dir);
    if let Some(state) = std::env::var_os(SERVE_PLANE) {
        return serve_plane(Path::new(&state), &options);
    }
    let args = Arguments::from_args();
    let mut _client = None;
    if let Some(state) = std::env::var_os(SHARED_PLANE) {
        let state = PathBuf::from(state);
        let endpoints = std::fs::read(state.join("endpoints.json")).expect("the shared control plane's endpoints");
        options.shared_control_plane = Some(serde_json::from_slice(&endpoints).expect("endpoints parse"));
        _client = Some(shared::Client::register(&state).expect("registering with the shared control plane"));
    } else if is_isolated() {
        bring_loopback_up().expect("the loopback interface of the run's namespace comes up");
    }
    let scenarios = root.join("scenarios");
    let targets = std::env::var("PLUGPROOF_TARGETS").unwrap_or_else(|_| "envoy".into());
    let targets = TargetSpec::parse_list(&targets).unwrap_or_else(|e| panic!("PLUGPROOF_TARGETS: {e}"));
    let catalog = ModuleCatalog::load(&options.plugins).expect("the module catalog loads");
    let files = discover(&scenarios).unwrap_or_else(|e| panic!("cannot list {}: {e}", scenarios.display()));
    let trials = targets
        .iter()
        .flat_map(|target| files.iter().map(|file| trial(file, &scenarios, target, &options, &catalog)))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn trial(file: &Path, root: &Path, target: &TargetSpec, options: &Options, catalog: &ModuleCatalog) -> Trial {
    let id = file.strip_prefix(root).unwrap_or(file).with_extension("").to_string_lossy().into_owned();
    let name = format!("{target}/{id}");
    match load_file(file, root, &catalog.names()) {
        // A broken scenario is a failing test that prints every problem.
        Err(error) => Trial::test(name, move || Err(error.to_string().into())),
        Ok(scenario) => {
            let skip = target.skip_reason(&scenario, options);
            let (target, options, catalog, test) = (target.clone(), options.clone(), catalog.clone(), name.clone());
            let trial = Trial::test(name, move || {
                if profile(target.profile, &options).needs_isolation() && !is_isolated() {
                    run_isolated(&test, &target, &options, &catalog)
                } else {
                    run(scenario, &target, &options, &catalog)
                }
            });
            match skip {
                Some(reason) => trial.with_ignored_flag(true).with_kind(reason.replace(' ', "-")),
                None => trial,
            }
        }
    }
}

/// Provisions here (progress shows), finds or starts the run's shared
/// control plane, then runs this one test again inside its network
/// namespace; its output is this test's output.
fn run_isolated(test: &str, target: &TargetSpec, options: &Options, catalog: &ModuleCatalog) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let pin = runtime.block_on(async {
        let tools = provision::tools(options, catalog).await?;
        let target = Target::resolve(target, options, &tools).await?;
        Ok::<_, Failed>(target.kit.map(|kit| kit.pin).ok_or("the istio target has no kit")?)
    })?;
    // nextest names its run; without it, the parent stands for the run.
    let parent = std::os::unix::process::parent_id();
    let run = std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| format!("pid{parent}"));
    let exe = std::env::current_exe()?;
    let plane = shared::find_or_start(&options.cache.join("planes"), &run, &pin, |state| {
        shared::daemon_command(&exe, state)?
            .env(SERVE_PLANE, state)
            .env(PLANE_TARGET, &target.name)
            .env(PLANE_WATCH, parent.to_string())
            .spawn()
    })?;
    let status = rerun_joining(
        plane.pid,
        ["--exact", test, "--nocapture"].map(Into::into),
        &[(SHARED_PLANE, plane.state.as_os_str())],
    )?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the isolated run of {test} failed ({status}); its output is above").into())
    }
}

/// The daemon of a shared control plane (inside its own namespaces).
fn serve_plane(state: &Path, options: &Options) -> ExitCode {
    bring_loopback_up().expect("the loopback interface of the daemon's namespace comes up");
    let target = std::env::var(PLANE_TARGET).expect("the daemon's target");
    let watch: u32 = std::env::var(PLANE_WATCH).ok().and_then(|w| w.parse().ok()).expect("the process to watch");
    let spec = TargetSpec::parse(&target).expect("the daemon's target parses");
    let ControlPlane::Pin(pin) = &spec.control_plane else { panic!("{target} runs no istio pin") };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let served = runtime.block_on(async {
        let (cache, images, pin) = (provision::Cache::at(options.cache.clone())?, options.images.clone(), pin.clone());
        let kit = provision::blocking(move || {
            let pin = provision::pin(&images, &pin)?;
            provision::istio_kit(&cache, &images, &pin)
        })
        .await?;
        shared::serve(state, &kit, watch).await.map_err(|e| e.to_string().into())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error: Box<dyn std::error::Error> = error;
            eprintln!("the shared control plane failed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(scenario: Scenario, target: &TargetSpec, options: &Options, catalog: &ModuleCatalog) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcome = runtime.block_on(async {
        until_interrupted(async {
            let runner = Runner::prepare(target, options, catalog).await?;
            Ok::<_, Failed>(runner.run(&scenario).await)
        })
        .await
    })??;
    let timings = outcome.timings;
    println!(
        "{}: stage {:.3}s, deploy {:.3}s, steps {:.3}s, total {:.3}s\n{}",
        outcome.id,
        timings.stage.as_secs_f64(),
        timings.deploy.as_secs_f64(),
        timings.steps.as_secs_f64(),
        timings.total.as_secs_f64(),
        bundle::trace(&outcome.steps)
    );
    print!("{}", console::step_notes(&outcome));
    match &outcome.status {
        Status::Passed => Ok(()),
        // The test list assumed the target could run it (what its Envoy
        // serves was not known yet); now the list knows: run again.
        Status::Skipped(reason) => {
            Err(format!("cannot run here: {reason}; the test list now knows, run the tests again").into())
        }
        Status::Failed(_) => Err(console::failure_details(&outcome).unwrap_or_default().into()),
    }
}
