//! Filter names in `filters` steps: written symbolically (`wasm: NS/NAME`,
//! `native: router`) and resolved per target, since istiod versions name a
//! WasmPlugin's filter differently; or written literally, which must be
//! what this target calls it.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::profiles::Names;
use crate::scenario::{Flavor, Scenario};
use crate::translate::istiod::{IstiodVersion, Naming};

/// Envoy's native HTTP filters a scenario can name by their short name.
pub const NATIVE: &[&str] =
    &["router", "jwt_authn", "rbac", "cors", "fault", "grpc_stats", "ext_authz", "local_ratelimit"];

/// One entry of `filters.order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterRef {
    /// A name as Envoy's config dump shows it.
    Literal(String),
    /// The filter of the WasmPlugin `namespace/name`, as the target's istiod names it.
    Wasm { namespace: String, name: String },
    /// `envoy.filters.http.<name>`.
    Native(String),
}

impl FilterRef {
    /// The name this target's Envoy shows, the scenario's objects landed
    /// where `names` says.
    pub fn resolve(&self, istiod: IstiodVersion, names: &Names, scenario: &Scenario) -> String {
        match self {
            FilterRef::Literal(name) => name.clone(),
            FilterRef::Wasm { namespace, name } => {
                let naming = match scenario.flavor_of(namespace, name) {
                    Some(Flavor::TrafficExtension) => Naming::OwnTrafficExtension,
                    _ => istiod.naming(),
                };
                naming.filter_name(&names.namespace(namespace), &names.name(namespace, name))
            }
            FilterRef::Native(name) => format!("envoy.filters.http.{name}"),
        }
    }
}

impl fmt::Display for FilterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterRef::Literal(name) => f.write_str(name),
            FilterRef::Wasm { namespace, name } => write!(f, "wasm: {namespace}/{name}"),
            FilterRef::Native(name) => write!(f, "native: {name}"),
        }
    }
}

impl<'de> Deserialize<'de> for FilterRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RefVisitor;

        impl<'de> Visitor<'de> for RefVisitor {
            type Value = FilterRef;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a filter name, `wasm: NAMESPACE/NAME` or `native: NAME`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FilterRef::Literal(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let key: String = map.next_key()?.ok_or_else(|| de::Error::custom("expected `wasm` or `native`"))?;
                let value: String = map.next_value()?;
                let filter = match key.as_str() {
                    "wasm" => {
                        let (namespace, name) = value
                            .split_once('/')
                            .filter(|(ns, n)| !ns.is_empty() && !n.is_empty())
                            .ok_or_else(|| de::Error::custom(format!("`wasm: {value}`: write NAMESPACE/NAME")))?;
                        FilterRef::Wasm { namespace: namespace.to_owned(), name: name.to_owned() }
                    }
                    "native" if NATIVE.contains(&value.as_str()) => FilterRef::Native(value),
                    "native" => {
                        return Err(de::Error::custom(format!(
                            "`native: {value}` is not a filter plugproof knows; the native filters are {} (or write the full name as a string)",
                            NATIVE.join(", ")
                        )))
                    }
                    other => return Err(de::Error::unknown_field(other, &["wasm", "native"])),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!("`{extra}`: a filter is one of `wasm` or `native`")));
                }
                Ok(filter)
            }
        }

        deserializer.deserialize_any(RefVisitor)
    }
}

