//! Mutants of a scenario: each changes one expectation of one step (an
//! expected header value, a status, a body, an order, a reload's claims,
//! what a change must do to the gateway). A scenario that still passes
//! with a mutant does not check what that expectation claims.
//!
//! A value becomes a made-up one (`VALUE-mutant`), and also each value the
//! scenario expects of the same header or status elsewhere: those are what
//! the system plausibly answers instead (the global config instead of a
//! rule's, 403 instead of 200). A header expected present is also expected
//! absent, and the reverse. A reload's claims become ones that hold
//! together with the scenario's only where its check saw nothing to judge
//! (every stream cut instead of every stream completed), and its
//! tolerances become stricter. `docs/audit.md` says what each class proves.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::scenario::{
    Action, BackendExpect, BodyExpect, Closes, Errors, Expect, Feature, FilterOrder, HeaderExpect, LogsExpect, LongEnd,
    Reload, Scenario, StatExpect, StatRange, Step, TcpExchange, TcpReload, UpdateExpect,
};

/// Appended to a value to make it a different one.
const MUTANT: &str = "-mutant";

/// One changed expectation.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// Index of the step in the scenario.
    pub step: usize,
    pub line: u64,
    /// What kind of expectation changed (`status`, `reload flips`, ...).
    pub class: &'static str,
    /// What changed, as `what: before -> after`.
    pub change: String,
    /// The step with the changed expectation.
    pub mutated: Step,
}

/// Every mutant of every step of `scenario` on a target with `features`,
/// in step order. A step whose `expected_failure` mark holds there has
/// none: its expectation is known not to hold there, and what it pins is
/// the failure the mark names. Where the mark does not hold the step must
/// pass, so it is mutated like any other.
pub fn mutants(scenario: &Scenario, features: &BTreeSet<Feature>) -> Vec<Mutant> {
    let siblings = Siblings::of(scenario);
    let mut all = Vec::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        if step.expected_failure.as_ref().is_some_and(|mark| mark.applies(features)) {
            continue;
        }
        for (class, change, action) in actions(&step.action, &siblings) {
            let mutated = Step { action, ..step.clone() };
            all.push(Mutant { step: index, line: step.line, class, change, mutated });
        }
    }
    all
}

/// The values a scenario expects anywhere: per header name, and statuses.
#[derive(Default)]
struct Siblings {
    headers: BTreeMap<String, Vec<String>>,
    statuses: Vec<u16>,
}

impl Siblings {
    fn of(scenario: &Scenario) -> Self {
        let mut siblings = Siblings::default();
        for step in &scenario.steps {
            let Action::Request { expect, .. } = &step.action else { continue };
            siblings.statuses.extend(expect.status);
            let backend = expect.backend.iter().flat_map(|b| &b.headers);
            for (name, want) in expect.headers.iter().chain(backend) {
                if let HeaderExpect::Equals(value) = want {
                    siblings.headers.entry(name.to_ascii_lowercase()).or_default().push(value.clone());
                }
            }
        }
        siblings.statuses.sort_unstable();
        siblings.statuses.dedup();
        for values in siblings.headers.values_mut() {
            values.sort();
            values.dedup();
        }
        siblings
    }

    fn header<'a>(&'a self, name: &str, except: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.headers.get(&name.to_ascii_lowercase()).into_iter().flatten().filter(move |v| *v != except)
    }
}

