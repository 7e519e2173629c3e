//! One test per scenario file (a `harness = false` target): `cargo nextest
//! run` lists the scenarios by name and runs each in its own process, on its
//! own loopback address, so they run in parallel without collisions.
//!
//! The profiles come from `PLUGPROOF_PROFILES` (comma-separated, default
//! `envoy`; `envoy,istio` runs every scenario on both). A scenario needing a
//! feature a profile lacks is ignored there, and its name says why.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use plugproof::outcome::Status;
use plugproof::profiles::ProfileKind;
use plugproof::provision::ModuleCatalog;
use plugproof::report::{bundle, console};
use plugproof::run::Runner;
use plugproof::runtime::isolation::{bring_loopback_up, is_isolated, rerun_isolated};
use plugproof::runtime::until_interrupted;
use plugproof::scenario::{discover, load_file, Scenario};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    if is_isolated() {
        bring_loopback_up().expect("the loopback interface of the run's namespace comes up");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let profiles = ProfileKind::from_env().unwrap_or_else(|e| panic!("{e}"));
    let catalog = ModuleCatalog::load(&ModuleCatalog::default_workspace()).expect("the module catalog loads");
    let files = discover(&root).unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()));
    let trials =
        profiles.iter().flat_map(|profile| files.iter().map(|file| trial(file, &root, *profile, &catalog))).collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn trial(file: &Path, root: &Path, profile: ProfileKind, catalog: &ModuleCatalog) -> Trial {
    let id = file.strip_prefix(root).unwrap_or(file).with_extension("").to_string_lossy().into_owned();
    let name = format!("{}/{id}", profile.name());
    match load_file(file, root, &catalog.names()) {
        // A broken scenario is a failing test that prints every problem.
        Err(error) => Trial::test(name, move || Err(error.to_string().into())),
        Ok(scenario) => {
            let skip = profile.skip_reason(&scenario);
            let catalog = catalog.clone();
            let test = name.clone();
            let trial = Trial::test(name, move || {
                if profile.needs_isolation() && !is_isolated() {
                    run_isolated(&test, profile, &catalog)
                } else {
                    run(scenario, profile, &catalog)
                }
            });
            match skip {
                Some(reason) => trial.with_ignored_flag(true).with_kind(reason.replace(' ', "-")),
                None => trial,
            }
        }
    }
}

/// Provisions here (progress shows), then runs this one test again in the
/// run's own namespaces; its output is this test's output.
fn run_isolated(test: &str, profile: ProfileKind, catalog: &ModuleCatalog) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(plugproof::provision::tools(catalog, profile.runs_istio()))?;
    let status = rerun_isolated(["--exact", test, "--nocapture"].map(Into::into))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the isolated run of {test} failed ({status}); its output is above").into())
    }
}

fn run(scenario: Scenario, profile: ProfileKind, catalog: &ModuleCatalog) -> Result<(), Failed> {
    let report_dir = std::env::var_os("PLUGPROOF_REPORT_DIR").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugproof-report").join(profile.name())
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcome = runtime.block_on(async {
        until_interrupted(async {
            let runner = Runner::prepare(profile, catalog, report_dir).await?;
            Ok::<_, Failed>(runner.run(&scenario).await)
        })
        .await
    })??;
    let timings = outcome.timings;
    println!(
        "{}: stage {:.3}s, deploy {:.3}s, steps {:.3}s, total {:.3}s\n{}",
        outcome.id,
        timings.stage.as_secs_f64(),
        timings.deploy.as_secs_f64(),
        timings.steps.as_secs_f64(),
        timings.total.as_secs_f64(),
        bundle::trace(&outcome.steps)
    );
    print!("{}", console::step_notes(&outcome));
    match &outcome.status {
        Status::Passed | Status::Skipped(_) => Ok(()),
        Status::Failed(_) => Err(console::failure_details(&outcome).unwrap_or_default().into()),
    }
}
