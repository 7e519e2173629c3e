//! Nothing a run starts outlives it: not after success, failure, Ctrl-C, the
//! harness being killed, or a panic; on every target in `PLUGPROOF_TARGETS`
//! (default `envoy`), as the scenario tests. Every process a `plugproof`
//! command starts inherits a marker in its environment, so the test finds
//! them all in /proc.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Trial};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getuid, Pid};
use plugproof::target::TargetSpec;

const MARKER: &str = "PLUGPROOF_HYGIENE_MARKER";

/// Live (not zombie) processes whose environment carries `MARKER=marker`.
fn marked(marker: &str) -> Vec<String> {
    let needle = format!("{MARKER}={marker}");
    processes_where("environ", |var| var == needle.as_bytes())
}

/// Whether Envoy runs under the run marked `marker` (on istio, under
/// pilot-agent).
fn envoy_runs(marker: &str) -> bool {
    marked(marker).iter().any(|p| p.ends_with(" envoy"))
}

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

/// `plugproof run SCENARIO --profile PROFILE`, in a process group of its own
/// (as a shell runs a job), with the marker in its environment.
fn plugproof(marker: &str, scenario: &str, target: &str) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = tempfile::tempdir().expect("a temp dir").keep();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plugproof"));
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
fn start_long_run(marker: &str, target: &str) -> Child {
    let mut child = plugproof(marker, "tests/fixtures/never-holds.yaml", target).spawn().expect("plugproof starts");
    let envoy_up = wait_for(Duration::from_secs(300), || envoy_runs(marker));
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

fn killing_the_harness_takes_its_children_with_it(target: &str) {
    let marker = fresh_marker();
    let mut child = start_long_run(&marker, target);
    child.kill().expect("SIGKILL is delivered");
    wait(&mut child);
    assert_nothing_left(&marker);
}

const DELIBERATE: &str = "a bug in the middle of a run";

fn a_panic_stops_the_components_it_owned() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // The registry's command line names its config in this directory.
    let config = dir.path().join("config.yml").to_string_lossy().into_owned();
    let started_here = || processes_where("cmdline", |arg| arg == config.as_bytes());
    let root = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("..");
    let options = plugproof::options::Options::from_env(&root, dir.path().to_owned());
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

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let targets = std::env::var("PLUGPROOF_TARGETS").unwrap_or_else(|_| "envoy".into());
    let targets = TargetSpec::parse_list(&targets).unwrap_or_else(|e| panic!("PLUGPROOF_TARGETS: {e}"));
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
    for target in targets {
        for (name, check) in checks {
            let target = target.name.clone();
            trials.push(Trial::test(format!("{target}/{name}"), move || {
                check(&target);
                Ok(())
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit_code()
}
