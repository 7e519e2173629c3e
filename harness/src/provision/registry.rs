//! The OCI registry program: Debian's `docker-registry` (CNCF Distribution).

use std::path::{Path, PathBuf};

use super::{is_executable, on_path, ProvisionError};

/// `chosen` if given, else `docker-registry` on PATH or in /usr/bin.
pub fn registry_binary(chosen: Option<&Path>) -> Result<PathBuf, ProvisionError> {
    if let Some(path) = chosen {
        return if is_executable(path) { Ok(path.to_owned()) } else { Err(ProvisionError::RegistryMissing) };
    }
    on_path("docker-registry")
        .or_else(|| Some(PathBuf::from("/usr/bin/docker-registry")).filter(|p| is_executable(p)))
        .ok_or(ProvisionError::RegistryMissing)
}
