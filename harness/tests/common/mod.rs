//! What this repository's test binaries share at the edge: the workspace
//! and options from the environment, and the targets to test.

#![allow(dead_code)] // Each test binary uses part of it.

use std::path::{Path, PathBuf};

use plugproof::options::Options;

/// The workspace, as the test runner says at run time (an archive run
/// from another folder remaps it).
pub fn workspace() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo or nextest sets CARGO_MANIFEST_DIR");
    PathBuf::from(manifest).join("..")
}

/// The `plugproof` binary: where nextest says (an archive moves it), else
/// where cargo built it.
pub fn plugproof_binary() -> PathBuf {
    std::env::var_os("NEXTEST_BIN_EXE_plugproof")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_plugproof")), PathBuf::from)
}

/// The options of the workspace's checkout, from the environment.
pub fn options() -> Options {
    let root = workspace();
    Options::from_env(&root, root.join("target/plugproof-report"))
}

/// Waits up to `limit` for `done`; whether it held.
pub fn wait_for(limit: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    done()
}

/// The first of `files` that holds `text`, for tests that search what a run left.
pub fn first_holding(files: &[PathBuf], text: &str) -> std::io::Result<Option<PathBuf>> {
    for file in files {
        if String::from_utf8_lossy(&std::fs::read(file)?).contains(text) {
            return Ok(Some(file.clone()));
        }
    }
    Ok(None)
}

/// Every file below `dir`, for tests that search what a run left.
pub fn files_below(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(files_below(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}
