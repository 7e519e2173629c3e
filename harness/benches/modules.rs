//! Module-source figures: `cargo bench --bench modules`. Printed, not held
//! to targets; a run that fails is reported and the bench exits non-zero.
//!
//! 1. `cargo:` and `go:` builds: cold (sources never built before), warm
//!    (the same sources again), touched (files rewritten, content the same)
//!    and edited (one comment changed). The example crate and the Go
//!    fixture are copied to a temporary folder, with a unique comment so
//!    that the first build is a real one. Cold means plugproof's module
//!    cache has never seen the sources and, for `cargo:`, the crate's
//!    target folder is new; the wasm toolchain and Go's own build cache are
//!    warm, as they are for any user after the first build.
//! 2. A large module on the gateway: on the standalone profile, the time
//!    from applying a WasmPlugin until the gateway has taken it (the change
//!    step waits on Envoy's ECDS statistics, no fixed sleep), for the Go
//!    module (several MB) against the small built-in `stamp`.
//!
//! `docs/benchmarks.md` records the figures measured on the project's machine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use plugproof::options::Options;
use plugproof::outcome::Status;
use plugproof::provision::{tools, ModuleCatalog, Tools};
use plugproof::run::Runner;
use plugproof::scenario::{load_file, ModuleSource};
use plugproof::targets::TargetSpec;

const APPLY_ROUNDS: usize = 5;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let report = tempfile::tempdir().expect("a temp dir");
    let options = Options::from_env(&root, report.path().to_path_buf());
    let catalog = ModuleCatalog::load(&options.plugins).expect("the module catalog");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let tools = runtime.block_on(tools(&options, &catalog)).expect("the tools");
    let mut failed = Vec::new();

    let scratch = tempfile::tempdir().expect("a temp dir");
    let crate_dir = scratch.path().join("api-key");
    copy(&root.join("examples/plugin-author"), &crate_dir, &["Cargo.toml", "Cargo.lock", "src", "tests"]);
    // Its dev-dependency on plugproof is a path relative to the example's folder.
    let manifest = crate_dir.join("Cargo.toml");
    let harness = root.join("harness").canonicalize().expect("the harness folder");
    let text =
        std::fs::read_to_string(&manifest).expect("read").replace("\"../../harness\"", &format!("{:?}", harness));
    std::fs::write(&manifest, text).expect("write");
    let go_dir = scratch.path().join("go-plugin");
    copy(&root.join("plugins/go"), &go_dir, &["go.mod", "abi.go", "main.go", "plugin.go"]);
    let builds = [
        ("cargo", ModuleSource::Cargo(crate_dir.clone()), crate_dir.join("src/lib.rs")),
        ("go", ModuleSource::Go(go_dir.clone()), go_dir.join("plugin.go")),
    ];
    for (kind, source, edited) in &builds {
        let nonce = format!("{:?}", std::time::SystemTime::now());
        comment(edited, &format!("bench {nonce}"));
        let mut time = |label: &str| match timed(&runtime, &tools, source) {
            Ok((took, size)) => println!("{kind}: {label:<8} {:>8.3}s  ({size} bytes)", took.as_secs_f64()),
            Err(e) => {
                println!("{kind}: {label} FAILED: {e}");
                failed.push(format!("{kind} {label}: {e}"));
            }
        };
        time("cold");
        time("warm");
        let text = std::fs::read(edited).expect("read");
        std::fs::write(edited, text).expect("rewrite");
        time("touched");
        comment(edited, &format!("bench {nonce} edited"));
        time("edited");
    }

    let go_module = match runtime.block_on(tools.sources.resolve(&builds[1].1)) {
        Ok(module) => module,
        Err(e) => {
            println!("FAILED: the Go module: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runner = runtime
        .block_on(Runner::prepare(&TargetSpec::parse("envoy").expect("a target"), &options, &catalog))
        .expect("the envoy target");
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    for (label, source, bytes, config, header) in [
        (
            "stamp (built-in)",
            "{module: stamp}".to_owned(),
            size(&tools.sources.builtin.path("stamp")),
            "{name: big}",
            "x-stamp",
        ),
        (
            "go plugin",
            format!("{{file: {}}}", go_module.path.display()),
            size(&go_module.path),
            "{name: big}",
            "x-go-plugin",
        ),
    ] {
        let file = scratch.path().join("apply.yaml");
        std::fs::write(&file, apply_scenario(&source, config, header)).expect("write the scenario");
        let scenario = load_file(&file, scratch.path(), &catalog.names()).unwrap_or_else(|e| panic!("{e}"));
        let mut samples = Vec::new();
        for _ in 0..APPLY_ROUNDS {
            let outcome = runtime.block_on(runner.run(&scenario));
            match &outcome.status {
                Status::Passed => samples.push(outcome.steps[0].elapsed),
                other => {
                    println!("apply {label}: a run FAILED: {other:?}");
                    failed.push(format!("apply {label}: {other:?}"));
                }
            }
        }
        samples.sort();
        if let (Some(min), Some(max)) = (samples.first(), samples.last()) {
            println!(
                "apply -> gateway took it, {label} ({bytes} bytes): median {:.3}s, min {:.3}s, max {:.3}s ({} runs)",
                samples[samples.len() / 2].as_secs_f64(),
                min.as_secs_f64(),
                max.as_secs_f64(),
                samples.len()
            );
        }
    }

    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("FAILED: {}", failed.join("; "));
        ExitCode::FAILURE
    }
}

/// Resolves `source` once: how long it took and the module's size.
fn timed(runtime: &tokio::runtime::Runtime, tools: &Tools, source: &ModuleSource) -> Result<(Duration, u64), String> {
    let started = Instant::now();
    let module = runtime.block_on(tools.sources.resolve(source)).map_err(|e| e.to_string())?;
    let took = started.elapsed();
    Ok((took, std::fs::metadata(&module.path).map_err(|e| e.to_string())?.len()))
}

/// A gateway with no plugin, then one applied: the first step's time is
/// from the apply until the gateway has taken it.
fn apply_scenario(source: &str, config: &str, header: &str) -> String {
    format!(
        "description: apply one plugin to a running gateway\n\
         plugins:\n  big: {source}\n\
         services:\n  - name: echo\n\
         routes:\n  - {{name: default/web, hosts: ['*'], service: echo}}\n\
         steps:\n\
         - apply:\n      apiVersion: extensions.istio.io/v1alpha1\n      kind: WasmPlugin\n      \
           metadata: {{name: big}}\n      spec: {{url: plugin://big, pluginConfig: {config}}}\n\
         - request: {{host: a.example.com}}\n  expect: {{status: 200, headers: {{{header}: big}}}}\n  eventually: once\n"
    )
}

fn copy(from: &Path, to: &Path, parts: &[&str]) {
    for part in parts {
        let (source, target): (PathBuf, PathBuf) = (from.join(part), to.join(part));
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("create");
        if source.is_dir() {
            plugproof::files::copy_tree(&source, &target, &[]).expect("copy");
        } else {
            std::fs::copy(&source, &target).expect("copy");
        }
    }
}

/// Appends a line comment (`//` in both Rust and Go): new sources, same program.
fn comment(file: &Path, text: &str) {
    let mut source = std::fs::read_to_string(file).expect("read");
    source.push_str(&format!("\n// {text}\n"));
    std::fs::write(file, source).expect("write");
}
