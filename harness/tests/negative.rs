//! Negative controls: broken scenarios must fail to load with file:line, a
//! wrong expectation must fail with a readable diff, and a configuration
//! Envoy rejects must surface Envoy's own message.

use std::path::PathBuf;

use plugproof::audit::{audit, stale, Fate, Justification};
use plugproof::failure::FailureKind;
use plugproof::options::Options;
use plugproof::outcome::Status;
use plugproof::profiles::ProfileKind;
use plugproof::provision::ModuleCatalog;
use plugproof::run::Runner;
use plugproof::scenario::{load_file, Diagnostic, LoadError};
use plugproof::targets::TargetSpec;
use rstest::rstest;

fn harness() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo or nextest sets CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    harness().join("tests/fixtures")
}

/// The checkout's options, reports in a fresh folder.
fn options() -> Options {
    Options::from_env(&harness().join(".."), tempfile::tempdir().expect("a temp dir").keep())
}

fn catalog() -> ModuleCatalog {
    ModuleCatalog::load(&options().plugins).expect("the module catalog loads")
}

/// A runner on the default standalone target.
async fn runner() -> Runner {
    Runner::prepare(&TargetSpec::of(ProfileKind::Envoy), &options(), &catalog()).await.expect("provisioning works")
}

fn load(name: &str) -> Result<plugproof::scenario::Scenario, LoadError> {
    load_file(&fixtures().join(name), &fixtures(), &catalog().names())
}

fn diagnostics(name: &str) -> Vec<Diagnostic> {
    let error = load(name).expect_err("the fixture must not load");
    assert!(!error.diagnostics().is_empty(), "{error}");
    // Every line of the rendered error is `file:line:column: message`.
    for line in error.to_string().lines() {
        let prefix = format!("{}:", fixtures().join(name).display());
        assert!(line.starts_with(&prefix), "{line}");
    }
    error.diagnostics().to_vec()
}

#[rstest]
#[case::malformed_yaml("malformed.yaml", &[(4, "did not find expected ',' or '}'")])]
#[case::unknown_field("unknown-field.yaml", &[(14, "unknown field `header`, expected one of status, details, headers, body, backend")])]
#[case::wrong_type("wrong-type.yaml", &[(11, "u16")])]
#[case::dangling_references("dangling-plugin.yaml", &[
    (9, "no service named `ehco` in `services`"),
    (15, "no plugin named `stmap` in `plugins` (declared: stamp)"),
])]
#[case::bare_expected_failure("bare-expected-failure.yaml", &[(12, "`expected_failure` names what must fail")])]
#[case::kind_only_expected_failure("kind-only-expected-failure.yaml", &[(12, "`expected_failure` must name the failing check")])]
#[case::reload_that_cannot_fail("bad-reload.yaml", &[
    (17, "`from` and `to` are both `first`, so no switch could be seen"),
    (17, "switch_within (2s) must be shorter than the load after the change (2s)"),
])]
#[case::streams_beyond_the_load_bounds("bad-streams.yaml", &[
    (24, "reload.load.long.delay: 45s is longer than a backend waits, at most 30s"),
    (25, "reload.load.long.chunks: 5000 is more than a backend streams, at most 1000"),
    (26, "reload.load.long.every: 20s is longer than a backend waits between chunks, at most 10s"),
    (27, "reload.load.long.size: 8 bytes; a chunk holds 32 to 65536 bytes"),
    (20, "reload.load.streams: 100; each HTTP/2 connection carries 1 to 64 short streams"),
])]
#[case::long_stream_outlasts_its_load("long-stream-outlasts-load.yaml", &[
    (22, "reload.load.long.http2: lanes on HTTP/2 connections, but `http2` is 0"),
    (22, "reload.load.long: a stream lasts 5s (delay + chunks × every), longer than the load (4s)"),
    (20, "reload.load.rate: 50000; it must be 1 to 20000 requests per second"),
])]
fn broken_scenarios_fail_to_load_with_file_and_line(#[case] fixture: &str, #[case] expected: &[(u64, &str)]) {
    let found = diagnostics(fixture);
    let summary: Vec<(u64, &str)> = found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(found.len(), expected.len(), "{summary:?}");
    for (diagnostic, (line, text)) in found.iter().zip(expected) {
        assert_eq!(diagnostic.line, *line, "{diagnostic}");
        assert!(diagnostic.column > 0, "{diagnostic}");
        assert!(diagnostic.message.contains(text), "{diagnostic}");
    }
}

async fn run_fixture(name: &str) -> plugproof::outcome::Outcome {
    let scenario = load(name).expect("the fixture loads");
    runner().await.run(&scenario).await
}

#[tokio::test]
async fn a_wrong_expectation_fails_with_a_readable_diff() {
    let outcome = run_fixture("wrong-expectation.yaml").await;
    let Status::Failed(failure) = &outcome.status else { panic!("must fail, got {:?}", outcome.status) };
    assert_eq!(failure.kind, FailureKind::Expectation);
    let error = &failure.message;
    assert!(error.contains("wrong-expectation.yaml:23 (the rule applies on its host)"), "{error}");
    assert!(error.contains("-header x-stamp: \"domain-b\"\n"), "{error}");
    assert!(error.contains("+header x-stamp: \"domain-a\"\n"), "{error}");
    assert!(error.contains(" status: 200\n"), "the checks that held are context: {error}");
    let bundle = outcome.bundle.expect("a failure keeps its evidence");
    for file in ["envoy.log", "config_dump.json", "error.txt", "steps.txt", "xds/lds.json", "registry/registry.log"] {
        assert!(bundle.join(file).exists(), "{} lacks {file}", bundle.display());
    }
}

