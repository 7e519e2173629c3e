//! Higress `WasmPlugin` -> Istio `WasmPlugin`, as Higress Core's
//! `convertIstioWasmPlugin` does it (pkg/ingress/config/ingress_config.go).

use serde_json::{Map, Value};

use crate::scenario::{Flavor, JsonObject, MatchRule, WasmPlugin, WasmPluginSpec};

use super::istio::{IstioSpec, IstioWasmPlugin};
use super::istiod::IstiodVersion;

pub const RULES_KEY: &str = "_rules_";
pub const MATCH_ROUTE_KEY: &str = "_match_route_";
pub const MATCH_SERVICE_KEY: &str = "_match_service_";
pub const MATCH_DOMAIN_KEY: &str = "_match_domain_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error(
        "matchRules[{index}] has no ingress, domain or service: Higress rejects the whole WasmPlugin \
         and keeps its previous version in force; give the rule a match key or set configDisable: true"
    )]
    RuleWithoutMatch { index: usize },
}

/// The Istio resource a scenario resource stands for, for `istiod`: itself
/// for an Istio `WasmPlugin`, the converted one for Higress. `None` when
/// Higress produces no Istio resource at all (every rule disabled and
/// `defaultConfigDisable`).
pub fn to_istio(resource: &WasmPlugin, istiod: IstiodVersion) -> Result<Option<IstioWasmPlugin>, TranslateError> {
    let spec = match resource.flavor {
        Flavor::Istio | Flavor::TrafficExtension => Some(istio_fields(&resource.spec)),
        Flavor::Higress => convert(&resource.spec)?,
    };
    Ok(spec.map(|spec| IstioWasmPlugin {
        kind: resource.flavor.kind(),
        name: resource.name.clone(),
        namespace: resource.namespace.clone(),
        plugin: resource.plugin.clone(),
        reference: resource.reference.clone(),
        spec,
        created: 0,
        istiod,
        written: format!("{}/{}", resource.namespace, resource.name),
    }))
}

/// A Higress WasmPlugin's spec as written, for a cluster's own Higress
/// controller to translate (`translator: higress-controller`).
pub fn as_written(spec: &WasmPluginSpec) -> Value {
    let mut written = serde_json::to_value(istio_fields(spec)).expect("a WasmPlugin spec serialises");
    let fields = written.as_object_mut().expect("a spec is an object");
    if let Some(config) = &spec.default_config {
        fields.insert("defaultConfig".into(), Value::Object(config.value.clone()));
    }
    if let Some(disable) = &spec.default_config_disable {
        fields.insert("defaultConfigDisable".into(), Value::Bool(disable.value));
    }
    if let Some(rules) = &spec.match_rules {
        fields.insert("matchRules".into(), serde_json::to_value(&rules.value).expect("match rules serialise"));
    }
    written
}

/// The fields both kinds share, copied as they are.
fn istio_fields(spec: &WasmPluginSpec) -> IstioSpec {
    IstioSpec {
        url: spec.url.value.clone(),
        sha256: spec.sha256.clone(),
        image_pull_policy: spec.image_pull_policy,
        image_pull_secret: spec.image_pull_secret.clone(),
        plugin_config: spec.plugin_config.clone(),
        plugin_name: spec.plugin_name.clone(),
        phase: spec.phase,
        priority: spec.priority,
        fail_strategy: spec.fail_strategy,
        vm_config: spec.vm_config.clone(),
        traffic: spec.traffic.as_ref().map(|t| t.value.clone()),
        selector: spec.selector.as_ref().map(|s| s.value.clone()),
        target_ref: spec.target_ref.as_ref().map(|t| t.value.clone()),
        target_refs: spec.target_refs.as_ref().map(|t| t.value.clone()),
        plugin_type: spec.plugin_type,
    }
}

