//! What the test binaries share at the edge: the workspace and options from
//! the environment, and the protocol by which the istio tests of one test
//! run share a control plane (see `profiles::istio::shared`): the first
//! starts the daemon (this binary again, with `SERVE_PLANE`), each runs
//! itself again inside the daemon's network namespace (with `SHARED_PLANE`).

#![allow(dead_code)] // Each test binary uses part of it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::Failed;
use plugproof::options::Options;
use plugproof::outcome::{Outcome, Status};
use plugproof::profiles::istio::shared::{self, Client};
use plugproof::provision::{self, ModuleCatalog};
use plugproof::report::{bundle, console};
use plugproof::run::Runner;
use plugproof::runtime::isolation::{bring_loopback_up, is_isolated, rerun_joining};
use plugproof::runtime::until_interrupted;
use plugproof::scenario::Scenario;
use plugproof::target::{ControlPlane, Target, TargetSpec};

/// Set on a test binary started as a shared control plane's daemon: its state folder.
const SERVE_PLANE: &str = "PLUGPROOF_SERVE_PLANE";
/// Set on a test run inside a shared control plane's namespace: its state folder.
const SHARED_PLANE: &str = "PLUGPROOF_SHARED_PLANE";
/// The daemon's target, and the process (the test runner) it watches.
const PLANE_TARGET: &str = "PLUGPROOF_PLANE_TARGET";
const PLANE_WATCH: &str = "PLUGPROOF_PLANE_WATCH";

/// The workspace, as the test runner says at run time (an archive run
/// from another folder remaps it).
pub fn workspace() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo or nextest sets CARGO_MANIFEST_DIR");
    PathBuf::from(manifest).join("..")
}

/// The `plugproof` binary: where nextest says (an archive moves it), else
/// where cargo built it.
pub fn plugproof_binary() -> PathBuf {
    std::env::var_os("NEXTEST_BIN_EXE_plugproof")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_plugproof")), PathBuf::from)
}

/// The options of the workspace's checkout, from the environment.
pub fn options() -> Options {
    let root = workspace();
    Options::from_env(&root, root.join("target/plugproof-report"))
}

/// The targets to test: `PLUGPROOF_TARGETS` (default `envoy`).
pub fn targets() -> Vec<TargetSpec> {
    let targets = std::env::var("PLUGPROOF_TARGETS").unwrap_or_else(|_| "envoy".into());
    TargetSpec::parse_list(&targets).unwrap_or_else(|e| panic!("PLUGPROOF_TARGETS: {e}"))
}

/// What a test binary is asked to be: the daemon of a shared control plane
/// (then it serves and returns its exit code), or a test run inside one
/// (then `options` say so, and the returned client keeps it registered).
pub enum Role {
    Daemon(ExitCode),
    Test(Option<Client>),
}

pub fn role(options: &mut Options) -> Role {
    if let Some(state) = std::env::var_os(SERVE_PLANE) {
        return Role::Daemon(serve_plane(Path::new(&state), options));
    }
    if let Some(state) = std::env::var_os(SHARED_PLANE) {
        let state = PathBuf::from(state);
        let endpoints = std::fs::read(state.join("endpoints.json")).expect("the shared control plane's endpoints");
        options.shared_control_plane = Some(serde_json::from_slice(&endpoints).expect("endpoints parse"));
        return Role::Test(Some(Client::register(&state).expect("registering with the shared control plane")));
    }
    if is_isolated() {
        bring_loopback_up().expect("the loopback interface of the run's namespace comes up");
    }
    Role::Test(None)
}

/// Provisions here (progress shows), finds or starts the test run's shared
/// control plane, then runs this binary again with `args` inside its
/// network namespace; its output is this test's output.
pub fn run_on_shared_plane(
    args: Vec<OsString>,
    target: &TargetSpec,
    options: &Options,
    catalog: &ModuleCatalog,
) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let pin = runtime.block_on(async {
        let tools = provision::tools(options, catalog).await?;
        let target = Target::resolve(target, options, &tools).await?;
        Ok::<_, Failed>(target.kit.map(|kit| kit.pin).ok_or("the istio target has no kit")?)
    })?;
    // The test runner's run; without nextest's name for it, the runner's id.
    let runner = std::os::unix::process::parent_id();
    let run = std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| format!("pid{runner}"));
    let exe = std::env::current_exe()?;
    let plane = shared::find_or_start(&options.cache.join("planes"), &run, &pin, |state| {
        shared::daemon_command(&exe, state)?
            .env(SERVE_PLANE, state)
            .env(PLANE_TARGET, &target.name)
            .env(PLANE_WATCH, runner.to_string())
            .spawn()
    })?;
    let status = rerun_joining(plane.pid, args.clone(), &[(SHARED_PLANE, plane.state.as_os_str())], runner)?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the run of {args:?} in the shared control plane's namespace failed ({status}); its output is above"
        )
        .into())
    }
}

/// The daemon of a shared control plane (inside its own namespaces).
fn serve_plane(state: &Path, options: &Options) -> ExitCode {
    bring_loopback_up().expect("the loopback interface of the daemon's namespace comes up");
    let target = std::env::var(PLANE_TARGET).expect("the daemon's target");
    let watch: u32 = std::env::var(PLANE_WATCH).ok().and_then(|w| w.parse().ok()).expect("the process to watch");
    let spec = TargetSpec::parse(&target).expect("the daemon's target parses");
    let ControlPlane::Pin(pin) = spec.control_plane else { panic!("{target} runs no istio pin") };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let served = runtime.block_on(async {
        let (cache, images) = (provision::Cache::at(options.cache.clone())?, options.images.clone());
        let kit = provision::blocking(move || {
            let pin = provision::pin(&images, &pin)?;
            provision::istio_kit(&cache, &images, &pin)
        })
        .await?;
        shared::serve(state, &kit, watch).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("the shared control plane failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one scenario here and now, printing its trace.
pub fn run_scenario(
    scenario: &Scenario,
    target: &TargetSpec,
    options: &Options,
    catalog: &ModuleCatalog,
) -> Result<Outcome, Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcome = runtime.block_on(async {
        until_interrupted(async {
            let runner = Runner::prepare(target, options, catalog).await?;
            let outcome = runner.run(scenario).await;
            runner.shutdown().await;
            Ok::<_, Failed>(outcome)
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
        Status::Passed => Ok(outcome),
        // The test list assumed the target could run it (what its Envoy
        // serves was not known yet); now the list knows: run again.
        Status::Skipped(reason) => {
            Err(format!("cannot run here: {reason}; the test list now knows, run the tests again").into())
        }
        Status::Failed(_) => Err(console::failure_details(&outcome).unwrap_or_default().into()),
    }
}
