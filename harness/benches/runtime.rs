//! Wasm VMs and memory per reload: `cargo bench --bench runtime`. On the
//! standalone profile, then on `istio` (the bench runs itself again in its
//! own namespaces): a gateway with no plugin, the `runtime` plugin applied,
//! then `RELOADS` config changes and `RELOADS` module changes (the module
//! and its `v2` build in turn), the gateway's stats read after each. It
//! prints, per reload, the active and created V8 VMs and the allocator's
//! memory (the admin API's /memory), then the growth over each series.
//! Printed, not held to targets (`scenarios/runtime/vms.yaml` holds the
//! bounds); a run that fails is reported and the bench exits non-zero.
//!
//! `docs/runtime.md` records the figures measured on the project's machine.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use plugproof::options::Options;
use plugproof::outcome::{Outcome, Status};
use plugproof::profiles::ProfileKind;
use plugproof::provision::ModuleCatalog;
use plugproof::run::Runner;
use plugproof::runtime::isolation::{bring_loopback_up, is_isolated, rerun_isolated};
use plugproof::scenario::load_file;
use plugproof::targets::TargetSpec;

const RELOADS: usize = 50;
const ACTIVE: &str = "wasm.envoy.wasm.runtime.v8.active";
const CREATED: &str = "wasm.envoy.wasm.runtime.v8.created";
const MEMORY: &str = "admin.memory.allocated";

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let report = tempfile::tempdir().expect("a temp dir");
    let options = Options::from_env(&root, report.path().to_path_buf());
    let catalog = ModuleCatalog::load(&options.plugins).expect("the module catalog");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    if is_isolated() {
        bring_loopback_up().expect("lo comes up");
        return runtime.block_on(part(ProfileKind::Istio, &options, &catalog));
    }
    let envoy = runtime.block_on(part(ProfileKind::Envoy, &options, &catalog));
    let istio = rerun_isolated(std::env::args_os().skip(1)).expect("the istio part runs in its own namespaces");
    if envoy == ExitCode::SUCCESS && istio.success() {
        ExitCode::SUCCESS
    } else {
        println!("FAILED: envoy part {envoy:?}, istio part {istio}");
        ExitCode::FAILURE
    }
}

async fn part(profile: ProfileKind, options: &Options, catalog: &ModuleCatalog) -> ExitCode {
    let scratch = tempfile::tempdir().expect("a temp dir");
    let file = scratch.path().join("reloads.yaml");
    std::fs::write(&file, scenario()).expect("write the scenario");
    let scenario = load_file(&file, scratch.path(), &catalog.names()).unwrap_or_else(|e| panic!("{e}"));
    let runner = Runner::prepare(&TargetSpec::of(profile), options, catalog).await.expect("provisioning");
    let outcome = runner.run(&scenario).await;
    runner.shutdown().await;
    println!("{}: {RELOADS} config changes, then {RELOADS} module changes", runner.target().describe());
    if let Status::Failed(failure) = &outcome.status {
        println!("the run FAILED: {}", failure.message);
        return ExitCode::FAILURE;
    }
    print!("{}", table(&outcome));
    ExitCode::SUCCESS
}

/// Each read: what came before it, the VM counts and memory, and the
/// growth of memory over each series.
fn table(outcome: &Outcome) -> String {
    let reads: Vec<_> = outcome.steps.iter().filter_map(|s| Some((s.label.as_str(), s.stats_read.as_ref()?))).collect();
    let mut out = format!("{:<28} {:>6} {:>8} {:>14}\n", "after", "active", "created", "allocated (B)");
    let value = |read: &std::collections::BTreeMap<String, i64>, name: &str| {
        read.get(name).map_or_else(|| "-".to_owned(), i64::to_string)
    };
    for (label, read) in &reads {
        let (active, created, memory) = (value(read, ACTIVE), value(read, CREATED), value(read, MEMORY));
        let _ = writeln!(out, "{label:<28} {active:>6} {created:>8} {memory:>14}");
    }
    let at = |label: &str| reads.iter().find(|(l, _)| *l == label).map(|(_, read)| read[MEMORY]);
    let plugin = at("the plugin").zip(at("no plugin")).map(|(with, without)| with - without);
    let config = at(&format!("config change {RELOADS}")).zip(at("the plugin")).map(|(last, first)| last - first);
    let module = at(&format!("module change {RELOADS}")).zip(at(&format!("config change {RELOADS}")));
    let module = module.map(|(last, first)| last - first);
    let _ = writeln!(
        out,
        "memory: the plugin {} B; growth over {RELOADS} config changes {} B, over {RELOADS} module changes {} B",
        plugin.unwrap_or_default(),
        config.unwrap_or_default(),
        module.unwrap_or_default()
    );
    out
}

/// No plugin; the plugin; `RELOADS` config changes; `RELOADS` module changes;
/// the stats read after each, under the step's name.
fn scenario() -> String {
    let stats = |name: &str| {
        format!("- name: {name}\n  stats: {{{MEMORY}: {{min: 1}}, {ACTIVE}: {{min: 0}}, {CREATED}: {{min: 0}}}}\n  eventually: once\n")
    };
    let apply = |url: &str, name: &str| {
        format!(
            "- apply:\n    apiVersion: extensions.istio.io/v1alpha1\n    kind: WasmPlugin\n    metadata: {{name: runtime}}\n    \
             spec: {{url: \"{url}\", pluginConfig: {{name: {name}}}}}\n"
        )
    };
    let mut steps = format!("- name: no plugin\n  stats: {{{MEMORY}: {{min: 1}}}}\n  eventually: once\n");
    steps.push_str(&apply("plugin://v1:v1", "a"));
    steps.push_str(&stats("the plugin"));
    for reload in 1..=RELOADS {
        steps.push_str(&apply("plugin://v1:v1", if reload % 2 == 1 { "b" } else { "a" }));
        steps.push_str(&stats(&format!("config change {reload}")));
    }
    for reload in 1..=RELOADS {
        steps.push_str(&apply(if reload % 2 == 1 { "plugin://v2:v2" } else { "plugin://v1:v1" }, "a"));
        steps.push_str(&stats(&format!("module change {reload}")));
    }
    format!(
        "description: VMs and memory per reload\n\
         plugins:\n  v1: {{module: runtime, tag: v1}}\n  v2: {{module: runtime-v2, tag: v2}}\n\
         services:\n  - name: echo\n\
         routes:\n  - {{name: default/web, hosts: ['*'], service: echo}}\n\
         steps:\n{steps}"
    )
}
