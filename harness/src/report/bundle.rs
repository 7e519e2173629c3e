//! The evidence a failed scenario leaves: its run directory (component logs,
//! rendered configuration), Envoy's config_dump, the error and the step trace.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::steps::StepResult;

/// Run-directory entries not worth keeping: registry blobs and modules.
const SKIP: &[&str] = &["storage", "modules"];

pub fn write(
    target: &Path,
    run_dir: &Path,
    config_dump: Option<&Value>,
    error: &str,
    steps: &[StepResult],
) -> std::io::Result<()> {
    if target.exists() {
        std::fs::remove_dir_all(target)?;
    }
    std::fs::create_dir_all(target)?;
    copy_tree(run_dir, target)?;
    if let Some(dump) = config_dump {
        std::fs::write(target.join("config_dump.json"), serde_json::to_vec_pretty(dump)?)?;
    }
    std::fs::write(target.join("error.txt"), format!("{error}\n"))?;
    std::fs::write(target.join("steps.txt"), trace(steps))?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if SKIP.iter().any(|s| name == *s) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// One block per step that ran: where, what, how it went.
pub fn trace(steps: &[StepResult]) -> String {
    let mut out = String::new();
    for step in steps {
        let verdict = if step.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(
            out,
            "{verdict} line {} {} ({} attempts, {:.3}s)",
            step.line,
            step.label,
            step.attempts,
            step.elapsed.as_secs_f64()
        );
        if let Some(detail) = &step.detail {
            for line in detail.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    out
}
