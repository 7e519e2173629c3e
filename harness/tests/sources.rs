//! Module sources besides the built-in test modules, on each target of
//! `PLUGPROOF_TARGETS`: a `.wasm` file, an image in a registry the user
//! names (here one the test starts), a Go package (`plugins/go`) and a
//! crate (`examples/plugin-author`), the last two built by plugproof. Each
//! scenario must pass, and fail once one expectation is changed; a source
//! that is not a Wasm module fails with its scenario line; an image in a
//! registry that asks for a login over TLS is pulled with the login and
//! CA given, and without them fails, leaving the password nowhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use plugproof::components::registry::{ModuleRegistry, NamedRegistry, Registry, RegistryLock};
use plugproof::options::{OciAccess, OciAuth, Options};
use plugproof::outcome::Outcome;
use plugproof::provision::{self, ModuleCatalog, Tools};
use plugproof::runtime::{rundir, Loopback};
use plugproof::scenario::{load_file, Layout};
use plugproof::targets::TargetSpec;
use plugproof::testing::{role, run_scenario, run_where_it_runs, targets_from_env, Role};

/// A scenario with one plugin from a source (`name` is its key), its
/// `config`, and a request with `headers` whose `expect` (YAML, with
/// `VALUE` in it) must hold for `value`, and not for another.
struct Case {
    name: &'static str,
    /// Prepares what the source needs and returns the source (YAML).
    source: fn(&Fixture) -> Result<String, Failed>,
    config: &'static str,
    headers: &'static str,
    expect: &'static str,
    value: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "file",
        source: |f| {
            std::fs::copy(f.tools.sources.builtin.path("stamp"), f.dir.join("stamp.wasm"))?;
            Ok("{file: stamp.wasm}".into())
        },
        config: "{name: from-file}",
        headers: "{}",
        expect: "{headers: {x-stamp: VALUE}}",
        value: "from-file",
    },
    Case {
        name: "oci",
        source: |f| {
            let module = std::fs::read(f.tools.sources.builtin.path("stamp"))?;
            let registry = f.registry.as_ref().ok_or("the case needs a registry")?;
            f.block_on(registry.client().push("team/stamp", "1.0", &module, Layout::Compat))?;
            Ok(format!("{{oci: {}/team/stamp:1.0}}", registry.host()))
        },
        config: "{name: from-oci}",
        headers: "{}",
        expect: "{headers: {x-stamp: VALUE}}",
        value: "from-oci",
    },
    Case {
        name: "go",
        source: |_| Ok(format!("{{go: {}}}", common::workspace().join("plugins/go").display())),
        config: "{name: go-hello}",
        headers: "{}",
        expect: "{headers: {x-go-plugin: VALUE}}",
        value: "go-hello",
    },
    Case {
        name: "cargo",
        source: |_| Ok(format!("{{cargo: {}}}", common::workspace().join("examples/plugin-author").display())),
        config: "{keys: {k-1: alice}, consumer_header: x-who}",
        headers: "{x-api-key: k-1}",
        expect: "{backend: {headers: {x-who: VALUE, x-api-key: {absent: true}}}}",
        value: "alice",
    },
];

/// What a case runs with: a folder of its own, the tools, a registry for
/// `oci:` and a runtime to drive it.
struct Fixture {
    dir: PathBuf,
    tools: Tools,
    registry: Option<Box<dyn ModuleRegistry>>,
    runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn block_on<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(work)
    }
}

