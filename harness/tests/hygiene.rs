//! Nothing a run starts outlives it: not after success, failure, Ctrl-C, the
//! harness being killed, or a panic; on every target in `PLUGPROOF_TARGETS`
//! (default `envoy`), as the scenario tests. Every process a `plugproof`
//! command starts inherits a marker in its environment, so the test finds
//! them all in /proc.
//!
//! On targets that share a control plane between the tests of a test run
//! (istio), the same holds for the run: a shell stands in for nextest and
//! runs this binary as one test (`as_one_test`), which starts the shared
//! control plane; when the shell ends (or is interrupted, or killed), the
//! control plane and its state folder must go too.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Trial};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getuid, Pid};
use plugproof::profiles::Isolation;
use plugproof::runtime::rundir;
use plugproof::targets::TargetSpec;

const MARKER: &str = "PLUGPROOF_HYGIENE_MARKER";
/// Set when this binary stands for one scenario test: the scenario, and its target.
const ONE_TEST: &str = "PLUGPROOF_HYGIENE_ONE_TEST";
const ONE_TEST_TARGET: &str = "PLUGPROOF_HYGIENE_TARGET";

/// Live (not zombie) processes whose environment carries `MARKER=marker`.
fn marked(marker: &str) -> Vec<String> {
    let needle = format!("{MARKER}={marker}");
    processes_where("environ", |var| var == needle.as_bytes())
}

/// Whether Envoy runs under the run marked `marker` (on istio, under
/// pilot-agent), serving a configuration (not asked its `--version`), as a
/// process or in a container of the run's.
fn envoy_runs(marker: &str) -> bool {
    let process = marked(marker).iter().filter(|p| p.ends_with(" envoy")).any(|p| {
        let pid = p.split(' ').next().unwrap_or_default();
        let cmdline = of_process(pid, "cmdline", |dir| std::fs::read(dir.join("cmdline"))).unwrap_or_default();
        cmdline.split(|b| *b == 0).any(|arg| arg == b"-c")
    });
    process || !containers(marker).is_empty()
}

/// The containers of the run marked `marker`: those whose owner label names
/// one of its processes, live or, once seen, gone (`OWNERS` remembers them).
fn containers(marker: &str) -> Vec<String> {
    let mut owners = OWNERS.lock().expect("not poisoned");
    let seen = owners.entry(marker.to_owned()).or_default();
    for process in marked(marker) {
        let pid = process.split(' ').next().and_then(|p| p.parse().ok());
        seen.extend(pid.and_then(plugproof::runtime::owner::identity));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let mut ids = Vec::new();
        for owner in seen.iter() {
            ids.extend(plugproof::runtime::container::engine::owned_by(owner).await);
        }
        ids
    })
}

/// Per marker, the owner identities of every process seen running under it.
static OWNERS: std::sync::Mutex<std::collections::BTreeMap<String, std::collections::BTreeSet<String>>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Live processes that could be this test's with an entry of
/// `/proc/PID/<file>` (NUL-separated) that satisfies `pred`, as "PID COMM".
fn processes_where(file: &str, pred: impl Fn(&[u8]) -> bool) -> Vec<String> {
    let this_test = stat("self").expect("this test is running");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc is readable") {
        let name = entry.expect("/proc can be listed").file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        let Some(stat) = stat(pid) else { continue };
        let Some(owner) = of_process(pid, "owner", |dir| std::fs::metadata(dir).map(|m| m.uid())) else { continue };
        // What a run starts is this user's and younger than this test; no
        // other process can carry a fresh marker or name a fresh temp dir.
        // (Some older ones may not be read even by root: an init, say.)
        if stat.zombie || stat.started < this_test.started || owner != getuid().as_raw() {
            continue;
        }
        let Some(content) = of_process(pid, file, |dir| std::fs::read(dir.join(file))) else { continue };
        if content.split(|b| *b == 0).any(&pred) {
            found.push(format!("{pid} {}", stat.comm));
        }
    }
    found
}

/// What the test needs of `/proc/PID/stat`.
struct Stat {
    comm: String,
    zombie: bool,
    /// Clock ticks after boot.
    started: u64,
}

/// `None` if the process is gone.
fn stat(pid: &str) -> Option<Stat> {
    let text = of_process(pid, "stat", |dir| std::fs::read_to_string(dir.join("stat")))?;
    // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses;
    // the start time is the 22nd field, the 20th after COMM.
    let (head, rest) = text.rsplit_once(") ").expect("/proc/PID/stat has its format");
    let comm = head.split_once(" (").expect("/proc/PID/stat has its format").1.to_owned();
    let fields: Vec<&str> = rest.split(' ').collect();
    let started = fields[19].parse().expect("/proc/PID/stat has its format");
    Some(Stat { comm, zombie: fields[0] == "Z", started })
}