/// (class, change, mutated action) for each mutant of one step's action.
type Mutated = (&'static str, String, Action);

fn actions(action: &Action, siblings: &Siblings) -> Vec<Mutated> {
    match action {
        Action::Request { request, expect } => expect_mutants(expect, siblings)
            .into_iter()
            .map(|(class, change, expect)| {
                (class, change, Action::Request { request: request.clone(), expect: Box::new(expect) })
            })
            .collect(),
        Action::Filters(order) => {
            order_mutants(order).into_iter().map(|(c, o)| ("filters", c, Action::Filters(o))).collect()
        }
        Action::Change { change, expect, within } => {
            let flips: &[UpdateExpect] = match expect {
                None => &[UpdateExpect::Rejected, UpdateExpect::Applied],
                Some(UpdateExpect::Applied) => &[UpdateExpect::Rejected, UpdateExpect::Unchanged],
                Some(UpdateExpect::Rejected) => &[UpdateExpect::Applied],
                Some(UpdateExpect::Unchanged) => &[UpdateExpect::Applied, UpdateExpect::Rejected],
            };
            let was = expect.map_or("(applied or unchanged)", UpdateExpect::name);
            flips
                .iter()
                .map(|flipped| {
                    (
                        "expect_update",
                        format!("expect_update: {was} -> {}", flipped.name()),
                        Action::Change { change: change.clone(), expect: Some(*flipped), within: *within },
                    )
                })
                .collect()
        }
        Action::Reload(reload) => reload_mutants(reload)
            .into_iter()
            .map(|(class, change, r)| (class, change, Action::Reload(Box::new(r))))
            .collect(),
        Action::Stats(expects) => stats_mutants(expects)
            .into_iter()
            .map(|(change, expects)| ("stats", change, Action::Stats(expects)))
            .collect(),
        Action::Logs(expect) => {
            logs_mutants(expect).into_iter().map(|(change, expect)| ("logs", change, Action::Logs(expect))).collect()
        }
        Action::TcpReload(reload) => tcp_reload_mutants(reload)
            .into_iter()
            .map(|(class, change, r)| (class, change, Action::TcpReload(Box::new(r))))
            .collect(),
        Action::Tcp(exchange) => tcp_mutants(&exchange.expect)
            .into_iter()
            .map(|(change, expect)| ("tcp", change, Action::Tcp(TcpExchange { expect, ..exchange.clone() })))
            .collect(),
        // A cycle has no expectation of its own: each change must be taken.
        Action::Cycle { .. } | Action::StopRegistry | Action::ReplaceGateway | Action::RestartGateway => Vec::new(),
    }
}

/// Other bytes, and the leading `[stamp]`s in reverse order where there are
/// two or more (the order of a chain of network filters).
fn tcp_mutants(expect: &str) -> Vec<(String, String)> {
    let mut mutants = vec![(format!("expect: {expect:?} -> other bytes"), other(expect))];
    let mut stamps = Vec::new();
    let mut rest = expect;
    while let Some(stamp) = rest.strip_prefix('[').and_then(|r| r.find(']')).map(|end| &rest[..end + 2]) {
        stamps.push(stamp);
        rest = &rest[stamp.len()..];
    }
    if stamps.len() > 1 && stamps.windows(2).any(|w| w[0] != w[1]) {
        let reversed: String = stamps.iter().rev().copied().chain([rest]).collect();
        mutants.push((format!("expect: {expect:?} -> {reversed:?}"), reversed));
    }
    mutants
}

fn other(value: &str) -> String {
    format!("{value}{MUTANT}")
}

fn expect_mutants(expect: &Expect, siblings: &Siblings) -> Vec<(&'static str, String, Expect)> {
    let mut out = Vec::new();
    if let Some(status) = expect.status {
        let made_up = if status >= 599 { status - 1 } else { status + 1 };
        let others = siblings.statuses.iter().copied().filter(|s| *s != status && *s != made_up);
        for mutated in std::iter::once(made_up).chain(others) {
            out.push((
                "status",
                format!("status: {status} -> {mutated}"),
                Expect { status: Some(mutated), ..expect.clone() },
            ));
        }
    }
    if let Some(details) = &expect.details {
        let mutated = other(details);
        out.push((
            "details",
            format!("details: {details:?} -> {mutated:?}"),
            Expect { details: Some(mutated), ..expect.clone() },
        ));
    }
    for (change, headers) in header_mutants(&expect.headers, siblings) {
        out.push(("header", format!("header {change}"), Expect { headers, ..expect.clone() }));
    }
    if let Some(body) = &expect.body {
        for (change, body) in body_mutants(body) {
            out.push(("body", format!("body {change}"), Expect { body: Some(body), ..expect.clone() }));
        }
    }
    if let Some(backend) = &expect.backend {
        for (change, backend) in backend_mutants(backend, siblings) {
            out.push(("backend", format!("backend {change}"), Expect { backend: Some(backend), ..expect.clone() }));
        }
    }
    out
}

type Headers = BTreeMap<String, HeaderExpect>;

/// For each header: its value changed (made up, and to every other value
/// the scenario expects of it); a list (`a,b`) also reversed; present made
/// absent, absent made present. Each as (`NAME: change`, the headers).
fn header_mutants(headers: &Headers, siblings: &Siblings) -> Vec<(String, Headers)> {
    let present = regex::Regex::new("").expect("the empty regex is valid");
    let mut out = Vec::new();
    for (name, want) in headers {
        let mut replace = |change: String, with: HeaderExpect| {
            let mut mutated = headers.clone();
            mutated.insert(name.clone(), with);
            out.push((format!("{name}: {change}"), mutated));
        };
        match want {
            HeaderExpect::Equals(value) => {
                replace(format!("{value:?} -> {:?}", other(value)), HeaderExpect::Equals(other(value)));
                let reversed = reversed_list(value);
                if let Some(reversed) = &reversed {
                    replace(format!("{value:?} -> {reversed:?} (order)"), HeaderExpect::Equals(reversed.clone()));
                }
                for sibling in siblings.header(name, value).filter(|s| Some(*s) != reversed.as_ref()) {
                    replace(format!("{value:?} -> {sibling:?}"), HeaderExpect::Equals(sibling.clone()));
                }
                replace(format!("{value:?} -> absent"), HeaderExpect::Absent);
            }
            HeaderExpect::Absent => replace("absent -> present".to_owned(), HeaderExpect::Matches(present.clone())),
            HeaderExpect::Matches(re) => replace(format!("~/{}/ -> absent", re.as_str()), HeaderExpect::Absent),
        }
    }
    out
}

/// `a,b` -> `b,a` (and `a, b` -> `b, a`); None when there is no list or
/// reversing changes nothing.
fn reversed_list(value: &str) -> Option<String> {
    let separator = if value.contains(", ") { ", " } else { "," };
    let items: Vec<&str> = value.split(separator).collect();
    let reversed: Vec<&str> = items.iter().rev().copied().collect();
    (items.len() > 1 && reversed != items).then(|| reversed.join(separator))
}

fn body_mutants(body: &BodyExpect) -> Vec<(String, BodyExpect)> {
    let mut out = Vec::new();
    if let Some(text) = &body.contains {
        out.push((
            format!("contains {text:?} -> {:?}", other(text)),
            BodyExpect { contains: Some(other(text)), ..body.clone() },
        ));
    }
    if let Some(text) = &body.equals {
        out.push((
            format!("equals {text:?} -> {:?}", other(text)),
            BodyExpect { equals: Some(other(text)), ..body.clone() },
        ));
    }
    for (pointer, value) in &body.json {
        let mutated = other_json(value);
        let mut json = body.json.clone();
        json.insert(pointer.clone(), mutated.clone());
        out.push((format!("{pointer}: {value} -> {mutated}"), BodyExpect { json, ..body.clone() }));
    }
    out
}

fn other_json(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(other(s)),
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) => n.as_i64().map_or_else(|| Value::String(other(&n.to_string())), |i| Value::from(i + 1)),
        other_value => Value::String(other(&other_value.to_string())),
    }
}

