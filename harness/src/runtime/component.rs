//! The seam between what a target's gateway runs (Envoy, istio's agent)
//! and how it runs: a `Launch` says what to start, whatever starts it; a
//! `Runtime` starts it (host processes, or containers of an image); the
//! `Running` it hands back is all a component sees of it: its log, whether
//! it ended, how to stop it, and what to keep as evidence.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

/// A program a target's gateway is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Envoy,
    /// istio's pilot-agent, which runs Envoy itself.
    Agent,
}

impl Program {
    pub fn name(self) -> &'static str {
        match self {
            Program::Envoy => "envoy",
            Program::Agent => "pilot-agent",
        }
    }
}

/// What to start, whatever starts it. Paths in `args` and `env` are as the
/// program sees them: host folders in `shared` are seen at the same path,
/// and the runtime says where its programs are (`Runtime::path`).
#[derive(Debug, Clone)]
pub struct Launch {
    /// Short name for messages and logs ("envoy", "pilot-agent").
    pub name: String,
    pub program: Program,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// Its working folder, a host folder it shares.
    pub dir: PathBuf,
    /// stdout and stderr both go here.
    pub log: PathBuf,
    /// Host folders it reads or writes, at the same path.
    pub shared: Vec<PathBuf>,
    /// Paths it writes that must be its own, not the machine's (istio's
    /// agent keeps its Wasm cache in `/var/lib/istio/data`).
    pub private: Vec<PathBuf>,
}

impl Launch {
    pub fn new(program: Program, dir: &Path, log: PathBuf) -> Self {
        Launch {
            name: program.name().to_owned(),
            program,
            args: Vec::new(),
            env: Vec::new(),
            dir: dir.to_path_buf(),
            log,
            shared: vec![dir.to_path_buf()],
            private: Vec::new(),
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

    pub fn share(mut self, dir: &Path) -> Self {
        self.shared.push(dir.to_path_buf());
        self
    }

    pub fn private(mut self, path: &Path) -> Self {
        self.private.push(path.to_path_buf());
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Process(#[from] super::ProcessError),
    #[error(transparent)]
    Container(#[from] super::container::engine::ContainerError),
    #[error(transparent)]
    Pod(#[from] super::pod::PodError),
    #[error("nothing restarts {name} in place where this target runs it; only a Pod's restart policy does (the cluster target)")]
    NoRestart { name: String },
    #[error("this target runs no {program} ({runtime}); {hint}")]
    NoProgram { program: &'static str, runtime: String, hint: String },
}

/// How a target's gateway programs run.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// Where `program` is, as what this runtime starts sees it.
    fn path(&self, program: Program) -> Result<PathBuf, RuntimeError>;

    /// The agent's Envoy bootstrap template, as the agent sees it.
    fn bootstrap_template(&self) -> Result<PathBuf, RuntimeError>;

    async fn start(&self, launch: &Launch) -> Result<Box<dyn Running>, RuntimeError>;

    /// Where the harness reaches `addr`, on which the program it started as
    /// `name` listens: the address itself where they share a network.
    async fn reach(&self, _name: &str, addr: SocketAddr) -> Result<SocketAddr, RuntimeError> {
        Ok(addr)
    }
}

/// A started program, as the components see it.
#[async_trait]
pub trait Running: Send + Sync {
    fn name(&self) -> &str;

    /// Where its stdout and stderr go.
    fn log_path(&self) -> &Path;

    /// How it ended, if it has ("exit status: 1", "container exited with code 1").
    fn exited(&mut self) -> Option<String>;

    /// Asks it to stop, then kills it after `grace`.
    async fn stop(self: Box<Self>, grace: Duration);

    /// Ends it at once and waits until it is gone.
    async fn kill(self: Box<Self>);

    /// Evidence beyond its log, for a failure's bundle: (file name, JSON).
    async fn evidence(&self) -> Vec<(String, Value)> {
        Vec::new()
    }

    /// How many times it was started again in place (a Pod's restart
    /// policy does that), or None where nothing restarts it.
    async fn restarts(&self) -> Option<u32> {
        None
    }

    /// Waits until it runs again in place after its restart number `after`
    /// ended, and follows the new run; where nothing restarts it, says so.
    async fn await_restart(&mut self, _after: u32) -> Result<(), RuntimeError> {
        Err(RuntimeError::NoRestart { name: self.name().to_owned() })
    }

    /// The last `lines` lines of its log, for error messages.
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}