/// Literal filter names in `scenario` that name a WasmPlugin otherwise
/// than this target shows it (another istiod version's name, or the name
/// as written where the scenario's objects land elsewhere, `names`): each
/// message gives both names and the way to write it for every target.
pub fn misnamed(scenario: &Scenario, istiod: IstiodVersion, names: &Names, target: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for step in &scenario.steps {
        let crate::scenario::Action::Filters(order) = &step.action else { continue };
        for filter in &order.order {
            let FilterRef::Literal(literal) = filter else { continue };
            if let Some((namespace, name)) = Naming::ALL.into_iter().find_map(|n| n.parse(literal)) {
                let ours = FilterRef::Wasm { namespace: namespace.clone(), name: name.clone() }
                    .resolve(istiod, names, scenario);
                if &ours != literal {
                    problems.push(format!(
                        "{}: `{literal}` is another istiod's name for WasmPlugin {namespace}/{name}; {target} (istiod {istiod}) names it `{ours}`; write `- wasm: {namespace}/{name}` to name it on every target",
                        scenario.at(step.line)
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<FilterRef, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn names_resolve_per_istiod() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let scenario = with_resources(
            dir.path(),
            "  - {apiVersion: extensions.istio.io/v1alpha1, kind: WasmPlugin, metadata: {name: authn}, spec: {url: plugin://probe}}
  - {apiVersion: extensions.istio.io/v1alpha1, kind: TrafficExtension, metadata: {name: own}, spec: {wasm: {url: plugin://probe}}}
",
        );
        let wasm = parse("{wasm: istio-system/authn}").expect("a wasm ref");
        let v = |minor| IstiodVersion { minor };
        let names = Names::as_written();
        assert_eq!(
            wasm.resolve(v(30), &names, &scenario),
            "extensions.istio.io/trafficextension/istio-system.authn~istio-translated-wasmplugin"
        );
        assert_eq!(wasm.resolve(v(29), &names, &scenario), "extensions.istio.io/wasmplugin/istio-system.authn");
        let own = parse("{wasm: istio-system/own}").expect("a wasm ref");
        assert_eq!(own.resolve(v(30), &names, &scenario), "extensions.istio.io/trafficextension/istio-system.own");
        let native = parse("{native: router}").unwrap();
        assert_eq!(native.resolve(v(30), &names, &scenario), "envoy.filters.http.router");
        assert_eq!(parse("custom.filter").unwrap().resolve(v(24), &names, &scenario), "custom.filter");
        let landed = Names::unique();
        let prefix = landed.prefix().expect("a prefix");
        let expected = format!("extensions.istio.io/wasmplugin/istio-system.{prefix}-authn");
        assert_eq!(wasm.resolve(v(29), &landed, &scenario), expected);
    }

    /// A scenario of the probe module with `resources` (YAML list items).
    fn with_resources(dir: &std::path::Path, resources: &str) -> Scenario {
        let file = dir.join("s.yaml");
        let yaml = format!(
            "features: [traffic-extensions]\nplugins: {{probe: {{module: probe}}}}\nresources:\n{resources}steps:\n  - filters: {{order: [{{native: router}}]}}\n"
        );
        std::fs::write(&file, yaml).expect("write");
        crate::scenario::load_file(&file, dir, &["probe".to_owned()].into()).expect("loads")
    }

    /// A TrafficExtension's filter is named without the suffix of a
    /// WasmPlugin's, and a literal naming it so is no other istiod's name.
    #[test]
    fn a_traffic_extension_literal_is_its_own_name() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("s.yaml");
        let yaml = "features: [traffic-extensions]
plugins: {probe: {module: probe}}
resources:
  - {apiVersion: extensions.istio.io/v1alpha1, kind: TrafficExtension, metadata: {name: p}, spec: {wasm: {url: plugin://probe}}}
steps:
  - filters: {order: [extensions.istio.io/trafficextension/istio-system.p, envoy.filters.http.router]}
";
        std::fs::write(&file, yaml).expect("write");
        let scenario = crate::scenario::load_file(&file, dir.path(), &["probe".to_owned()].into()).expect("loads");
        assert_eq!(
            misnamed(&scenario, IstiodVersion { minor: 30 }, &Names::as_written(), "envoy"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_literal_name_another_istiod_gives_is_an_error_with_both_names() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("s.yaml");
        let yaml = "plugins: {probe: {module: probe}}
resources:
  - {apiVersion: extensions.istio.io/v1alpha1, kind: WasmPlugin, metadata: {name: p}, spec: {url: plugin://probe}}
steps:
  - filters:
      order:
        - extensions.istio.io/trafficextension/istio-system.p~istio-translated-wasmplugin
        - envoy.filters.http.router
";
        std::fs::write(&file, yaml).expect("write");
        let modules = ["probe".to_owned()].into();
        let scenario = crate::scenario::load_file(&file, dir.path(), &modules).expect("loads");
        let names = Names::as_written();
        assert!(misnamed(&scenario, IstiodVersion { minor: 30 }, &names, "envoy").is_empty(), "1.30 names it so");
        let [problem] =
            misnamed(&scenario, IstiodVersion { minor: 29 }, &names, "envoy+istiod@1.29").try_into().expect("one");
        assert!(problem.contains("s.yaml:5"), "{problem}");
        assert!(problem.contains("names it `extensions.istio.io/wasmplugin/istio-system.p`"), "{problem}");
        assert!(problem.contains("write `- wasm: istio-system/p`"), "{problem}");
    }

    #[test]
    fn unknown_forms_are_refused() {
        assert!(parse("{native: routr}").unwrap_err().contains("the native filters are router"));
        assert!(parse("{wasm: authn}").unwrap_err().contains("write NAMESPACE/NAME"));
        assert!(parse("{lua: x}").is_err());
    }
}
