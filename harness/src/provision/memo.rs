//! What a program says of itself (`--version`, its sysroot), kept per
//! program file. Starting a program costs tens of milliseconds, which every
//! run and every test process would otherwise pay again.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use sha2::Digest;

use super::Cache;

/// The stdout of `cmd` (which runs `program`) when it succeeds, remembered
/// under `what` for this very file: its path, size, modification time and
/// inode. A program replaced in place is asked again.
pub(super) fn output_of(cache: &Cache, what: &str, program: &Path, cmd: &mut Command) -> Option<String> {
    let key = identity(what, program);
    let file = key.as_ref().map(|key| cache.path(&format!("memo/{key}")));
    if let Some(said) = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()) {
        return Some(said);
    }
    let output = cmd.output().ok().filter(|o| o.status.success())?;
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    if let Some(file) = file {
        // Written whole, then renamed: parallel test processes read it.
        let partial = file.with_extension(format!("partial-{}", std::process::id()));
        let written = file.parent().map(std::fs::create_dir_all).transpose().is_ok()
            && std::fs::write(&partial, &said).is_ok()
            && std::fs::rename(&partial, &file).is_ok();
        if !written {
            let _ = std::fs::remove_file(&partial);
        }
    }
    Some(said)
}

fn identity(what: &str, program: &Path) -> Option<String> {
    let path = std::fs::canonicalize(program).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    let text =
        format!("{what}\0{}\0{}\0{}\0{}\0{}", path.display(), meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino());
    Some(hex::encode(&sha2::Sha256::digest(text.as_bytes())[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A script that counts its runs in `count` and prints `said`.
    fn counting_script(dir: &Path, said: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("program");
        let count = dir.join("count");
        std::fs::write(&script, format!("#!/bin/sh\necho x >> {}\necho {said}\n", count.display())).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    fn runs(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("count")).unwrap_or_default().lines().count()
    }

    #[test]
    fn a_program_is_asked_once_until_its_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("cache")).unwrap();
        let program = counting_script(dir.path(), "one");
        let ask = || output_of(&cache, "program", &program, &mut Command::new(&program));
        assert_eq!(ask().as_deref(), Some("one\n"));
        assert_eq!(ask().as_deref(), Some("one\n"));
        assert_eq!(runs(dir.path()), 1, "the second answer is remembered");

        // Replaced in place (another size): asked again.
        counting_script(dir.path(), "the other");
        assert_eq!(ask().as_deref(), Some("the other\n"));
        assert_eq!(runs(dir.path()), 2);
    }

    #[test]
    fn a_failing_program_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("cache")).unwrap();
        let ask = || output_of(&cache, "false", Path::new("/bin/false"), &mut Command::new("/bin/false"));
        assert_eq!(ask(), None);
        assert!(!dir.path().join("cache/memo").exists(), "nothing kept of a failure");
    }
}
