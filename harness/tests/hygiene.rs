//! Nothing a run starts outlives it: not after success, failure, Ctrl-C, the
//! harness being killed, or a panic; on every profile in `PLUGPROOF_PROFILES`
//! (default `envoy`), as the scenario tests. Every process a `plugproof`
//! command starts inherits a marker in its environment, so the test finds
//! them all in /proc.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Trial};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use plugproof::profiles::ProfileKind;

const MARKER: &str = "PLUGPROOF_HYGIENE_MARKER";

/// Live (not zombie) processes whose environment carries `MARKER=marker`.
fn marked(marker: &str) -> Vec<String> {
    let needle = format!("{MARKER}={marker}");
    processes_where("environ", |var| var == needle.as_bytes())
}

/// Live processes with an entry of `/proc/PID/<file>` (NUL-separated) that
/// satisfies `pred`, as "PID COMM".
fn processes_where(file: &str, pred: impl Fn(&[u8]) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc is readable").flatten() {
        let dir = entry.path();
        let Ok(content) = std::fs::read(dir.join(file)) else { continue };
        if !content.split(|b| *b == 0).any(&pred) {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next().unwrap_or('?'));
        if state != Some('Z') {
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            found.push(format!("{} {}", entry.file_name().to_string_lossy(), comm.trim()));
        }
    }
    found
}

fn fresh_marker() -> String {
    format!("{}-{}", std::process::id(), rand::random::<u64>())
}

/// `plugproof run SCENARIO --profile PROFILE`, in a process group of its own
/// (as a shell runs a job), with the marker in its environment.
fn plugproof(marker: &str, scenario: &str, profile: ProfileKind) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = tempfile::tempdir().expect("a temp dir").keep();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plugproof"));
    cmd.arg("run")
        .arg(root.join(scenario))
        .arg("--profile")
        .arg(profile.name())
        .arg("--report-dir")
        .arg(report)
        .env(MARKER, marker)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    cmd
}

/// Waits until `pred` holds, for up to `limit`.
fn wait_for(limit: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if pred() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    pred()
}

fn assert_nothing_left(marker: &str) {
    assert_none(|| marked(marker));
}

fn assert_none(find: impl Fn() -> Vec<String>) {
    // Orphans of a killed parent are killed by the kernel, not instantly.
    let clean = wait_for(Duration::from_secs(5), || find().is_empty());
    assert!(clean, "still running after the run ended: {:?}", find());
}

/// Starts a long run and waits until Envoy is up under it.
fn start_long_run(marker: &str, profile: ProfileKind) -> Child {
    let mut child = plugproof(marker, "tests/fixtures/never-holds.yaml", profile).spawn().expect("plugproof starts");
    let envoy_up = wait_for(Duration::from_secs(300), || marked(marker).iter().any(|p| p.ends_with(" envoy")));
    if !envoy_up {
        let _ = child.kill();
        panic!("Envoy never started under the run: {:?}", marked(marker));
    }
    child
}

fn wait(child: &mut Child) -> ExitStatus {
    child.wait().expect("plugproof can be waited for")
}

fn a_passing_run_leaves_nothing_running(profile: ProfileKind) {
    let marker = fresh_marker();
    let status =
        plugproof(&marker, "../scenarios/scope/global-default.yaml", profile).status().expect("plugproof runs");
    assert!(status.success(), "{status}");
    assert_nothing_left(&marker);
}

fn a_failing_run_leaves_nothing_running(profile: ProfileKind) {
    let marker = fresh_marker();
    let status = plugproof(&marker, "tests/fixtures/wrong-expectation.yaml", profile).status().expect("plugproof runs");
    assert_eq!(status.code(), Some(1), "{status}");
    assert_nothing_left(&marker);
}

/// Ctrl-C in a terminal signals the whole foreground job: its process group.
fn ctrl_c_stops_everything(profile: ProfileKind) {
    let marker = fresh_marker();
    let mut child = start_long_run(&marker, profile);
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT is delivered");
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(130), "{status}");
    assert_nothing_left(&marker);
}

fn killing_the_harness_takes_its_children_with_it(profile: ProfileKind) {
    let marker = fresh_marker();
    let mut child = start_long_run(&marker, profile);
    child.kill().expect("SIGKILL is delivered");
    wait(&mut child);
    assert_nothing_left(&marker);
}

fn a_panic_stops_the_components_it_owned() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // The registry's command line names its config in this directory.
    let config = dir.path().join("config.yml").to_string_lossy().into_owned();
    let started_here = || processes_where("cmdline", |arg| arg == config.as_bytes());
    let registry_bin = plugproof::provision::registry_binary().expect("docker-registry is installed");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    // The panic is caught on this thread, which lives on: only unwinding
    // (the components' Drop) can have stopped the registry.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            let loopback = plugproof::runtime::Loopback::for_run();
            let _registry = plugproof::components::registry::Registry::start(&registry_bin, &loopback, dir.path())
                .await
                .expect("the registry starts");
            assert!(!started_here().is_empty(), "the registry runs");
            panic!("a bug in the middle of a run");
        })
    }));
    assert!(outcome.is_err(), "the run panicked");
    assert_none(started_here);
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let profiles = ProfileKind::from_env().unwrap_or_else(|e| panic!("{e}"));
    type Check = fn(ProfileKind);
    let checks: [(&str, Check); 4] = [
        ("a-passing-run-leaves-nothing-running", a_passing_run_leaves_nothing_running),
        ("a-failing-run-leaves-nothing-running", a_failing_run_leaves_nothing_running),
        ("ctrl-c-stops-everything", ctrl_c_stops_everything),
        ("killing-the-harness-takes-its-children-with-it", killing_the_harness_takes_its_children_with_it),
    ];
    // libtest-mimic turns a check's panic into the test's failure.
    let mut trials = vec![Trial::test("a-panic-stops-the-components-it-owned", || {
        a_panic_stops_the_components_it_owned();
        Ok(())
    })];
    for profile in profiles {
        for (name, check) in checks {
            trials.push(Trial::test(format!("{}/{name}", profile.name()), move || {
                check(profile);
                Ok(())
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit_code()
}