fn backend_mutants(backend: &BackendExpect, siblings: &Siblings) -> Vec<(String, BackendExpect)> {
    type Field = fn(&mut BackendExpect) -> &mut Option<String>;
    let mut out = Vec::new();
    let fields: [(&str, &Option<String>, Field); 3] = [
        ("service", &backend.service, |b| &mut b.service),
        ("method", &backend.method, |b| &mut b.method),
        ("path", &backend.path, |b| &mut b.path),
    ];
    for (key, value, field) in fields {
        if let Some(value) = value {
            let mut mutated = backend.clone();
            *field(&mut mutated) = Some(other(value));
            out.push((format!("{key}: {value:?} -> {:?}", other(value)), mutated));
        }
    }
    for (change, headers) in header_mutants(&backend.headers, siblings) {
        out.push((format!("header {change}"), BackendExpect { headers, ..backend.clone() }));
    }
    out
}

/// Each pair of neighbours swapped, and the whole order reversed where
/// that is not one of the swaps.
fn order_mutants(order: &FilterOrder) -> Vec<(String, FilterOrder)> {
    let filters = &order.order;
    let mut out: Vec<(String, FilterOrder)> = (1..filters.len())
        .filter(|i| filters[i - 1] != filters[*i])
        .map(|i| {
            let mut swapped = order.clone();
            swapped.order.swap(i - 1, i);
            (format!("filters: {} <-> {}", filters[i - 1], filters[i]), swapped)
        })
        .collect();
    let mut reversed = order.clone();
    reversed.order.reverse();
    if reversed.order != *filters && !out.iter().any(|(_, o)| o.order == reversed.order) {
        let names: Vec<String> = reversed.order.iter().map(ToString::to_string).collect();
        out.push((format!("filters: reversed ({})", names.join(", ")), reversed));
    }
    out
}

