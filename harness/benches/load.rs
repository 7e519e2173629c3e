//! Load figures: `cargo bench --bench load` (standalone profile, about two
//! minutes). `docs/streams.md` records what it printed on the project's
//! machine.
//!
//! 1. Reloads that travel by ECDS only (pluginConfig, matchRules, module by
//!    tag) at 10,000 short requests per second, with long streams open
//!    across the change, each run several times. Every run must pass (no
//!    failed request, no close, every long stream whole); a run that fails
//!    is shown beside the figures and makes the bench exit non-zero. Per run:
//!    the rate held (per second, too), failures, closes, long streams, and
//!    where the CPU went over the load: Envoy (its worker), this process
//!    (the load and the echo backends, on the traffic runtime), the rest of
//!    the machine, idle. From those, where the ceiling is.
//! 2. What a listener drain does to streams longer than the drain time:
//!    the same change with Envoy's drain time and strategy as the profiles
//!    run it (5 s, immediate), with a drain time longer than the streams,
//!    and with the gradual strategy. Each setting's expected outcome is
//!    checked (cut, whole, cut).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use plugproof::assert::reload::{describe, millis, Analysis, BUCKET};
use plugproof::load::StreamEnd;
use plugproof::options::Options;
use plugproof::outcome::{Outcome, Status};
use plugproof::profiles::ProfileKind;
use plugproof::provision::ModuleCatalog;
use plugproof::run::Runner;
use plugproof::scenario::{load_file, Scenario};
use plugproof::targets::TargetSpec;

const ROUNDS: usize = 2;
const FIXTURES: [&str; 3] = ["reload-10000.yaml", "reload-10000-rules.yaml", "reload-10000-tag.yaml"];
const DRAIN_FIXTURE: &str = "drain-long-streams.yaml";
/// How often CPU time is read while a scenario runs.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = tempfile::tempdir().expect("a temp dir").keep();
    let options = Options::from_env(&root.join(".."), report);
    let catalog = ModuleCatalog::load(&options.plugins).expect("the module catalog");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {} cores, load average {} (other work on the machine shows as `rest` below)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let mut failures = Vec::new();
    runtime.block_on(async {
        let runner =
            Runner::prepare(&TargetSpec::of(ProfileKind::Envoy), &options, &catalog).await.expect("provisioning");
        rates(&runner, root, &catalog, &mut failures).await;
        drains(&runner, root, &options, &catalog, &mut failures).await;
    });
    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    println!("FAILED: {} run(s) did not do what they must; their figures are marked above:", failures.len());
    for failure in &failures {
        println!("  {failure}");
    }
    ExitCode::FAILURE
}

fn fixture(root: &Path, name: &str, catalog: &ModuleCatalog) -> Scenario {
    let dir = root.join("benches/fixtures");
    load_file(&dir.join(name), &dir, &catalog.names()).unwrap_or_else(|e| panic!("{e}"))
}