/// What `read` reads in `/proc/PID`; `None` if the process is gone since
/// /proc was listed (ENOENT, ESRCH; a kernel thread, which has no memory to
/// read, answers ESRCH too). A process forked by one this test may not read
/// is unreadable until it execs, a few ms; one unreadable for a second
/// fails the test, as it could be one a run leaked.
fn of_process<T>(pid: &str, what: &str, read: impl Fn(&Path) -> std::io::Result<T>) -> Option<T> {
    let dir = Path::new("/proc").join(pid);
    let started = Instant::now();
    loop {
        match read(&dir) {
            Ok(value) => return Some(value),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => return None,
            Err(e) if started.elapsed() > Duration::from_secs(1) => {
                panic!("cannot read the {what} of process {pid}, which could be one a run leaked: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn fresh_marker() -> String {
    format!("{}-{}", std::process::id(), rand::random::<u64>())
}

/// `plugproof run SCENARIO --target TARGET`, in a process group of its own
/// (as a shell runs a job), with the marker in its environment.
fn plugproof(marker: &str, scenario: &str, target: &str) -> Command {
    let root = common::workspace().join("harness");
    let report = tempfile::tempdir().expect("a temp dir").keep();
    let mut cmd = Command::new(common::plugproof_binary());
    cmd.arg("run")
        .arg(root.join(scenario))
        .arg("--target")
        .arg(target)
        .arg("--report-dir")
        .arg(report)
        .env(MARKER, marker)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    cmd
}

/// Neither a process nor a container of the run marked `marker` is left.
fn assert_nothing_left(marker: &str) {
    assert_none(|| {
        let mut left = marked(marker);
        left.extend(containers(marker).into_iter().map(|id| format!("container {id}")));
        left
    });
}

fn assert_none(find: impl Fn() -> Vec<String>) {
    // Orphans of a killed parent are killed by the kernel, not instantly,
    // and a killed run's reaper needs a moment to remove its containers.
    let clean = common::wait_for(Duration::from_secs(10), || find().is_empty());
    assert!(clean, "still running after the run ended: {:?}", find());
}

/// Starts a long run and waits until Envoy is up under it.
fn start_long_run(marker: &str, target: &str) -> Child {
    let mut child = plugproof(marker, "tests/fixtures/never-holds.yaml", target).spawn().expect("plugproof starts");
    let envoy_up = common::wait_for(Duration::from_secs(300), || envoy_runs(marker));
    if !envoy_up {
        let _ = child.kill();
        panic!("Envoy never started under the run: {:?}", marked(marker));
    }
    child
}

fn wait(child: &mut Child) -> ExitStatus {
    child.wait().expect("plugproof can be waited for")
}

/// Runs `scenario` to its end, watching its processes, and fails unless
/// Envoy was seen running under it: a run that ends before Envoy starts
/// leaves nothing running whatever its cleanup does. Envoy is up for its
/// boot and the steps: a look every 20 ms sees it ten times at the least.
fn run_seeing_envoy(marker: &str, scenario: &str, target: &str) -> ExitStatus {
    let mut child = plugproof(marker, scenario, target).spawn().expect("plugproof starts");
    let mut envoy_seen = false;
    let status = loop {
        envoy_seen |= envoy_runs(marker);
        if let Some(status) = child.try_wait().expect("plugproof can be waited for") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(envoy_seen, "Envoy was never seen running under the run ({status})");
    status
}

fn a_passing_run_leaves_nothing_running(target: &str) {
    let marker = fresh_marker();
    let status = run_seeing_envoy(&marker, "../scenarios/scope/global-default.yaml", target);
    assert!(status.success(), "{status}");
    assert_nothing_left(&marker);
}

fn a_failing_run_leaves_nothing_running(target: &str) {
    let marker = fresh_marker();
    let status = run_seeing_envoy(&marker, "tests/fixtures/wrong-expectation.yaml", target);
    assert_eq!(status.code(), Some(1), "{status}");
    assert_nothing_left(&marker);
}

/// Ctrl-C in a terminal signals the whole foreground job: its process group.
fn ctrl_c_stops_everything(target: &str) {
    let marker = fresh_marker();
    let mut child = start_long_run(&marker, target);
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT is delivered");
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(130), "{status}");
    assert_nothing_left(&marker);
}

/// `kill -9`: the kernel ends the components; the run's folders stay until
/// the next start sweeps them.
fn killing_the_harness_takes_its_children_with_it(target: &str) {
    let marker = fresh_marker();
    let mut child = start_long_run(&marker, target);
    // The folders the run made: those its own processes own. (Tests that
    // run beside this one make and sweep folders of their own.)
    let pids: Vec<u32> = marked(&marker).iter().filter_map(|p| p.split(' ').next()?.parse().ok()).collect();
    let made: Vec<PathBuf> =
        rundir::all().into_iter().filter(|f| rundir::owner_of(f).is_some_and(|pid| pids.contains(&pid))).collect();
    assert!(!made.is_empty(), "the run made no run folder, so its sweep would prove nothing");
    child.kill().expect("SIGKILL is delivered");
    wait(&mut child);
    assert_nothing_left(&marker);
    // Whatever of them is still there was left by the killed run: its owner
    // is gone, once it has finished exiting (a process tearing down its
    // memory no longer shows its environment, but is not yet a zombie).
    // (Another test's start may have swept some already.)
    let kept = || {
        let orphans = rundir::orphans();
        made.iter().filter(|f| f.exists() && !orphans.contains(f)).cloned().collect::<Vec<PathBuf>>()
    };
    common::wait_for(Duration::from_secs(10), || kept().is_empty());
    assert!(kept().is_empty(), "the killed run's folders are not orphans: {:?}", kept());
    let next = Command::new(common::plugproof_binary())
        .args(["validate", "../scenarios/scope/global-default.yaml"])
        .output()
        .expect("plugproof starts");
    assert!(next.status.success(), "{next:?}");
    let left: Vec<&PathBuf> = made.iter().filter(|f| f.exists()).collect();
    assert!(left.is_empty(), "the next start left the killed run's folders: {left:?}");
}

const DELIBERATE: &str = "a bug in the middle of a run";

fn a_panic_stops_the_components_it_owned() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // The registry's command line names its config in this directory.
    let config = dir.path().join("config.yml").to_string_lossy().into_owned();
    let started_here = || processes_where("cmdline", |arg| arg == config.as_bytes());
    let options = common::options();
    let registry_bin =
        plugproof::provision::registry_binary(options.registry.as_deref()).expect("docker-registry is installed");
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
            panic!("{DELIBERATE}");
        })
    }));
    // Any other panic (the registry not starting, or not seen running)
    // happened before there was anything to stop.
    let payload = outcome.expect_err("the run panicked");
    let message = payload.downcast_ref::<String>().map(String::as_str).or(payload.downcast_ref::<&str>().copied());
    assert_eq!(message, Some(DELIBERATE), "the run panicked, but not where it was meant to");
    assert_none(started_here);
}

