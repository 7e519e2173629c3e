//! How the istio tests of one test run share a control plane (see
//! `profiles::istio::shared`): the first starts the daemon (this test
//! binary again, with `SERVE_PLANE`), each runs itself again inside the
//! daemon's network namespace (with `SHARED_PLANE`). These variables are
//! the protocol between the copies of one test binary.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::Failed;

use crate::options::Options;
use crate::profiles::istio::shared::{self, Client};
use crate::profiles::{profile, Isolation};
use crate::provision::{self, ModuleCatalog};
use crate::runtime::isolation::{bring_loopback_up, is_isolated, rerun_joining};
use crate::targets::{ControlPlane, Target, TargetSpec};

/// Set on a test binary started as a shared control plane's daemon: its state folder.
const SERVE_PLANE: &str = "PLUGPROOF_SERVE_PLANE";
/// Set on a test run inside a shared control plane's namespace: its state folder.
const SHARED_PLANE: &str = "PLUGPROOF_SHARED_PLANE";
/// The daemon's target, and the process (the test runner) it watches.
const PLANE_TARGET: &str = "PLUGPROOF_PLANE_TARGET";
const PLANE_WATCH: &str = "PLUGPROOF_PLANE_WATCH";

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

/// Runs `test` here if the target runs here (its profile needs no
/// namespaces of its own, or this is the copy inside the shared control
/// plane's); otherwise runs this binary's test `name` again in there.
pub fn run_where_it_runs(
    name: &str,
    target: &TargetSpec,
    options: &Options,
    test: impl FnOnce() -> Result<(), Failed>,
) -> Result<(), Failed> {
    let isolation = profile(target.profile, options).isolation();
    if isolation == Isolation::None || is_isolated() {
        return test();
    }
    let args = ["--exact", name, "--nocapture"].map(Into::into).to_vec();
    match isolation {
        Isolation::Join(node) => run_in_node(args, node),
        Isolation::None | Isolation::Own => {
            let catalog = ModuleCatalog::load(&options.plugins)?;
            run_on_shared_plane(args, target, options, &catalog)
        }
    }
}

/// Runs this binary again with `args` inside the local cluster's node
/// (the network namespace of process `node`); its output is this test's.
fn run_in_node(args: Vec<OsString>, node: Option<u32>) -> Result<(), Failed> {
    let node = node.ok_or(crate::profiles::DeployError::NoCluster)?;
    let runner = std::os::unix::process::parent_id();
    let status = rerun_joining(node, args.clone(), &[], runner)?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the run of {args:?} in the local cluster's node failed ({status}); its output is above").into())
    }
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
        let needs = crate::profiles::profile(target.profile, options).needs();
        let target = Target::resolve(target, options, &tools, needs).await?;
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
