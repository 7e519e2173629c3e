//! The evidence a failed scenario leaves: its run directory (component logs,
//! rendered configuration), Envoy's config_dump, the error and the step trace.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::files::copy_tree;
use crate::steps::StepResult;

/// Run-directory entries not worth keeping: registry blobs, modules, etcd's
/// data, the agent's Wasm cache.
const SKIP: &[&str] = &["storage", "modules", "etcd", "varlib"];

/// `extra`: further evidence the deployment gathered (file name, JSON).
pub fn write(
    target: &Path,
    run_dir: &Path,
    config_dump: Option<&Value>,
    extra: &[(String, Value)],
    error: &str,
    steps: &[StepResult],
) -> std::io::Result<()> {
    if target.exists() {
        std::fs::remove_dir_all(target)?;
    }
    copy_tree(run_dir, target, SKIP)?;
    if let Some(dump) = config_dump {
        std::fs::write(target.join("config_dump.json"), serde_json::to_vec_pretty(dump)?)?;
    }
    for (name, value) in extra {
        std::fs::write(target.join(name), serde_json::to_vec_pretty(value)?)?;
    }
    std::fs::write(target.join("error.txt"), format!("{error}\n"))?;
    std::fs::write(target.join("steps.txt"), trace(steps))?;
    Ok(())
}

/// One block per step that ran: where, what, how it went.
pub fn trace(steps: &[StepResult]) -> String {
    let mut out = String::new();
    for step in steps {
        let _ = writeln!(
            out,
            "{} line {} {} ({} attempts, {:.3}s)",
            step.verdict(),
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
