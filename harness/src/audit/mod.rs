//! The mutation audit: does each scenario really check what it claims?
//! Every mutant (`mutants`) changes one expectation; the scenario runs once,
//! and each mutant is judged on the same observations as the expectation
//! it replaces, attempt by attempt, with its own `eventually` streak. A
//! mutant that holds would have let the scenario pass: it survives, and
//! the expectation it changed proves nothing.

pub mod mutants;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::outcome::Status;
use crate::run::Runner;
use crate::scenario::Scenario;
use crate::steps::Alternative;

/// What became of one mutant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The changed expectation did not hold: the scenario checks the claim.
    Killed,
    /// The changed expectation held too: the claim is not really checked.
    Survived,
    /// The scenario did not pass (or not run), so nothing was judged.
    NotJudged,
}

#[derive(Debug, Clone)]
pub struct Judged {
    pub line: u64,
    /// The kind of expectation changed (`status`, `reload flips`, ...).
    pub class: &'static str,
    pub change: String,
    pub fate: Fate,
    /// For a survivor listed as justified: the reason given.
    pub justified: Option<String>,
}

/// The audit of one scenario on one target.
#[derive(Debug, Clone)]
pub struct ScenarioAudit {
    pub id: String,
    pub target: String,
    /// How the scenario itself went.
    pub status: Status,
    pub mutants: Vec<Judged>,
}

impl ScenarioAudit {
    pub fn count(&self, fate: Fate) -> usize {
        self.mutants.iter().filter(|m| m.fate == fate).count()
    }

    /// Survivors nobody has explained.
    pub fn unjustified(&self) -> impl Iterator<Item = &Judged> {
        self.mutants.iter().filter(|m| m.fate == Fate::Survived && m.justified.is_none())
    }
}

/// Runs `scenario` once, judging every mutant of it.
pub async fn audit(runner: &Runner, scenario: &Scenario, justified: &[Justification]) -> ScenarioAudit {
    let all = mutants::mutants(scenario, &runner.target().features());
    let mut alternatives: BTreeMap<usize, Vec<Alternative>> = BTreeMap::new();
    for mutant in &all {
        alternatives.entry(mutant.step).or_default().push(Alternative::new(mutant.mutated.clone()));
    }
    let outcome = runner.run_judging(scenario, &mut alternatives).await;
    let passed = outcome.status == Status::Passed;
    let mut fates: BTreeMap<usize, std::vec::IntoIter<Alternative>> =
        alternatives.into_iter().map(|(step, alternatives)| (step, alternatives.into_iter())).collect();
    let target = runner.target().name();
    let mutants = all
        .into_iter()
        .map(|mutant| {
            let alternative = fates.get_mut(&mutant.step).and_then(Iterator::next).expect("one alternative per mutant");
            let fate = match (passed, alternative.held()) {
                (false, _) => Fate::NotJudged,
                (true, true) => Fate::Survived,
                (true, false) => Fate::Killed,
            };
            let reason = justified
                .iter()
                .find(|j| j.matches(&scenario.id, target, mutant.line, &mutant.change))
                .map(|j| j.reason.clone());
            Judged {
                line: mutant.line,
                class: mutant.class,
                change: mutant.change,
                fate,
                justified: reason.filter(|_| fate == Fate::Survived),
            }
        })
        .collect();
    ScenarioAudit { id: scenario.id.clone(), target: target.to_owned(), status: outcome.status, mutants }
}

/// A survivor someone looked at, and why it may stay: one entry of the
/// file given with `--justified`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Justification {
    pub scenario: String,
    /// The target it survives on; every target when absent.
    pub target: Option<String>,
    pub line: u64,
    /// The mutant, as the audit prints it.
    pub change: String,
    pub reason: String,
}

impl Justification {
    fn matches(&self, scenario: &str, target: &str, line: u64, change: &str) -> bool {
        self.scenario == scenario
            && self.target.as_deref().is_none_or(|t| t == target)
            && self.line == line
            && self.change == change
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JustifiedError {
    #[error("{}: cannot read the justified survivors: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}; each entry needs scenario, line, change and reason (target optional)", path.display())]
    Invalid { path: PathBuf, message: String },
}

pub fn load_justified(path: &Path) -> Result<Vec<Justification>, JustifiedError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| JustifiedError::Read { path: path.to_owned(), source })?;
    serde_saphyr::from_str::<Option<Vec<Justification>>>(&text)
        .map(Option::unwrap_or_default)
        .map_err(|e| JustifiedError::Invalid { path: path.to_owned(), message: e.to_string() })
}

/// Justified entries that no audited scenario produced as a survivor: the
/// scenario was fixed, or the entry is wrong; either way it must go.
pub fn stale<'a>(justified: &'a [Justification], audits: &[ScenarioAudit]) -> Vec<&'a Justification> {
    justified
        .iter()
        .filter(|j| {
            let audited =
                audits.iter().any(|a| a.id == j.scenario && j.target.as_deref().is_none_or(|t| t == a.target));
            let survived = audits.iter().any(|a| {
                a.mutants.iter().any(|m| m.fate == Fate::Survived && j.matches(&a.id, &a.target, m.line, &m.change))
            });
            audited && !survived
        })
        .collect()
}
