//! The local cluster leaves nothing behind: after `plugproof cluster down`,
//! and after its daemon is killed outright (`kill -9`) and plugproof next
//! starts, no process it started, no mount, no network interface, no
//! cgroup of its Pods and no folder of its state is left, and the global
//! sysctls its kubelet set are back as they were. On the way: the cluster
//! target says to start the cluster when none is up, and a run on it
//! killed outright leaves its scenario's namespace, which the next run
//! removes. One test, as there is
//! one local cluster per machine; it boots the cluster twice (a few
//! minutes), and needs root, a container engine and the cluster kit
//! (`ci/setup-containers`, `ci/setup-cluster`).

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SYSCTLS: &[&str] = &["vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops"];

fn plugproof(args: &[&str]) -> (bool, String) {
    let output = Command::new(common::plugproof_binary()).args(args).output().expect("plugproof runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// What of the machine the cluster could change, as seen from here.
#[derive(Debug, PartialEq, Eq)]
struct Machine {
    interfaces: BTreeSet<String>,
    mounts: BTreeSet<String>,
    sysctls: Vec<String>,
    pod_cgroups: Vec<PathBuf>,
}

fn machine() -> Machine {
    let interfaces = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // Mount points only: the ids and options of others' mounts may change
    // meanwhile; and not the container engine's (its layers and each
    // container's shm), which the container tests running beside this one
    // mount and unmount (the cluster uses none).
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| !m.starts_with("/var/lib/containers/storage/") && !m.starts_with("/run/containers/"))
        .collect();
    let sysctls =
        SYSCTLS.iter().map(|s| std::fs::read_to_string(format!("/proc/sys/{s}")).unwrap_or_default()).collect();
    let pod_cgroups = std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|h| h.path().join("kubepods"))
        .filter(|p| p.exists())
        .collect();
    Machine { interfaces, mounts, sysctls, pod_cgroups }
}

/// The daemon (`up` says its pid) and every process below it, with their
/// start times (so that a reused pid is not taken for one of them).
fn tree(root: u32) -> Vec<(u32, String)> {
    let mut found = vec![root];
    loop {
        let before = found.len();
        for entry in std::fs::read_dir("/proc").expect("/proc").filter_map(Result::ok) {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            if found.contains(&pid) {
                continue;
            }
            if parent(pid).is_some_and(|p| found.contains(&p)) {
                found.push(pid);
            }
        }
        if found.len() == before {
            return found.into_iter().filter_map(|pid| started(pid).map(|s| (pid, s))).collect();
        }
    }
}

fn stat(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's name, which may hold spaces.
    let rest = &text[text.rfind(')')? + 2..];
    Some(rest.split(' ').map(str::to_owned).collect())
}

fn parent(pid: u32) -> Option<u32> {
    stat(pid)?.get(1)?.parse().ok()
}

fn started(pid: u32) -> Option<String> {
    stat(pid)?.get(19).cloned()
}

/// Those of `processes` still running (zombies count as gone).
fn alive(processes: &[(u32, String)]) -> Vec<u32> {
    processes
        .iter()
        .filter(|(pid, start)| {
            stat(*pid).is_some_and(|s| s.first().map(String::as_str) != Some("Z") && s.get(19) == Some(start))
        })
        .map(|(pid, _)| *pid)
        .collect()
}

/// Boots the cluster; returns its daemon's pid and state folder.
fn up() -> (u32, PathBuf) {
    let (ok, text) = plugproof(&["cluster", "up"]);
    assert!(ok, "cluster up failed:\n{text}");
    let (ok, status) = plugproof(&["cluster", "status"]);
    assert!(ok, "cluster status after up: {status}");
    // As its API says: a Ready node of the pinned Kubernetes, istiod running as a Pod.
    for line in ["server v1.36.1", "node plugproof-node Ready kubelet v1.36.1"] {
        assert!(status.lines().any(|l| l == line), "cluster status lacks `{line}`: {status}");
    }
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("pod istio-system/istiod-") && l.contains(" Running localhost/plugproof/pilot:")),
        "istiod does not run as a Pod: {status}"
    );
    let pid = status.split("daemon ").nth(1).and_then(|s| s.split(')').next()).and_then(|p| p.parse().ok());
    let kubeconfig = status.split("kubeconfig: ").nth(1).map(|s| PathBuf::from(s.trim()));
    let (Some(pid), Some(kubeconfig)) = (pid, kubeconfig) else { panic!("cluster status names no daemon: {status}") };
    (pid, kubeconfig.parent().expect("the state folder").to_owned())
}

fn assert_left_nothing(before: &Machine, processes: &[(u32, String)], state: &Path, how: &str) {
    assert!(
        common::wait_for(Duration::from_secs(10), || alive(processes).is_empty()),
        "after {how}, processes of the cluster still run: {:?}",
        alive(processes)
    );
    assert!(!state.exists(), "after {how}, the cluster's state {} is left", state.display());
    assert_eq!(&machine(), before, "after {how}, the machine differs from before the cluster");
}

