//! The filter-chain order expectation.

use super::{Check, Verdict};

/// `expected` must appear in `actual` in that order (with others between
/// allowed), or be exactly `actual` when `exact`.
pub fn verify(expected: &[String], exact: bool, actual: &[String]) -> Verdict {
    let holds = if exact { expected == actual } else { is_subsequence(expected, actual) };
    let checks = if holds {
        expected.iter().map(|f| Check::held(format!("filter {f}"))).collect()
    } else {
        // Show the whole chain so the reader sees where each filter really sits.
        let expected: Vec<String> = expected.iter().map(|f| format!("filter {f}")).collect();
        let seen: Vec<String> = actual.iter().map(|f| format!("filter {f}")).collect();
        vec![Check::new(expected.join("\n"), seen.join("\n"))]
    };
    Verdict { checks }
}

fn is_subsequence(wanted: &[String], actual: &[String]) -> bool {
    let mut rest = actual.iter();
    wanted.iter().all(|w| rest.any(|a| a == w))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[rstest]
    #[case::subsequence(&["a", "c"], false, true)]
    #[case::wrong_order(&["c", "a"], false, false)]
    #[case::missing(&["a", "x"], false, false)]
    #[case::exact(&["a", "b", "c"], true, true)]
    #[case::exact_needs_all(&["a", "c"], true, false)]
    fn verifies(#[case] order: &[&str], #[case] exact: bool, #[case] holds: bool) {
        assert_eq!(verify(&names(order), exact, &names(&["a", "b", "c"])).holds(), holds);
    }
}
