//! Comparing two conformance reports, as a release gate does: what changed
//! from OLD to NEW per target, and whether anything that passed now fails.

use super::conformance::{Entry, Report, Verdict};

/// One scenario whose result changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub scenario: String,
    pub old: Verdict,
    pub new: Verdict,
}

impl Change {
    /// Passed in OLD (cleanly or as marked), fails in NEW: what a gate stops on.
    pub fn is_regression(&self) -> bool {
        matches!(self.old, Verdict::Pass | Verdict::Xfail) && self.new == Verdict::Fail
    }
}

/// OLD's and NEW's results for one pair of targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub old: String,
    pub new: String,
    pub changes: Vec<Change>,
    /// Scenarios OLD has and NEW lacks, and the reverse.
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Comparison {
    pub pairs: Vec<Pair>,
    /// Targets with no counterpart on the other side.
    pub unpaired_old: Vec<String>,
    pub unpaired_new: Vec<String>,
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = (&Pair, &Change)> {
        self.pairs.iter().flat_map(|p| p.changes.iter().filter(|c| c.is_regression()).map(move |c| (p, c)))
    }
}

/// Pairs OLD's targets with NEW's by name; a single target left on each
/// side is paired too (the same gateway, another version).
pub fn compare(old: &Report, new: &Report) -> Comparison {
    let mut comparison = Comparison::default();
    let mut old_left: Vec<&Entry> = Vec::new();
    let mut new_left: Vec<&Entry> = new.entries.iter().collect();
    for entry in &old.entries {
        match new_left.iter().position(|n| n.target == entry.target) {
            Some(i) => comparison.pairs.push(pair(entry, new_left.remove(i))),
            None => old_left.push(entry),
        }
    }
    if let ([o], [n]) = (old_left.as_slice(), new_left.as_slice()) {
        comparison.pairs.push(pair(o, n));
    } else {
        comparison.unpaired_old = old_left.iter().map(|e| e.target.clone()).collect();
        comparison.unpaired_new = new_left.iter().map(|e| e.target.clone()).collect();
    }
    comparison
}

fn pair(old: &Entry, new: &Entry) -> Pair {
    let (old_results, new_results) = (old.by_scenario(), new.by_scenario());
    let changes = old_results
        .iter()
        .filter_map(|(scenario, o)| {
            let n = new_results.get(scenario)?;
            (o.result != n.result).then(|| Change { scenario: scenario.to_string(), old: o.result, new: n.result })
        })
        .collect();
    let missing = |from: &std::collections::BTreeMap<&str, _>, other: &std::collections::BTreeMap<&str, _>| {
        from.keys().filter(|s| !other.contains_key(*s)).map(|s| s.to_string()).collect::<Vec<_>>()
    };
    Pair {
        old: old.target.clone(),
        new: new.target.clone(),
        changes,
        only_old: missing(&old_results, &new_results),
        only_new: missing(&new_results, &old_results),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::conformance::{EnvoyFacts, Implementation, IstiodFacts, ScenarioResult, Summary};

    fn entry(target: &str, results: &[(&str, Verdict)]) -> Entry {
        Entry {
            target: target.into(),
            implementation: Implementation {
                profile: "envoy".into(),
                runtime: "process".into(),
                image: None,
                cluster: None,
                envoy: EnvoyFacts { version: "1.40.0".into(), build: String::new(), source: String::new() },
                istiod: IstiodFacts { version: "1.30".into(), mode: "modelled".into(), pin: None },
            },
            features: Vec::new(),
            summary: Summary::default(),
            results: results
                .iter()
                .map(|(s, v)| ScenarioResult {
                    scenario: s.to_string(),
                    result: *v,
                    failure_kind: None,
                    detail: None,
                    evidence: None,
                    time: 0.0,
                })
                .collect(),
        }
    }

    #[test]
    fn a_pass_that_fails_is_a_regression_and_other_changes_are_not() {
        let old = Report::new(vec![entry(
            "envoy@1.39.3",
            &[("a", Verdict::Pass), ("b", Verdict::Fail), ("c", Verdict::Pass), ("gone", Verdict::Pass)],
        )]);
        let new = Report::new(vec![entry(
            "envoy@1.40.0",
            &[("a", Verdict::Fail), ("b", Verdict::Pass), ("c", Verdict::Skip), ("added", Verdict::Pass)],
        )]);
        let comparison = compare(&old, &new);
        let [pair] = comparison.pairs.as_slice() else { panic!("one pair: {comparison:?}") };
        assert_eq!((pair.old.as_str(), pair.new.as_str()), ("envoy@1.39.3", "envoy@1.40.0"));
        let regressions: Vec<&str> = comparison.regressions().map(|(_, c)| c.scenario.as_str()).collect();
        assert_eq!(regressions, ["a"]);
        assert_eq!(pair.changes.len(), 3, "{:?}", pair.changes);
        assert_eq!((pair.only_old.clone(), pair.only_new.clone()), (vec!["gone".to_owned()], vec!["added".to_owned()]));
    }

    #[test]
    fn targets_pair_by_name_first() {
        let old = Report::new(vec![entry("envoy@1.39.3", &[]), entry("istio", &[]), entry("envoy@1.36.4", &[])]);
        let new = Report::new(vec![entry("istio", &[]), entry("envoy@1.40.0", &[])]);
        let comparison = compare(&old, &new);
        assert_eq!(comparison.pairs.len(), 1);
        assert_eq!(comparison.unpaired_old, ["envoy@1.39.3", "envoy@1.36.4"]);
        assert_eq!(comparison.unpaired_new, ["envoy@1.40.0"]);
    }
}
