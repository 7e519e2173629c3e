//! What both targets share: one scratch file to load from, the module names
//! the plugins workspace builds, and the loader's contract checked on every
//! input: it returns a scenario or `file:line:column` diagnostics, never
//! panics, and what it accepts is safe for the runner to use.
#![allow(dead_code)] // each target uses part of it

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plugproof::scenario::{load_file, LoadError};

pub const MODULES: [&str; 5] = ["stamp", "stamp-v2", "probe", "fault", "corrupt"];

struct Scratch {
    root: PathBuf,
    file: PathBuf,
    modules: BTreeSet<String>,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        // tmpfs where there is one: a write per input stays cheap. One folder
        // per process, so that parallel jobs do not share the file (ci/fuzz
        // removes the folders of processes that have ended).
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() { base.to_path_buf() } else { std::env::temp_dir() };
        let root = base.join("plugproof-fuzz").join(std::process::id().to_string());
        std::fs::create_dir_all(root.join("fuzz")).expect("the scratch folder can be made");
        let file = root.join("fuzz/scenario.yaml");
        Scratch { root, file, modules: MODULES.iter().map(|m| (*m).to_owned()).collect() }
    })
}

/// The repository root (seed scenarios live there).
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `*.yaml` below `dir`, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Loads `text` as a scenario file and checks the loader's contract.
pub fn check(text: &str) {
    let s = scratch();
    // Shows what an input made and what the loader said of it, to turn a
    // finding into a test.
    let print = std::env::var_os("PLUGPROOF_FUZZ_PRINT").is_some();
    if print {
        eprintln!("----- scenario -----\n{text}\n--------------------");
    }
    std::fs::write(&s.file, text).expect("the scratch file can be written");
    let loaded = load_file(&s.file, &s.root, &s.modules);
    if print {
        match &loaded {
            Ok(scenario) => eprintln!("loaded: {} steps", scenario.steps.len()),
            Err(e) => eprintln!("{e}"),
        }
    }
    match loaded {
        Ok(scenario) => {
            // What the runner does with an accepted scenario must not panic
            // either: its references were checked.
            assert_eq!(scenario.id, "fuzz/scenario");
            assert!(!scenario.steps.is_empty(), "a scenario without steps was accepted");
            let _ = scenario.routes_by_host();
            for step in &scenario.steps {
                let _ = step.label();
                if let Some(mark) = &step.expected_failure {
                    let _ = mark.describe();
                }
            }
        }
        Err(LoadError::Invalid(diagnostics)) => {
            assert!(!diagnostics.is_empty(), "an invalid scenario without a diagnostic");
            for d in &diagnostics {
                assert_eq!(d.file, s.file, "{d}");
                let _ = d.to_string();
            }
        }
        Err(e @ LoadError::Read { .. }) => panic!("the scratch file was just written: {e}"),
    }
}
