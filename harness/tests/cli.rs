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
            runtime: "process".into(),
            image: None,
            cluster: None,
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

/// nextest's archive is how a user spreads the suite over CI machines: it
/// must run from another folder, with the workspace remapped, as long as
/// the checkout's files are there (no path is built into the binaries).
#[test]
fn an_archive_runs_from_another_folder_with_the_workspace_remapped() {
    let root = common::workspace();
    let scratch = tempfile::tempdir().expect("a temp dir");
    let archive = scratch.path().join("plugproof.tar.zst");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut archive_command = Command::new(&cargo);
    archive_command.current_dir(&root).args(["nextest", "archive", "-p", "plugproof", "--archive-file"]).arg(&archive);
    // The variables the runner gives a test are not cargo's input: a build
    // script that watches one (ring's, CARGO_MANIFEST_DIR) would rebuild
    // the test binaries under the other tests still running from them.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_PRIMARY_", "CARGO_TARGET_TMPDIR"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            archive_command.env_remove(&*name);
        }
    }
    let archived = archive_command.output().expect("cargo nextest runs");
    assert!(archived.status.success(), "{}", text(&archived));
    assert!(
        !text(&archived).contains("Compiling plugproof"),
        "archiving rebuilt what the running tests use:\n{}",
        text(&archived)
    );
    // The files the tests read at run time, and nothing built.
    let checkout = scratch.path().join("checkout");
    for part in ["Cargo.toml", "scenarios", "plugins", "images", "harness/tests/fixtures"] {
        let (from, to) = (root.join(part), checkout.join(part));
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("create");
        if from.is_dir() {
            plugproof::files::copy_tree(&from, &to, &["target"]).expect("copy");
        } else {
            std::fs::copy(&from, &to).expect("copy");
        }
    }
    let elsewhere = scratch.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("create");
    let ran = Command::new(&cargo)
        .current_dir(&elsewhere)
        .args(["nextest", "run", "--archive-file"])
        .arg(&archive)
        .arg("--workspace-remap")
        .arg(&checkout)
        .args(["-E", "test(=envoy/scope/global-default)"])
        .env("PLUGPROOF_TARGETS", "envoy")
        .env_remove("NEXTEST_RUN_ID")
        .output()
        .expect("cargo nextest runs");
    let printed = text(&ran);
    assert!(ran.status.success(), "{printed}");
    assert!(printed.contains("PASS") && printed.contains("envoy/scope/global-default"), "{printed}");
    assert!(printed.contains("1 test run: 1 passed"), "{printed}");
}

/// What `plugproof run scenarios ARGS` says when it refuses its arguments
/// (exit code 2), with KUBECONFIG as given.
fn refused(args: &[&str], kubeconfig: Option<&str>) -> String {
    let mut cmd = Command::new(common::plugproof_binary());
    cmd.args(["run", "scenarios"]).args(args).env_remove("KUBECONFIG");
    if let Some(file) = kubeconfig {
        cmd.env("KUBECONFIG", file);
    }
    let output = cmd.output().expect("plugproof runs");
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    text(&output)
}

#[test]
fn a_named_cluster_needs_the_address_its_pods_reach_and_its_flags_need_it() {
    let run =
        |args: &[&str], kubeconfig: Option<&str>| refused(&[&["--target", "cluster"][..], args].concat(), kubeconfig);
    let flagged = run(&["--kubeconfig", "/nowhere/kubeconfig"], None);
    assert!(flagged.contains("the cluster target on the cluster /nowhere/kubeconfig names"), "{flagged}");
    assert!(flagged.contains("needs --pods-reach"), "{flagged}");
    let from_env = run(&[], Some("/nowhere/env-kubeconfig"));
    assert!(
        from_env.contains("/nowhere/env-kubeconfig names (--kubeconfig or KUBECONFIG) needs --pods-reach"),
        "{from_env}"
    );
    assert!(from_env.contains("unset KUBECONFIG"), "{from_env}");
    let alone = run(&["--pods-reach", "10.244.0.1"], None);
    assert!(alone.contains("--pods-reach goes with --kubeconfig"), "{alone}");
}

#[test]
fn an_installed_gateway_is_named_by_labels_and_namespace_on_the_cluster_target() {
    let run = |args: &[&str]| refused(args, None);
    let selector = ["--gateway-selector", "istio!=ingressgateway", "--gateway-namespace", "istio-ingress"];
    let wrong = run(&[&["--target", "cluster"][..], &selector].concat());
    assert!(wrong.contains("has `istio!=ingressgateway`; give labels as key=value"), "{wrong}");
    let elsewhere = run(&[&["--target", "envoy"][..], &selector].concat());
    assert!(elsewhere.contains("it goes with the cluster target"), "{elsewhere}");
    let no_namespace = run(&["--target", "cluster", "--gateway-selector", "istio=ingressgateway"]);
    assert!(no_namespace.contains("--gateway-namespace <NAMESPACE>"), "{no_namespace}");
    // Higress's controller configures Higress's gateway, which the run must be told of.
    let higress = run(&["--target", "cluster", "--higress-controller"]);
    assert!(higress.contains("--gateway-selector <LABELS>"), "{higress}");
}

#[test]
fn a_shared_registry_goes_with_the_cluster_target() {
    let run = |args: &[&str]| refused(args, None);
    let renamed = run(&["--target", "cluster", "--registry", "in-cluster", "--registry-as", "kind-registry:5000"]);
    assert!(renamed.contains("leave --registry-as out"), "{renamed}");
    let elsewhere = run(&["--target", "envoy", "--registry", "in-cluster"]);
    assert!(elsewhere.contains("it goes with the cluster target"), "{elsewhere}");
}
