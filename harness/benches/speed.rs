//! Speed figures (printed, never asserted): `cargo bench --bench speed`.
//!
//! Standalone (`envoy` profile):
//! 1. The floor: Envoy's boot to its first response through a Wasm filter,
//!    with a static bootstrap and a local module (no registry, no xDS files).
//! 2. A warm scenario through the whole harness (registry, push, pull by
//!    digest, xDS files, Envoy, steps), by phase, against the floor.
//! 3. The whole suite under `cargo nextest run`, both profiles, with the time
//!    spent booting and running steps.
//!
//! `istio` profile (the bench runs itself again in its own namespaces):
//! 4. Cold boot of the environment (etcd, kube-apiserver, istiod, gateway), by part.
//! 5. From applying a WasmPlugin change to the first response that shows it.
//! 6. Every scenario's time on `istio` against `envoy`.
//!
//! Both profiles:
//! 7. Reloads under load, repeated: the rate held, failed requests, the time
//!    until every connection switched (p50 and max), drains.
//!
//! `docs/benchmarks.md` records the figures measured on the project's machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use plugproof::assert::reload::{millis, Analysis};
use plugproof::components::echo::EchoServer;
use plugproof::outcome::{Outcome, Status};
use plugproof::profiles::ProfileKind;
use plugproof::provision::{tools, ModuleCatalog};
use plugproof::run::Runner;
use plugproof::runtime::isolation::{bring_loopback_up, is_isolated, rerun_isolated};
use plugproof::runtime::{Loopback, Process, ProcessSpec};
use plugproof::scenario::{discover, load_file, Action, Change, Scenario};
use plugproof::translate::ecds::WASM_HTTP_FILTER_TYPE;
use serde_json::json;

const ROUNDS: usize = 10;
const ISTIO_BOOTS: usize = 5;
const WARM_SCENARIO: &str = "scope/domain-exact";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let catalog = ModuleCatalog::load(&ModuleCatalog::default_workspace()).expect("the module catalog");
    if is_isolated() {
        bring_loopback_up().expect("lo comes up");
        runtime.block_on(istio(&root, &catalog));
        return;
    }

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
    let totals: Vec<Duration> = warm.iter().map(|o| o.timings.total).collect();
    report(&format!("warm scenario {WARM_SCENARIO} (total)"), &totals);
    report("  stage (registry, push, backends)", &warm.iter().map(|o| o.timings.stage).collect::<Vec<_>>());
    report("  deploy (pull, xDS, Envoy ready)", &warm.iter().map(|o| o.timings.deploy).collect::<Vec<_>>());
    report("  steps", &warm.iter().map(|o| o.timings.steps).collect::<Vec<_>>());
    println!("warm scenario / floor (medians): {:.2}x", secs(median(&totals)) / secs(median(&floor)));

    suite(&root);
    runtime.block_on(reloads(ProfileKind::Envoy, &root, &catalog));

    let status = rerun_isolated(std::env::args_os().skip(1)).expect("the istio part runs in its own namespaces");
    assert!(status.success(), "the istio part failed: {status}");
}

