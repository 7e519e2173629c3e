//! The harness's model of which WasmPlugins reach a gateway and where
//! istiod places their filters in its HTTP filter chain (the istio profile
//! checks the real thing; `scenarios/order` and `scope/namespace-visibility`
//! pin it).
//!
//! istiod (pilot/pkg/model/push_context.go) sorts every WasmPlugin by
//! creation time (to the second), then by name (from 1.30 its
//! TrafficExtension's, `NAME~istio-translated-wasmplugin`), then namespace; takes those of the
//! proxy's own namespace, then those of the root namespace; groups them by
//! phase in the order AUTHN, AUTHZ, STATS, UNSPECIFIED_PHASE (native
//! filters such as jwt_authn and rbac sit between the groups); and sorts
//! each group by priority, highest first, an unset priority counting as the
//! lowest, keeping the order above for ties. So ties fall to the namespace
//! (the gateway's first), then creation, then that name. The istio profile
//! creates the scenario's resources in that name order and gives each
//! resource a step creates a later second than every earlier one, so that
//! creation order is what the model says (`IstioWasmPlugin::created`).

use std::cmp::Reverse;

use crate::scenario::{Phase, RoutingApi, WorkloadMode};

use super::istio::IstioWasmPlugin;

use crate::mesh::{GATEWAY_API_GROUP, GATEWAY_LABEL, GATEWAY_NAME, GATEWAY_NAME_LABEL, GATEWAY_PORT, ROOT_NAMESPACE};

/// Whether istiod gives the gateway in `gateway_namespace` this plugin at
/// all (pilot/pkg/model/policyattachment.go): one of its namespace or the
/// root's, attached by one of
/// - no `targetRef(s)`, and a `selector` (if any) asking only for labels
///   the gateway has (`GATEWAY_LABEL`, and a Gateway API gateway's
///   `GATEWAY_NAME_LABEL`);
/// - `targetRef(s)`, one of them to the gateway's Gateway API Gateway, by
///   a plugin of the gateway's own namespace; for a gateway that is not a
///   Gateway API one, istiod ignores a plugin with targetRefs altogether;
///
/// and whose `match` (if any) selects a gateway's traffic, which istiod
/// counts as CLIENT (istio#56169: SERVER alone is silently not applied), on
/// its listener's port (`GATEWAY_PORT`) if it names ports.
pub fn reaches_gateway(plugin: &IstioWasmPlugin, gateway_namespace: &str, routing: RoutingApi) -> bool {
    let seen = plugin.namespace == gateway_namespace || plugin.namespace == ROOT_NAMESPACE;
    let has = |key: &str, value: &str| {
        (key, value) == GATEWAY_LABEL
            || (routing == RoutingApi::GatewayApi && (key, value) == (GATEWAY_NAME_LABEL, GATEWAY_NAME))
    };
    let targets = plugin.spec.target_list();
    let attached = match (targets.is_empty(), routing) {
        (true, _) => plugin.spec.selector.as_ref().is_none_or(|s| s.match_labels.iter().all(|(k, v)| has(k, v))),
        (false, RoutingApi::Istio) => false,
        (false, RoutingApi::GatewayApi) => {
            plugin.namespace == gateway_namespace
                && targets.iter().any(|t| {
                    (t.group.as_str(), t.kind.as_str(), t.name.as_str()) == (GATEWAY_API_GROUP, "Gateway", GATEWAY_NAME)
                })
        }
    };
    let selected = match plugin.spec.traffic.as_deref() {
        None | Some([]) => true,
        Some(selectors) => selectors.iter().any(|s| {
            s.mode != Some(WorkloadMode::Server)
                && (s.ports.is_empty() || s.ports.iter().any(|p| p.number == GATEWAY_PORT))
        }),
    };
    seen && attached && selected
}