/// Higress's conversion. An explicit `pluginConfig` wins and the Higress
/// fields are ignored; otherwise `defaultConfig` (unless disabled) is the
/// global config and each enabled rule, in list order, becomes one `_rules_`
/// entry: its `config` followed by `_match_route_`, `_match_service_`,
/// `_match_domain_`.
pub fn convert(spec: &WasmPluginSpec) -> Result<Option<IstioSpec>, TranslateError> {
    let mut out = istio_fields(spec);
    if out.plugin_config.is_some() {
        return Ok(Some(out));
    }
    let default_disabled = spec.default_config_disable.as_ref().is_some_and(|d| d.value);
    if !default_disabled {
        out.plugin_config = spec.default_config.as_ref().map(|c| c.value.clone());
    }
    let rules = spec.match_rules.as_ref().map(|r| r.value.as_slice()).unwrap_or_default();
    let mut entries = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        if rule.config_disable == Some(true) {
            continue;
        }
        entries.push(Value::Object(rule_entry(rule).ok_or(TranslateError::RuleWithoutMatch { index })?));
    }
    if !rules.is_empty() {
        let config = out.plugin_config.get_or_insert_with(Map::new);
        if !entries.is_empty() {
            config.insert(RULES_KEY.to_owned(), Value::Array(entries.clone()));
        }
    }
    if entries.is_empty() && default_disabled {
        return Ok(None);
    }
    Ok(Some(out))
}