/// Every reload check's mutant: `from` and `to` made up; `closes` the
/// other way; `switch_within` zero (no connection answers the new version
/// the instant the change begins); a made-up `status` (every response then
/// fails); `errors` one fewer, and "every request failed"; answers after a
/// switch back on `from`; every long stream cut; long streams answering
/// the other version.
fn reload_mutants(reload: &Reload) -> Vec<(&'static str, String, Reload)> {
    let version = &reload.version;
    let mut out = Vec::new();
    let mut push = |class: &'static str, change: String, mutate: &dyn Fn(&mut Reload)| {
        let mut mutated = reload.clone();
        mutate(&mut mutated);
        out.push((class, change, mutated));
    };
    let to = other(&version.to);
    push("reload to", format!("reload to: {:?} -> {to:?}", version.to), &|r| r.version.to = to.clone());
    let from = other(&version.from);
    push("reload from", format!("reload from: {:?} -> {from:?}", version.from), &|r| r.version.from = from.clone());
    // `graceful` allows closes without requiring any: only `none` is stricter.
    let closes = match reload.closes {
        Closes::None => Closes::Drain,
        Closes::Graceful | Closes::Drain => Closes::None,
    };
    push("reload closes", format!("reload closes: {} -> {}", closes_name(reload.closes), closes_name(closes)), &|r| {
        r.closes = closes
    });
    push("reload switch_within", format!("reload switch_within: {:?} -> 0ns", reload.switch_within), &|r| {
        r.switch_within = Duration::ZERO
    });
    let status = if reload.status >= 599 { reload.status - 1 } else { reload.status + 1 };
    push("reload status", format!("reload status: {} -> {status}", reload.status), &|r| r.status = status);
    for (change, errors) in errors_mutants(reload.errors) {
        push("reload errors", change, &|r| r.errors = errors);
    }
    let claims = &reload.claims;
    push("reload flips", format!("reload after a switch: {:?} -> {:?}", claims.after_switch, version.from), &|r| {
        r.claims.after_switch = version.from.clone()
    });
    if reload.load.long.is_some() {
        push("long completion", "long streams: completed -> cut".to_owned(), &|r| r.claims.long_end = LongEnd::Cut);
        push(
            "long version",
            format!("long streams started before the change: {:?} -> {:?}", claims.long_before, version.to),
            &|r| r.claims.long_before = version.to.clone(),
        );
        push(
            "long version",
            format!("long streams started after the switch: {:?} -> {:?}", claims.long_after, version.from),
            &|r| r.claims.long_after = version.from.clone(),
        );
    }
    out
}

/// Every check of a reload under TCP load: `from`, `to` made up; what held
/// connections answer after the change the new stamps; `closes` the other
/// way; `switch_within` zero; `errors` one fewer, and "every exchange failed".
fn tcp_reload_mutants(reload: &TcpReload) -> Vec<(&'static str, String, TcpReload)> {
    let mut out = Vec::new();
    let mut push = |class: &'static str, change: String, mutate: &dyn Fn(&mut TcpReload)| {
        let mut mutated = reload.clone();
        mutate(&mut mutated);
        out.push((class, change, mutated));
    };
    let to = other(&reload.to);
    push("reload to", format!("reload to: {:?} -> {to:?}", reload.to), &|r| r.to = to.clone());
    let from = other(&reload.from);
    push("reload from", format!("reload from: {:?} -> {from:?}", reload.from), &|r| r.from = from.clone());
    push(
        "reload held",
        format!("held connections after the change: {:?} -> {:?}", reload.held_after, reload.to),
        &|r| r.held_after = reload.to.clone(),
    );
    let closes = if reload.closes == Closes::None { Closes::Drain } else { Closes::None };
    push("reload closes", format!("reload closes: {} -> {}", closes_name(reload.closes), closes_name(closes)), &|r| {
        r.closes = closes
    });
    push("reload switch_within", format!("reload switch_within: {:?} -> 0ns", reload.switch_within), &|r| {
        r.switch_within = Duration::ZERO
    });
    for (change, errors) in errors_mutants(reload.errors) {
        push("reload errors", change, &|r| r.errors = errors);
    }
    out
}

