//! The harness's model of where istiod places WasmPlugin filters in a
//! gateway's HTTP filter chain (the istio profile checks the real thing).
//!
//! istiod (pilot/pkg/model/push_context.go, 1.29) groups plugins by phase in
//! the order AUTHN, AUTHZ, STATS, UNSPECIFIED_PHASE (native filters such as
//! jwt_authn and rbac sit between the groups), sorts each group by priority,
//! highest first, with an unset priority counting as the lowest, and keeps
//! ties in creation-time order, then by name, then namespace. Scenario
//! resources have no creation time, so ties fall to name, then namespace.

use std::cmp::Reverse;

use crate::scenario::Phase;

use super::istio::IstioWasmPlugin;

/// The plugins in filter-chain order (request path).
pub fn filter_order<'a>(plugins: impl IntoIterator<Item = &'a IstioWasmPlugin>) -> Vec<&'a IstioWasmPlugin> {
    let mut ordered: Vec<&IstioWasmPlugin> = plugins.into_iter().collect();
    ordered.sort_by_key(|p| {
        (phase_rank(p.phase()), Reverse(p.spec.priority.unwrap_or(i32::MIN)), p.name.clone(), p.namespace.clone())
    });
    ordered
}

fn phase_rank(phase: Phase) -> u8 {
    match phase {
        Phase::Authn => 0,
        Phase::Authz => 1,
        Phase::Stats => 2,
        Phase::UnspecifiedPhase => 3,
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::scenario::Reference;
    use crate::translate::istio::IstioSpec;

    fn plugin(name: &str, namespace: &str, phase: Option<Phase>, priority: Option<i32>) -> IstioWasmPlugin {
        IstioWasmPlugin {
            name: name.into(),
            namespace: namespace.into(),
            plugin: name.into(),
            reference: Reference::Digest,
            spec: IstioSpec {
                url: String::new(),
                sha256: None,
                image_pull_policy: None,
                image_pull_secret: None,
                plugin_config: None,
                plugin_name: None,
                phase,
                priority,
                fail_strategy: None,
                vm_config: None,
            },
        }
    }

    #[rstest]
    #[case::phases_in_istiod_order(
        vec![plugin("u", "n", None, Some(100)), plugin("s", "n", Some(Phase::Stats), None),
             plugin("z", "n", Some(Phase::Authz), None), plugin("a", "n", Some(Phase::Authn), None)],
        &["a.n", "z.n", "s.n", "u.n"])]
    #[case::higher_priority_first(
        vec![plugin("low", "n", Some(Phase::Authn), Some(1)), plugin("high", "n", Some(Phase::Authn), Some(10))],
        &["high.n", "low.n"])]
    #[case::unset_priority_is_lowest(
        vec![plugin("unset", "n", None, None), plugin("negative", "n", None, Some(-5))],
        &["negative.n", "unset.n"])]
    #[case::ties_by_name_then_namespace(
        vec![plugin("b", "a", None, Some(1)), plugin("a", "z", None, Some(1)), plugin("a", "b", None, Some(1))],
        &["a.b", "a.z", "b.a"])]
    fn orders(#[case] plugins: Vec<IstioWasmPlugin>, #[case] expected: &[&str]) {
        let names: Vec<String> = filter_order(&plugins).iter().map(|p| format!("{}.{}", p.name, p.namespace)).collect();
        assert_eq!(names, expected);
    }
}
