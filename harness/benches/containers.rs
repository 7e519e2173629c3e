//! Container figures: `cargo bench --bench containers` (needs a container
//! engine: `ci/setup-containers`).
//!
//! 1. Each image plugproof builds, the first time (the image is removed
//!    first, so the build is a cold one; the binaries are already
//!    provisioned): the time, and its size.
//! 2. A warm scenario on the standalone profile with Envoy as a process and
//!    in a container, run alternately, in pairs: medians, and their ratio.
//!
//! Every figure comes from runs that passed; the bench exits non-zero
//! otherwise. `docs/benchmarks.md` records the figures.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use plugproof::options::Options;
use plugproof::outcome::Status;
use plugproof::profiles::profile;
use plugproof::provision::{tools, ModuleCatalog};
use plugproof::run::Runner;
use plugproof::runtime::container::engine;
use plugproof::scenario::load_file;
use plugproof::targets::{Target, TargetSpec};
use testcontainers::bollard::query_parameters::RemoveImageOptionsBuilder;

const ROUNDS: usize = 10;
const WARM_SCENARIO: &str = "scope/domain-exact";

fn main() -> ExitCode {
    plugproof::runtime::at_start();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let options = Options::from_env(&root, tempfile::tempdir().expect("a temp dir").keep());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let catalog = ModuleCatalog::load(&options.plugins).expect("the module catalog");
        let tools = tools(&options, &catalog).await.expect("the shared tools");
        println!(
            "machine: {} cores, load average {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
        for text in ["envoy+container", "istio+container"] {
            let spec = TargetSpec::parse(text).expect("a target");
            let needs = profile(spec.profile, &options).needs();
            // Resolved once so that the binaries are provisioned, then again
            // from scratch once its image is gone.
            let target = Target::resolve(&spec, &options, &tools, needs.clone()).await.expect("the target");
            let image = target.image.clone().expect("a container target has an image");
            let docker = engine::client().await.expect("a container engine");
            let force = RemoveImageOptionsBuilder::new().force(true).build();
            let _ = docker.remove_image(&image.reference, Some(force), None).await;
            let started = Instant::now();
            let target = Target::resolve(&spec, &options, &tools, needs).await.expect("the target");
            let built = started.elapsed();
            let image = target.image.expect("an image");
            let size = docker.inspect_image(&image.reference).await.ok().and_then(|i| i.size).unwrap_or(0);
            println!(
                "{text}: image {} built in {:.2} s (the target resolved with it), {:.1} MB",
                image.reference,
                built.as_secs_f64(),
                size as f64 / 1e6
            );
        }

        let dir = root.join("scenarios");
        let scenario = load_file(&dir.join(format!("{WARM_SCENARIO}.yaml")), &dir, &catalog.names()).expect("loads");
        let process = Runner::prepare(&TargetSpec::parse("envoy").unwrap(), &options, &catalog).await.expect("envoy");
        let container =
            Runner::prepare(&TargetSpec::parse("envoy+container").unwrap(), &options, &catalog).await.expect("envoy+container");
        // One unmeasured run of each warms the caches.
        process.run(&scenario).await;
        container.run(&scenario).await;
        let (mut by_process, mut by_container) = (Vec::new(), Vec::new());
        let mut failed = 0;
        for _ in 0..ROUNDS {
            for (runner, samples) in [(&process, &mut by_process), (&container, &mut by_container)] {
                let outcome = runner.run(&scenario).await;
                match outcome.status {
                    Status::Passed => samples.push(outcome.timings),
                    other => {
                        failed += 1;
                        println!("  left out: {} {other:?}", runner.target().name());
                    }
                }
            }
        }
        let median = |samples: &[plugproof::outcome::Timings], part: fn(&plugproof::outcome::Timings) -> Duration| {
            let mut values: Vec<Duration> = samples.iter().map(part).collect();
            values.sort();
            values.get(values.len() / 2).copied().unwrap_or_default()
        };
        for (label, samples) in [("process", &by_process), ("container", &by_container)] {
            println!(
                "warm {WARM_SCENARIO} on envoy, {label}: total {:.3} s (stage {:.3}, deploy {:.3}, steps {:.3}), median of {}",
                median(samples, |t| t.total).as_secs_f64(),
                median(samples, |t| t.stage).as_secs_f64(),
                median(samples, |t| t.deploy).as_secs_f64(),
                median(samples, |t| t.steps).as_secs_f64(),
                samples.len()
            );
        }
        let ratio = median(&by_container, |t| t.total).as_secs_f64() / median(&by_process, |t| t.total).as_secs_f64();
        println!("container / process (medians of the total): {ratio:.2}x (target: at most 1.3x)");
        if failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}