/// Part 1: ECDS reloads at 10,000/s.
async fn rates(runner: &Runner, root: &Path, catalog: &ModuleCatalog, failures: &mut Vec<String>) {
    println!(
        "\nECDS reloads at 10,000 requests/s with long streams, {ROUNDS} runs each (envoy profile, --concurrency 1):"
    );
    let mut ceilings = Vec::new();
    for name in FIXTURES {
        let scenario = fixture(root, name, catalog);
        for round in 1..=ROUNDS {
            let (outcome, cpu) = measured(runner, &scenario).await;
            let label = format!("{} run {round}", scenario.id);
            let Some(analysis) = reload(&outcome) else {
                failures.push(format!("{label}: no reload was measured: {}", status(&outcome)));
                println!("  {label}: FAILED before the reload: {}", status(&outcome));
                continue;
            };
            let passed = matches!(outcome.status, Status::Passed);
            if !passed {
                failures.push(format!("{label}: {}", status(&outcome)));
            }
            println!("  {label}{}", if passed { "" } else { " (FAILED, see the end)" });
            print_rate(analysis);
            if let Some(cpu) = cpu.during(&outcome, analysis) {
                println!("    {}", cpu.line());
                ceilings.push((analysis.rate(), cpu));
            }
        }
    }
    // Each side's rate if it had a core to itself: the lower one is the ceiling.
    let per_core = |share: fn(&CpuShares) -> f64| {
        let rates: Vec<f64> = ceilings.iter().filter(|(_, c)| share(c) > 0.0).map(|(r, c)| r / share(c)).collect();
        (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
    };
    if let (Some(envoy), Some(bench)) = (per_core(|c| c.envoy_worker), per_core(|c| c.traffic)) {
        let which = if envoy < bench { "Envoy's single worker" } else { "the load generator and echo backends" };
        println!(
            "  ceiling: Envoy's worker thread would be saturated at ~{envoy:.0}/s (one core: --concurrency 1); \
             the load and echo backends need one core per ~{bench:.0}/s. On 2 idle cores the ceiling is {which}."
        );
    }
}

fn print_rate(analysis: &Analysis) {
    let per_second: Vec<String> = analysis
        .buckets
        .chunks_exact((Duration::from_secs(1).as_millis() / BUCKET.as_millis()) as usize)
        .map(|second| {
            format!("{:.1}k", second.iter().map(|b| b.counts.values().sum::<usize>()).sum::<usize>() as f64 / 1000.0)
        })
        .collect();
    println!(
        "    {} requests in {:.2} s: {:.0}/s (per second: {}); failed {}; sent again {}; closed by the proxy {} \
         (without notice {}); the change taken after {}, every connection switched after {}",
        analysis.requests,
        analysis.duration.as_secs_f64(),
        analysis.rate(),
        per_second.join(" "),
        analysis.errors,
        analysis.resent,
        analysis.closed(),
        analysis.closed_abruptly,
        analysis.took().map_or("never".into(), millis),
        analysis.all_switched().map_or("never".into(), millis),
    );
    let ends: Vec<String> = analysis.long_ends().into_iter().map(|(kind, n)| format!("{kind} {n}")).collect();
    let mut answered: BTreeMap<&str, usize> = BTreeMap::new();
    for stream in &analysis.long {
        *answered.entry(stream.version.as_deref().unwrap_or("(none)")).or_default() += 1;
    }
    let answered: Vec<String> = answered.into_iter().map(|(v, n)| format!("{v} {n}")).collect();
    println!(
        "    long streams {} ({} answered across the change): {}; answered {}",
        analysis.long.len(),
        analysis.across_the_change().count(),
        ends.join(", "),
        answered.join(", ")
    );
}

/// The reload step's analysis, if one ran.
fn reload(outcome: &Outcome) -> Option<&Analysis> {
    outcome.steps.iter().find_map(|s| s.reload.as_ref())
}

fn status(outcome: &Outcome) -> String {
    match &outcome.status {
        Status::Passed => "passed".to_owned(),
        Status::Skipped(reason) => format!("skipped: {reason}"),
        Status::Failed(failure) => {
            let observed: Vec<&str> =
                failure.message.lines().filter(|l| l.starts_with('+') && !l.starts_with("+++")).collect();
            if observed.is_empty() {
                failure.message.lines().next().unwrap_or_default().to_owned()
            } else {
                observed.join(" | ")
            }
        }
    }
}

/// Part 2: a listener change while streams longer than the drain are open,
/// under three drain settings.
async fn drains(runner: &Runner, root: &Path, options: &Options, catalog: &ModuleCatalog, failures: &mut Vec<String>) {
    println!("\nA plugin added (listener drain) with 9 s streams open, by Envoy drain setting:");
    let scenario = fixture(root, DRAIN_FIXTURE, catalog);
    let real = runner.target().envoy.path.clone();
    let wrappers = tempfile::tempdir().expect("a temp dir");
    let settings = [
        ("--drain-time-s 5 --drain-strategy immediate (both profiles)", None, Expect::Cut),
        ("--drain-time-s 12 --drain-strategy immediate", Some(("12", "immediate")), Expect::Whole),
        ("--drain-time-s 5 --drain-strategy gradual", Some(("5", "gradual")), Expect::Cut),
    ];
    for (label, setting, expect) in settings {
        let outcome = match setting {
            None => runner.run(&scenario).await,
            Some((time, strategy)) => {
                let envoy = wrapper(wrappers.path(), &real, time, strategy);
                let spec = TargetSpec::parse(&format!("envoy@{}", envoy.display())).expect("a target");
                let other = Runner::prepare(&spec, options, catalog).await.expect("provisioning the wrapped Envoy");
                other.run(&scenario).await
            }
        };
        println!("  {label}:");
        let Some(analysis) = reload(&outcome) else {
            failures.push(format!("drain {label}: no reload was measured: {}", status(&outcome)));
            continue;
        };
        print_drain(analysis);
        let whole = analysis.long.iter().all(|s| s.end == StreamEnd::Completed);
        let seen = match (whole, &outcome.status) {
            (true, Status::Passed) => Expect::Whole,
            (false, _) => Expect::Cut,
            (true, _) => {
                failures.push(format!("drain {label}: the streams were whole, yet: {}", status(&outcome)));
                continue;
            }
        };
        if seen != expect {
            failures.push(format!(
                "drain {label}: expected the streams {expect:?}, they were {seen:?}: {}",
                status(&outcome)
            ));
        }
        println!("    expected {expect:?}: {}", if seen == expect { "so it was" } else { "it was NOT (see the end)" });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Cut,
    Whole,
}

fn print_drain(analysis: &Analysis) {
    if let Some(drain) = &analysis.drain_in_force {
        println!("    drain in force (Envoy's /server_info): {}, {}", drain.time, drain.strategy);
    }
    println!(
        "    the change taken after {}; connections closed by the proxy {} (with notice {}, without {}){}",
        analysis.took().map_or("never".into(), millis),
        analysis.closed(),
        analysis.closed_gracefully,
        analysis.closed_abruptly,
        analysis.drain.map_or(String::new(), |(first, last)| format!(
            ", +{} to +{} after the change",
            millis(first),
            millis(last)
        ))
    );
    for stream in &analysis.long {
        println!("    {}", describe(stream, analysis.applied_at));
    }
}

/// An Envoy that runs as the profile starts it, but with this drain time
/// and strategy (it rewrites the two flags' values and execs the real one).
fn wrapper(dir: &Path, real: &Path, time: &str, strategy: &str) -> PathBuf {
    let path = dir.join(format!("envoy-drain-{time}s-{strategy}"));
    let script = format!(
        "#!/bin/sh\n\
         # Envoy with --drain-time-s {time} --drain-strategy {strategy}.\n\
         prev=\n\
         for arg do\n  shift\n  value=$arg\n\
         \x20 case $prev in --drain-time-s) value={time} ;; --drain-strategy) value={strategy} ;; esac\n\
         \x20 set -- \"$@\" \"$value\"\n  prev=$arg\n\
         done\n\
         exec '{}' \"$@\"\n",
        real.display()
    );
    std::fs::write(&path, script).expect("the wrapper is written");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("the wrapper is executable");
    path
}

/// CPU time read over a run: Envoy's threads, this process's, the machine's.
#[derive(Default)]
struct CpuTrace {
    started: Option<Instant>,
    samples: Vec<(Instant, CpuTicks)>,
}

#[derive(Debug, Clone, Copy)]
struct CpuTicks {
    envoy_worker: u64,
    envoy_other: u64,
    traffic: u64,
    bench_other: u64,
    machine_busy: u64,
    machine_idle: u64,
}

/// Shares of one core over a window.
#[derive(Debug, Clone, Copy)]
struct CpuShares {
    envoy_worker: f64,
    envoy_other: f64,
    traffic: f64,
    bench_other: f64,
    rest: f64,
    idle: f64,
}

impl CpuShares {
    fn line(&self) -> String {
        let pct = |share: f64| format!("{:.0}%", share * 100.0);
        format!(
            "CPU over the load, in % of one core (2 in all): Envoy worker {}, Envoy other threads {}; \
             this process: load + echo (traffic runtime) {}, other threads {}; rest of the machine {}; idle {}",
            pct(self.envoy_worker),
            pct(self.envoy_other),
            pct(self.traffic),
            pct(self.bench_other),
            pct(self.rest),
            pct(self.idle)
        )
    }
}

impl CpuTrace {
    /// Shares over the reload's load: it began when the reload step did
    /// (stage, deploy and the steps before it after the run's start).
    fn during(&self, outcome: &Outcome, analysis: &Analysis) -> Option<CpuShares> {
        let started = self.started?;
        let before: Duration = outcome.steps.iter().take_while(|s| s.reload.is_none()).map(|s| s.elapsed).sum();
        let from = started + outcome.timings.stage + outcome.timings.deploy + before;
        let to = from + analysis.duration;
        let at = |t: Instant| self.samples.iter().min_by_key(|(when, _)| if *when > t { *when - t } else { t - *when });
        let ((t0, a), (t1, b)) = (at(from)?, at(to)?);
        let seconds = (*t1 - *t0).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        let hz = ticks_per_second();
        let share = |x: u64, y: u64| y.saturating_sub(x) as f64 / hz / seconds;
        let envoy_worker = share(a.envoy_worker, b.envoy_worker);
        let envoy_other = share(a.envoy_other, b.envoy_other);
        let traffic = share(a.traffic, b.traffic);
        let bench_other = share(a.bench_other, b.bench_other);
        let busy = share(a.machine_busy, b.machine_busy);
        Some(CpuShares {
            envoy_worker,
            envoy_other,
            traffic,
            bench_other,
            rest: (busy - envoy_worker - envoy_other - traffic - bench_other).max(0.0),
            idle: share(a.machine_idle, b.machine_idle),
        })
    }
}

/// Runs `scenario`, reading CPU time every `SAMPLE_EVERY` meanwhile.
async fn measured(runner: &Runner, scenario: &Scenario) -> (Outcome, CpuTrace) {
    let mut trace = CpuTrace { started: Some(Instant::now()), ..CpuTrace::default() };
    let run = runner.run(scenario);
    tokio::pin!(run);
    let mut envoy = None;
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break outcome,
            _ = tokio::time::sleep(SAMPLE_EVERY) => {
                envoy = envoy.filter(|pid| Path::new(&format!("/proc/{pid}")).exists()).or_else(envoy_child);
                trace.samples.push((Instant::now(), ticks(envoy)));
            }
        }
    };
    (outcome, trace)
}

