//! Why something failed, as data: the kind a reporter or an
//! `expected_failure` mark names, the words that explain it, and the checks
//! that did not hold.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why something failed, as a category a reporter or an `expected_failure`
/// mark can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// An expectation did not hold: what came back is not what the step says.
    Expectation,
    /// The gateway refused a configuration (Envoy rejected an xDS update).
    Rejected,
    /// A component (Envoy, pilot-agent, istiod, ...) exited.
    Exited,
    /// The gateway did not answer or act before the step's deadline.
    Deadline,
    /// A request could not be sent or its answer not read.
    Transport,
    /// A tool or module could not be fetched or built.
    Provisioning,
    /// The run could not be set up (registry, push, files, translation).
    Setup,
}

impl FailureKind {
    pub const ALL: [FailureKind; 7] = [
        FailureKind::Expectation,
        FailureKind::Rejected,
        FailureKind::Exited,
        FailureKind::Deadline,
        FailureKind::Transport,
        FailureKind::Provisioning,
        FailureKind::Setup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Expectation => "expectation",
            FailureKind::Rejected => "rejected",
            FailureKind::Exited => "exited",
            FailureKind::Deadline => "deadline",
            FailureKind::Transport => "transport",
            FailureKind::Provisioning => "provisioning",
            FailureKind::Setup => "setup",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failure: its kind and the words (a diff, Envoy's message) that explain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    /// For a failed check of what came back: each check that did not hold
    /// (the checks that held are in the message only, as context). An
    /// `expected_failure` mark is judged against these.
    pub mismatches: Vec<Mismatch>,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure { kind, message: message.into(), mismatches: Vec::new() }
    }

    /// The same failure told in other words (the mismatches stay).
    pub fn reworded(&self, message: impl Into<String>) -> Self {
        Failure { message: message.into(), ..self.clone() }
    }

    /// What names this failure's parts, one text each: every mismatch as
    /// its two diff lines (`-expected`, `+actual`), or the whole message
    /// when the failure is not a check's (a deadline, a rejection).
    pub fn parts(&self) -> Vec<String> {
        if self.mismatches.is_empty() {
            vec![self.message.clone()]
        } else {
            self.mismatches.iter().map(Mismatch::lines).collect()
        }
    }
}

/// One check that did not hold: what it expected and what it saw, in the
/// same form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub expected: String,
    pub actual: String,
}

impl Mismatch {
    /// As the diff shows it: each line of `expected` after `-`, then each
    /// line of `actual` after `+`.
    pub fn lines(&self) -> String {
        let minus = self.expected.lines().map(|l| format!("-{l}"));
        let plus = self.actual.lines().map(|l| format!("+{l}"));
        minus.chain(plus).collect::<Vec<_>>().join("\n")
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.kind, self.message)
    }
}
