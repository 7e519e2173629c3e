//! Module sources: where a scenario's plugin comes from. A built-in test
//! module, a `.wasm` file, an image in a registry the user names, a crate
//! built for wasm32, or a Go package built for wasip1. Each resolves to a
//! module file and its sha256; what is built is cached by a hash of its
//! sources and build settings, so unchanged sources are never rebuilt.
//! What the user supplies is checked: it must be a Wasm module, not empty,
//! and under `MAX_MODULE`.

mod cargo;
mod go;
mod oci;

use std::path::{Path, PathBuf};

use sha2::Digest;

use super::{BuiltModules, Cache, ProvisionError};
use crate::options::OciAccess;
use crate::scenario::ModuleSource;

/// The largest module plugproof takes from a user (Go plugins run to
/// several MB; V8 takes seconds per MB to compile them).
pub const MAX_MODULE: u64 = 64 << 20;

/// A module ready to push: its file, its sha256 (hex), and its source as
/// the scenario names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFile {
    pub path: PathBuf,
    pub sha256: String,
    pub source: String,
    /// One of plugproof's own test modules.
    pub builtin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("{source_}: not a Wasm module (it does not start with \\0asm but with {head:?}); give a .wasm file")]
    NotWasm { source_: String, head: String },
    #[error("{0}: the module is empty")]
    Empty(String),
    #[error("{source_}: the module is {size} bytes, over plugproof's limit of {MAX_MODULE} bytes")]
    TooLarge { source_: String, size: u64 },
    #[error("{source_}: cannot read {}: {error}", path.display())]
    Read { source_: String, path: PathBuf, error: std::io::Error },
    #[error("{source_}: {error}")]
    Build { source_: String, error: ProvisionError },
    #[error("{source_}: {error}")]
    Pull { source_: String, error: Box<crate::oci::OciError> },
}

/// What resolving a source needs: the cache, the built-in modules, and
/// how to reach the registries the user names.
#[derive(Debug, Clone)]
pub struct Sources {
    pub cache: Cache,
    pub builtin: BuiltModules,
    pub oci: OciAccess,
}

impl Sources {
    /// Finds, fetches or builds the module of `source` (blocking work off
    /// the async threads; builds show progress).
    pub async fn resolve(&self, source: &ModuleSource) -> Result<ModuleFile, ModuleError> {
        let name = source.to_string();
        let path = match source {
            // The catalog's modules are plugproof's own, corrupt one included.
            ModuleSource::Builtin(module) => return file(self.builtin.path(module), name, true),
            ModuleSource::File(path) => path.clone(),
            ModuleSource::Oci(reference) => oci::pull(&self.cache, reference, &self.oci)
                .await
                .map_err(|error| ModuleError::Pull { source_: name.clone(), error: Box::new(error) })?,
            ModuleSource::Cargo(dir) => {
                let (cache, dir) = (self.cache.clone(), dir.clone());
                build(name.clone(), move || cargo::build(&cache, &dir)).await?
            }
            ModuleSource::Go(dir) => {
                let (cache, dir) = (self.cache.clone(), dir.clone());
                build(name.clone(), move || go::build(&cache, &dir)).await?
            }
        };
        file(path, name, false)
    }
}

async fn build(
    source: String,
    work: impl FnOnce() -> Result<PathBuf, ProvisionError> + Send + 'static,
) -> Result<PathBuf, ModuleError> {
    super::blocking(work).await.map_err(|error| ModuleError::Build { source_: source, error })
}

/// The module at `path`, checked unless it is plugproof's own.
fn file(path: PathBuf, source: String, builtin: bool) -> Result<ModuleFile, ModuleError> {
    let bytes = std::fs::read(&path).map_err(|error| ModuleError::Read {
        source_: source.clone(),
        path: path.clone(),
        error,
    })?;
    if !builtin {
        check_module(&bytes, &source)?;
    }
    Ok(ModuleFile { sha256: hex::encode(sha2::Sha256::digest(&bytes)), path, source, builtin })
}

/// A Wasm module: the `\0asm` magic, not empty, under the limit.
pub fn check_module(bytes: &[u8], source: &str) -> Result<(), ModuleError> {
    if bytes.is_empty() {
        return Err(ModuleError::Empty(source.to_owned()));
    }
    if bytes.len() as u64 > MAX_MODULE {
        return Err(ModuleError::TooLarge { source_: source.to_owned(), size: bytes.len() as u64 });
    }
    if !bytes.starts_with(b"\0asm") {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(16)]).into_owned();
        return Err(ModuleError::NotWasm { source_: source.to_owned(), head });
    }
    Ok(())
}

/// A cache key over `parts` and the sources in `dir` (what the build reads).
fn key(dir: &Path, parts: &[&str]) -> Result<String, ProvisionError> {
    super::wasm::source_hash(dir, &parts.join("\0"))
}

/// A key for the folder itself, so each crate keeps one incremental target folder.
fn key_of_path(dir: &Path) -> String {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    hex::encode(sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes()))
}

/// Copies what a build made into the cache, whole or not at all.
fn install(built: &Path, module: &Path) -> Result<(), ProvisionError> {
    let partial = module.with_extension("installing");
    std::fs::copy(built, &partial).map_err(ProvisionError::io("cannot copy the built module", built))?;
    std::fs::rename(&partial, module).map_err(ProvisionError::io("cannot install", module))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_module_is_refused_by_name() {
        let source = "{file: x.wasm}";
        assert!(matches!(check_module(b"", source), Err(ModuleError::Empty(_))));
        let error = check_module(b"this is not a Wasm module", source).unwrap_err().to_string();
        assert_eq!(
            error,
            r#"{file: x.wasm}: not a Wasm module (it does not start with \0asm but with "this is not a Wa"); give a .wasm file"#
        );
        assert!(check_module(b"\0asm\x01\0\0\0", source).is_ok());
    }
}
