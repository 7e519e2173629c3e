//! The cache directory (`Options::cache`) and
//! the file locks that let parallel test processes share it.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::ProvisionError;
use crate::report::progress::Progress;

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
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

    /// Makes a cache entry once: unless `ready` holds, takes the named lock
    /// (parallel processes wait for one maker), checks again, and runs
    /// `make` with `what` shown as progress.
    pub fn fill(
        &self,
        lock: &str,
        what: String,
        ready: impl Fn() -> bool,
        make: impl FnOnce() -> Result<(), ProvisionError>,
    ) -> Result<(), ProvisionError> {
        if ready() {
            return Ok(());
        }
        let path = self.root.join(format!("{lock}.lock"));
        let file = File::create(&path).map_err(ProvisionError::io("cannot create a cache lock", &path))?;
        file.lock().map_err(ProvisionError::io("cannot take a cache lock", &path))?;
        if ready() {
            return Ok(());
        }
        let progress = Progress::start(what);
        let result = make();
        progress.finish(result.is_ok());
        result
    }
}
