//! One scenario on one target, run here and now as a test.

use libtest_mimic::Failed;

use crate::options::Options;
use crate::outcome::{Outcome, Status};
use crate::provision::ModuleCatalog;
use crate::report::{bundle, console};
use crate::run::Runner;
use crate::runtime::until_interrupted;
use crate::scenario::Scenario;
use crate::targets::TargetSpec;

/// Runs one scenario here and now, printing its trace.
pub fn run_scenario(
    scenario: &Scenario,
    target: &TargetSpec,
    options: &Options,
    catalog: &ModuleCatalog,
) -> Result<Outcome, Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcome = runtime.block_on(async {
        until_interrupted(async {
            let runner = Runner::prepare(target, options, catalog).await?;
            let outcome = runner.run(scenario).await;
            runner.shutdown().await;
            Ok::<_, Failed>(outcome)
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
        Status::Passed => Ok(outcome),
        // The test list assumed the target could run it (what its Envoy
        // serves was not known yet); now the list knows: run again.
        Status::Skipped(reason) => {
            Err(format!("cannot run here: {reason}; the test list now knows, run the tests again").into())
        }
        Status::Failed(_) => Err(console::failure_details(&outcome).unwrap_or_default().into()),
    }
}
