//! `cargo:`: a crate built for wasm32-unknown-unknown with the toolchain
//! recipe of the test modules (a toolchain with the target, or Debian's
//! rustc-web building std), into a target folder of its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::super::wasm::{Toolchain, TARGET};
use super::super::{run_logged, Cache, ProvisionError};

/// Blocking: the module of the cdylib crate in `dir`, built unless these
/// sources were built before.
pub fn build(cache: &Cache, dir: &Path) -> Result<PathBuf, ProvisionError> {
    let toolchain = Toolchain::detect(cache)?;
    let key = super::key(dir, &["cargo", &toolchain.id()])?;
    let module = cache.path(&format!("built/cargo-{}.wasm", &key[..16]));
    let target_dir = cache.path(&format!("built/cargo-target-{}", &super::key_of_path(dir)[..16]));
    cache.fill(
        &format!("cargo-{}", &key[..16]),
        format!("building {} for {TARGET} ({})", dir.display(), toolchain.mode()),
        || module.is_file(),
        || {
            let name = cdylib(dir)?;
            let log = target_dir.with_extension("log");
            std::fs::create_dir_all(&target_dir).map_err(ProvisionError::io("cannot create", &target_dir))?;
            run_logged(toolchain.cargo(dir, &target_dir), &log)?;
            let built = target_dir.join(TARGET).join("release").join(format!("{name}.wasm"));
            super::install(&built, &module)
        },
    )?;
    Ok(module)
}

/// The name of the cdylib target of the package in `dir`.
fn cdylib(dir: &Path) -> Result<String, ProvisionError> {
    let manifest = dir.join("Cargo.toml");
    let command = format!("cargo metadata --no-deps ({})", manifest.display());
    let output = Command::new("cargo")
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .map_err(|e| ProvisionError::Spawn { command: command.clone(), message: e.to_string() })?;
    let failed = |message: String| ProvisionError::Crate { manifest: manifest.clone(), message };
    if !output.status.success() {
        return Err(failed(format!("`cargo metadata` says:\n{}", String::from_utf8_lossy(&output.stderr).trim_end())));
    }
    let metadata: Value = serde_json::from_slice(&output.stdout).map_err(|e| failed(e.to_string()))?;
    let canonical = manifest.canonicalize().unwrap_or(manifest.clone());
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["manifest_path"].as_str().is_some_and(|m| Path::new(m) == canonical))
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .find(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib")))
        .and_then(|t| t["name"].as_str())
        .map(|name| name.replace('-', "_"))
        .ok_or_else(|| failed("the package has no cdylib target; add `[lib] crate-type = [\"cdylib\"]`".into()))
}
