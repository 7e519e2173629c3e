//! Scenarios made by editing the repository's own: the input picks a seed
//! scenario and a few edits (a value replaced by an edge case or by a part
//! of another seed, an entry removed, duplicated, added or renamed), so that
//! most inputs parse and reach the loader's checks, where text mutation
//! rarely gets.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

mod common;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(text) = build(&mut u) {
        common::check(&text);
    }
});

fn build(u: &mut Unstructured) -> Result<String> {
    let mut doc = u.choose(seeds())?.clone();
    for _ in 0..u.int_in_range(1..=6u8)? {
        edit(&mut doc, u)?;
    }
    let yaml = if u.arbitrary()? { serde_saphyr::to_string(&doc).ok() } else { None };
    Ok(yaml.unwrap_or_else(|| serde_json::to_string_pretty(&doc).expect("a JSON value serialises")))
}

/// The scenarios and fixtures of the repository, as YAML trees.
fn seeds() -> &'static [Value] {
    static SEEDS: OnceLock<Vec<Value>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let repository = common::repository();
        let mut files = common::yaml_files(&repository.join("scenarios"));
        files.extend(common::yaml_files(&repository.join("harness/tests/fixtures")));
        let seeds: Vec<Value> = files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .filter_map(|text| serde_saphyr::from_str(&text).ok())
            .collect();
        assert!(!seeds.is_empty(), "no seed scenarios below {}", repository.display());
        seeds
    })
}

#[derive(Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every node's path, parents first.
fn paths(value: &Value) -> Vec<Vec<Seg>> {
    fn walk(value: &Value, here: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        out.push(here.clone());
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    here.push(Seg::Key(key.clone()));
                    walk(child, here, out);
                    here.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    here.push(Seg::Index(i));
                    walk(child, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn at<'a>(value: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(value, |value, seg| match seg {
        Seg::Key(key) => &mut value[key.as_str()],
        Seg::Index(i) => &mut value[*i],
    })
}

fn edit(doc: &mut Value, u: &mut Unstructured) -> Result<()> {
    let path = u.choose(&paths(doc))?.clone();
    match u.int_in_range(0..=6u8)? {
        0 => *at(doc, &path) = value(u)?,
        1 => {
            // Remove the node from its parent.
            let Some((last, parent)) = path.split_last() else { return Ok(()) };
            match (at(doc, parent), last) {
                (Value::Object(map), Seg::Key(key)) => {
                    map.shift_remove(key);
                }
                (Value::Array(items), Seg::Index(i)) => {
                    items.remove(*i);
                }
                _ => {}
            }
        }
        2 => {
            // Duplicate an entry of a list (declared twice, applied twice).
            let Some((Seg::Index(i), parent)) = path.split_last() else { return Ok(()) };
            if let Value::Array(items) = at(doc, parent) {
                let copy = items[*i].clone();
                items.insert(*i, copy);
            }
        }
        3 | 4 => {
            // Add a field, or an entry to a list.
            let (key, new) = (key(u)?, value(u)?);
            match at(doc, &path) {
                Value::Object(map) => {
                    map.insert(key, new);
                }
                Value::Array(items) => items.push(new),
                node => *node = Value::Object(Map::from_iter([(key, new)])),
            }
        }
        5 => {
            // Rename a field.
            let Some((Seg::Key(old), parent)) = path.split_last() else { return Ok(()) };
            let new = key(u)?;
            if let Value::Object(map) = at(doc, parent) {
                if let Some(v) = map.shift_remove(old) {
                    map.insert(new, v);
                }
            }
        }
        _ => {
            // Swap in a number near the one there.
            if let Value::Number(n) = at(doc, &path).clone() {
                let n = n.as_i64().unwrap_or(0);
                let delta: i8 = u.arbitrary()?;
                *at(doc, &path) = Value::from(n.saturating_add(i64::from(delta)));
            }
        }
    }
    Ok(())
}

