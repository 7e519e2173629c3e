//! Run folders under the system's temp folder (`plugproof-*`): each holds a
//! note of the process that owns it, removed when it is dropped. A process
//! killed outright cannot remove its own; the next run sweeps those whose
//! owner is gone.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::owner;

const PREFIX: &str = "plugproof-";
const OWNER: &str = ".owner";
/// How long a run folder may be without its owner note: it gets one as it
/// is made.
const UNOWNED_GRACE: Duration = Duration::from_secs(60);

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
/// now has its id). One without a note is being made, or was made again
/// after its run removed it (a container engine creates a bind mount's
/// missing source, and a container of a killed run may still be starting):
/// orphaned once older than the grace.
fn orphaned(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join(OWNER)) {
        Ok(owner) => owner::gone(&owner),
        Err(_) => std::fs::metadata(dir)
            .and_then(|m| m.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > UNOWNED_GRACE)),
    }
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
    fn a_folder_without_an_owner_is_left_alone_only_while_it_is_new() {
        let dir = tempfile::Builder::new().prefix(&format!("{PREFIX}sweep-test-")).tempdir().expect("a folder");
        std::fs::create_dir(dir.path().join("gateway")).expect("mkdir");
        assert!(!orphaned(dir.path()), "it may be being made");
        let long_ago = std::time::SystemTime::now() - UNOWNED_GRACE * 2;
        std::fs::File::open(dir.path()).and_then(|f| f.set_modified(long_ago)).expect("backdate");
        // Another run's sweep may take it first: that, too, judged it orphaned.
        assert!(orphaned(dir.path()) || !dir.path().exists(), "remade after its run");
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