#[tokio::test]
async fn a_configuration_envoy_rejects_surfaces_envoys_message() {
    let outcome = run_fixture("envoy-rejects.yaml").await;
    let Status::Failed(failure) = &outcome.status else { panic!("must fail, got {:?}", outcome.status) };
    assert_eq!(failure.kind, FailureKind::Rejected);
    let error = &failure.message;
    assert!(error.starts_with("Envoy rejected the configuration"), "{error}");
    assert!(
        error.contains("Filesystem config update rejected: Unable to create Wasm plugin istio-system.broken"),
        "{error}"
    );
    assert!(error.contains("rejecting configuration: rule 0"), "the plugin's own log line is kept: {error}");
    assert!(outcome.steps.is_empty(), "no step runs against a rejected configuration");
}

#[tokio::test]
async fn a_known_failure_is_reported_as_expected_and_a_stale_mark_fails() {
    let outcome = run_fixture("expected-failures.yaml").await;
    let [failed, passed] = outcome.steps.as_slice() else { panic!("two steps, got {:?}", outcome.steps) };
    assert!(failed.passed, "a step failing as marked counts as passed: {failed:?}");
    assert_eq!(failed.expected_failure.as_deref(), Some("the plugin answers global here"));
    let how = failed.failure.as_ref().expect("an expected failure keeps how it failed");
    assert!(how.message.contains("+header x-stamp: \"global\""), "{how:?}");
    assert!(!passed.passed, "a marked step that passes fails: {passed:?}");
    assert!(passed.expected_failure.is_none());
    let Status::Failed(failure) = &outcome.status else { panic!("must fail, got {:?}", outcome.status) };
    assert!(
        failure.message.contains("passed, but is marked `expected_failure: a stale mark`; remove the mark"),
        "{failure:?}"
    );
}

#[tokio::test]
async fn a_step_failing_otherwise_than_marked_fails() {
    let outcome = run_fixture("expected-failure-other.yaml").await;
    let [step] = outcome.steps.as_slice() else { panic!("one step, got {:?}", outcome.steps) };
    assert!(!step.passed && step.expected_failure.is_none(), "{step:?}");
    let Status::Failed(failure) = &outcome.status else { panic!("must fail, got {:?}", outcome.status) };
    assert_eq!(failure.kind, FailureKind::Expectation, "the failure keeps its own kind");
    assert!(
        failure.message.contains(
            "failed, but not as marked (`expected_failure` names kind deadline, failed checks matching /did not act/; \
             the failure is of kind expectation, not deadline)"
        ),
        "{failure:?}"
    );
    assert!(failure.message.contains("+header x-stamp: \"global\""), "and says how it did fail: {failure:?}");
}

#[tokio::test]
async fn a_step_failing_as_marked_and_in_another_check_fails() {
    let outcome = run_fixture("expected-failure-unnamed.yaml").await;
    let [step] = outcome.steps.as_slice() else { panic!("one step, got {:?}", outcome.steps) };
    assert!(!step.passed && step.expected_failure.is_none(), "{step:?}");
    let Status::Failed(failure) = &outcome.status else { panic!("must fail, got {:?}", outcome.status) };
    assert!(
        failure.message.contains("failed checks the mark does not name: -status: 201 / +status: 200"),
        "the status check failed too, and the mark does not name it: {failure:?}"
    );
}

fn justification(change: &str) -> Justification {
    Justification {
        scenario: "loose-check".into(),
        target: None,
        line: 21,
        change: change.into(),
        reason: "the fixture is loose on purpose".into(),
    }
}

#[tokio::test]
async fn the_audit_reports_a_check_too_loose_to_fail() {
    let scenario = load("loose-check.yaml").expect("the fixture loads");
    let runner = runner().await;
    let audit = audit(&runner, &scenario, &[]).await;
    assert_eq!(audit.status, Status::Passed, "the scenario itself passes");
    let survivors: Vec<&str> =
        audit.mutants.iter().filter(|m| m.fate == Fate::Survived).map(|m| m.change.as_str()).collect();
    assert_eq!(survivors, [r#"body contains "denied" -> "denied-mutant""#]);
    assert_eq!(audit.count(Fate::Killed), 1, "the status mutant dies: {:?}", audit.mutants);
    assert_eq!(audit.unjustified().count(), 1);

    let justified = [justification(survivors[0]), justification("status: 403 -> 404")];
    let audit = plugproof::audit::audit(&runner, &scenario, &justified).await;
    assert_eq!(audit.unjustified().count(), 0, "a listed survivor is explained");
    let stale: Vec<&str> = stale(&justified, &[audit]).iter().map(|j| j.change.as_str()).collect();
    assert_eq!(stale, ["status: 403 -> 404"], "a listed mutant that dies is stale");
}
