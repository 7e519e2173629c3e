//! Reading Envoy's `/config_dump`: listener states, ECDS resources and the
//! HTTP filter chain.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Expected;

const LISTENERS_DUMP: &str = "type.googleapis.com/envoy.admin.v3.ListenersConfigDump";
const ECDS_DUMP: &str = "type.googleapis.com/envoy.admin.v3.EcdsConfigDump";
const ROUTES_DUMP: &str = "type.googleapis.com/envoy.admin.v3.RoutesConfigDump";
const HCM: &str = "envoy.filters.network.http_connection_manager";

#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// What is still missing.
    Pending(String),
    /// Envoy's own message for a rejected resource.
    Rejected(String),
}

fn sections<'a>(dump: &'a Value, type_url: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    dump["configs"].as_array().into_iter().flatten().filter(move |c| c["@type"] == type_url)
}

fn dynamic_listeners(dump: &Value) -> impl Iterator<Item = &Value> + '_ {
    sections(dump, LISTENERS_DUMP).flat_map(|s| s["dynamic_listeners"].as_array().into_iter().flatten())
}

fn ecds_filters(dump: &Value) -> impl Iterator<Item = &Value> + '_ {
    sections(dump, ECDS_DUMP).flat_map(|s| s["ecds_filters"].as_array().into_iter().flatten())
}