/// Boots Envoy with a static config (listener, one stamp filter from a local
/// file, a cluster to an echo server) and times spawn -> first stamped 200.
async fn floor(catalog: &ModuleCatalog) -> Vec<Duration> {
    let tools = tools(catalog, false).await.expect("Envoy and the modules");
    let http = plugproof::http::client();
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("a temp dir");
        let loopback = Loopback::for_run();
        let echo = EchoServer::start("echo", loopback.ip()).await.expect("an echo server");
        let listener = loopback.free_addr().expect("a port");
        let admin = loopback.free_addr().expect("a port");
        let bootstrap = static_bootstrap(listener, admin, echo.addr(), &tools.modules.path("stamp"));
        let config = dir.path().join("envoy.json");
        std::fs::write(&config, bootstrap.to_string()).expect("write the bootstrap");
        let started = Instant::now();
        let spec = ProcessSpec::new("envoy", &tools.envoy, dir.path().join("envoy.log"))
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
                                "@type": WASM_HTTP_FILTER_TYPE,
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

fn scenarios_dir(root: &Path) -> PathBuf {
    root.join("scenarios")
}

fn load(path: &Path, root: &Path, catalog: &ModuleCatalog) -> Scenario {
    load_file(path, root, &catalog.names()).unwrap_or_else(|e| panic!("{e}"))
}

async fn runner(profile: ProfileKind, catalog: &ModuleCatalog) -> Runner {
    let report = tempfile::tempdir().expect("a temp dir").keep();
    Runner::prepare(profile, catalog, report).await.expect("provisioning")
}

async fn warm_scenario(root: &Path, catalog: &ModuleCatalog) -> Vec<Outcome> {
    let dir = scenarios_dir(root);
    let scenario = load(&dir.join(format!("{WARM_SCENARIO}.yaml")), &dir, catalog);
    let runner = runner(ProfileKind::Envoy, catalog).await;
    // One unmeasured run warms the page cache.
    runner.run(&scenario).await;
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        let outcome = runner.run(&scenario).await;
        assert_eq!(outcome.status, Status::Passed, "the warm scenario must pass");
        samples.push(outcome);
    }
    samples
}

/// Runs the scenario tests on both profiles under nextest and sums the
/// phases each printed.
fn suite(root: &Path) {
    // Build first (not timed): the figures are for running, not compiling.
    for args in [&["build", "--quiet", "-p", "plugproof"][..], &["nextest", "run", "--workspace", "--no-run"]] {
        let built = Command::new("cargo").current_dir(root).args(args).status().expect("cargo runs");
        assert!(built.success(), "cargo {args:?} failed");
    }
    let started = Instant::now();
    let provision = Command::new("cargo")
        .current_dir(root)
        .args(["run", "--quiet", "-p", "plugproof", "--", "provision", "--istio"])
        .status()
        .expect("cargo runs");
    assert!(provision.success());
    let provisioning = started.elapsed();
    let started = Instant::now();
    let output = Command::new("cargo")
        .current_dir(root)
        .env("PLUGPROOF_PROFILES", "envoy,istio")
        .args(["nextest", "run", "--workspace", "-E", "binary(scenarios)", "--success-output", "immediate"])
        .args(["--no-fail-fast"])
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
    println!("suite under nextest, profiles envoy and istio: {count} scenario runs, nextest {}", output.status);
    println!("  provisioning (warm cache, `plugproof provision --istio`): {:.2}s", provisioning.as_secs_f64());
    println!("  nextest wall time (build up to date):                     {:.2}s", wall.as_secs_f64());
    println!(
        "  sum over scenario runs: boot {:.2}s (stage {stage:.2}s + deploy {deploy:.2}s), steps {steps:.2}s",
        stage + deploy
    );
}

