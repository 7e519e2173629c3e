//! The reaper: what removes a run's containers when the run is killed
//! outright (`kill -9`), which no code of the run can do. The first
//! container a process starts makes it start a reaper: the same program,
//! asked to be one by an environment variable (the edges check it first,
//! in `runtime::at_start`), in a session of its own (Ctrl-C of the run's
//! terminal does not reach it), reading a pipe the run holds open. When the
//! run ends, however it ends, the pipe closes; the reaper then removes every
//! container the run owns and exits. A run re-run in namespaces of its own
//! is owned by the process that re-ran it (`owner`), whose reaper serves it:
//! the run's PID namespace takes every process in it along when it ends.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::engine;

/// Set in the reaper's environment: the owner whose containers it removes.
const REAPER: &str = "PLUGPROOF_REAPER";
/// How long after its first pass the reaper looks again.
const LATE_CREATE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether this program serves as a reaper when asked (it called `at_start`).
static CAN_REAP: AtomicBool = AtomicBool::new(false);
/// This process's reaper, once started; its stdin is the pipe.
static REAPER_CHILD: Mutex<Option<Child>> = Mutex::new(None);

/// For the edges, first thing: serves as a reaper and exits if this process
/// was started as one; otherwise notes that this program can be one.
pub fn serve_if_asked() {
    if let Some(owner) = std::env::var_os(REAPER) {
        let _ = nix::unistd::setsid();
        // EOF: the run that started this reaper is gone.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            let owner = owner.to_string_lossy();
            runtime.block_on(async {
                engine::remove_owned(&owner).await;
                // A container the run was creating as it ended shows up only
                // once the engine has finished creating it.
                tokio::time::sleep(LATE_CREATE).await;
                engine::remove_owned(&owner).await;
            });
        }
        std::process::exit(0);
    }
    CAN_REAP.store(true, Ordering::Relaxed);
}

/// Starts this process's reaper unless there is one (or this program cannot
/// serve as one: then the next start's sweep removes what a killed run left).
pub fn ensure() {
    if !CAN_REAP.load(Ordering::Relaxed) || crate::runtime::owner::adopted() {
        return;
    }
    let mut reaper = REAPER_CHILD.lock().expect("not poisoned");
    if reaper.is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let spawned = Command::new(exe)
        .env(REAPER, crate::runtime::owner::me())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => *reaper = Some(child),
        Err(e) => tracing::warn!(
            "cannot start the container reaper: {e}; a run killed outright leaves its containers to the next start"
        ),
    }
}