/// Each bound of each stat moved just past the other side: an exact value
/// one more; `min` alone as "at most min - 1"; `max` alone as "at least
/// max + 1"; both, each of those.
fn stats_mutants(expects: &[StatExpect]) -> Vec<(String, Vec<StatExpect>)> {
    let mut out = Vec::new();
    for (index, expect) in expects.iter().enumerate() {
        let range = expect.range;
        let ranges: Vec<StatRange> = match (range.min, range.max) {
            (Some(min), Some(max)) if min == max => vec![StatRange::exactly(min + 1)],
            (min, max) => {
                let below = min.map(|min| StatRange { min: None, max: Some(min - 1) });
                let above = max.map(|max| StatRange { min: Some(max + 1), max: None });
                below.into_iter().chain(above).collect()
            }
        };
        for mutated in ranges {
            let mut all = expects.to_vec();
            all[index].range = mutated;
            out.push((format!("stats {}: {range} -> {mutated}", expect.name), all));
        }
    }
    out
}

/// The pattern made up (unless no line may match), and the count one more,
/// or for "at least one", none.
fn logs_mutants(expect: &LogsExpect) -> Vec<(String, LogsExpect)> {
    let mut out = Vec::new();
    let pattern = expect.pattern.as_str();
    if expect.count != Some(0) {
        let made_up = regex::Regex::new(&other(&format!("(?:{pattern})"))).expect("the pattern, then a literal");
        out.push((
            format!("logs matches: /{pattern}/ -> /{made_up}/"),
            LogsExpect { pattern: made_up, ..expect.clone() },
        ));
    }
    let (count, was) = match expect.count {
        Some(count) => (count + 1, count.to_string()),
        None => (0, "at least 1".to_owned()),
    };
    out.push((format!("logs count: {was} -> {count}"), LogsExpect { count: Some(count), ..expect.clone() }));
    out
}

/// `errors: N` one fewer, and "every one failed".
fn errors_mutants(errors: Errors) -> Vec<(String, Errors)> {
    let Errors::AtMost(most) = errors else { return Vec::new() };
    let fewer = most.checked_sub(1).map(|fewer| (format!("reload errors: {most} -> {fewer}"), Errors::AtMost(fewer)));
    fewer.into_iter().chain([(format!("reload errors: at most {most} -> every one"), Errors::All)]).collect()
}

fn closes_name(closes: Closes) -> &'static str {
    match closes {
        Closes::None => "none",
        Closes::Graceful => "graceful",
        Closes::Drain => "drain",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::scenario::load_file;

    fn scenario(yaml: &str) -> Scenario {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, yaml).expect("write");
        let modules: BTreeSet<String> = ["stamp".to_owned()].into();
        load_file(&path, Path::new(dir.path()), &modules).expect("the scenario loads")
    }

    const BASE: &str = "
