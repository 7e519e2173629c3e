//! One control plane for every istio test of a nextest run. nextest runs
//! each test in a process of its own; the first that needs the control
//! plane starts it (the others wait on a lock, then find it), as a daemon
//! in network and PID namespaces of its own. Each test then runs inside
//! that network namespace (`nsenter`), deploys its scenario's namespaces
//! and gateway, and removes them.
//!
//! The daemon ends (its control plane with it, and its state folder) when
//! the process it watches (nextest) is gone, or after `IDLE` with no test
//! using it; killed, the kernel ends its programs (it is PID 1 of its
//! namespace), and the next start sweeps its state folder.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::control_plane::ControlPlane;
use crate::options::Endpoints;
use crate::provision::IstioKit;

/// How long the daemon stays up with no test using it.
pub const IDLE: Duration = Duration::from_secs(60);
/// How long a first boot may take (the control plane's etcd template is made once per kit).
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
const ENDPOINTS: &str = "endpoints.json";
const DAEMON_PID: &str = "daemon.pid";
const CLIENTS: &str = "clients";

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("the shared control plane ({}): {source}", state.display())]
    Io {
        state: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the shared control plane did not come up within {waited:?}; its log ({}) ends:\n{tail}", log.display())]
    NotUp { waited: Duration, log: PathBuf, tail: String },
}

/// A running shared control plane: its state folder, the process whose
/// network namespace to join, and how to reach it there.
#[derive(Debug, Clone)]
pub struct Shared {
    pub state: PathBuf,
    pub pid: u32,
    pub endpoints: Endpoints,
}

/// The state folder of run `run`'s control plane of `pin`, under `planes`.
pub fn state_dir(planes: &Path, run: &str, pin: &str) -> PathBuf {
    planes.join(format!("{run}-{pin}"))
}

/// Finds run `run`'s control plane for `pin`, or starts one with `spawn`
/// (given its state folder; it must start the daemon in new network and
/// PID namespaces and return the process whose namespace to join).
pub fn find_or_start(
    planes: &Path,
    run: &str,
    pin: &str,
    spawn: impl FnOnce(&Path) -> io::Result<Child>,
) -> Result<Shared, SharedError> {
    let state = state_dir(planes, run, pin);
    let io = |source| SharedError::Io { state: state.clone(), source };
    std::fs::create_dir_all(planes).map_err(io)?;
    // One process at a time decides; the others then find its daemon.
    let lock = File::create(planes.join(format!("{pin}.lock"))).map_err(io)?;
    lock.lock().map_err(io)?;
    if let Some(shared) = running(&state) {
        return Ok(shared);
    }
    sweep(planes);
    std::fs::create_dir_all(state.join(CLIENTS)).map_err(io)?;
    let mut child = spawn(&state).map_err(io)?;
    std::fs::write(state.join(DAEMON_PID), child.id().to_string()).map_err(io)?;
    let started = Instant::now();
    loop {
        if let Some(shared) = running(&state) {
            return Ok(shared);
        }
        let exited = child.try_wait().map_err(io)?.is_some();
        if exited || started.elapsed() > BOOT_TIMEOUT {
            let log = state.join("daemon.log");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail = text.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            let _ = child.kill();
            let _ = std::fs::remove_dir_all(&state);
            return Err(SharedError::NotUp { waited: started.elapsed(), log, tail });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The control plane in `state`, if its daemon is up and ready.
fn running(state: &Path) -> Option<Shared> {
    let pid: u32 = std::fs::read_to_string(state.join(DAEMON_PID)).ok()?.trim().parse().ok()?;
    if !alive(pid) {
        return None;
    }
    let endpoints = serde_json::from_slice(&std::fs::read(state.join(ENDPOINTS)).ok()?).ok()?;
    Some(Shared { state: state.to_owned(), pid, endpoints })
}

/// Removes the state folders of daemons that are gone (killed, so they
/// could not remove their own).
fn sweep(planes: &Path) {
    for entry in std::fs::read_dir(planes).into_iter().flatten().filter_map(Result::ok) {
        let dir = entry.path();
        if !dir.is_dir() {
            continue;
        }
        let pid = std::fs::read_to_string(dir.join(DAEMON_PID)).ok().and_then(|p| p.trim().parse().ok());
        if !pid.is_some_and(alive) {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// A zombie (a killed process not reaped yet) is not alive.
fn alive(pid: u32) -> bool {
    crate::runtime::owner::identity(pid).is_some()
}

/// A test using the control plane, from `register` until dropped.
pub struct Client {
    file: PathBuf,
}

impl Client {
    pub fn register(state: &Path) -> io::Result<Client> {
        let file = state.join(CLIENTS).join(std::process::id().to_string());
        std::fs::write(&file, b"")?;
        Ok(Client { file })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The daemon: boots the control plane, says where it is, and stops it
/// when `watch` is gone or no test has used it for `IDLE`. Runs inside its
/// own network namespace, whose loopback the caller has brought up.
pub async fn serve(state: &Path, kit: &IstioKit, watch: u32) -> Result<(), super::DeployError> {
    let plane = ControlPlane::start(kit, &state.join("plane")).await?;
    let text = serde_json::to_vec(&plane.endpoints).expect("endpoints serialise");
    let partial = state.join("endpoints.partial");
    std::fs::write(&partial, text).map_err(super::DeployError::io("cannot write the endpoints"))?;
    std::fs::rename(&partial, state.join(ENDPOINTS)).map_err(super::DeployError::io("cannot write the endpoints"))?;
    let mut last_used = Instant::now();
    while alive(watch) {
        if clients(state) > 0 {
            last_used = Instant::now();
        } else if last_used.elapsed() > IDLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    plane.stop().await;
    let _ = std::fs::remove_dir_all(state);
    Ok(())
}

/// Tests registered whose process is still there.
fn clients(state: &Path) -> usize {
    std::fs::read_dir(state.join(CLIENTS))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().and_then(|p| p.parse().ok()).is_some_and(alive))
        .count()
}

/// A command for `program` in new network and PID namespaces, detached
/// from its starter (own session, output to `state/daemon.log`), so that it
/// outlives the test that starts it.
pub fn daemon_command(program: &Path, state: &Path) -> io::Result<Command> {
    use std::os::unix::process::CommandExt;
    let log = File::create(state.join("daemon.log"))?;
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--pid", "--fork", "--kill-child", "--"])
        .arg(program)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(io::Error::from));
    }
    Ok(cmd)
}
