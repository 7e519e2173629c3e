//! The cache directory (`PLUGPROOF_CACHE`, default the user's cache dir) and
//! the file locks that let parallel test processes share it.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::ProvisionError;

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Held while one process fills a cache entry; released on drop.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

impl Cache {
    pub fn from_env() -> Result<Self, ProvisionError> {
        let root = std::env::var_os("PLUGPROOF_CACHE")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("plugproof")))
            .unwrap_or_else(|| std::env::temp_dir().join("plugproof-cache"));
        Cache::at(root)
    }

    pub fn at(root: PathBuf) -> Result<Self, ProvisionError> {
        std::fs::create_dir_all(&root).map_err(ProvisionError::io("cannot create the cache directory", &root))?;
        Ok(Cache { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Blocks until this process holds the named lock.
    pub fn lock(&self, name: &str) -> Result<CacheLock, ProvisionError> {
        let path = self.root.join(format!("{name}.lock"));
        let file = File::create(&path).map_err(ProvisionError::io("cannot create a cache lock", &path))?;
        file.lock().map_err(ProvisionError::io("cannot take a cache lock", &path))?;
        Ok(CacheLock { _file: file })
    }
}