/// The istio part, inside the run's own namespaces.
async fn istio(root: &Path, catalog: &ModuleCatalog) {
    let dir = scenarios_dir(root);
    let istio = runner(ProfileKind::Istio, catalog).await;
    let envoy = runner(ProfileKind::Envoy, catalog).await;

    let boot_scenario = load(&dir.join("scope/global-default.yaml"), &dir, catalog);
    // The first run also makes the kit's etcd template when there is none.
    istio.run(&boot_scenario).await;
    let boots: Vec<Outcome> = {
        let mut boots = Vec::new();
        for _ in 0..ISTIO_BOOTS {
            let outcome = istio.run(&boot_scenario).await;
            assert_eq!(outcome.status, Status::Passed, "{:?}", outcome.status);
            boots.push(outcome);
        }
        boots
    };
    report(
        "istio cold boot: etcd + kube-apiserver + istiod + gateway ready",
        &boots.iter().map(|o| o.timings.deploy).collect::<Vec<_>>(),
    );
    for (index, (part, _)) in boots[0].boot.iter().enumerate() {
        report(&format!("  {part}"), &boots.iter().map(|o| o.boot[index].1).collect::<Vec<_>>());
    }

    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures");
    let change = load(&fixtures.join("config-change.yaml"), &fixtures, catalog);
    for (profile, runner) in [("istio", &istio), ("envoy", &envoy)] {
        let outcome = runner.run(&change).await;
        assert_eq!(outcome.status, Status::Passed, "{:?}", outcome.status);
        // Each change: the apply step, then the first request that shows it.
        let latencies: Vec<Duration> = change
            .steps
            .iter()
            .zip(&outcome.steps)
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|pair| matches!(pair[0].0.action, Action::Change { change: Change::Apply(_), .. }))
            .map(|pair| pair[0].1.elapsed + pair[1].1.elapsed)
            .collect();
        report(&format!("{profile}: apply a pluginConfig change -> first response showing it"), &latencies);
    }

    reloads(ProfileKind::Istio, root, catalog).await;

    println!("per scenario, envoy vs istio (total; istio deploy):");
    let files = discover(&dir).expect("the scenarios folder");
    for file in files {
        let scenario = load(&file, &dir, catalog);
        let (e, i) = (envoy.run(&scenario).await, istio.run(&scenario).await);
        let time = |o: &Outcome| match &o.status {
            Status::Passed => format!("{:.2}s", o.timings.total.as_secs_f64()),
            Status::Skipped(_) => "skip".to_owned(),
            Status::Failed(_) => "FAIL".to_owned(),
        };
        let deploy = match i.status {
            Status::Skipped(_) => String::new(),
            _ => format!(" ({:.2}s)", i.timings.deploy.as_secs_f64()),
        };
        println!("  {:<40} {:>7} {:>7}{deploy}", scenario.id, time(&e), time(&i));
    }
}

const RELOAD_ROUNDS: usize = 5;

/// Each reload scenario (and the 3000/s fixture) run several times; the
/// figures of every reload step, pooled per scenario.
async fn reloads(profile: ProfileKind, root: &Path, catalog: &ModuleCatalog) {
    let dir = scenarios_dir(root).join("reload");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures");
    let mut files = discover(&dir).expect("the reload scenarios");
    files.push(fixtures.join("reload-3000.yaml"));
    let runner = runner(profile, catalog).await;
    println!("{}: reloads under load, {RELOAD_ROUNDS} rounds each", profile.name());
    for file in files {
        let scenario = load(&file, file.parent().expect("a folder"), catalog);
        let mut analyses = Vec::new();
        for _ in 0..RELOAD_ROUNDS {
            let outcome = runner.run(&scenario).await;
            analyses.extend(outcome.steps.iter().filter_map(|s| s.reload.clone()));
        }
        let rates: Vec<f64> = analyses.iter().map(|a| a.rate()).collect();
        let errors: usize = analyses.iter().map(|a| a.errors).sum();
        let closed: usize = analyses.iter().map(Analysis::closed).sum();
        let abrupt: usize = analyses.iter().map(|a| a.closed_abruptly).sum();
        let switched: Vec<Duration> = analyses.iter().filter_map(|a| a.all_switched()).collect();
        let drains: Vec<Duration> = analyses.iter().filter_map(|a| a.drain.map(|(first, last)| last - first)).collect();
        println!(
            "  {:<24} {} reloads; rate min {:.0}/s; failed requests {errors}; closed by the proxy {closed} \
             (without notice {abrupt}); every connection switched: p50 {}, max {}{}",
            scenario.id,
            analyses.len(),
            rates.iter().copied().fold(f64::INFINITY, f64::min),
            ms(percentile(&switched, 50)),
            ms(switched.iter().max().copied()),
            if drains.is_empty() {
                String::new()
            } else {
                format!("; drain span max {}", ms(drains.iter().max().copied()))
            },
        );
    }
}

/// The sample at `p` percent of the sorted samples (for 50: the median, the
/// upper one of an even count).
fn percentile(samples: &[Duration], p: usize) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1))).copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".to_owned(), millis)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn median(samples: &[Duration]) -> Duration {
    percentile(samples, 50).expect("at least one sample")
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
