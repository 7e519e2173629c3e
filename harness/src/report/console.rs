//! The console: a line per scenario as it finishes, details of failures,
//! and a summary.

use std::fmt::Write as _;
use std::time::Duration;

use crate::assert::{reload, tcp_reload};
use crate::audit::{Fate, Justification, ScenarioAudit};
use crate::outcome::{Outcome, Status};
use crate::report::compare::{Change, Comparison};
use crate::report::conformance::{Entry, Verdict};
use crate::report::matrix;

/// `PASS  ID  (total; stage, deploy, steps)`.
pub fn outcome_line(outcome: &Outcome) -> String {
    let t = &outcome.timings;
    let times = format!(
        "{:.2}s; stage {:.2}s, deploy {:.2}s, steps {:.2}s",
        t.total.as_secs_f64(),
        t.stage.as_secs_f64(),
        t.deploy.as_secs_f64(),
        t.steps.as_secs_f64()
    );
    match &outcome.status {
        Status::Passed => format!("PASS  {}  ({times})", outcome.id),
        Status::Failed(_) => format!("FAIL  {}  ({times})", outcome.id),
        Status::Skipped(reason) => format!("SKIP  {}  ({reason})", outcome.id),
    }
}

/// The user's modules (by source and digest), reload summaries and known
/// failures, which a passing scenario has too.
pub fn step_notes(outcome: &Outcome) -> String {
    let mut out = String::new();
    for module in outcome.modules.iter().filter(|m| !m.builtin) {
        let _ = writeln!(out, "      module {module}");
    }
    for step in &outcome.steps {
        if let Some(reason) = &step.expected_failure {
            let _ = writeln!(out, "      XFAIL line {} {}: known: {reason}", step.line, step.label);
        }
        let measured = step.reload.as_ref().map(reload::summary).or(step.tcp_reload.as_ref().map(tcp_reload::summary));
        if let (true, Some(measured)) = (step.passed, measured) {
            let _ = writeln!(out, "      reload at line {} ({}):", step.line, step.label);
            for line in measured.lines() {
                let _ = writeln!(out, "        {line}");
            }
        }
    }
    out
}

/// For a failure: the error (with its diff) and where the evidence is.
pub fn failure_details(outcome: &Outcome) -> Option<String> {
    let Status::Failed(failure) = &outcome.status else { return None };
    let mut out = String::new();
    let _ = writeln!(out, "      failure kind: {}", failure.kind);
    for line in failure.message.lines() {
        let _ = writeln!(out, "      {line}");
    }
    for module in &outcome.modules {
        let _ = writeln!(out, "      module {module}");
    }
    if let Some(bundle) = &outcome.bundle {
        let _ = writeln!(out, "      evidence: {}", bundle.display());
    }
    Some(out)
}

pub fn summary(outcomes: &[Outcome], elapsed: Duration) -> String {
    let count = |f: fn(&Status) -> bool| outcomes.iter().filter(|o| f(&o.status)).count();
    format!(
        "{} passed, {} failed, {} skipped in {:.2}s",
        count(|s| *s == Status::Passed),
        count(|s| matches!(s, Status::Failed(_))),
        count(|s| matches!(s, Status::Skipped(_))),
        elapsed.as_secs_f64()
    )
}

/// `OK    ID  (9 of 9 mutants killed)`, and a line per survivor (or why
/// nothing was judged).
pub fn audit_lines(audit: &ScenarioAudit) -> String {
    let mut out = String::new();
    let total = audit.mutants.len();
    let (word, counts) = match (&audit.status, audit.count(Fate::Survived)) {
        (Status::Skipped(reason), _) => ("SKIP", format!("{total} mutants not judged: {reason}")),
        (Status::Failed(_), _) => ("FAIL", format!("{total} mutants not judged: the scenario itself failed")),
        (Status::Passed, 0) => ("OK", format!("{} of {total} mutants killed", audit.count(Fate::Killed))),
        (Status::Passed, survived) => ("WEAK", format!("{survived} of {total} mutants survived")),
    };
    let _ = writeln!(out, "{word:<5} {}  ({counts})", audit.id);
    if let Status::Failed(failure) = &audit.status {
        let _ = writeln!(out, "      failure kind: {}", failure.kind);
        for line in failure.message.lines() {
            let _ = writeln!(out, "      {line}");
        }
    }
    for survivor in audit.mutants.iter().filter(|m| m.fate == Fate::Survived) {
        let note = survivor.justified.as_deref().map(|r| format!(" (justified: {r})")).unwrap_or_default();
        let _ = writeln!(out, "      SURVIVED line {}: {}{note}", survivor.line, survivor.change);
    }
    out
}

