//! Private network, mount and PID namespaces, for profiles whose programs
//! bind fixed ports on every interface or write to fixed paths (istio's
//! control plane; its agent's Wasm cache in /var/lib/istio/data). The run
//! executes itself again inside new namespaces (util-linux `unshare`), where
//! only `lo` exists: "every interface" is then loopback, and one run's
//! control plane cannot collide with another's. The gateways of the
//! scenarios inside one namespace each take a block of ports of their own
//! (`ports::PortBlock`). The inner run is PID 1 of its namespace: when it
//! dies, the kernel kills everything left in it, grandchildren of other
//! programs included (Envoy under pilot-agent).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::ExitStatus;

use nix::sys::signal::{signal, SigHandler, Signal};

/// Set in the environment of a run inside its own namespaces.
pub const ISOLATED: &str = "PLUGPROOF_ISOLATED";

#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error("this profile runs in its own network namespace, which needs root (or CAP_SYS_ADMIN); run as root")]
    NeedsRoot,
    #[error("cannot run in new namespaces: {0}")]
    Io(#[from] io::Error),
}

pub fn is_isolated() -> bool {
    std::env::var_os(ISOLATED).is_some()
}

/// Runs this executable again with `args` in new namespaces and waits for
/// it. Ctrl-C reaches it directly (same process group); this process
/// ignores SIGINT and SIGTERM meanwhile so that the inner run, not its
/// parent, decides how to stop.
pub fn rerun_isolated(args: impl IntoIterator<Item = OsString>) -> Result<ExitStatus, IsolationError> {
    let namespaces = ["unshare", "--net", "--mount", "--propagation", "private", "--pid", "--kill-child", "--"];
    rerun(&namespaces, args, &[], None)
}

/// Runs this executable again with `args` inside the network namespace of
/// process `pid` (a shared control plane's), with `env` added, and waits
/// for it, as `rerun_isolated` does; gives up (and ends it) if process
/// `watch` goes away first (a test runner killed outright).
pub fn rerun_joining(
    pid: u32,
    args: impl IntoIterator<Item = OsString>,
    env: &[(&str, &std::ffi::OsStr)],
    watch: u32,
) -> Result<ExitStatus, IsolationError> {
    let target = pid.to_string();
    rerun(&["nsenter", "--target", &target, "--net", "--"], args, env, Some(watch))
}

fn rerun(
    prefix: &[&str],
    args: impl IntoIterator<Item = OsString>,
    env: &[(&str, &std::ffi::OsStr)],
    watch: Option<u32>,
) -> Result<ExitStatus, IsolationError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(IsolationError::NeedsRoot);
    }
    let exe = std::env::current_exe()?;
    // The run's containers are this process's: its reaper, in the machine's
    // PID namespace, outlives the run's (which takes every process in it
    // along when it ends, a reaper of the run's own too).
    super::container::reaper::ensure();
    let mut cmd = std::process::Command::new(prefix[0]);
    cmd.args(&prefix[1..])
        .arg(exe)
        .args(args)
        .env(ISOLATED, "1")
        .env(super::owner::OWNER_ENV, super::owner::me())
        .envs(env.iter().copied());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            signal(Signal::SIGINT, SigHandler::SigDfl)?;
            signal(Signal::SIGTERM, SigHandler::SigDfl)?;
            // `unshare` (or `nsenter`) dies with this process, and takes the inner run along.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            Ok(())
        });
    }
    let ignore = |sig| unsafe { signal(sig, SigHandler::SigIgn) };
    let (old_int, old_term) = (ignore(Signal::SIGINT), ignore(Signal::SIGTERM));
    let status = cmd.spawn().and_then(|child| wait(child, watch));
    // SAFETY: restoring the handlers that were in place before.
    unsafe {
        if let Ok(h) = old_int {
            let _ = signal(Signal::SIGINT, h);
        }
        if let Ok(h) = old_term {
            let _ = signal(Signal::SIGTERM, h);
        }
    }
    Ok(status?)
}

/// Waits for `child`; if process `watch` is gone first, kills it (its
/// children die with it) and says so.
fn wait(mut child: std::process::Child, watch: Option<u32>) -> io::Result<ExitStatus> {
    let Some(watch) = watch else { return child.wait() };
    let watched = format!("/proc/{watch}");
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if !std::path::Path::new(&watched).exists() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!("process {watch}, which this run belongs to, is gone")));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Inside new namespaces: brings `lo` up (a new network namespace starts with it down).
pub fn bring_loopback_up() -> io::Result<()> {
    // SAFETY: a plain socket(2) call; the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zero is a valid value for every field.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: the ioctls read and write only `request`, which outlives them.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