/// The Envoy this process started (the gateway), if it runs.
fn envoy_child() -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let (comm, fields) = stat(&entry.path().join("stat"))?;
        (comm == "envoy" && fields.get(1)?.parse::<u32>().ok()? == me).then_some(pid)
    })
}

/// `/proc/.../stat`: the command name and the fields after it (the state first).
fn stat(path: &Path) -> Option<(String, Vec<String>)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let comm = text[open + 1..close].to_owned();
    Some((comm, text[close + 1..].split_whitespace().map(str::to_owned).collect()))
}

/// utime + stime of every thread of `pid`, split by whether its name starts with `prefix`.
fn threads(pid: &str, prefix: &str) -> (u64, u64) {
    let mut split = (0, 0);
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let Some((comm, fields)) = stat(&entry.path().join("stat")) else { continue };
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
        let time: u64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<u64>().ok()).sum();
        if comm.starts_with(prefix) {
            split.0 += time;
        } else {
            split.1 += time;
        }
    }
    split
}

fn ticks(envoy: Option<u32>) -> CpuTicks {
    let (envoy_worker, envoy_other) = envoy.map_or((0, 0), |pid| threads(&pid.to_string(), "wrk:"));
    let (traffic, bench_other) = threads("self", "plugproof-traff");
    let (mut machine_busy, mut machine_idle) = (0, 0);
    if let Some(line) = std::fs::read_to_string("/proc/stat").ok().and_then(|s| s.lines().next().map(str::to_owned)) {
        let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal
        machine_busy = [0, 1, 2, 5, 6, 7].iter().filter_map(|i| v.get(*i)).sum();
        machine_idle = [3, 4].iter().filter_map(|i| v.get(*i)).sum();
    }
    CpuTicks { envoy_worker, envoy_other, traffic, bench_other, machine_busy, machine_idle }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}
