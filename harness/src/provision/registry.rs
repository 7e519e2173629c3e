//! The OCI registry program: Debian's `docker-registry` (CNCF Distribution).

use std::path::PathBuf;

use super::{is_executable, on_path, ProvisionError};

pub fn registry_binary() -> Result<PathBuf, ProvisionError> {
    if let Some(path) = std::env::var_os("PLUGPROOF_REGISTRY").map(PathBuf::from) {
        return if is_executable(&path) { Ok(path) } else { Err(ProvisionError::RegistryMissing) };
    }
    on_path("docker-registry")
        .or_else(|| Some(PathBuf::from("/usr/bin/docker-registry")).filter(|p| is_executable(p)))
        .ok_or(ProvisionError::RegistryMissing)
}