pub fn audit_summary(audits: &[ScenarioAudit], stale: &[&Justification], elapsed: Duration) -> String {
    let sum = |fate| audits.iter().map(|a| a.count(fate)).sum::<usize>();
    let unjustified: usize = audits.iter().map(|a| a.unjustified().count()).sum();
    let failed = audits.iter().filter(|a| matches!(a.status, Status::Failed(_))).count();
    let mut out = format!(
        "{} scenarios audited ({failed} failed): {} mutants, {} killed, {} survived ({unjustified} unexplained), {} not judged in {:.2}s",
        audits.len(),
        audits.iter().map(|a| a.mutants.len()).sum::<usize>(),
        sum(Fate::Killed),
        sum(Fate::Survived),
        sum(Fate::NotJudged),
        elapsed.as_secs_f64()
    );
    let mut classes: std::collections::BTreeMap<&str, [usize; 3]> = std::collections::BTreeMap::new();
    for mutant in audits.iter().flat_map(|a| &a.mutants) {
        let counts = classes.entry(mutant.class).or_default();
        counts[match mutant.fate {
            Fate::Killed => 0,
            Fate::Survived => 1,
            Fate::NotJudged => 2,
        }] += 1;
    }
    let _ = write!(out, "\nper class (killed / survived / not judged):");
    for (class, [killed, survived, not_judged]) in &classes {
        let _ = write!(out, "\n  {class:<22} {killed:>4} / {survived:>3} / {not_judged:>4}");
    }
    for j in stale {
        let _ = write!(
            out,
            "\nstale justification: {} line {}: {} no longer survives; remove it",
            j.scenario, j.line, j.change
        );
    }
    out
}

/// What changed between two conformance reports, target pair by pair.
pub fn comparison(comparison: &Comparison) -> String {
    let mut out = String::new();
    for pair in &comparison.pairs {
        let _ = writeln!(out, "{} -> {}:", pair.old, pair.new);
        let group = |out: &mut String, title: &str, pick: &dyn Fn(&Change) -> bool| {
            let changes: Vec<&Change> = pair.changes.iter().filter(|c| pick(c)).collect();
            if !changes.is_empty() {
                let _ = writeln!(out, "  {title}:");
                for c in changes {
                    let _ = writeln!(out, "    {} ({} -> {})", c.scenario, c.old.name(), c.new.name());
                }
            }
        };
        group(&mut out, "newly failing", &|c| c.new == Verdict::Fail);
        group(&mut out, "newly passing", &|c| {
            matches!(c.new, Verdict::Pass | Verdict::Xfail) && c.old != Verdict::Skip
        });
        group(&mut out, "newly skipped", &|c| c.new == Verdict::Skip);
        group(&mut out, "no longer skipped", &|c| c.old == Verdict::Skip && c.new != Verdict::Fail);
        if pair.changes.is_empty() {
            let _ = writeln!(out, "  no scenario changed");
        }
        for (side, missing) in [("only in OLD", &pair.only_old), ("only in NEW", &pair.only_new)] {
            if !missing.is_empty() {
                let _ = writeln!(out, "  {side} (missing on the other side): {}", missing.join(", "));
            }
        }
    }
    for (side, targets) in [("OLD", &comparison.unpaired_old), ("NEW", &comparison.unpaired_new)] {
        if !targets.is_empty() {
            let _ = writeln!(out, "targets of {side} with no counterpart: {}", targets.join(", "));
        }
    }
    let regressions = comparison.regressions().count();
    let _ = writeln!(
        out,
        "{}",
        if regressions == 0 {
            "no regression".to_owned()
        } else {
            format!("{regressions} regression(s): a scenario that passed in OLD fails in NEW")
        }
    );
    out
}

/// The compatibility table: a row per scenario, a column per target.
pub fn matrix_table(entries: &[Entry]) -> String {
    let ids = matrix::scenarios(entries);
    let width = ids.iter().map(|i| i.len()).max().unwrap_or(8).max(8);
    let columns: Vec<usize> = entries.iter().map(|e| e.target.len().max(5)).collect();
    let mut out = format!("{:<width$}", "scenario");
    for (entry, w) in entries.iter().zip(&columns) {
        let _ = write!(out, "  {:<w$}", entry.target);
    }
    out.push('\n');
    let by_target: Vec<_> = entries.iter().map(Entry::by_scenario).collect();
    for id in ids {
        let _ = write!(out, "{id:<width$}");
        for (results, w) in by_target.iter().zip(&columns) {
            let cell = results.get(id).map_or("-", |r| r.result.name());
            let _ = write!(out, "  {cell:<w$}");
        }
        out.push('\n');
    }
    for entry in entries {
        let s = &entry.summary;
        let _ = writeln!(
            out,
            "{}: {} passed, {} xfail, {} failed, {} skipped",
            entry.target, s.passed, s.xfail, s.failed, s.skipped
        );
    }
    out
}