/// A shell standing in for nextest, in a process group of its own, running
/// this binary as one test of `scenario` on `target`: a test run of its own
/// (`NEXTEST_RUN_ID`), so it starts a control plane of its own.
fn a_test_run(marker: &str, scenario: &str, target: &str) -> Command {
    let exe = std::env::current_exe().expect("this test's binary");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#""$0"; exit $?"#)
        .arg(exe)
        .env(MARKER, marker)
        .env(ONE_TEST, common::workspace().join("harness").join(scenario))
        .env(ONE_TEST_TARGET, target)
        .env("NEXTEST_RUN_ID", format!("hygiene-{marker}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    cmd
}

/// This binary as one scenario test: joins (or starts) the shared control
/// plane, then runs the scenario inside its namespace.
fn as_one_test(scenario: &Path, options: &plugproof::options::Options) -> ExitCode {
    let target = TargetSpec::parse(&std::env::var(ONE_TEST_TARGET).expect("the test's target")).expect("a target");
    let catalog = plugproof::provision::ModuleCatalog::load(&options.plugins).expect("the module catalog loads");
    let result = if plugproof::runtime::isolation::is_isolated() {
        let root = scenario.parent().expect("a scenario in a folder");
        let loaded = plugproof::scenario::load_file(scenario, root, &catalog.names()).expect("the scenario loads");
        plugproof::testing::run_scenario(&loaded, &target, options, &catalog).map(|_| ())
    } else {
        plugproof::testing::run_on_shared_plane(Vec::new(), &target, options, &catalog)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failed) => {
            eprintln!("{failed:?}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the test run marked `marker` has its control plane up.
fn plane_runs(marker: &str) -> bool {
    marked(marker).iter().any(|p| p.ends_with(" pilot-discovery"))
}

/// After the test run marked `marker` ended: nothing of it runs, and its
/// control plane's state folder is gone.
fn assert_the_run_left_nothing(marker: &str) {
    let options = common::options();
    let run = format!("hygiene-{marker}");
    let state_left = || -> Vec<String> {
        std::fs::read_dir(options.cache.join("planes"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&run))
            .collect()
    };
    // The daemon sees the runner gone within a second, then stops istiod,
    // the apiserver and etcd.
    let clean = common::wait_for(Duration::from_secs(20), || marked(marker).is_empty() && state_left().is_empty());
    assert!(clean, "left after the test run ended: processes {:?}, state {:?}", marked(marker), state_left());
}

/// Runs a test run of `scenario` to its end; the control plane and Envoy
/// must have been seen running under it.
fn a_whole_test_run(marker: &str, scenario: &str, target: &str) -> ExitStatus {
    let mut runner = a_test_run(marker, scenario, target).spawn().expect("the stand-in runner starts");
    let (mut plane_seen, mut envoy_seen) = (false, false);
    let status = loop {
        plane_seen |= plane_runs(marker);
        envoy_seen |= envoy_runs(marker);
        if let Some(status) = runner.try_wait().expect("the runner can be waited for") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        plane_seen && envoy_seen,
        "the control plane ({plane_seen}) and Envoy ({envoy_seen}) were not both seen ({status})"
    );
    status
}

/// Starts a long test run and waits until Envoy is up under it.
fn a_long_test_run(marker: &str, target: &str) -> Child {
    let mut runner = a_test_run(marker, "tests/fixtures/never-holds.yaml", target).spawn().expect("the runner starts");
    if !common::wait_for(Duration::from_secs(300), || envoy_runs(marker) && plane_runs(marker)) {
        let _ = runner.kill();
        panic!("the control plane and Envoy never both ran under the test run: {:?}", marked(marker));
    }
    runner
}

fn a_passing_test_run_leaves_no_control_plane(target: &str) {
    let marker = fresh_marker();
    let status = a_whole_test_run(&marker, "../scenarios/scope/global-default.yaml", target);
    assert!(status.success(), "{status}");
    assert_the_run_left_nothing(&marker);
}

fn a_failing_test_run_leaves_no_control_plane(target: &str) {
    let marker = fresh_marker();
    let status = a_whole_test_run(&marker, "tests/fixtures/wrong-expectation.yaml", target);
    assert_eq!(status.code(), Some(1), "{status}");
    assert_the_run_left_nothing(&marker);
}

/// Ctrl-C reaches the runner's foreground job, the test included.
fn ctrl_c_of_the_test_run_leaves_no_control_plane(target: &str) {
    let marker = fresh_marker();
    let mut runner = a_long_test_run(&marker, target);
    killpg(Pid::from_raw(runner.id() as i32), Signal::SIGINT).expect("SIGINT is delivered");
    wait(&mut runner);
    assert_the_run_left_nothing(&marker);
}

/// `kill -9` of the runner alone: its test and the daemon see it gone.
fn killing_the_test_runner_leaves_no_control_plane(target: &str) {
    let marker = fresh_marker();
    let mut runner = a_long_test_run(&marker, target);
    runner.kill().expect("SIGKILL is delivered");
    wait(&mut runner);
    assert_the_run_left_nothing(&marker);
}

fn main() -> ExitCode {
    plugproof::runtime::at_start();
    let mut options = common::options();
    let _client = match plugproof::testing::role(&mut options) {
        plugproof::testing::Role::Daemon(code) => return code,
        plugproof::testing::Role::Test(client) => client,
    };
    if let Some(scenario) = std::env::var_os(ONE_TEST) {
        return as_one_test(Path::new(&scenario), &options);
    }
    let args = Arguments::from_args();
    let targets = plugproof::testing::targets_from_env();
    type Check = fn(&str);
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
    let shared_plane: [(&str, Check); 4] = [
        ("a-passing-test-run-leaves-no-control-plane", a_passing_test_run_leaves_no_control_plane),
        ("a-failing-test-run-leaves-no-control-plane", a_failing_test_run_leaves_no_control_plane),
        ("ctrl-c-of-the-test-run-leaves-no-control-plane", ctrl_c_of_the_test_run_leaves_no_control_plane),
        ("killing-the-test-runner-leaves-no-control-plane", killing_the_test_runner_leaves_no_control_plane),
    ];
    for target in targets {
        let shares = plugproof::profiles::profile(target.profile, &options).isolation() == Isolation::Own;
        for (name, check) in checks.iter().chain(if shares { &shared_plane[..] } else { &[] }) {
            let (target, check) = (target.name.clone(), *check);
            trials.push(Trial::test(format!("{target}/{name}"), move || {
                check(&target);
                Ok(())
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit_code()
}
