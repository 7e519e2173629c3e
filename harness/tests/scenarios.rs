//! One test per scenario file and target (a `harness = false` target):
//! `cargo nextest run` lists them as `TARGET/ID` and runs each in its own
//! process, on its own loopback address, so they run in parallel without
//! collisions.
//!
//! The targets come from `PLUGPROOF_TARGETS` (comma-separated, default
//! `envoy`; e.g. `envoy,istio` or `envoy@1.38.3,envoy@1.40.0+istiod@1.24`).
//! A scenario needing a feature a target lacks is ignored there, and its
//! name says why. The istio tests of one run share one control plane (see
//! `common`).

mod common;

use std::path::Path;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Trial};
use plugproof::options::Options;
use plugproof::profiles::profile;
use plugproof::provision::ModuleCatalog;
use plugproof::runtime::isolation::is_isolated;
use plugproof::scenario::{discover, load_file};
use plugproof::target::TargetSpec;

use common::Role;

fn main() -> ExitCode {
    let mut options = common::options();
    let _client = match common::role(&mut options) {
        Role::Daemon(code) => return code,
        Role::Test(client) => client,
    };
    let args = Arguments::from_args();
    let scenarios = common::workspace().join("scenarios");
    let catalog = ModuleCatalog::load(&options.plugins).expect("the module catalog loads");
    let files = discover(&scenarios).unwrap_or_else(|e| panic!("cannot list {}: {e}", scenarios.display()));
    let trials = common::targets()
        .iter()
        .flat_map(|target| files.iter().map(|file| trial(file, &scenarios, target, &options, &catalog)))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn trial(file: &Path, root: &Path, target: &TargetSpec, options: &Options, catalog: &ModuleCatalog) -> Trial {
    let id = file.strip_prefix(root).unwrap_or(file).with_extension("").to_string_lossy().into_owned();
    let name = format!("{target}/{id}");
    match load_file(file, root, &catalog.names()) {
        // A broken scenario is a failing test that prints every problem.
        Err(error) => Trial::test(name, move || Err(error.to_string().into())),
        Ok(scenario) => {
            let skip = target.skip_reason(&scenario, options);
            let (target, options, catalog, test) = (target.clone(), options.clone(), catalog.clone(), name.clone());
            let trial = Trial::test(name, move || {
                if profile(target.profile, &options).needs_isolation() && !is_isolated() {
                    let args = ["--exact", &test, "--nocapture"].map(Into::into).to_vec();
                    common::run_on_shared_plane(args, &target, &options, &catalog)
                } else {
                    common::run_scenario(&scenario, &target, &options, &catalog).map(|_| ())
                }
            });
            match skip {
                Some(reason) => trial.with_ignored_flag(true).with_kind(reason.replace(' ', "-")),
                None => trial,
            }
        }
    }
}