fn value(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => Value::String(u.choose(STRINGS)?.to_string()),
        1 => Value::String(u.arbitrary()?),
        2 => number(u)?,
        3 => {
            // A part of some seed.
            let seed = u.choose(seeds())?;
            let path = u.choose(&paths(seed))?.clone();
            let mut seed = seed.clone();
            at(&mut seed, &path).take()
        }
        4 => u.choose(&[Value::Null, Value::Bool(true), Value::Bool(false)])?.clone(),
        _ => {
            if u.arbitrary()? {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        }
    })
}

fn number(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => Value::from(*u.choose(&[
            0i64,
            1,
            -1,
            2,
            64,
            65,
            5000,
            5001,
            65535,
            65536,
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
            i64::MAX,
            i64::MIN,
        ])?),
        1 => Value::from(*u.choose(&[u64::MAX, u64::MAX - 1, 1 << 63])?),
        2 => Value::from(u.arbitrary::<i64>()?),
        _ => serde_json::Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
    })
}

fn key(u: &mut Unstructured) -> Result<String> {
    if u.ratio(1, 8)? {
        u.arbitrary()
    } else {
        Ok(u.choose(KEYS)?.to_string())
    }
}

/// Field names of a scenario file (see `scenario::document`).
#[rustfmt::skip]
const KEYS: &[&str] = &[
    "name", "description", "features", "plugins", "services", "routes", "resources", "policies", "gateway",
    "steps", "env", "module", "tag", "layout", "host", "port", "hosts", "path", "service", "apiVersion", "kind",
    "metadata", "namespace", "spec", "url", "sha256", "imagePullPolicy", "imagePullSecret", "pluginConfig",
    "pluginName", "phase", "priority", "failStrategy", "vmConfig", "defaultConfig", "defaultConfigDisable",
    "matchRules", "valueFrom", "value", "ingress", "domain", "config", "configDisable", "request", "expect",
    "filters", "push", "apply", "delete", "reload", "registry", "eventually", "expect_update", "expected_failure",
    "reason", "matches", "when", "unless", "load", "after", "change", "version", "http1", "http2", "rate",
    "duration", "header", "from", "to", "errors", "status", "closes", "switch_within", "plugin", "method",
    "headers", "body", "contains", "equals", "json", "backend", "regex", "absent", "order", "exact", "wasm",
    "native", "times", "within", "every", "streams", "long", "delay", "chunks", "size", "details", "always",
    "across",
];

/// Values with a meaning somewhere in a scenario file, and edge cases.
#[rustfmt::skip]
const STRINGS: &[&str] = &[
    "", " ", "/", "//", "a/b", "/a", "a/", "*", "é", "\u{0}", "\n", "GET",
    "stamp", "stamp-v2", "probe", "fault", "corrupt", "Stamp", "-stamp", "stamp.",
    "plugin://", "plugin://stamp", "plugin://stamp:", "plugin://:v1", "plugin://stamp:v2", "plugin://stamp:a:b", "oci://x",
    "extensions.istio.io/v1alpha1", "extensions.higress.io/v1alpha1", "WasmPlugin",
    "security.istio.io/v1", "AuthorizationPolicy", "RequestAuthentication",
    "istio-system", "higress-system", "istio-system/stamp",
    "agent-fetch", "native-filters", "direct-delivery", "legacy-fail-open", "traffic-extensions",
    "route-name-property", "xds-properties",
    "expectation", "rejected", "exited", "deadline", "transport", "provisioning", "setup",
    "applied", "unchanged", "stop", "none", "graceful", "drain", "once",
    "oci", "compat", "docker", "single-wasm-layer",
    "AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE", "FAIL_CLOSE", "FAIL_OPEN",
    "IfNotPresent", "Always", "UNSPECIFIED_POLICY", "INLINE", "HOST",
    "0s", "0ns", "1ns", "1ms", "500ms", "1s", "2s", "5s", "59s", "60s", "61s", "1h", "100y",
    "18446744073709551615s", "18446744073709551616s", "18446744073709551615s 999999999ns",
    "99999999999999999999999999h", "1s 1s", "-1s", "s",
    "(", "[", "\\", "a{99999}", "(?x)", ".*", "^$",
    "envoy.filters.http.router", "router", "jwt_authn", "rbac", "wasm: a/b",
];
