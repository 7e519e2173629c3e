//! A child process in its own process group. Dropping it kills the whole
//! group (so helpers a component starts go too); if the harness dies without
//! dropping it, the kernel kills it (PR_SET_PDEATHSIG).

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::component::Running;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {name} ({}): {source}", program.display())]
    Spawn {
        name: String,
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the log file {}: {source}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Short name for messages ("envoy", "registry").
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: Option<PathBuf>,
    /// stdout and stderr both go here.
    pub log: PathBuf,
}

impl ProcessSpec {
    pub fn new(name: &str, program: &Path, log: PathBuf) -> Self {
        ProcessSpec {
            name: name.to_owned(),
            program: program.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            log,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<A: Into<OsString>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn envs<K: Into<OsString>, V: Into<OsString>>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        self.env.extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }
}

#[derive(Debug)]
pub struct Process {
    name: String,
    child: tokio::process::Child,
    pgid: Pid,
    log: PathBuf,
}

impl Process {
    pub fn spawn(spec: &ProcessSpec) -> Result<Self, ProcessError> {
        let log_err = |source| ProcessError::Log { path: spec.log.clone(), source };
        if let Some(dir) = spec.log.parent() {
            std::fs::create_dir_all(dir).map_err(log_err)?;
        }
        let out = File::create(&spec.log).map_err(log_err)?;
        let err = out.try_clone().map_err(log_err)?;
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from));
        }
        let child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            name: spec.name.clone(),
            program: spec.program.clone(),
            source,
        })?;
        let pid = child.id().expect("a child that was just spawned has a pid");
        tracing::debug!(name = %spec.name, pid, "started {}", spec.program.display());
        Ok(Process { name: spec.name.clone(), child, pgid: Pid::from_raw(pid as i32), log: spec.log.clone() })
    }

    pub fn pid(&self) -> u32 {
        self.pgid.as_raw() as u32
    }

    /// The exit status if the process has already ended.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Asks the group to stop (SIGTERM), then kills it after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        let _ = killpg(self.pgid, Signal::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait()).await.is_err() {
            tracing::warn!(name = %self.name, "did not stop within {grace:?}; killing it");
        }
        // Drop kills what is left of the group.
    }

    /// Kills the group at once and waits until the process is gone.
    pub async fn kill(mut self) {
        let _ = killpg(self.pgid, Signal::SIGKILL);
        let _ = self.child.wait().await;
    }
}

#[async_trait]
impl Running for Process {
    fn name(&self) -> &str {
        &self.name
    }

    fn log_path(&self) -> &Path {
        &self.log
    }

    fn exited(&mut self) -> Option<String> {
        self.exit_status().map(|status| status.to_string())
    }

    async fn stop(self: Box<Self>, grace: Duration) {
        Process::stop(*self, grace).await;
    }

    async fn kill(self: Box<Self>) {
        Process::kill(*self).await;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The group may hold grandchildren (pilot-agent's Envoy); end them all.
        let _ = killpg(self.pgid, Signal::SIGKILL);
        let _ = self.child.start_kill();
    }
}
