//! Local cluster figures: `cargo bench --bench cluster` (needs root, a
//! container engine and the cluster kit: `ci/setup-containers`,
//! `ci/setup-cluster`, `plugproof cluster provision`).
//!
//! `plugproof cluster up` from warm caches (kits built, images cached) to a
//! Ready node with istiod running as a Pod, the first scenario on the
//! `cluster` target after it (`plugproof run`, wall time), and `plugproof
//! cluster down`, each ROUNDS times: every figure, and the medians. Every
//! `up` is checked by `cluster status` (the node Ready, istiod Running),
//! every run must pass; the bench exits non-zero otherwise. Then, on a
//! cluster up, the warm scenarios of `scenarios/scope` one at a time: the
//! time each took beyond its steps (deploy, teardown, publishing), p50.
//! `docs/benchmarks.md` records the figures.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
const FIRST: &str = "scenarios/scope/global-default.yaml";
const WARM: &str = "scenarios/scope";

fn plugproof(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_plugproof")).args(args).output().expect("plugproof runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn timed(args: &[&str]) -> Result<Duration, String> {
    let started = Instant::now();
    let (ok, text) = plugproof(args);
    let took = started.elapsed();
    ok.then_some(took).ok_or(format!("plugproof {} failed:\n{text}", args.join(" ")))
}

/// `plugproof run PATH --target cluster`, one scenario at a time; its output.
fn run_on_cluster(path: &str) -> Result<(Duration, String), String> {
    let report = tempfile::tempdir().map_err(|e| e.to_string())?;
    let report = report.path().to_string_lossy().into_owned();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let path = format!("{root}/{path}");
    let args = ["run", &path, "--target", "cluster", "--jobs", "1", "--report-dir", &report];
    let started = Instant::now();
    let (ok, text) = plugproof(&args);
    let took = started.elapsed();
    ok.then_some((took, text.clone())).ok_or(format!("plugproof {} failed:\n{text}", args.join(" ")))
}

/// From each outcome line (`PASS  id  (3.00s; stage 0.21s, deploy 1.68s, steps 0.02s)`):
/// its time less its steps'.
fn beyond_steps(output: &str) -> Vec<Duration> {
    let seconds = |text: &str| text.trim().trim_end_matches('s').parse::<f64>().ok();
    output
        .lines()
        .filter(|l| l.starts_with("PASS "))
        .filter_map(|line| {
            let inside = line.split_once('(')?.1.trim_end_matches(')');
            let total = seconds(inside.split(';').next()?)?;
            let steps = seconds(inside.rsplit_once("steps ")?.1)?;
            Some(Duration::from_secs_f64(total - steps))
        })
        .collect()
}

fn median(mut figures: Vec<Duration>) -> Duration {
    figures.sort();
    figures[figures.len() / 2]
}

fn main() -> ExitCode {
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let run = || -> Result<[Vec<Duration>; 4], String> {
        timed(&["cluster", "down"])?;
        // Kits and images provisioned: what follows is warm.
        timed(&["cluster", "provision"])?;
        let (mut ups, mut firsts, mut downs) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            let up = timed(&["cluster", "up"])?;
            let (ok, status) = plugproof(&["cluster", "status"]);
            if !ok || !status.contains(" Ready kubelet ") || !status.contains(" Running ") {
                return Err(format!("the cluster is not up as it should be:\n{status}"));
            }
            let (first, _) = run_on_cluster(FIRST)?;
            let down = timed(&["cluster", "down"])?;
            println!(
                "round {round}: up {:.1} s, first scenario {:.1} s, down {:.1} s",
                up.as_secs_f64(),
                first.as_secs_f64(),
                down.as_secs_f64()
            );
            ups.push(up);
            firsts.push(first);
            downs.push(down);
        }
        timed(&["cluster", "up"])?;
        run_on_cluster(FIRST)?;
        let (_, output) = run_on_cluster(WARM)?;
        timed(&["cluster", "down"])?;
        let beyond = beyond_steps(&output);
        let figures: Vec<String> = beyond.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect();
        println!("warm scenarios of {WARM}, time beyond their steps (s): {}", figures.join(" "));
        if beyond.is_empty() {
            return Err(format!("no scenario line in the run's output:\n{output}"));
        }
        Ok([ups, firsts, downs, beyond])
    };
    match run() {
        Ok([ups, firsts, downs, beyond]) => {
            println!(
                "cluster up (warm): median {:.1} s; first scenario after it: median {:.1} s; \
                 cluster down: median {:.1} s ({ROUNDS} rounds)",
                median(ups).as_secs_f64(),
                median(firsts).as_secs_f64(),
                median(downs).as_secs_f64()
            );
            let count = beyond.len();
            println!("a warm scenario beyond its steps: p50 {:.2} s ({count} scenarios)", median(beyond).as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            let _ = plugproof(&["cluster", "down"]);
            ExitCode::FAILURE
        }
    }
}
