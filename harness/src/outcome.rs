//! What running a scenario produces, as data: the runner fills it in, the
//! reporters (console, JUnit, HTML, evidence bundle) format it.

use std::path::PathBuf;
use std::time::Duration;

use crate::failure::Failure;
use crate::profiles::ModuleUse;
use crate::steps::StepResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed(Failure),
    Skipped(String),
}

/// Where the time of a scenario went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Registry start, module pushes, echo backends.
    pub stage: Duration,
    /// Profile deployment until the gateway is ready.
    pub deploy: Duration,
    pub steps: Duration,
    pub total: Duration,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    /// The target it ran on.
    pub target: String,
    pub id: String,
    pub name: String,
    pub file: PathBuf,
    pub status: Status,
    pub timings: Timings,
    pub steps: Vec<StepResult>,
    /// The evidence kept for a failure.
    pub bundle: Option<PathBuf>,
    /// How the deployment's time split between its parts.
    pub boot: Vec<(&'static str, Duration)>,
    /// The modules it pushed, in order (the scenario's, then its pushes).
    pub modules: Vec<ModuleUse>,
}

impl Outcome {
    pub fn failure(&self) -> Option<&Failure> {
        match &self.status {
            Status::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}
