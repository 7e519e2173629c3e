use super::*;
use serde_json::json;

/// The test plugin's config: a `name`, which every config must have.
fn parse_name(value: &Value) -> Result<String, String> {
    value.get("name").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| "missing name".to_owned())
}

fn matcher(config: Value) -> RuleMatcher<String> {
    RuleMatcher::parse(&config, parse_name).expect("config parses")
}

fn parse_err(config: Value) -> ParseError {
    RuleMatcher::parse(&config, parse_name).expect_err("config is rejected")
}

/// The name of the config selected for a request, with the route and cluster absent.
fn for_host(m: &RuleMatcher<String>, authority: &str) -> Option<String> {
    select(m, Some(authority), "", "")
}

fn select(m: &RuleMatcher<String>, authority: Option<&str>, route_name: &str, cluster_name: &str) -> Option<String> {
    m.select(authority, route_name, cluster_name).map(|s| s.config.clone())
}

fn domains(list: Value) -> RuleMatcher<String> {
    matcher(json!({"_rules_": [{"_match_domain_": list, "name": "hit"}]}))
}

const CLUSTER: &str = "outbound|80||svc.example.internal";

// ---- parsing ----

#[test]
fn empty_object_is_global_config() {
    let m = RuleMatcher::parse(&json!({}), |v: &Value| Ok::<_, String>(v.clone())).unwrap();
    assert!(m.has_global());
    assert!(m.categories().is_empty());
    let selected = m.select(Some("any.host"), "", "").unwrap();
    assert_eq!(selected.source, Source::Global);
    assert_eq!(selected.config, &json!({}));
}

#[test]
fn empty_object_rejected_by_plugin_is_global_error() {
    assert_eq!(parse_err(json!({})), ParseError::Global("missing name".into()));
}

#[test]
fn empty_configuration_bytes_are_global_config() {
    let m = RuleMatcher::parse_slice(b"", |v: &Value| Ok::<_, String>(v.clone())).unwrap();
    assert_eq!(m.select(Some("h"), "", "").unwrap().config, &json!({}));
}