fn rule_entry(rule: &MatchRule) -> Option<JsonObject> {
    let mut entry = rule.config.clone().unwrap_or_default();
    let keys = [(MATCH_ROUTE_KEY, &rule.ingress), (MATCH_SERVICE_KEY, &rule.service), (MATCH_DOMAIN_KEY, &rule.domain)];
    let mut matched = false;
    for (key, values) in keys {
        if !values.is_empty() {
            matched = true;
            entry.insert(key.to_owned(), values.iter().cloned().map(Value::String).collect());
        }
    }
    matched.then_some(entry)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;
    use serde_saphyr::{Location, Spanned};

    use super::*;

    fn spanned<T>(value: T) -> Spanned<T> {
        Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
    }

    fn object(v: Value) -> JsonObject {
        match v {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn rule(ingress: &[&str], domain: &[&str], service: &[&str], config: Value) -> MatchRule {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        MatchRule {
            ingress: strings(ingress),
            domain: strings(domain),
            service: strings(service),
            config: Some(object(config)),
            config_disable: None,
        }
    }

    fn spec(
        plugin_config: Option<Value>,
        default_config: Option<Value>,
        default_disable: Option<bool>,
        rules: Option<Vec<MatchRule>>,
    ) -> WasmPluginSpec {
        WasmPluginSpec {
            url: spanned("plugin://stamp".to_owned()),
            plugin_config: plugin_config.map(object),
            default_config: default_config.map(|v| spanned(object(v))),
            default_config_disable: default_disable.map(spanned),
            match_rules: rules.map(spanned),
            ..Default::default()
        }
    }

    #[test]
    fn as_written_keeps_the_higress_fields_for_the_clusters_controller() {
        let rules = vec![disabled(rule(&["default/r"], &[], &[], json!({"c": 3})))];
        let written = as_written(&spec(None, Some(json!({"b": 2})), Some(true), Some(rules)));
        assert_eq!(
            written,
            json!({
                "url": "plugin://stamp",
                "defaultConfig": {"b": 2},
                "defaultConfigDisable": true,
                "matchRules": [{"ingress": ["default/r"], "config": {"c": 3}, "configDisable": true}],
            })
        );
    }

    fn disabled(mut r: MatchRule) -> MatchRule {
        r.config_disable = Some(true);
        r
    }

    #[rstest]
    #[case::plugin_config_passes_through_and_higress_fields_are_ignored(
        spec(Some(json!({"a": 1})), Some(json!({"b": 2})), None,
             Some(vec![rule(&["default/r"], &[], &[], json!({"c": 3}))])),
        Some(json!({"a": 1})))]
    #[case::default_config_is_the_global_config(
        spec(None, Some(json!({"name": "global"})), None, None),
        Some(json!({"name": "global"})))]
    #[case::default_config_disable_drops_the_global_config(
        spec(None, Some(json!({"name": "global"})), Some(true),
             Some(vec![rule(&[], &["a.example.com"], &[], json!({"name": "a"}))])),
        Some(json!({"_rules_": [{"name": "a", "_match_domain_": ["a.example.com"]}]})))]
    #[case::default_config_disable_false_keeps_it(
        spec(None, Some(json!({"name": "global"})), Some(false), None),
        Some(json!({"name": "global"})))]
    #[case::rules_keep_list_order_and_match_keys_follow_the_config(
        spec(None, Some(json!({"name": "global"})), None, Some(vec![
            rule(&[], &["*.example.com"], &[], json!({"name": "domain", "z": 0})),
            rule(&["default/r"], &[], &["svc.ns.svc.cluster.local:80"], json!({"name": "route"})),
        ])),
        Some(json!({"name": "global", "_rules_": [
            {"name": "domain", "z": 0, "_match_domain_": ["*.example.com"]},
            {"name": "route", "_match_route_": ["default/r"], "_match_service_": ["svc.ns.svc.cluster.local:80"]},
        ]})))]
    #[case::route_service_and_domain_keys_in_higress_order(
        spec(None, None, None, Some(vec![rule(&["default/r"], &["a.example.com"], &["s.example"], json!({}))])),
        Some(json!({"_rules_": [{"_match_route_": ["default/r"], "_match_service_": ["s.example"], "_match_domain_": ["a.example.com"]}]})))]
    #[case::config_disable_drops_one_rule(
        spec(None, None, None, Some(vec![
            disabled(rule(&[], &["a.example.com"], &[], json!({"name": "a"}))),
            rule(&[], &["b.example.com"], &[], json!({"name": "b"})),
        ])),
        Some(json!({"_rules_": [{"name": "b", "_match_domain_": ["b.example.com"]}]})))]
    #[case::a_rule_without_config_gets_an_empty_one(
        spec(None, None, None, Some(vec![MatchRule { domain: vec!["a".into()], ..Default::default() }])),
        Some(json!({"_rules_": [{"_match_domain_": ["a"]}]})))]
    #[case::all_rules_disabled_leaves_an_empty_config_and_no_rules(
        spec(None, None, None, Some(vec![disabled(rule(&[], &["a"], &[], json!({})))])),
        Some(json!({})))]
    #[case::no_config_at_all_keeps_the_plugin_without_configuration(spec(None, None, None, None), None)]
    fn converts(#[case] input: WasmPluginSpec, #[case] plugin_config: Option<Value>) {
        let out = convert(&input).expect("converts").expect("an Istio resource");
        assert_eq!(out.plugin_config.map(Value::Object), plugin_config);
        assert_eq!(out.url, "plugin://stamp");
    }

    #[test]
    fn key_order_is_preserved_in_the_rendered_json() {
        let input = spec(
            None,
            Some(json!({"b": 1, "a": 2})),
            None,
            Some(vec![rule(&["default/r"], &["d"], &["s"], json!({"y": 1, "x": 2}))]),
        );
        let out = convert(&input).unwrap().unwrap();
        assert_eq!(
            serde_json::to_string(&out.plugin_config).unwrap(),
            r#"{"b":1,"a":2,"_rules_":[{"y":1,"x":2,"_match_route_":["default/r"],"_match_service_":["s"],"_match_domain_":["d"]}]}"#
        );
    }

    #[rstest]
    #[case::first_rule(vec![MatchRule { config: Some(object(json!({"n": 1}))), ..Default::default() }], 0)]
    #[case::second_rule(vec![rule(&[], &["a"], &[], json!({})), MatchRule::default()], 1)]
    fn a_rule_with_no_match_key_is_an_error(#[case] rules: Vec<MatchRule>, #[case] index: usize) {
        let err = convert(&spec(None, Some(json!({"n": 0})), None, Some(rules))).unwrap_err();
        assert_eq!(err, TranslateError::RuleWithoutMatch { index });
    }

    #[test]
    fn a_disabled_rule_without_match_key_is_not_an_error() {
        let rules = vec![disabled(MatchRule::default()), rule(&[], &["a"], &[], json!({}))];
        assert!(convert(&spec(None, None, None, Some(rules))).is_ok());
    }

    #[rstest]
    #[case::every_rule_disabled(Some(vec![disabled(rule(&[], &["a"], &[], json!({})))]))]
    #[case::no_rules(None)]
    #[case::empty_rules(Some(vec![]))]
    fn no_surviving_rule_and_default_disabled_means_no_resource(#[case] rules: Option<Vec<MatchRule>>) {
        let input = spec(None, Some(json!({"name": "global"})), Some(true), rules);
        assert_eq!(convert(&input), Ok(None));
    }
}
