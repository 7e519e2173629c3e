//! Speed figures (printed, never asserted): `cargo bench --bench speed`.
//!
//! 1. The floor: Envoy's boot to its first response through a Wasm filter,
//!    with a static bootstrap and a local module (no registry, no xDS files).
//! 2. A warm standalone scenario through the whole harness (registry, push,
//!    pull by digest, xDS files, Envoy, steps), by phase, against the floor.
//! 3. The whole suite under `cargo nextest run` on this machine, with the
//!    time spent provisioning, booting and running steps.
//!
//! `docs/benchmarks.md` records the figures measured on the project's machine.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use plugproof::components::echo::EchoServer;
use plugproof::profiles::ProfileKind;
use plugproof::provision::{build_modules, envoy_binary, Cache, ModuleCatalog};
use plugproof::run::{Runner, Status, Timings};
use plugproof::runtime::{Loopback, Process, ProcessSpec};
use plugproof::scenario::load_file;
use serde_json::json;

const ROUNDS: usize = 10;
const WARM_SCENARIO: &str = "scope/domain-exact";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let catalog = ModuleCatalog::load(&ModuleCatalog::default_workspace()).expect("the module catalog");

    // Figures are only comparable on an otherwise idle machine.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let floor = runtime.block_on(floor(&catalog));
    report("floor: Envoy boot -> first response through a Wasm filter", &floor);

    let warm = runtime.block_on(warm_scenario(&root, &catalog));
    let totals: Vec<Duration> = warm.iter().map(|t| t.total).collect();
    report(&format!("warm scenario {WARM_SCENARIO} (total)"), &totals);
    for (phase, pick) in [
        ("  stage (registry, push, backends)", (|t: &Timings| t.stage) as fn(&Timings) -> Duration),
        ("  deploy (pull, xDS, Envoy ready)", |t| t.deploy),
        ("  steps", |t| t.steps),
    ] {
        report(phase, &warm.iter().map(pick).collect::<Vec<_>>());
    }
    println!("warm scenario / floor (medians): {:.2}x", secs(median(&totals)) / secs(median(&floor)));

    suite(&root);
}

/// Boots Envoy with a static config (listener, one stamp filter from a local
/// file, a cluster to an echo server) and times spawn -> first stamped 200.
async fn floor(catalog: &ModuleCatalog) -> Vec<Duration> {
    let cache = Cache::from_env().expect("the cache");
    let envoy = envoy_binary(&cache).expect("Envoy");
    let modules = build_modules(&cache, catalog).expect("the modules");
    let http = plugproof::http::client();
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("a temp dir");
        let loopback = Loopback::for_run();
        let echo = EchoServer::start("echo", loopback.ip()).await.expect("an echo server");
        let listener = loopback.free_addr().expect("a port");
        let admin = loopback.free_addr().expect("a port");
        let bootstrap = static_bootstrap(listener, admin, echo.addr(), &modules.path("stamp"));
        let config = dir.path().join("envoy.json");
        std::fs::write(&config, bootstrap.to_string()).expect("write the bootstrap");
        let started = Instant::now();
        let spec = ProcessSpec::new("envoy", &envoy, dir.path().join("envoy.log"))
            .arg("-c")
            .arg(&config)
            .arg("--disable-hot-restart")
            .arg("--concurrency")
            .arg("1");
        let _envoy = Process::spawn(&spec).expect("Envoy starts");
        loop {
            let response = http.get(format!("http://{listener}/")).header("host", "floor.example.com").send().await;
            if response.is_ok_and(|r| r.status() == 200 && r.headers().contains_key("x-stamp")) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "Envoy never answered");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        samples.push(started.elapsed());
    }
    samples
}

