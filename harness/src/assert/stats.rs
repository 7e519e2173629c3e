//! The `stats` step's expectations: each stat's value, or its change since
//! an earlier read, within bounds.

use std::collections::BTreeMap;

use super::{Check, Verdict};
use crate::scenario::StatExpect;

/// How many similar names an unknown stat's check lists.
const CLOSE_NAMES: usize = 5;

/// Each expectation against `read` (every counter and gauge of the
/// gateway's Envoy), a delta against `before` (the values an earlier
/// `stats` step read).
pub fn verify(expects: &[StatExpect], read: &BTreeMap<String, i64>, before: &BTreeMap<String, i64>) -> Verdict {
    let checks = expects
        .iter()
        .map(|expect| {
            let what =
                if expect.delta { format!("stat {} changed by", expect.name) } else { format!("stat {}", expect.name) };
            let expected = format!("{what}: {}", expect.range);
            let Some(&value) = read.get(&expect.name) else {
                return Check::new(
                    expected,
                    format!("stat {}: Envoy has no such stat{}", expect.name, close(&expect.name, read)),
                );
            };
            let seen = match (expect.delta, before.get(&expect.name)) {
                (false, _) => value,
                (true, Some(earlier)) => value - earlier,
                (true, None) => {
                    return Check::new(expected, format!("stat {}: no earlier read to compare with", expect.name))
                }
            };
            if expect.range.holds(seen) {
                Check::held(expected)
            } else {
                Check::new(expected, format!("{what}: {seen}"))
            }
        })
        .collect();
    Verdict { checks }
}

/// The names of `read` most like `name`, for a stat Envoy lacks.
fn close(name: &str, read: &BTreeMap<String, i64>) -> String {
    let mut names: Vec<(f64, &str)> =
        read.keys().map(|other| (strsim::normalized_levenshtein(name, other), other.as_str())).collect();
    names.sort_by(|a, b| b.0.total_cmp(&a.0));
    let names: Vec<&str> = names.into_iter().take(CLOSE_NAMES).map(|(_, n)| n).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (close names: {})", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::StatRange;

    fn expect(name: &str, min: Option<i64>, max: Option<i64>, delta: bool) -> StatExpect {
        StatExpect { name: name.into(), range: StatRange { min, max }, delta }
    }

    fn read(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn values_and_deltas_are_checked_against_their_bounds() {
        let now = read(&[("a.count", 7), ("b.memory", 120)]);
        let before = read(&[("b.memory", 100)]);
        let expects = [expect("a.count", Some(7), Some(7), false), expect("b.memory", None, Some(25), true)];
        assert!(verify(&expects, &now, &before).holds());
        let expects = [expect("a.count", Some(8), None, false), expect("b.memory", None, Some(10), true)];
        let actual: Vec<String> = verify(&expects, &now, &before).mismatches().into_iter().map(|m| m.actual).collect();
        assert_eq!(actual, ["stat a.count: 7", "stat b.memory changed by: 20"]);
    }

    #[test]
    fn an_unknown_stat_lists_close_names() {
        let now =
            read(&[("wasmcustom.runtime_requests", 1), ("server.live", 1), ("wasm.envoy.wasm.runtime.v8.active", 2)]);
        let verdict = verify(&[expect("wasmcustom.runtime_request", Some(1), Some(1), false)], &now, &BTreeMap::new());
        let actual = &verdict.mismatches()[0].actual;
        assert!(
            actual.starts_with(
                "stat wasmcustom.runtime_request: Envoy has no such stat (close names: wasmcustom.runtime_requests, "
            ),
            "{actual}"
        );
    }
}
