//! Expectations against observations. Every check renders what it expected
//! and what it saw in the same form, so a failure prints as a diff.

pub mod eventually;
pub mod filters;
pub mod http;
pub mod logs;
pub mod reload;
pub mod stats;
pub mod tcp;
pub mod tcp_reload;

use similar::TextDiff;

use crate::failure::{Failure, FailureKind, Mismatch};

/// One asserted fact. When it holds, `actual` reads exactly like `expected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub expected: String,
    pub actual: String,
}

impl Check {
    pub fn new(expected: impl Into<String>, actual: impl Into<String>) -> Self {
        Check { expected: expected.into(), actual: actual.into() }
    }

    /// A check that held: both sides read the same.
    pub fn held(line: impl Into<String>) -> Self {
        let line = line.into();
        Check { actual: line.clone(), expected: line }
    }

    pub fn holds(&self) -> bool {
        self.expected == self.actual
    }
}

/// All checks of one attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub checks: Vec<Check>,
}

impl Verdict {
    pub fn holds(&self) -> bool {
        self.checks.iter().all(Check::holds)
    }

    /// A unified diff, expected (-) against actual (+); facts that held are context.
    pub fn diff(&self) -> String {
        let side = |f: fn(&Check) -> &str| self.checks.iter().map(|c| format!("{}\n", f(c))).collect::<String>();
        let (expected, actual) = (side(|c| &c.expected), side(|c| &c.actual));
        TextDiff::from_lines(&expected, &actual)
            .unified_diff()
            .context_radius(usize::MAX / 4)
            .header("expected", "actual")
            .to_string()
    }

    /// The checks that did not hold.
    pub fn mismatches(&self) -> Vec<Mismatch> {
        let failed = self.checks.iter().filter(|c| !c.holds());
        failed.map(|c| Mismatch { expected: c.expected.clone(), actual: c.actual.clone() }).collect()
    }

    /// None when every check holds; else a failure of `kind` whose message
    /// is the diff and whose mismatches are the checks that did not hold.
    pub fn failure(&self, kind: FailureKind) -> Option<Failure> {
        (!self.holds()).then(|| Failure { kind, message: self.diff(), mismatches: self.mismatches() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_failed_checks_as_changes_and_held_ones_as_context() {
        let verdict =
            Verdict { checks: vec![Check::new("status: 200", "status: 404"), Check::held("header a: \"1\"")] };
        assert!(!verdict.holds());
        let diff = verdict.diff();
        assert!(diff.contains("-status: 200\n"), "{diff}");
        assert!(diff.contains("+status: 404\n"), "{diff}");
        assert!(diff.contains(" header a: \"1\"\n"), "{diff}");
    }
}
