//! The evidence a failed scenario leaves: its run directory (component logs,
//! rendered configuration), Envoy's config_dump, the error, the step trace
//! and the modules pushed (source, sha256, digest).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::assert::reload::summary;
use crate::assert::tcp_reload;
use crate::failure::Failure;
use crate::files::copy_tree;
use crate::outcome::Outcome;
use crate::profiles::ModuleUse;
use crate::steps::StepResult;

/// Run-directory entries not worth keeping (registry blobs, modules, etcd's
/// data, the agent's Wasm cache) or not to be kept (a gateway's token, the
/// registry's private key).
const SKIP: &[&str] = &["storage", "modules", "etcd", "varlib", "tokens", "tls.key"];

/// `extra`: further evidence the deployment gathered (file name, JSON).
pub fn write(
    target: &Path,
    run_dir: &Path,
    config_dump: Option<&Value>,
    extra: &[(String, Value)],
    failure: &Failure,
    outcome: &Outcome,
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
    std::fs::write(target.join("error.txt"), format!("failure kind: {}\n{}\n", failure.kind, failure.message))?;
    std::fs::write(target.join("steps.txt"), trace(&outcome.steps))?;
    std::fs::write(target.join("modules.txt"), modules(&outcome.modules))?;
    Ok(())
}

/// One line per module pushed: plugin, source, sha256, manifest digest.
pub fn modules(modules: &[ModuleUse]) -> String {
    modules.iter().map(|m| format!("{m}\n")).collect()
}

/// One block per step that ran: where, what, how it went.
pub fn trace(steps: &[StepResult]) -> String {
    let mut out = String::new();
    for step in steps {
        let attempts = match (step.attempts, step.once) {
            (_, true) => "1 attempt, no retry, ".to_owned(),
            (Some(count), false) => format!("{count} attempts, "),
            (None, false) => String::new(),
        };
        let _ = writeln!(
            out,
            "{} line {} {} ({attempts}{:.3}s)",
            step.verdict(),
            step.line,
            step.label,
            step.elapsed.as_secs_f64()
        );
        for line in details(step).lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// What a step's record says beyond its verdict: how it failed (for an
/// expected failure, too), what the gateway did with a change, what a
/// reload measured.
pub fn details(step: &StepResult) -> String {
    let mut out = String::new();
    if let Some(reason) = &step.expected_failure {
        let _ = writeln!(out, "failed as marked: {reason}");
    }
    if let Some(failure) = &step.failure {
        let _ = writeln!(out, "[{}] {}", failure.kind, failure.message.trim_end());
    }
    if let Some(update) = &step.update {
        let _ = writeln!(out, "{}", update.summary());
        if let Some(rejection) = &update.rejection {
            let _ = writeln!(out, "Envoy: {rejection}");
        }
    }
    if let Some(analysis) = &step.reload {
        let _ = writeln!(out, "{}", summary(analysis));
    }
    if let Some(analysis) = &step.tcp_reload {
        let _ = writeln!(out, "{}", tcp_reload::summary(analysis));
    }
    out
}