#[test]
fn configuration_bytes_are_json() {
    let m = RuleMatcher::parse_slice(br#"{"name": "g"}"#, parse_name).unwrap();
    assert_eq!(for_host(&m, "h"), Some("g".into()));
    for bad in [&b"{"[..], b" ", b"name: g"] {
        let err = RuleMatcher::parse_slice(bad, parse_name).unwrap_err();
        assert!(matches!(err, ParseError::Json(_)), "{bad:?} gave {err:?}");
    }
}

#[test]
fn top_level_keys_form_global_config_parsed_from_whole_object() {
    let m =
        RuleMatcher::parse(&json!({"name": "g", "_rules_": [{"_match_route_": ["r"], "name": "r"}]}), |v: &Value| {
            Ok::<_, String>(v.clone())
        })
        .unwrap();
    let global = m.select(Some("h"), "other", "").unwrap();
    assert_eq!(global.source, Source::Global);
    assert_eq!(global.config["name"], "g");
    assert!(global.config.get("_rules_").is_some(), "global sees the whole object");
}

#[test]
fn rule_config_is_parsed_from_rule_object_including_match_keys() {
    let m = RuleMatcher::parse(&json!({"_rules_": [{"_match_route_": ["r"], "name": "r"}]}), |v: &Value| {
        Ok::<_, String>(v.clone())
    })
    .unwrap();
    let selected = m.select(Some("h"), "r", "").unwrap();
    assert_eq!(selected.config, &json!({"_match_route_": ["r"], "name": "r"}));
}

#[test]
fn no_rules_and_no_global_is_error() {
    assert_eq!(parse_err(json!({"_rules_": []})), ParseError::NoRules { global_error: None });
    assert_eq!(parse_err(json!({"_rules_": null})), ParseError::NoRules { global_error: None });
}

#[test]
fn no_rules_and_rejected_global_is_error_with_reason() {
    let err = parse_err(json!({"other": 1}));
    assert_eq!(err, ParseError::NoRules { global_error: Some("missing name".into()) });
    assert_eq!(err.to_string(), "no rules in `_rules_` and no global config (global config: missing name)");
}

#[test]
fn global_only_config() {
    let m = matcher(json!({"name": "g"}));
    assert!(m.has_global());
    assert_eq!(for_host(&m, "anything"), Some("g".into()));
}

#[test]
fn rejected_global_is_dropped_when_rules_exist() {
    let m = matcher(json!({"other": 1, "_rules_": [{"_match_route_": ["r"], "name": "r"}]}));
    assert!(!m.has_global());
    assert_eq!(select(&m, Some("h"), "r", ""), Some("r".into()));
    assert_eq!(select(&m, Some("h"), "x", ""), None);
}

#[test]
fn rule_without_match_keys_is_error() {
    assert_eq!(
        parse_err(json!({"_rules_": [{"_match_route_": ["r"], "name": "a"}, {"name": "b"}]})),
        ParseError::NoMatchKeys { index: 1 }
    );
}

#[test]
fn rule_with_only_empty_match_lists_is_error() {
    let rule = json!({"_match_route_": [""], "_match_service_": [], "_match_route_prefix_": [""], "name": "a"});
    assert_eq!(parse_err(json!({"_rules_": [rule]})), ParseError::NoMatchKeys { index: 0 });
}

#[test]
fn rule_rejected_by_plugin_is_error() {
    assert_eq!(
        parse_err(json!({"_rules_": [{"_match_route_": ["r"]}]})),
        ParseError::Rule { index: 0, message: "missing name".into() }
    );
}

#[test]
fn empty_strings_in_route_lists_are_ignored() {
    let m = matcher(json!({"_rules_": [{"_match_route_": ["", "r"], "name": "a"}]}));
    assert_eq!(select(&m, Some("h"), "", ""), None);
    assert_eq!(select(&m, Some("h"), "r", ""), Some("a".into()));
}

#[test]
fn scalar_match_value_counts_as_one_element_list() {
    let m = matcher(json!({"_rules_": [{"_match_route_": "r", "name": "a"}]}));
    assert_eq!(m.categories(), vec![Category::Route]);
    assert_eq!(select(&m, Some("h"), "r", ""), Some("a".into()));
}

#[test]
fn categories_follow_match_keys() {
    let m = matcher(json!({"_rules_": [
        {"_match_route_": ["r"], "_match_domain_": ["d"], "name": "1"},
        {"_match_route_": ["r"], "_match_service_": ["s"], "_match_domain_": ["d"], "name": "2"},
        {"_match_domain_": ["d"], "_match_service_": ["s"], "name": "3"},
        {"_match_service_": ["s"], "_match_route_prefix_": ["p"], "name": "4"},
        {"_match_route_prefix_": ["p"], "name": "5"},
    ]}));
    assert_eq!(
        m.categories(),
        vec![Category::Route, Category::RouteAndService, Category::Host, Category::Service, Category::RoutePrefix]
    );
}

#[test]
fn configs_lists_rules_then_global() {
    let m = matcher(json!({"name": "g", "_rules_": [
        {"_match_route_": ["r"], "name": "1"},
        {"_match_domain_": ["d"], "name": "2"},
    ]}));
    assert_eq!(m.configs().collect::<Vec<_>>(), ["1", "2", "g"]);
    let rules_only = matcher(json!({"_rules_": [{"_match_route_": ["r"], "name": "1"}]}));
    assert_eq!(rules_only.configs().collect::<Vec<_>>(), ["1"]);
}

// ---- host ----

#[test]
fn exact_domain() {
    let m = domains(json!(["a.example.com"]));
    assert_eq!(for_host(&m, "a.example.com"), Some("hit".into()));
    assert_eq!(for_host(&m, "b.example.com"), None);
    assert_eq!(for_host(&m, "example.com"), None);
}

#[test]
fn port_is_stripped_from_authority() {
    let m = domains(json!(["a.example.com"]));
    assert_eq!(for_host(&m, "a.example.com:8080"), Some("hit".into()));
}

#[test]
fn ipv6_literal_keeps_brackets_and_loses_port() {
    let m = domains(json!(["[::1]"]));
    assert_eq!(for_host(&m, "[::1]:80"), Some("hit".into()));
    assert_eq!(for_host(&m, "[::1]"), Some("hit".into()));
    assert_eq!(strip_port("[::1]:80"), "[::1]");
    assert_eq!(strip_port("[::1]"), "[::1]");
    assert_eq!(strip_port("a.example.com:8080"), "a.example.com");
    assert_eq!(strip_port("a.example.com"), "a.example.com");
}

#[test]
fn star_matches_every_host() {
    let m = domains(json!(["*"]));
    assert_eq!(for_host(&m, "a.example.com"), Some("hit".into()));
    assert_eq!(for_host(&m, "localhost:10000"), Some("hit".into()));
}

#[test]
fn suffix_wildcard_does_not_match_bare_parent_domain() {
    let m = domains(json!(["*.example.com"]));
    assert_eq!(for_host(&m, "a.example.com"), Some("hit".into()));
    assert_eq!(for_host(&m, "x.y.example.com:443"), Some("hit".into()));
    assert_eq!(for_host(&m, "example.com"), None);
    assert_eq!(for_host(&m, "a.example.org"), None);
}

#[test]
fn prefix_wildcard() {
    let m = domains(json!(["www.*"]));
    assert_eq!(for_host(&m, "www.example.com"), Some("hit".into()));
    assert_eq!(for_host(&m, "api.example.com"), None);
}

#[test]
fn leading_star_wins_over_trailing_star() {
    assert_eq!(HostPattern::parse("*a*".into()), HostPattern::Suffix("a*".into()));
}

#[test]
fn domain_match_is_case_sensitive() {
    let m = domains(json!(["a.example.com", "*.Example.org"]));
    assert_eq!(for_host(&m, "A.example.com"), None);
    assert_eq!(for_host(&m, "a.example.org"), None);
    assert_eq!(for_host(&m, "a.Example.org"), Some("hit".into()));
}

#[test]
fn any_domain_in_list_matches() {
    let m = domains(json!(["x.test", "*.example.com"]));
    assert_eq!(for_host(&m, "x.test"), Some("hit".into()));
    assert_eq!(for_host(&m, "a.example.com"), Some("hit".into()));
}

#[test]
fn empty_domain_is_kept_and_matches_port_only_authority() {
    let m = domains(json!([""]));
    assert_eq!(m.categories(), vec![Category::Host]);
    assert_eq!(for_host(&m, ":80"), Some("hit".into()));
    assert_eq!(for_host(&m, "a.example.com"), None);
}

// ---- route and route prefix ----

#[test]
fn route_is_exact_membership() {
    let m = matcher(json!({"_rules_": [{"_match_route_": ["default/r1", "default/r2"], "name": "r"}]}));
    assert_eq!(select(&m, Some("h"), "default/r1", ""), Some("r".into()));
    assert_eq!(select(&m, Some("h"), "default/r2", ""), Some("r".into()));
    assert_eq!(select(&m, Some("h"), "default/r", ""), None);
    assert_eq!(select(&m, Some("h"), "default/r10", ""), None);
    assert_eq!(select(&m, Some("h"), "", ""), None);
}

#[test]
fn route_prefix() {
    let m = matcher(json!({"_rules_": [{"_match_route_prefix_": ["api-", "default/"], "name": "p"}]}));
    assert_eq!(select(&m, Some("h"), "default/r1", ""), Some("p".into()));
    assert_eq!(select(&m, Some("h"), "api-v1", ""), Some("p".into()));
    assert_eq!(select(&m, Some("h"), "other/default/r1", ""), None);
    assert_eq!(select(&m, Some("h"), "", ""), None);
}

// ---- service ----

fn services(list: Value) -> RuleMatcher<String> {
    matcher(json!({"_rules_": [{"_match_service_": list, "name": "svc"}]}))
}

#[test]
fn service_by_fqdn() {
    let m = services(json!(["svc.example.internal"]));
    assert_eq!(select(&m, Some("h"), "", CLUSTER), Some("svc".into()));
    assert_eq!(select(&m, Some("h"), "", "outbound|80||other.internal"), None);
}

#[test]
fn service_by_fqdn_and_port() {
    let m = services(json!(["svc.example.internal:80"]));
    assert_eq!(select(&m, Some("h"), "", CLUSTER), Some("svc".into()));
}

#[test]
fn service_with_wrong_port_does_not_match() {
    let m = services(json!(["svc.example.internal:8080"]));
    assert_eq!(select(&m, Some("h"), "", CLUSTER), None);
}

#[test]
fn service_with_empty_port_does_not_match() {
    let m = services(json!(["svc.example.internal:"]));
    assert_eq!(select(&m, Some("h"), "", CLUSTER), None);
}

#[test]
fn service_has_no_wildcards() {
    let m = services(json!(["*.example.internal", "svc.*"]));
    assert_eq!(select(&m, Some("h"), "", CLUSTER), None);
}

#[test]
fn malformed_cluster_name_never_matches_service() {
    let m = services(json!(["svc.example.internal"]));
    for cluster in
        ["svc.example.internal", "outbound|80|svc.example.internal", "outbound|80||svc.example.internal|extra", ""]
    {
        assert_eq!(select(&m, Some("h"), "", cluster), None, "cluster {cluster:?}");
    }
}

#[test]
fn service_subset_is_ignored() {
    let m = services(json!(["svc.example.internal:80"]));
    assert_eq!(select(&m, Some("h"), "", "outbound|80|v1|svc.example.internal"), Some("svc".into()));
}

// ---- combined keys ----

#[test]
fn route_and_domain_rule_ignores_domain() {
    let m = matcher(json!({"_rules_": [
        {"_match_route_": ["default/r1"], "_match_domain_": ["a.example.com"], "name": "r"}
    ]}));
    assert_eq!(select(&m, Some("other.host"), "default/r1", ""), Some("r".into()));
    assert_eq!(select(&m, Some("a.example.com"), "other", ""), None);
}

#[test]
fn route_and_service_rule_needs_both() {
    let m = matcher(json!({"_rules_": [
        {"_match_route_": ["default/r1"], "_match_service_": ["svc.example.internal"], "name": "rs"}
    ]}));
    assert_eq!(select(&m, Some("h"), "default/r1", CLUSTER), Some("rs".into()));
    assert_eq!(select(&m, Some("h"), "default/r1", "outbound|80||other.internal"), None);
    assert_eq!(select(&m, Some("h"), "default/r1", ""), None);
    assert_eq!(select(&m, Some("h"), "other", CLUSTER), None);
}

#[test]
fn domain_and_service_rule_ignores_service() {
    let m = matcher(json!({"_rules_": [
        {"_match_domain_": ["a.example.com"], "_match_service_": ["svc.example.internal"], "name": "d"}
    ]}));
    assert_eq!(select(&m, Some("a.example.com"), "", "outbound|80||other.internal"), Some("d".into()));
    assert_eq!(select(&m, Some("b.example.com"), "", CLUSTER), None);
}

// ---- selection order and fallbacks ----

#[test]
fn first_matching_rule_in_list_order_wins_domain_first() {
    let m = matcher(json!({"_rules_": [
        {"_match_domain_": ["a.example.com"], "name": "domain"},
        {"_match_route_": ["default/r1"], "name": "route"},
    ]}));
    let selected = m.select(Some("a.example.com"), "default/r1", CLUSTER).unwrap();
    assert_eq!((selected.source, selected.config.as_str()), (Source::Rule(0), "domain"));
}

#[test]
fn first_matching_rule_in_list_order_wins_route_first() {
    let m = matcher(json!({"_rules_": [
        {"_match_route_": ["default/r1"], "name": "route"},
        {"_match_domain_": ["a.example.com"], "name": "domain"},
    ]}));
    let selected = m.select(Some("a.example.com"), "default/r1", CLUSTER).unwrap();
    assert_eq!((selected.source, selected.config.as_str()), (Source::Rule(0), "route"));
}

#[test]
fn later_rule_matches_when_earlier_does_not() {
    let m = matcher(json!({"_rules_": [
        {"_match_route_": ["default/r1"], "name": "route"},
        {"_match_domain_": ["a.example.com"], "name": "domain"},
    ]}));
    let selected = m.select(Some("a.example.com"), "default/r2", "").unwrap();
    assert_eq!((selected.source, selected.config.as_str()), (Source::Rule(1), "domain"));
}

#[test]
fn no_match_falls_back_to_global() {
    let m = matcher(json!({"name": "g", "_rules_": [{"_match_domain_": ["a.example.com"], "name": "d"}]}));
    let selected = m.select(Some("b.example.com"), "", "").unwrap();
    assert_eq!((selected.source, selected.config.as_str()), (Source::Global, "g"));
}

#[test]
fn no_match_without_global_selects_nothing() {
    let m = matcher(json!({"_rules_": [{"_match_domain_": ["a.example.com"], "name": "d"}]}));
    assert_eq!(for_host(&m, "b.example.com"), None);
}

#[test]
fn missing_authority_selects_nothing_even_with_global() {
    let m = matcher(json!({"name": "g", "_rules_": [{"_match_route_": ["default/r1"], "name": "r"}]}));
    assert_eq!(select(&m, None, "default/r1", CLUSTER), None);
    assert_eq!(select(&m, None, "", ""), None);
}
