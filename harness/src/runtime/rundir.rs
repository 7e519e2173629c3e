//! Run folders under the system's temp folder (`plugproof-*`): each holds a
//! note of the process that owns it, removed when it is dropped. A process
//! killed outright cannot remove its own; the next run sweeps those whose
//! owner is gone.

use std::io;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::owner;

const PREFIX: &str = "plugproof-";
const OWNER: &str = ".owner";

/// A fresh run folder, `plugproof-<what>-XXXXXX`, owned by this process.
pub fn create(what: &str) -> io::Result<TempDir> {
    let dir = tempfile::Builder::new().prefix(&format!("{PREFIX}{what}-")).tempdir()?;
    std::fs::write(dir.path().join(OWNER), owner::me())?;
    Ok(dir)
}

/// Removes the run folders whose owner is gone; returns how many.
pub fn sweep() -> usize {
    orphans().iter().filter(|dir| std::fs::remove_dir_all(dir).is_ok()).count()
}

/// The run folders whose owner is gone.
pub fn orphans() -> Vec<PathBuf> {
    all().into_iter().filter(|dir| orphaned(dir)).collect()
}

/// Every run folder, whoever owns it.
pub fn all() -> Vec<PathBuf> {
    let entries = std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().filter_map(Result::ok);
    entries.filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX)).map(|e| e.path()).collect()
}

/// The id of the process that owns a run folder, as its note says.
pub fn owner_of(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join(OWNER)).ok()?.split_whitespace().next()?.parse().ok()
}

/// A folder with an owner note whose process is gone (or another process
/// now has its id). A folder without one is not a run folder, or one being
/// made: left alone.
fn orphaned(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(OWNER)).is_ok_and(|owner| owner::gone(&owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_owner_keeps_its_folder_and_a_dead_one_loses_it() {
        let mine = create("sweep-test").expect("a run folder");
        assert!(!orphaned(mine.path()), "this process owns it");
        let dead = create("sweep-test").expect("a run folder");
        // A process that has exited: its id and start time no longer match.
        let mut child = std::process::Command::new("true").spawn().expect("true runs");
        let pid = child.id();
        child.wait().expect("true ends");
        std::fs::write(dead.path().join(OWNER), format!("{pid} 1")).expect("write");
        assert!(orphaned(dead.path()));
        let path = dead.keep();
        sweep();
        assert!(!path.exists(), "swept");
        assert!(mine.path().exists(), "kept");
    }

    #[test]
    fn a_zombie_owner_is_gone() {
        let dir = create("sweep-test").expect("a run folder");
        let mut child = std::process::Command::new("sleep").arg("0.2").spawn().expect("sleep runs");
        let pid = child.id();
        std::fs::write(dir.path().join(OWNER), owner::identity(pid).expect("a live child")).expect("write");
        assert!(!orphaned(dir.path()), "its owner runs");
        // Not waited for: once it exits it stays a zombie until reaped.
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(orphaned(dir.path()), "a zombie owner has ended");
        child.wait().expect("reaped");
    }
}