/// The plugins in the filter-chain order (request path) of the gateway in
/// `gateway_namespace`.
pub fn filter_order<'a>(
    plugins: impl IntoIterator<Item = &'a IstioWasmPlugin>,
    gateway_namespace: &str,
) -> Vec<&'a IstioWasmPlugin> {
    let mut ordered: Vec<&IstioWasmPlugin> = plugins.into_iter().collect();
    ordered.sort_by_key(|p| {
        let lookup = p.namespace != gateway_namespace;
        (
            phase_rank(p.phase()),
            Reverse(p.spec.priority.unwrap_or(i32::MIN)),
            lookup,
            p.created,
            p.sort_name(),
            p.namespace.clone(),
        )
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
    use crate::mesh::GATEWAY_NAMESPACE;
    use crate::scenario::Reference;
    use crate::translate::istio::IstioSpec;
    use crate::translate::istiod::IstiodVersion;

    fn plugin(name: &str, namespace: &str, phase: Option<Phase>, priority: Option<i32>) -> IstioWasmPlugin {
        IstioWasmPlugin {
            kind: crate::scenario::ResourceKind::WasmPlugin,
            name: name.into(),
            namespace: namespace.into(),
            plugin: name.into(),
            reference: Reference::Digest,
            spec: IstioSpec { phase, priority, ..IstioSpec::default() },
            created: 0,
            istiod: IstiodVersion::DEFAULT,
            written: format!("{namespace}/{name}"),
        }
    }

    /// A gateway's traffic is CLIENT to istiod: any `match` entry that is
    /// not SERVER alone selects it.
    #[rstest]
    #[case::no_match(None, true)]
    #[case::empty(Some(vec![]), true)]
    #[case::client(Some(vec![Some(WorkloadMode::Client)]), true)]
    #[case::both(Some(vec![Some(WorkloadMode::ClientAndServer)]), true)]
    #[case::undefined(Some(vec![Some(WorkloadMode::Undefined)]), true)]
    #[case::mode_unset(Some(vec![None]), true)]
    #[case::server(Some(vec![Some(WorkloadMode::Server)]), false)]
    #[case::server_or_client(Some(vec![Some(WorkloadMode::Server), Some(WorkloadMode::Client)]), true)]
    fn a_match_reaches_the_gateway_unless_it_is_server_alone(
        #[case] modes: Option<Vec<Option<WorkloadMode>>>,
        #[case] reaches: bool,
    ) {
        use crate::scenario::TrafficSelector;
        let mut p = plugin("p", GATEWAY_NAMESPACE, None, None);
        p.spec.traffic = modes.map(|m| m.into_iter().map(|mode| TrafficSelector { mode, ports: Vec::new() }).collect());
        assert_eq!(reaches_gateway(&p, GATEWAY_NAMESPACE, RoutingApi::Istio), reaches);
    }

    /// A `match` entry naming ports selects the gateway only if one is its
    /// listener's, and only in a mode that selects it.
    #[rstest]
    #[case::the_gateways(Some(WorkloadMode::Client), &[8443, 80], true)]
    #[case::another(None, &[8080], false)]
    #[case::server_on_the_gateways(Some(WorkloadMode::Server), &[80], false)]
    fn a_match_with_ports_reaches_the_gateway_on_its_port(
        #[case] mode: Option<WorkloadMode>,
        #[case] ports: &[u32],
        #[case] reaches: bool,
    ) {
        use crate::scenario::{PortSelector, TrafficSelector};
        let mut p = plugin("p", GATEWAY_NAMESPACE, None, None);
        let ports = ports.iter().map(|&number| PortSelector { number }).collect();
        p.spec.traffic = Some(vec![TrafficSelector { mode, ports }]);
        assert_eq!(reaches_gateway(&p, GATEWAY_NAMESPACE, RoutingApi::Istio), reaches);
    }

    /// A selector reaches the gateway when it asks only for the gateway's
    /// label (as scenarios write it), or for nothing.
    #[rstest]
    #[case::none(None, true)]
    #[case::empty(Some(vec![]), true)]
    #[case::the_gateways(Some(vec![("istio", "ingressgateway")]), true)]
    #[case::another_value(Some(vec![("istio", "eastwestgateway")]), false)]
    #[case::another_label(Some(vec![("app", "elsewhere")]), false)]
    #[case::one_more(Some(vec![("istio", "ingressgateway"), ("version", "v2")]), false)]
    fn a_selector_reaches_the_gateway_when_it_has_every_label(
        #[case] labels: Option<Vec<(&str, &str)>>,
        #[case] reaches: bool,
    ) {
        use crate::scenario::WorkloadSelector;
        let mut p = plugin("p", ROOT_NAMESPACE, None, None);
        p.spec.selector = labels.map(|l| WorkloadSelector {
            match_labels: l.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        });
        assert_eq!(reaches_gateway(&p, GATEWAY_NAMESPACE, RoutingApi::Istio), reaches);
    }

    /// istiod ignores a plugin with targetRef(s) for a gateway that is not
    /// a Gateway API one, which the scenarios' is not.
    #[test]
    fn a_target_ref_never_reaches_the_gateway() {
        use crate::scenario::TargetRef;
        let target = TargetRef {
            group: "gateway.networking.k8s.io".into(),
            kind: "Gateway".into(),
            name: "g".into(),
            namespace: None,
        };
        let mut p = plugin("p", GATEWAY_NAMESPACE, None, None);
        assert!(reaches_gateway(&p, GATEWAY_NAMESPACE, RoutingApi::Istio));
        p.spec.target_refs = Some(vec![]);
        assert!(reaches_gateway(&p, GATEWAY_NAMESPACE, RoutingApi::Istio), "no targets is as none");
        p.spec.target_refs = Some(vec![target.clone()]);
        assert!(!reaches_gateway(&p, GATEWAY_NAMESPACE, RoutingApi::Istio));
        p.spec.target_refs = None;
        p.spec.target_ref = Some(target);
        assert!(!reaches_gateway(&p, GATEWAY_NAMESPACE, RoutingApi::Istio));
    }

    /// On a Gateway API gateway, a targetRef to its Gateway attaches a
    /// plugin of the gateway's namespace; one to another Gateway, of another
    /// kind, or from the root namespace does not; without targetRefs the
    /// selector decides, the Gateway's name label included.
    #[rstest]
    #[case::its_gateway(GATEWAY_NAMESPACE, Some(("gateway.networking.k8s.io", "Gateway", GATEWAY_NAME)), true)]
    #[case::another_gateway(GATEWAY_NAMESPACE, Some(("gateway.networking.k8s.io", "Gateway", "other")), false)]
    #[case::no_group(GATEWAY_NAMESPACE, Some(("", "Gateway", GATEWAY_NAME)), false)]
    #[case::a_service(GATEWAY_NAMESPACE, Some(("", "Service", GATEWAY_NAME)), false)]
    #[case::from_the_root_namespace(ROOT_NAMESPACE, Some(("gateway.networking.k8s.io", "Gateway", GATEWAY_NAME)), false)]
    #[case::no_target_from_the_root_namespace(ROOT_NAMESPACE, None, true)]
    fn a_target_ref_reaches_a_gateway_api_gateway_of_its_namespace(
        #[case] namespace: &str,
        #[case] target: Option<(&str, &str, &str)>,
        #[case] reaches: bool,
    ) {
        use crate::scenario::TargetRef;
        let mut p = plugin("p", namespace, None, None);
        p.spec.target_refs = target.map(|(group, kind, name)| {
            vec![TargetRef { group: group.into(), kind: kind.into(), name: name.into(), namespace: None }]
        });
        assert_eq!(reaches_gateway(&p, GATEWAY_NAMESPACE, RoutingApi::GatewayApi), reaches);
    }

    #[test]
    fn a_selector_may_name_a_gateway_api_gateways_name_label() {
        use crate::scenario::WorkloadSelector;
        let mut p = plugin("p", GATEWAY_NAMESPACE, None, None);
        let labels = [(GATEWAY_NAME_LABEL.to_owned(), GATEWAY_NAME.to_owned())].into();
        p.spec.selector = Some(WorkloadSelector { match_labels: labels });
        assert!(reaches_gateway(&p, GATEWAY_NAMESPACE, RoutingApi::GatewayApi));
        assert!(!reaches_gateway(&p, GATEWAY_NAMESPACE, RoutingApi::Istio));
    }

    fn created(plugin: IstioWasmPlugin, created: u32) -> IstioWasmPlugin {
        IstioWasmPlugin { created, ..plugin }
    }

    fn older(plugin: IstioWasmPlugin) -> IstioWasmPlugin {
        IstioWasmPlugin { istiod: IstiodVersion { minor: 29 }, ..plugin }
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
    #[case::ties_by_name_within_a_namespace(
        vec![plugin("b", ROOT_NAMESPACE, None, Some(1)), plugin("a", ROOT_NAMESPACE, None, Some(1))],
        &["a.istio-system", "b.istio-system"])]
    #[case::ties_put_the_gateway_namespace_first(
        vec![plugin("a", ROOT_NAMESPACE, None, Some(1)), plugin("z", GATEWAY_NAMESPACE, None, Some(1))],
        &["z.higress-system", "a.istio-system"])]
    #[case::ties_by_the_name_istiod_sorts(
        vec![plugin("a", ROOT_NAMESPACE, None, None), plugin("a-b", ROOT_NAMESPACE, None, None)],
        &["a-b.istio-system", "a.istio-system"])]
    #[case::before_1_30_ties_by_the_bare_name(
        vec![older(plugin("a-b", ROOT_NAMESPACE, None, None)), older(plugin("a", ROOT_NAMESPACE, None, None))],
        &["a.istio-system", "a-b.istio-system"])]
    #[case::older_before_newer_whatever_the_names(
        vec![created(plugin("a", ROOT_NAMESPACE, None, None), 1), plugin("z", ROOT_NAMESPACE, None, None)],
        &["z.istio-system", "a.istio-system"])]
    #[case::namespace_before_creation(
        vec![plugin("old", ROOT_NAMESPACE, None, None), created(plugin("new", GATEWAY_NAMESPACE, None, None), 1)],
        &["new.higress-system", "old.istio-system"])]
    fn orders(#[case] plugins: Vec<IstioWasmPlugin>, #[case] expected: &[&str]) {
        let names: Vec<String> =
            filter_order(&plugins, GATEWAY_NAMESPACE).iter().map(|p| format!("{}.{}", p.name, p.namespace)).collect();
        assert_eq!(names, expected);
    }
}
