//! The command line as a release pipeline uses it: `plugproof compare`
//! gates on a regression, and says what it cannot compare.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use plugproof::report::conformance::{
    Entry, EnvoyFacts, Implementation, IstiodFacts, Report, ScenarioResult, Summary, Verdict,
};

fn entry(target: &str, results: &[(&str, Verdict)]) -> Entry {
    Entry {
        target: target.into(),
        implementation: Implementation {
            profile: "envoy".into(),
            envoy: EnvoyFacts {
                version: target.trim_start_matches("envoy@").into(),
                build: String::new(),
                source: String::new(),
            },
            istiod: IstiodFacts { version: "1.30".into(), mode: "modelled".into(), pin: None },
        },
        features: Vec::new(),
        summary: Summary::default(),
        results: results
            .iter()
            .map(|(scenario, result)| ScenarioResult {
                scenario: scenario.to_string(),
                result: *result,
                failure_kind: None,
                detail: None,
                evidence: None,
                time: 0.1,
            })
            .collect(),
    }
}

fn compare(dir: &Path, old: Report, new: Report) -> Output {
    let (old_path, new_path) = (dir.join("old.yaml"), dir.join("new.yaml"));
    old.write(&old_path).expect("write OLD");
    new.write(&new_path).expect("write NEW");
    Command::new(common::plugproof_binary())
        .arg("compare")
        .arg(&old_path)
        .arg(&new_path)
        .output()
        .expect("plugproof runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn an_injected_regression_fails_the_gate() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let old = Report::new(vec![entry("envoy@1.39.3", &[("scope/a", Verdict::Pass), ("scope/b", Verdict::Pass)])]);
    let new = Report::new(vec![entry("envoy@1.40.0", &[("scope/a", Verdict::Fail), ("scope/b", Verdict::Pass)])]);
    let output = compare(dir.path(), old, new);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(printed.contains("newly failing:\n    scope/a (pass -> fail)"), "{printed}");
    assert!(printed.contains("1 regression(s)"), "{printed}");
}

#[test]
fn no_regression_passes_the_gate_and_says_what_changed() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let old = Report::new(vec![entry("envoy@1.39.3", &[("scope/a", Verdict::Fail), ("scope/b", Verdict::Pass)])]);
    let new = Report::new(vec![entry("envoy@1.40.0", &[("scope/a", Verdict::Pass), ("scope/b", Verdict::Skip)])]);
    let output = compare(dir.path(), old, new);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(printed.contains("newly passing:\n    scope/a (fail -> pass)"), "{printed}");
    assert!(printed.contains("newly skipped:\n    scope/b (pass -> skip)"), "{printed}");
}

#[test]
fn different_scenario_sets_are_named_on_each_side() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let old = Report::new(vec![entry("envoy@1.39.3", &[("scope/a", Verdict::Pass), ("scope/gone", Verdict::Pass)])]);
    let new = Report::new(vec![entry("envoy@1.40.0", &[("scope/a", Verdict::Pass), ("scope/new", Verdict::Pass)])]);
    let printed = text(&compare(dir.path(), old, new));
    assert!(printed.contains("only in OLD (missing on the other side): scope/gone"), "{printed}");
    assert!(printed.contains("only in NEW (missing on the other side): scope/new"), "{printed}");
}

#[test]
fn a_file_that_is_not_a_report_is_refused() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let bogus = dir.path().join("bogus.yaml");
    std::fs::write(&bogus, "apiVersion: v1\nkind: ConfigMap\nplugproof: x\nentries: []\n").expect("write");
    let output =
        Command::new(common::plugproof_binary()).arg("compare").arg(&bogus).arg(&bogus).output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("not a plugproof conformance report"), "{}", text(&output));
}
