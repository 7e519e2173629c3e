//! plugproof as a test binary, for this repository and for the user's own:
//! `test_main` turns a folder of scenarios into one test per scenario and
//! target (`TARGET/ID`), for `cargo nextest run` or `cargo test`. Put it in
//! a `harness = false` test target:
//!
//! ```no_run
//! use plugproof::testing::{test_main, Suite};
//!
//! fn main() -> std::process::ExitCode {
//!     test_main(Suite::from_env(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")))
//! }
//! ```
//!
//! Nextest runs each test in its own process, each on its own loopback
//! address, so they run in parallel without colliding. The istio tests of
//! one run share a control plane that the first of them starts (see
//! `plane`). A scenario needing a feature a target lacks is ignored there,
//! and its name says why; a scenario that does not load is a failing test
//! that prints every problem.

mod plane;
mod scenario;

pub use plane::{role, run_on_shared_plane, run_where_it_runs, Role};
pub use scenario::run_scenario;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Trial};

use crate::options::Options;
use crate::provision::ModuleCatalog;
use crate::scenario::{discover, load_file};
use crate::targets::TargetSpec;

/// What to test: the scenarios (a folder, searched for `.yaml` files), the
/// targets to run each on, and the options.
#[derive(Debug, Clone)]
pub struct Suite {
    pub scenarios: PathBuf,
    pub targets: Vec<TargetSpec>,
    pub options: Options,
}

impl Suite {
    /// The scenarios in `scenarios` on the targets of `PLUGPROOF_TARGETS`
    /// (comma-separated, default `envoy`; e.g. `envoy,istio` or
    /// `envoy@1.38.3,envoy@1.40.0+istiod@1.24`), with plugproof's built-in
    /// modules and pins and the `Options::from_env` overrides; reports in
    /// `target/plugproof-report` under the folder the tests run in. For a
    /// test binary's `main` only.
    pub fn from_env(scenarios: impl Into<PathBuf>) -> Self {
        let options = Options::from_env(crate::options::checkout(), PathBuf::from("target/plugproof-report"));
        Suite { scenarios: scenarios.into(), targets: targets_from_env(), options }
    }
}

/// The targets of `PLUGPROOF_TARGETS` (default `envoy`). For the edges only.
pub fn targets_from_env() -> Vec<TargetSpec> {
    let targets = std::env::var("PLUGPROOF_TARGETS").unwrap_or_else(|_| "envoy".into());
    TargetSpec::parse_list(&targets).unwrap_or_else(|e| {
        panic!(
            "PLUGPROOF_TARGETS={targets}: {e}; write targets such as `envoy`, `istio` or \
             `envoy@1.40.0+istiod@1.24`, comma-separated"
        )
    })
}

/// Lists or runs the suite's tests as the test runner asks, and returns the
/// exit code; also serves as the shared control plane's daemon when started
/// as one.
pub fn test_main(suite: Suite) -> ExitCode {
    let Suite { scenarios, targets, mut options } = suite;
    // A container reaper serves and exits here; run folders and containers
    // of tests killed outright (their owner gone) go at the next start.
    crate::runtime::at_start();
    let _client = match role(&mut options) {
        Role::Daemon(code) => return code,
        Role::Test(client) => client,
    };
    let args = Arguments::from_args();
    let files = match single_test(&args, &targets, &scenarios) {
        Some(file) => Ok(vec![file]),
        None => discover(&scenarios),
    };
    let trials = match (ModuleCatalog::load(&options.plugins), files) {
        (Ok(catalog), Ok(files)) => targets
            .iter()
            .flat_map(|target| files.iter().map(|file| trial(file, &scenarios, target, &options, &catalog)))
            .collect(),
        // The suite cannot be listed: one failing test says why.
        (Err(error), _) => vec![broken("plugproof/module-catalog", error.to_string())],
        (_, Err(error)) => vec![broken(
            "plugproof/scenarios",
            format!("cannot list the scenarios in {}: {error}", scenarios.display()),
        )],
    };
    libtest_mimic::run(&args, trials).exit_code()
}

/// The one file a run of one test needs, as nextest runs each
/// (`--exact TARGET/ID`): loading every scenario, to list them all, would
/// cost each test process a tenth of a second of CPU.
fn single_test(args: &Arguments, targets: &[TargetSpec], root: &Path) -> Option<PathBuf> {
    if args.list || !args.exact {
        return None;
    }
    let name = args.filter.as_deref()?;
    targets
        .iter()
        .filter_map(|target| name.strip_prefix(&format!("{target}/")))
        .flat_map(|id| ["yaml", "yml"].map(|extension| root.join(format!("{id}.{extension}"))))
        .find(|file| file.is_file())
}

fn broken(name: &str, message: String) -> Trial {
    Trial::test(name, move || Err(message.into()))
}

fn trial(file: &Path, root: &Path, target: &TargetSpec, options: &Options, catalog: &ModuleCatalog) -> Trial {
    let id = file.strip_prefix(root).unwrap_or(file).with_extension("").to_string_lossy().into_owned();
    let name = format!("{target}/{id}");
    match load_file(file, root, &catalog.names()) {
        Err(error) => broken(&name, error.to_string()),
        Ok(scenario) => {
            let features = crate::profiles::profile(target.profile, options).needs().features;
            let skip = target.skip_reason(&scenario, options, &features);
            let (target, options, catalog, test) = (target.clone(), options.clone(), catalog.clone(), name.clone());
            let trial = Trial::test(name, move || {
                run_where_it_runs(&test, &target, &options, || {
                    run_scenario(&scenario, &target, &options, &catalog).map(|_| ())
                })
            });
            match skip {
                Some(reason) => trial.with_ignored_flag(true).with_kind(reason.replace(' ', "-")),
                None => trial,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::ProfileKind;

    #[test]
    fn one_test_run_loads_its_own_file_only() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("scope")).unwrap();
        std::fs::write(root.path().join("scope/a.yaml"), "").unwrap();
        let targets = [TargetSpec::of(ProfileKind::Envoy), TargetSpec::of(ProfileKind::Istio)];
        let file = |args: &[&str]| {
            single_test(
                &Arguments::from_iter(std::iter::once("scenarios").chain(args.iter().copied())),
                &targets,
                root.path(),
            )
        };
        assert_eq!(file(&["--exact", "istio/scope/a"]), Some(root.path().join("scope/a.yaml")));
        // Anything else lists the whole suite.
        assert_eq!(file(&["--exact", "istio/scope/missing"]), None);
        assert_eq!(file(&["--exact", "cluster/scope/a"]), None);
        assert_eq!(file(&["istio/scope/a"]), None);
        assert_eq!(file(&["--list"]), None);
    }
}