/// `plugproof run scenarios/SCENARIO --target cluster EXTRA...`.
fn run_on_cluster(scenario: &str, extra: &[&str]) -> (bool, String) {
    let path = common::workspace().join("scenarios").join(scenario);
    let report = tempfile::tempdir().expect("a report folder");
    let (path, report) = (path.to_string_lossy(), report.path().to_string_lossy().into_owned());
    let mut args = vec!["run", &path, "--target", "cluster", "--report-dir", &report];
    args.extend(extra);
    plugproof(&args)
}

/// The namespaces of scenarios the cluster holds, as `cluster status` says.
fn scenario_namespaces() -> String {
    let (ok, status) = plugproof(&["cluster", "status"]);
    assert!(ok, "cluster status: {status}");
    let line = status.lines().find_map(|l| l.strip_prefix("scenario namespaces: "));
    line.unwrap_or_else(|| panic!("cluster status names no scenario namespaces: {status}")).to_owned()
}

/// A run on the cluster killed outright mid-scenario leaves its namespaces
/// (the scenario's with its gateway Pod, and its registry's: it runs one in
/// the cluster), which the next run removes; a run that ends leaves none.
fn a_killed_run_leaves_its_namespace_to_the_next() {
    let path = common::workspace().join("scenarios/reload/plugin-config.yaml");
    let report = tempfile::tempdir().expect("a report folder");
    let mut run = Command::new(env!("CARGO_BIN_EXE_plugproof"))
        .args(["run", &path.to_string_lossy(), "--target", "cluster", "--registry", "in-cluster", "--report-dir"])
        .arg(report.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("plugproof runs");
    // Its reload step loads the gateway for 4 s after deploying it.
    let both = || scenario_namespaces().split_whitespace().count() == 2;
    assert!(common::wait_for(Duration::from_secs(30), both), "the run made no namespaces: {}", scenario_namespaces());
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(run.id() as i32), nix::sys::signal::Signal::SIGKILL)
        .expect("the run can be killed");
    let _ = run.wait();
    let left = scenario_namespaces();
    assert!(
        left.split_whitespace().count() == 2 && left.contains("-registry"),
        "a run killed mid-scenario left {left}, not its scenario's and its registry's namespaces"
    );
    let (ok, text) = run_on_cluster("scope/route-rule.yaml", &["--registry", "in-cluster"]);
    assert!(ok, "the next run failed:\n{text}");
    // The cluster's namespace controller removes a deleted namespace 5 s after its deletion, at the earliest.
    assert!(
        common::wait_for(Duration::from_secs(30), || scenario_namespaces() == "none"),
        "after the next run, the cluster still holds {} (the killed run left {left})",
        scenario_namespaces()
    );
}

#[test]
fn the_local_cluster_leaves_nothing_after_down_or_kill_9() {
    if !nix::unistd::geteuid().is_root() {
        panic!("the local cluster needs root");
    }
    // From no cluster: one an earlier run left is stopped, and what it changed put back.
    let (ok, text) = plugproof(&["cluster", "down"]);
    assert!(ok, "cluster down failed: {text}");
    let before = machine();
    let (ok, text) = run_on_cluster("scope/route-rule.yaml", &[]);
    assert!(!ok && text.contains("no local cluster is up; start one with `plugproof cluster up`"), "{text}");

    let (daemon, state) = up();
    a_killed_run_leaves_its_namespace_to_the_next();
    let processes = tree(daemon);
    // The node's programs and its Pods' containers (istiod among them) run below the daemon.
    let names: Vec<String> = processes
        .iter()
        .filter_map(|(pid, _)| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .map(|c| c.trim().to_owned())
        .collect();
    for program in ["etcd", "kube-apiserver", "kubelet", "containerd", "kube-proxy", "pilot-discovery"] {
        assert!(
            names.iter().any(|n| n.starts_with(&program[..program.len().min(15)])),
            "{program} is not running: {names:?}"
        );
    }
    let (ok, text) = plugproof(&["cluster", "down"]);
    assert!(ok, "cluster down failed: {text}");
    assert_left_nothing(&before, &processes, &state, "cluster down");

    let (daemon, state) = up();
    let processes = tree(daemon);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon as i32), nix::sys::signal::Signal::SIGKILL)
        .expect("the daemon can be killed");
    // The next plugproof command finds the daemon gone and clears its state.
    let (ok, status) = plugproof(&["cluster", "status"]);
    assert!(!ok && status.contains("down"), "after kill -9 the cluster is not down: {status}");
    assert_left_nothing(&before, &processes, &state, "kill -9 of the daemon");
}