fn static_bootstrap(
    listener: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    echo: std::net::SocketAddr,
    module: &Path,
) -> serde_json::Value {
    let socket =
        |a: std::net::SocketAddr| json!({"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}});
    json!({
        "admin": {"address": socket(admin)},
        "static_resources": {
            "listeners": [{
                "name": "floor",
                "address": socket(listener),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "floor",
                        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "echo"}}]}]},
                        "http_filters": [
                            {"name": "stamp", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                "config": {
                                    "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": module}}},
                                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{\"name\":\"floor\"}"},
                                },
                            }},
                            {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                        ],
                    },
                }]}],
            }],
            "clusters": [{
                "name": "echo", "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "echo", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(echo)}}]}]},
            }],
        },
    })
}

async fn warm_scenario(root: &Path, catalog: &ModuleCatalog) -> Vec<Timings> {
    let scenarios = root.join("scenarios");
    let scenario = load_file(&scenarios.join(format!("{WARM_SCENARIO}.yaml")), &scenarios, &catalog.names())
        .expect("the scenario loads");
    let report = tempfile::tempdir().expect("a temp dir");
    let runner = Runner::prepare(ProfileKind::Envoy, catalog, report.path().to_path_buf()).await.expect("provisioning");
    // One unmeasured run warms the page cache and V8's code cache.
    runner.run(&scenario).await;
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        let outcome = runner.run(&scenario).await;
        assert_eq!(outcome.status, Status::Passed, "the warm scenario must pass");
        samples.push(outcome.timings);
    }
    samples
}

/// Runs the scenario tests under nextest and sums the phases each printed.
fn suite(root: &Path) {
    // Build first (not timed): the figures are for running, not compiling.
    for args in [&["build", "--quiet", "-p", "plugproof"][..], &["nextest", "run", "--workspace", "--no-run"]] {
        let built = Command::new("cargo").current_dir(root).args(args).status().expect("cargo runs");
        assert!(built.success(), "cargo {args:?} failed");
    }
    let started = Instant::now();
    let provision = Command::new("cargo")
        .current_dir(root)
        .args(["run", "--quiet", "-p", "plugproof", "--", "provision"])
        .status()
        .expect("cargo runs");
    assert!(provision.success());
    let provisioning = started.elapsed();
    let started = Instant::now();
    let output = Command::new("cargo")
        .current_dir(root)
        .args([
            "nextest",
            "run",
            "--workspace",
            "-E",
            "binary(scenarios)",
            "--success-output",
            "immediate",
            "--no-fail-fast",
        ])
        .output()
        .expect("cargo nextest runs");
    let wall = started.elapsed();
    // nextest writes the tests' captured output to stderr.
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let (mut count, mut stage, mut deploy, mut steps) = (0, 0.0, 0.0, 0.0);
    for line in text.lines() {
        // "<id>: stage 0.123s, deploy 0.456s, steps 0.012s, total 0.600s"
        let Some((_, rest)) = line.split_once(": stage ") else { continue };
        let numbers: Vec<f64> =
            rest.split(", ").filter_map(|part| part.rsplit(' ').next()?.trim_end_matches('s').parse().ok()).collect();
        if let [s, d, st, _total] = numbers[..] {
            count += 1;
            stage += s;
            deploy += d;
            steps += st;
        }
    }
    println!("suite under nextest: {count} scenarios, exit {}", output.status);
    println!("  provisioning (warm cache, `plugproof provision`): {:.2}s", provisioning.as_secs_f64());
    println!("  nextest wall time (build up to date):             {:.2}s", wall.as_secs_f64());
    println!(
        "  sum over scenarios: boot {:.2}s (stage {stage:.2}s + deploy {deploy:.2}s), steps {steps:.2}s",
        stage + deploy
    );
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn report(label: &str, samples: &[Duration]) {
    let min = samples.iter().min().copied().unwrap_or_default();
    let max = samples.iter().max().copied().unwrap_or_default();
    println!(
        "{label}: median {:.3}s, min {:.3}s, max {:.3}s ({} runs)",
        secs(median(samples)),
        secs(min),
        secs(max),
        samples.len()
    );
}
