//! Who owns what a run leaves on the machine (run folders, containers): a
//! process, named by its id and start time (ids are reused). What a process
//! killed outright leaves is swept by the next run that finds its owner gone.
//! A run re-run in namespaces of its own (`isolation`) is owned by the
//! process that re-ran it, which outlives it, in the machine's PID
//! namespace, with the container reaper.

use std::sync::OnceLock;

/// Names the owner for a re-run process, in its environment.
pub const OWNER_ENV: &str = "PLUGPROOF_OWNER";

/// The owner this process took from the process that re-ran it.
static ADOPTED: OnceLock<String> = OnceLock::new();

/// `PID START_TIME` of the owner: this process, or the one that re-ran it.
/// Ids are the host's /proc's, which a run in its own PID namespace still
/// sees (`/proc/self` included).
pub fn me() -> String {
    ADOPTED.get().cloned().unwrap_or_else(|| identity(host_pid()).unwrap_or_default())
}

/// Whether this process was re-run by the owner of what it leaves.
pub fn adopted() -> bool {
    ADOPTED.get().is_some()
}

/// For the edges, first thing (`runtime::at_start`): takes the owner the
/// re-running process names, and keeps it from this process's children.
pub fn adopt() {
    if let Some(owner) = std::env::var_os(OWNER_ENV) {
        let _ = ADOPTED.set(owner.to_string_lossy().into_owned());
        // SAFETY: the edges call this first, before any other thread runs.
        unsafe { std::env::remove_var(OWNER_ENV) };
    }
}

/// This process's id on the host (what `/proc/self` names), which a
/// container engine outside the run's PID namespace sees.
pub fn host_pid() -> u32 {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_string_lossy().parse().ok())
        .unwrap_or_else(std::process::id)
}

/// Whether the owner an `identity` names has ended (or the id now names
/// another process).
pub fn gone(owner: &str) -> bool {
    let Some(pid) = owner.split_whitespace().next().and_then(|p| p.parse().ok()) else { return true };
    identity(pid).is_none_or(|now| now != owner)
}

/// `PID START_TIME`: a process id and when it started, which together name
/// one process; None once it has ended, a zombie too (in a PID namespace
/// whose init does not reap, a killed run stays one).
pub fn identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces): the state
    // first, the start time 20th.
    let mut fields = stat.rsplit_once(") ")?.1.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    let start = fields.nth(18)?;
    Some(format!("{pid} {start}"))
}
