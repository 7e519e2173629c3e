//! Who owns what a run leaves on the machine (run folders, containers): a
//! process, named by its id and start time (ids are reused). What a process
//! killed outright leaves is swept by the next run that finds its owner gone.

/// `PID START_TIME` of this process. Ids are the host's /proc's, which a
/// run in its own PID namespace still sees (`/proc/self` included).
pub fn me() -> String {
    identity(host_pid()).unwrap_or_default()
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