/// Every error state Envoy reports, as (`listener` or `ECDS`, the name,
/// details): what it says about the last update it refused.
fn errors(dump: &Value) -> impl Iterator<Item = (&'static str, &str, &str)> + '_ {
    let listeners = dynamic_listeners(dump)
        .filter_map(|l| Some(("listener", l["name"].as_str().unwrap_or("?"), l["error_state"]["details"].as_str()?)));
    let filters = ecds_filters(dump).filter_map(|f| {
        Some(("ECDS", f["ecds_filter"]["name"].as_str().unwrap_or("?"), f["error_state"]["details"].as_str()?))
    });
    listeners.chain(filters)
}

/// Every error state Envoy reports for a listener or an ECDS filter, as
/// (`listener NAME` or `ECDS NAME`, details).
pub fn error_details(dump: &Value) -> Vec<(String, String)> {
    errors(dump).map(|(kind, name, details)| (format!("{kind} {name}"), details.to_owned())).collect()
}

/// Whether `expected` is loaded; what Envoy refused of it, if it refused
/// some (not what it refused of others: an installed gateway may still be
/// draining an earlier scenario's).
pub fn readiness(dump: &Value, expected: &Expected) -> Readiness {
    let ours = |kind: &str, name: &str| {
        let names = if kind == "listener" { &expected.listeners } else { &expected.ecds };
        names.iter().any(|n| n == name)
    };
    if let Some((kind, name, details)) = errors(dump).find(|(kind, name, _)| ours(kind, name)) {
        return Readiness::Rejected(format!("{kind} {name}: {details}"));
    }
    for name in &expected.listeners {
        let active = dynamic_listeners(dump)
            .any(|l| l["name"] == name.as_str() && !l["active_state"].is_null() && l["warming_state"].is_null());
        if !active {
            return Readiness::Pending(format!("listener {name} is not active"));
        }
    }
    for name in &expected.ecds {
        if !ecds_filters(dump).any(|f| f["ecds_filter"]["name"] == name.as_str()) {
            return Readiness::Pending(format!("ECDS resource {name} is not loaded"));
        }
    }
    let routes = route_names(dump);
    if let Some(missing) = expected.routes.iter().find(|r| !routes.contains(r)) {
        return Readiness::Pending(format!("route {missing} is not loaded"));
    }
    Readiness::Ready
}

/// Whether the dump holds listener `name` active or warming: not removed,
/// or draining only.
pub fn serves(dump: &Value, name: &str) -> bool {
    dynamic_listeners(dump)
        .any(|l| l["name"] == name && (!l["active_state"].is_null() || !l["warming_state"].is_null()))
}

/// Every route name in every dynamic route configuration.
fn route_names(dump: &Value) -> Vec<String> {
    sections(dump, ROUTES_DUMP)
        .flat_map(|s| s["dynamic_route_configs"].as_array().into_iter().flatten())
        .flat_map(|c| c["route_config"]["virtual_hosts"].as_array().into_iter().flatten())
        .flat_map(|vh| vh["routes"].as_array().into_iter().flatten())
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect()
}

/// Prefix of the stats Envoy keeps per ECDS resource, then the layer of
/// the filter it configures (`ECDS_LAYERS`), then its name.
pub const ECDS_STATS_PREFIX: &str = "extension_config_discovery.";
/// An HTTP filter's ECDS stats, or a network filter's (a NETWORK plugin).
pub const ECDS_LAYERS: [&str; 2] = ["http_filter.", "network_filter."];

/// The stat names a filter's ECDS `counter` may have: one per layer, of
/// which only the filter's own exists.
pub fn ecds_stats<'a>(name: &'a str, counter: &'a str) -> impl Iterator<Item = String> + 'a {
    ECDS_LAYERS.into_iter().map(move |layer| format!("{ECDS_STATS_PREFIX}{layer}{name}.{counter}"))
}

/// Whether every expected ECDS resource has been applied, from Envoy's
/// stats: a Wasm filter counts only once its module compiled and its
/// plugin accepted the configuration, which is after it shows in the dump.
pub fn ecds_applied(stats: &BTreeMap<String, u64>, expected: &Expected) -> Readiness {
    for name in &expected.ecds {
        let stat = |what: &str| ecds_stats(name, what).filter_map(|s| stats.get(&s)).sum::<u64>();
        if stat("update_rejected") > 0 {
            return Readiness::Rejected(format!("ECDS {name}: the update was rejected"));
        }
        if stat("update_success") == 0 {
            return Readiness::Pending(format!("ECDS resource {name} is not applied yet"));
        }
    }
    Readiness::Ready
}

/// The HTTP filter names of the active listener `listener`, or of the only
/// active listener carrying an HTTP connection manager when `None`.
pub fn http_filters(dump: &Value, listener: Option<&str>) -> Result<Vec<String>, String> {
    let candidates: Vec<&Value> = dynamic_listeners(dump)
        .filter_map(|l| l.get("active_state").map(|s| &s["listener"]))
        .filter(|l| listener.is_none_or(|name| l["name"] == name))
        .filter(|l| hcm_of(l).is_some())
        .collect();
    let chosen = match (candidates.as_slice(), listener) {
        ([one], _) => *one,
        ([], Some(name)) => return Err(format!("no active listener named {name} with an HTTP connection manager")),
        ([], None) => return Err("no active listener with an HTTP connection manager".into()),
        (many, _) => {
            let names: Vec<&str> = many.iter().filter_map(|l| l["name"].as_str()).collect();
            return Err(format!("several listeners carry HTTP ({}); name one with `listener`", names.join(", ")));
        }
    };
    let hcm = hcm_of(chosen).expect("filtered on having one");
    Ok(hcm["typed_config"]["http_filters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str().map(str::to_owned))
        .collect())
}

/// The network filter names of the active listener `listener`, in its
/// first filter chain (the gateway's listeners have one).
pub fn network_filters(dump: &Value, listener: &str) -> Result<Vec<String>, String> {
    let active = dynamic_listeners(dump)
        .filter_map(|l| l.get("active_state").map(|s| &s["listener"]))
        .find(|l| l["name"] == listener)
        .ok_or_else(|| format!("no active listener named {listener}"))?;
    Ok(active["filter_chains"][0]["filters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str().map(str::to_owned))
        .collect())
}

fn hcm_of(listener: &Value) -> Option<&Value> {
    listener["filter_chains"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|chain| chain["filters"].as_array().into_iter().flatten())
        .find(|f| f["name"] == HCM)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn dump(listener_state: Value, ecds: Value) -> Value {
        json!({"configs": [
            {"@type": LISTENERS_DUMP, "dynamic_listeners": [listener_state]},
            {"@type": ECDS_DUMP, "ecds_filters": ecds},
        ]})
    }

    fn listener(filters: &[&str]) -> Value {
        let http_filters: Vec<Value> = filters.iter().map(|n| json!({"name": n})).collect();
        json!({"name": "gateway", "filter_chains": [{"filters": [
            {"name": HCM, "typed_config": {"http_filters": http_filters}}
        ]}]})
    }

    fn expected() -> Expected {
        Expected { listeners: vec!["gateway".into()], ecds: vec!["plug".into()], routes: vec![] }
    }

    #[test]
    fn ready_when_listener_active_and_ecds_loaded() {
        let d = dump(
            json!({"name": "gateway", "active_state": {"listener": listener(&[])}}),
            json!([{"ecds_filter": {"name": "plug"}}]),
        );
        assert_eq!(readiness(&d, &expected()), Readiness::Ready);
    }

    #[test]
    fn a_draining_listener_no_longer_serves() {
        let draining = dump(json!({"name": "gateway", "draining_state": {}}), json!([]));
        assert!(!serves(&draining, "gateway"));
        assert!(serves(&dump(json!({"name": "gateway", "warming_state": {}}), json!([])), "gateway"));
        assert!(!serves(&dump(json!({"name": "other", "active_state": {}}), json!([])), "gateway"));
    }

    #[test]
    fn pending_while_warming_or_ecds_missing() {
        let warming = dump(json!({"name": "gateway", "warming_state": {}}), json!([]));
        assert_eq!(readiness(&warming, &expected()), Readiness::Pending("listener gateway is not active".into()));
        let no_ecds = dump(json!({"name": "gateway", "active_state": {"listener": listener(&[])}}), json!([]));
        assert_eq!(readiness(&no_ecds, &expected()), Readiness::Pending("ECDS resource plug is not loaded".into()));
    }

    #[test]
    fn ecds_counts_once_applied_and_fails_when_rejected() {
        let stats = |success, rejected| -> BTreeMap<String, u64> {
            [("update_success", success), ("update_rejected", rejected)]
                .into_iter()
                .map(|(k, v)| (format!("{ECDS_STATS_PREFIX}http_filter.plug.{k}"), v))
                .collect()
        };
        assert_eq!(ecds_applied(&stats(1, 0), &expected()), Readiness::Ready);
        assert!(matches!(ecds_applied(&stats(0, 0), &expected()), Readiness::Pending(_)));
        assert!(matches!(ecds_applied(&stats(0, 1), &expected()), Readiness::Rejected(_)));
    }

    #[test]
    fn rejected_listener_reports_envoys_details() {
        let d = dump(json!({"name": "gateway", "error_state": {"details": "bad route"}}), json!([]));
        assert_eq!(readiness(&d, &expected()), Readiness::Rejected("listener gateway: bad route".into()));
    }

    #[test]
    fn http_filters_of_the_only_http_listener() {
        let d = dump(
            json!({"name": "gateway", "active_state": {"listener": listener(&["a", "envoy.filters.http.router"])}}),
            json!([]),
        );
        assert_eq!(http_filters(&d, None).unwrap(), ["a", "envoy.filters.http.router"]);
        assert!(http_filters(&d, Some("other")).is_err());
    }
}
