//! `go:`: a Go main package built with the standard Go compiler (1.24 or
//! later) as a proxy-wasm module: `GOOS=wasip1 GOARCH=wasm go build
//! -buildmode=c-shared`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::super::go::go_version;
use super::super::{run_logged, Cache, ProvisionError};

/// The oldest Go that builds a proxy-wasm module (`//go:wasmexport`, c-shared on wasip1).
const OLDEST_GO: (u32, u32) = (1, 24);

/// Blocking: the module of the package in `dir`, built unless these
/// sources were built before with this Go.
pub fn build(cache: &Cache, dir: &Path) -> Result<PathBuf, ProvisionError> {
    let version = go_version()?;
    if parse(&version).is_none_or(|v| v < OLDEST_GO) {
        return Err(ProvisionError::GoMissing(format!(
            "`{version}` cannot build proxy-wasm modules; go: modules need Go {}.{} or later",
            OLDEST_GO.0, OLDEST_GO.1
        )));
    }
    let key = super::key(dir, &["go", &version])?;
    let module = cache.path(&format!("built/go-{}.wasm", &key[..16]));
    cache.fill(
        &format!("go-{}", &key[..16]),
        format!("building {} with {version} (wasip1, c-shared)", dir.display()),
        || module.is_file(),
        || {
            let partial = module.with_extension("partial.wasm");
            let mut cmd = Command::new("go");
            cmd.current_dir(dir)
                .env("GOOS", "wasip1")
                .env("GOARCH", "wasm")
                .env("GOTOOLCHAIN", "local")
                .args(["build", "-trimpath", "-buildmode=c-shared", "-o"])
                .arg(&partial)
                .arg(".");
            std::fs::create_dir_all(cache.path("built"))
                .map_err(ProvisionError::io("cannot create", cache.path("built")))?;
            run_logged(cmd, &module.with_extension("log"))?;
            // Built beside the module under the fill's lock: a rename installs it whole.
            std::fs::rename(&partial, &module).map_err(ProvisionError::io("cannot install", &module))
        },
    )?;
    Ok(module)
}

/// `go version go1.26.8 linux/amd64` -> (1, 26).
fn parse(version: &str) -> Option<(u32, u32)> {
    let number = version
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("go"))
        .find(|n| n.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = number.split('.').map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions() {
        assert_eq!(parse("go version go1.26.8 linux/amd64"), Some((1, 26)));
        assert_eq!(parse("go version go1.23 linux/amd64"), Some((1, 23)));
        assert_eq!(parse("go version devel"), None);
    }
}