plugins: {stamp: {module: stamp}}
services: [{name: echo}]
routes: [{name: default/web, hosts: ['*'], service: echo}]
resources:
  - {apiVersion: extensions.istio.io/v1alpha1, kind: WasmPlugin, metadata: {name: stamp}, spec: {url: plugin://stamp}}
steps:
";

    fn changes_on(steps: &str, features: &[Feature]) -> Vec<String> {
        let features: BTreeSet<Feature> = features.iter().copied().collect();
        let scenario = scenario(&format!("{BASE}{steps}"));
        mutants(&scenario, &features).into_iter().map(|m| format!("{}: {}", m.line, m.change)).collect()
    }

    fn changes(steps: &str) -> Vec<String> {
        changes_on(steps, &[])
    }

    #[test]
    fn a_request_mutates_each_expectation_once() {
        let found = changes(
            "  - request: {host: a}
    expect:
      status: 200
      headers: {x-a: 'p,q', x-b: {absent: true}, x-c: {regex: '^v'}}
      body: {contains: hi, json: {/n: 1, /ok: true}}
      backend: {service: echo, headers: {x-d: d}}
",
        );
        assert_eq!(
            found,
            [
                "8: status: 200 -> 201",
                "8: header x-a: \"p,q\" -> \"p,q-mutant\"",
                "8: header x-a: \"p,q\" -> \"q,p\" (order)",
                "8: header x-a: \"p,q\" -> absent",
                "8: header x-b: absent -> present",
                "8: header x-c: ~/^v/ -> absent",
                "8: body contains \"hi\" -> \"hi-mutant\"",
                "8: body /n: 1 -> 2",
                "8: body /ok: true -> false",
                "8: backend service: \"echo\" -> \"echo-mutant\"",
                "8: backend header x-d: \"d\" -> \"d-mutant\"",
                "8: backend header x-d: \"d\" -> absent",
            ]
        );
    }

    #[test]
    fn values_the_scenario_expects_elsewhere_are_mutants_too() {
        let found = changes(
            "  - request: {host: a}
    expect: {status: 200, headers: {x-stamp: rule}}
  - request: {host: b}
    expect: {status: 403, headers: {x-stamp: global}}
",
        );
        assert_eq!(
            &found[..4],
            [
                "8: status: 200 -> 201",
                "8: status: 200 -> 403",
                "8: header x-stamp: \"rule\" -> \"rule-mutant\"",
                "8: header x-stamp: \"rule\" -> \"global\"",
            ]
        );
        assert!(found.contains(&"10: header x-stamp: \"global\" -> \"rule\"".to_owned()), "{found:?}");
    }

    #[test]
    fn orders_and_changes() {
        let found = changes(
            "  - filters: {order: [a, b, c]}
  - apply: {apiVersion: extensions.istio.io/v1alpha1, kind: WasmPlugin, metadata: {name: stamp}, spec: {url: plugin://stamp}}
    expect_update: rejected
  - delete: stamp
  - filters: {order: [a, b]}
",
        );
        assert_eq!(
            found,
            [
                "8: filters: a <-> b",
                "8: filters: b <-> c",
                "8: filters: reversed (c, b, a)",
                "9: expect_update: rejected -> applied",
                "11: expect_update: (applied or unchanged) -> rejected",
                "11: expect_update: (applied or unchanged) -> applied",
                "12: filters: a <-> b",
            ]
        );
    }

    #[test]
    fn a_marked_step_is_mutated_where_its_mark_does_not_hold() {
        let steps = "  - request: {host: a}
    expect: {status: 200}
    expected_failure: {reason: known, matches: '\\+status', unless: [traffic-extensions]}
";
        assert!(changes(steps).is_empty(), "the mark holds without the feature: no mutant");
        assert_eq!(
            changes_on(steps, &[Feature::TrafficExtensions]),
            ["8: status: 200 -> 201"],
            "with the feature the mark does not hold, and the step must pass"
        );
    }

    #[test]
    fn every_reload_check_has_a_mutant() {
        let found = changes(
            "  - reload:
      load: {host: r, duration: 6s, long: {http2: 1, delay: 2s, chunks: 2, every: 250ms}}
      change: {delete: stamp}
      version: {header: x-stamp, from: a, to: b}
      expect: {errors: 2}
",
        );
        assert_eq!(
            found,
            [
                "8: reload to: \"b\" -> \"b-mutant\"",
                "8: reload from: \"a\" -> \"a-mutant\"",
                "8: reload closes: none -> drain",
                "8: reload switch_within: 2s -> 0ns",
                "8: reload status: 200 -> 201",
                "8: reload errors: 2 -> 1",
                "8: reload errors: at most 2 -> every one",
                "8: reload after a switch: \"b\" -> \"a\"",
                "8: long streams: completed -> cut",
                "8: long streams started before the change: \"a\" -> \"b\"",
                "8: long streams started after the switch: \"b\" -> \"a\"",
            ]
        );
    }

    #[test]
    fn every_tcp_reload_check_has_a_mutant() {
        use crate::scenario::{Change, TcpLoadPlan};
        let reload = TcpReload {
            listener: "raw".into(),
            load: TcpLoadPlan { held: 1, every: Duration::from_millis(100), rate: 1, duration: Duration::from_secs(6) },
            after: Duration::from_secs(1),
            change: Change::Delete { namespace: "n".into(), name: "a".into() },
            from: "[a]".into(),
            to: "[b]".into(),
            errors: Errors::AtMost(0),
            closes: Closes::Drain,
            switch_within: Duration::from_secs(2),
            held_after: "[a]".into(),
        };
        let found: Vec<String> = tcp_reload_mutants(&reload).into_iter().map(|(_, change, _)| change).collect();
        assert_eq!(
            found,
            [
                "reload to: \"[b]\" -> \"[b]-mutant\"",
                "reload from: \"[a]\" -> \"[a]-mutant\"",
                "held connections after the change: \"[a]\" -> \"[b]\"",
                "reload closes: drain -> none",
                "reload switch_within: 2s -> 0ns",
                "reload errors: at most 0 -> every one",
            ]
        );
    }

    #[test]
    fn each_stat_bound_moves_past_the_other_side() {
        let expect =
            |name: &str, min, max| StatExpect { name: name.into(), range: StatRange { min, max }, delta: false };
        let expects = [expect("a", Some(2), Some(2)), expect("b", Some(1), Some(5)), expect("c", None, Some(7))];
        let found: Vec<String> = stats_mutants(&expects).into_iter().map(|(change, _)| change).collect();
        assert_eq!(
            found,
            [
                "stats a: 2 -> 3",
                "stats b: 1 to 5 -> at most 0",
                "stats b: 1 to 5 -> at least 6",
                "stats c: at most 7 -> at least 8"
            ]
        );
    }

    #[test]
    fn a_log_pattern_is_made_up_and_its_count_moved() {
        let expect = |count| LogsExpect { pattern: regex::Regex::new(r"request \d+").expect("a pattern"), count };
        let found: Vec<String> = logs_mutants(&expect(None)).into_iter().map(|(change, _)| change).collect();
        assert_eq!(found, [r"logs matches: /request \d+/ -> /(?:request \d+)-mutant/", "logs count: at least 1 -> 0"]);
        let found: Vec<String> = logs_mutants(&expect(Some(0))).into_iter().map(|(change, _)| change).collect();
        assert_eq!(found, ["logs count: 0 -> 1"], "no line may match: another pattern matches none either");
    }

    #[test]
    fn a_mutant_holds_a_different_expectation() {
        let s = scenario(&format!("{BASE}  - request: {{host: a}}\n    expect: {{status: 200}}\n"));
        let [mutant] = mutants(&s, &BTreeSet::new()).try_into().expect("one mutant");
        let Action::Request { expect, .. } = &mutant.mutated.action else { panic!("a request") };
        assert_eq!(expect.status, Some(201));
        assert_eq!((mutant.step, mutant.class), (0, "status"));
    }

    #[test]
    fn tcp_bytes_and_the_order_of_their_stamps_are_mutated() {
        let mutants: Vec<String> = tcp_mutants("[a][b]ping").into_iter().map(|(_, m)| m).collect();
        assert_eq!(mutants, [other("[a][b]ping"), "[b][a]ping".to_owned()]);
        assert_eq!(tcp_mutants("[a]ping").len(), 1, "one stamp has no order");
        assert_eq!(tcp_mutants("[a][a]x").len(), 1, "the same stamp twice reads the same reversed");
    }

    #[test]
    fn reversed_lists() {
        assert_eq!(reversed_list("a,b,c").as_deref(), Some("c,b,a"));
        assert_eq!(reversed_list("x, y").as_deref(), Some("y, x"));
        assert_eq!(reversed_list("single"), None);
        assert_eq!(reversed_list("a,a"), None);
    }
}
