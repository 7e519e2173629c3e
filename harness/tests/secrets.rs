//! The login of a private registry leaves no trace: on each istio target
//! of `PLUGPROOF_TARGETS`, the private-registry scenarios run as shipped
//! (they must pass) and with an expectation changed (they must fail, so
//! that their evidence bundles are written), with a password the test
//! knows; then every file of their reports and evidence is searched for it.

mod common;

use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use plugproof::options::Options;
use plugproof::provision::ModuleCatalog;
use plugproof::runtime::rundir;
use plugproof::scenario::load_file;
use plugproof::targets::{ProfileKind, TargetSpec};
use plugproof::testing::{role, run_scenario, run_where_it_runs, targets_from_env, Role};

/// The scenarios whose registry asks for the password.
const SCENARIOS: &[&str] = &[
    "private-registry.yaml",
    "private-registry-no-secret.yaml",
    "private-registry-two-secrets.yaml",
    "private-registry-fail-reload.yaml",
];

fn no_password_left(target: &TargetSpec, options: &Options) -> Result<(), Failed> {
    let catalog = ModuleCatalog::load(&options.plugins)?;
    let dir = rundir::create("secrets")?;
    let name = dir.path().file_name().and_then(|n| n.to_str()).unwrap_or("run").to_owned();
    let password = format!("secret-{name}");
    let report = dir.path().join("report");
    let options = Options { pull_password: Some(password.clone()), report_dir: report.clone(), ..options.clone() };
    let delivery = common::workspace().join("scenarios/delivery");
    for file in SCENARIOS {
        let shipped = load_file(&delivery.join(file), &delivery, &catalog.names())?;
        run_scenario(&shipped, target, &options, &catalog)
            .map_err(|failed| format!("{file} as shipped: {failed:?}"))?;
        let text = std::fs::read_to_string(delivery.join(file))?.replacen("status: 200", "status: 201", 1);
        let changed = dir.path().join(file);
        std::fs::write(&changed, text)?;
        let scenario = load_file(&changed, dir.path(), &catalog.names())?;
        if run_scenario(&scenario, target, &options, &catalog).is_ok() {
            return Err(format!("{file} still passes with a status changed").into());
        }
    }
    let files = common::files_below(&report)?;
    if !files.iter().any(|f| f.ends_with("error.txt")) {
        return Err(format!("no evidence bundle in {} to search", report.display()).into());
    }
    match common::first_holding(&files, &password)? {
        Some(file) => Err(format!("{} holds the password", file.display()).into()),
        None => Ok(()),
    }
}

fn main() -> ExitCode {
    plugproof::runtime::at_start();
    let mut options = common::options();
    let _client = match role(&mut options) {
        Role::Daemon(code) => return code,
        Role::Test(client) => client,
    };
    let args = Arguments::from_args();
    let trials = targets_from_env()
        .into_iter()
        .filter(|target| target.profile == ProfileKind::Istio)
        .map(|target| {
            let (test, options) = (format!("{target}/private-registry-leaves-no-password"), options.clone());
            Trial::test(test.clone(), move || {
                run_where_it_runs(&test, &target, &options, || no_password_left(&target, &options))
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