/// A scenario with one plugin from `source` and one request.
fn scenario(source: &str, config: &str, headers: &str, expect: &str) -> String {
    format!(
        "description: 'a plugin from {source}'
plugins:
  p: {source}
services:
  - name: echo
routes:
  - name: default/web
    hosts: [\"*\"]
    service: echo
resources:
  - apiVersion: extensions.istio.io/v1alpha1
    kind: WasmPlugin
    metadata: {{name: p}}
    spec: {{url: plugin://p, pluginConfig: {config}}}
steps:
  - request: {{host: sources.example.com, headers: {headers}}}
    expect: {expect}
    eventually: once
"
    )
}

fn fixture(options: &Options, catalog: &ModuleCatalog, dir: &Path) -> Result<Fixture, Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let tools = runtime.block_on(provision::tools(options, catalog))?;
    let registry =
        runtime.block_on(Registry::start(&tools.registry, &Loopback::for_run(), &dir.join("user-registry")))?;
    Ok(Fixture { dir: dir.to_owned(), tools, registry: Some(Box::new(registry)), runtime })
}

fn run_case(case: &Case, target: &TargetSpec, options: &Options) -> Result<(), Failed> {
    let catalog = ModuleCatalog::load(&options.plugins)?;
    let dir = rundir::create("sources")?;
    let mut fixture = fixture(options, &catalog, dir.path())?;
    let source = (case.source)(&fixture)?;
    let write = |file: &str, value: &str| -> Result<PathBuf, Failed> {
        let path = fixture.dir.join(file);
        std::fs::write(&path, scenario(&source, case.config, case.headers, &case.expect.replace("VALUE", value)))?;
        Ok(path)
    };
    let outcome = run_file(&write("pass.yaml", case.value)?, target, options, &catalog)?;
    let module = outcome.modules.first().ok_or("the outcome records no module")?;
    if module.builtin || !module.source.starts_with(&format!("{{{}: ", case.name)) {
        return Err(format!("the outcome names the module {module}, not by its source {source}").into());
    }
    let changed = run_file(&write("changed.yaml", "not-what-it-says")?, target, options, &catalog);
    if let Some(registry) = fixture.registry.take() {
        fixture.runtime.block_on(registry.stop());
    }
    match changed {
        Ok(_) => Err("the scenario still passes with its expectation changed".into()),
        Err(failed) if format!("{failed:?}").contains("failure kind: expectation") => Ok(()),
        Err(failed) => Err(format!("with its expectation changed it fails otherwise: {failed:?}").into()),
    }
}

/// An image whose layer is not a Wasm module fails the scenario as a setup
/// error naming the scenario's line and the source.
fn oci_not_a_module(target: &TargetSpec, options: &Options) -> Result<(), Failed> {
    let catalog = ModuleCatalog::load(&options.plugins)?;
    let dir = rundir::create("sources")?;
    let mut fixture = fixture(options, &catalog, dir.path())?;
    let registry = fixture.registry.take().ok_or("a registry")?;
    fixture.block_on(registry.client().push("team/notes", "1.0", b"release notes, not a module", Layout::Oci))?;
    let source = format!("{{oci: {}/team/notes:1.0}}", registry.host());
    let file = dir.path().join("notes.yaml");
    std::fs::write(&file, scenario(&source, "{name: x}", "{}", "{status: 200}"))?;
    let result = run_file(&file, target, options, &catalog);
    fixture.runtime.block_on(registry.stop());
    let message = match result {
        Ok(_) => return Err("a scenario whose module is not Wasm passed".into()),
        Err(failed) => format!("{failed:?}"),
    };
    let wanted =
        ["failure kind: setup".to_owned(), format!("{}:3: plugin `p`: {source}: not a Wasm module", file.display())];
    match wanted.iter().find(|w| !message.contains(w.as_str())) {
        Some(missing) => Err(format!("the failure does not say `{missing}`: {message}").into()),
        None => Ok(()),
    }
}

/// A `file:` that is not a Wasm module is refused when the scenario loads,
/// at its line and field.
fn file_not_a_module(options: &Options) -> Result<(), Failed> {
    let catalog = ModuleCatalog::load(&options.plugins)?;
    let dir = rundir::create("sources")?;
    std::fs::write(dir.path().join("notes.txt"), "release notes, not a module")?;
    let file = dir.path().join("notes.yaml");
    std::fs::write(&file, scenario("{file: notes.txt}", "{name: x}", "{}", "{status: 200}"))?;
    let error = match load_file(&file, dir.path(), &catalog.names()) {
        Ok(_) => return Err("a scenario whose file is not a module loaded".into()),
        Err(error) => error.to_string(),
    };
    let wanted = format!("{}:3:", file.display());
    if error.contains(&wanted) && error.contains("notes.txt` is not a Wasm module") {
        Ok(())
    } else {
        Err(format!("the error does not name {wanted} and the file: {error}").into())
    }
}

/// A registry of the user's (`--registry`) gets the scenario's modules in
/// repositories of its own, fetched as its other name says, and keeps none
/// of them once the scenario ends; one that does not answer is told.
fn named_registry_keeps_nothing(options: &Options) -> Result<(), Failed> {
    let catalog = ModuleCatalog::load(&options.plugins)?;
    let dir = rundir::create("sources")?;
    let fixture = fixture(options, &catalog, dir.path())?;
    let users = fixture.registry.as_ref().ok_or("a registry")?;
    let push = users.host().to_owned();
    let named = fixture.block_on(NamedRegistry::open(&push, "kind-registry:5000", "pabc123"))?;
    let repository = named.repository("stamp");
    if repository != "plugproof/pabc123/stamp" || named.host() != "kind-registry:5000" {
        return Err(format!("pushed to {repository}, fetched from {}", named.host()).into());
    }
    let module = std::fs::read(fixture.tools.sources.builtin.path("stamp"))?;
    let digest = fixture.block_on(named.push(&repository, "1.0", &module, Layout::Compat))?;
    let manifest = format!("http://{push}/v2/{repository}/manifests/{digest}");
    let status = |url: String| -> Result<u16, Failed> {
        let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
        let response = fixture.block_on(reqwest::Client::new().get(url).header("accept", accept).send())?;
        Ok(response.status().as_u16())
    };
    if status(manifest.clone())? != 200 {
        return Err("the pushed manifest is not in the registry".into());
    }
    fixture.block_on(Box::new(named).stop());
    if status(manifest)? != 404 {
        return Err("the scenario's manifest is still in the registry after it ended".into());
    }
    let refused = fixture.block_on(NamedRegistry::open("127.0.0.1:1", "127.0.0.1:1", "p")).err().ok_or("opened")?;
    if !refused.to_string().contains("the registry at 127.0.0.1:1 (--registry) does not answer") {
        return Err(format!("a registry that does not answer: {refused}").into());
    }
    if let Some(registry) = fixture.registry {
        fixture.runtime.block_on(registry.stop());
    }
    Ok(())
}

/// An `oci:` source in a registry that asks for a login over TLS with a
/// CA of its own (`PLUGPROOF_OCI_USERNAME`, `PLUGPROOF_OCI_PASSWORD`,
/// `PLUGPROOF_OCI_CA_FILE`): the right login passes; a wrong password, or
/// no CA, fails the scenario as a provisioning error naming the source and what to set; and no
/// report or evidence of those runs holds the password.
fn oci_locked_registry(target: &TargetSpec, options: &Options) -> Result<(), Failed> {
    let catalog = ModuleCatalog::load(&options.plugins)?;
    let dir = rundir::create("sources")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let tools = runtime.block_on(provision::tools(options, &catalog))?;
    let password = format!("pw-{}", dir.path().file_name().and_then(|n| n.to_str()).unwrap_or("x"));
    let lock = RegistryLock::new("team", &password, None)?;
    let registry = runtime.block_on(Registry::start_locked(
        &tools.registry,
        &Loopback::for_run(),
        &dir.path().join("locked"),
        &lock,
    ))?;
    let module = std::fs::read(tools.sources.builtin.path("stamp"))?;
    runtime.block_on(registry.client().push("team/stamp", "1.0", &module, Layout::Compat))?;
    let source = format!("{{oci: {}/team/stamp:1.0}}", registry.host());
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, lock.ca_pem())?;
    let file = dir.path().join("locked.yaml");
    std::fs::write(&file, scenario(&source, "{name: locked}", "{}", "{headers: {x-stamp: locked}}"))?;
    let report = dir.path().join("report");
    let run = |password: &str, ca: Option<PathBuf>| {
        let login = Some(OciAuth { username: "team".into(), password: password.into() });
        let options = Options { oci: OciAccess { login, ca }, report_dir: report.clone(), ..options.clone() };
        run_file(&file, target, &options, &catalog).map_err(|failed| format!("{failed:?}"))
    };
    let right = run(&password, Some(ca.clone()));
    let wrong = run("not-the-password", Some(ca.clone()));
    let untrusted = run(&password, None);
    runtime.block_on(Box::new(registry).stop());
    right.map_err(|failed| format!("the right login failed: {failed}"))?;
    let cases =
        [("a wrong password", wrong, "set PLUGPROOF_OCI_USERNAME"), ("no CA", untrusted, "set PLUGPROOF_OCI_CA_FILE")];
    for (case, result, says) in cases {
        let message = match result {
            Ok(_) => return Err(format!("{case} passed").into()),
            Err(message) => message,
        };
        if !message.contains("failure kind: provisioning") || !message.contains(&source) || !message.contains(says) {
            return Err(format!("{case}: the failure does not name the source and `{says}`: {message}").into());
        }
        if message.contains(&password) {
            return Err(format!("{case}: the failure shows the password: {message}").into());
        }
    }
    let files = common::files_below(&report)?;
    if let Some(file) = common::first_holding(&files, &password)? {
        return Err(format!("{} holds the password", file.display()).into());
    }
    if files.is_empty() {
        return Err(format!("the runs left no report in {} to search", report.display()).into());
    }
    Ok(())
}

fn run_file(file: &Path, target: &TargetSpec, options: &Options, catalog: &ModuleCatalog) -> Result<Outcome, Failed> {
    let scenario = load_file(file, file.parent().expect("a file in a folder"), &catalog.names())?;
    run_scenario(&scenario, target, options, catalog)
}

fn main() -> ExitCode {
    plugproof::runtime::at_start();
    let mut options = common::options();
    let _client = match role(&mut options) {
        Role::Daemon(code) => return code,
        Role::Test(client) => client,
    };
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for target in targets_from_env() {
        for case in CASES {
            let (target, options) = (target.clone(), options.clone());
            let name = format!("{target}/{}-source", case.name);
            let test = name.clone();
            trials.push(Trial::test(name, move || {
                run_where_it_runs(&test, &target, &options, || run_case(case, &target, &options))
            }));
        }
        let (test, locked, options) = (format!("{target}/oci-source-not-a-module"), target.clone(), options.clone());
        let name = test.clone();
        let locked_options = options.clone();
        trials.push(Trial::test(name, move || {
            run_where_it_runs(&test, &target, &options, || oci_not_a_module(&target, &options))
        }));
        let test = format!("{locked}/oci-source-locked-registry");
        trials.push(Trial::test(test.clone(), move || {
            run_where_it_runs(&test, &locked, &locked_options, || oci_locked_registry(&locked, &locked_options))
        }));
    }
    let loads = options.clone();
    trials.push(Trial::test("file-source-not-a-module", move || file_not_a_module(&loads)));
    let named = options.clone();
    trials.push(Trial::test("named-registry-keeps-nothing", move || named_registry_keeps_nothing(&named)));
    libtest_mimic::run(&args, trials).exit_code()
}
