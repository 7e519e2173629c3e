//! The `logs` step's expectation: how many lines of the gateway's log
//! match a pattern.

use super::{Check, Verdict};
use crate::scenario::LogsExpect;

/// How many matching lines a check shows.
const SHOWN: usize = 3;

pub fn verify(expect: &LogsExpect, log: &str) -> Verdict {
    let matching: Vec<&str> = log.lines().filter(|line| expect.pattern.is_match(line)).collect();
    let pattern = expect.pattern.as_str();
    let (expected, holds) = match expect.count {
        Some(count) => (format!("log lines matching /{pattern}/: {count}"), matching.len() == count),
        None => (format!("log lines matching /{pattern}/: at least 1"), !matching.is_empty()),
    };
    if holds {
        return Verdict { checks: vec![Check::held(expected)] };
    }
    let shown: Vec<&str> = matching.iter().rev().take(SHOWN).rev().copied().collect();
    let actual = match shown.is_empty() {
        true => format!("log lines matching /{pattern}/: 0"),
        false => format!("log lines matching /{pattern}/: {} (the last: {})", matching.len(), shown.join(" | ")),
    };
    Verdict { checks: vec![Check::new(expected, actual)] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(pattern: &str, count: Option<usize>) -> LogsExpect {
        LogsExpect { pattern: regex::Regex::new(pattern).expect("a pattern"), count }
    }

    #[test]
    fn lines_are_counted() {
        let log = "a runtime r1: request 1\nother\na runtime r1: request 2\n";
        assert!(verify(&expect("runtime r1: request", None), log).holds());
        assert!(verify(&expect("runtime r1: request", Some(2)), log).holds());
        let verdict = verify(&expect("runtime r1: request", Some(3)), log);
        assert!(verdict.mismatches()[0]
            .actual
            .starts_with("log lines matching /runtime r1: request/: 2 (the last: a runtime"));
        assert_eq!(verify(&expect("nothing", None), log).mismatches()[0].actual, "log lines matching /nothing/: 0");
    }
}
