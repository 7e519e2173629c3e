//! Programs built with Go from the module proxy, each pinned by a module of
//! the project's own under `images/` (go.mod + go.sum, with the `replace`s
//! the proxy needs). A build is cached by the pin, the flags and the Go
//! version, so an unchanged pin is never rebuilt.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::Digest;

use super::{Cache, ProvisionError};

/// One Go command to build.
#[derive(Debug, Clone, Copy)]
pub struct GoProgram {
    /// The binary's name.
    pub name: &'static str,
    pub package: &'static str,
    pub tags: &'static str,
    pub ldflags: &'static str,
    /// A Go string variable set (`-X`) to the pin's `build-version` file, so
    /// the binary reports the version its pin builds.
    pub build_version_var: Option<&'static str>,
    /// Modules the checksum database does not know (served by the proxy only).
    pub nosumdb: &'static str,
    /// How long a cold build takes on 2 cores, for the progress line.
    pub cold_build: &'static str,
}

/// `go` with the settings every build here uses.
pub fn go(pin_dir: &Path, nosumdb: &str) -> Command {
    let mut cmd = Command::new("go");
    cmd.current_dir(pin_dir).env("GOFLAGS", "-buildvcs=false -mod=readonly").env("GOTOOLCHAIN", "local");
    if !nosumdb.is_empty() {
        cmd.env("GONOSUMDB", nosumdb);
    }
    cmd
}

/// `go version`, part of every build's cache key.
pub fn go_version() -> Result<String, ProvisionError> {
    let out = Command::new("go").arg("version").output().map_err(|e| ProvisionError::GoMissing(e.to_string()))?;
    if !out.status.success() {
        return Err(ProvisionError::GoMissing(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Blocking: builds `program` from the pin module in `pin_dir` with Go
/// `version`, unless this pin was built before.
pub fn build(cache: &Cache, program: &GoProgram, pin_dir: &Path, version: &str) -> Result<PathBuf, ProvisionError> {
    let mut ldflags = program.ldflags.to_owned();
    if let Some(var) = program.build_version_var {
        let path = pin_dir.join("build-version");
        let build_version =
            std::fs::read_to_string(&path).map_err(ProvisionError::io("cannot read the Go pin", &path))?;
        ldflags = format!("{ldflags} -X {var}={}", build_version.trim()).trim_start().to_owned();
    }
    let mut hasher = sha2::Sha256::new();
    for file in ["go.mod", "go.sum"] {
        let path = pin_dir.join(file);
        hasher.update(std::fs::read(&path).map_err(ProvisionError::io("cannot read the Go pin", &path))?);
    }
    for part in [program.package, program.tags, &ldflags, version] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let key = hex::encode(hasher.finalize());
    let dir = cache.path(&format!("go/{}-{}", program.name, &key[..16]));
    let binary = dir.join(program.name);
    let pin = pin_dir.file_name().unwrap_or_default().to_string_lossy();
    let what = format!(
        "building {} from the Go module proxy (pin {pin}; a cold build takes {})",
        program.name, program.cold_build
    );
    cache.fill(
        &format!("go-{}", program.name),
        what,
        || binary.exists(),
        || {
            std::fs::create_dir_all(&dir).map_err(ProvisionError::io("cannot create", &dir))?;
            let started = Instant::now();
            let partial = dir.join(format!("{}.partial", program.name));
            let mut cmd = go(pin_dir, program.nosumdb);
            cmd.args(["build", "-trimpath", "-o"]).arg(&partial);
            if !program.tags.is_empty() {
                cmd.args(["-tags", program.tags]);
            }
            if !ldflags.is_empty() {
                cmd.args(["-ldflags", &ldflags]);
            }
            cmd.arg(program.package);
            super::run_logged(cmd, &dir.join("build.log"))?;
            // The first build's time, kept beside the binary for the records.
            let took = format!("{} built in {:.0}s with {version}\n", program.name, started.elapsed().as_secs_f64());
            std::fs::write(dir.join("build-time.txt"), took).map_err(ProvisionError::io("cannot write", &dir))?;
            std::fs::rename(&partial, &binary).map_err(ProvisionError::io("cannot install", &binary))
        },
    )?;
    Ok(binary)
}
