//! The `properties` option: which Envoy properties give a stream's route and
//! cluster names. The Higress Go SDK reads only `route_name` and
//! `cluster_name`, which Higress's Envoy serves; upstream Envoy (1.33 on,
//! envoy#36619) serves only `xds.route_name` and `xds.cluster_name`. There is
//! no fallback between the two, so on upstream Envoy a real Higress plugin's
//! route and service rules never match, and the default lookup models that.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

/// The top-level key of the plugin configuration that names the lookup.
pub const PROPERTIES_KEY: &str = "properties";
/// The VM environment variable that names the lookup of the module's
/// deployment (a WasmPlugin's `vmConfig.env`), for every configuration it
/// gets, even one a translation reduced to rules (Higress's
/// `defaultConfigDisable: true` drops the global config and its keys).
pub const PROPERTIES_ENV: &str = "PLUGPROOF_PROPERTIES";

/// Where a stream's route and cluster names are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lookup {
    /// `route_name` and `cluster_name`, as the Higress Go SDK reads them.
    #[default]
    Higress,
    /// `xds.route_name` and `xds.cluster_name`, as upstream Envoy serves them.
    Xds,
}

impl Lookup {
    /// The property paths of the route name and of the cluster name.
    fn paths(self) -> [&'static [&'static str]; 2] {
        match self {
            Lookup::Higress => [&["route_name"], &["cluster_name"]],
            Lookup::Xds => [&["xds", "route_name"], &["xds", "cluster_name"]],
        }
    }

    /// The route and cluster names, read with `get_property`; each is "" when
    /// the host has none, as the Go SDK reads them.
    pub fn read(self, mut get_property: impl FnMut(Vec<&str>) -> Option<Vec<u8>>) -> (String, String) {
        let [route, cluster] = self.paths().map(|path| {
            get_property(path.to_vec()).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default()
        });
        (route, cluster)
    }
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lookup::Higress => "higress",
            Lookup::Xds => "xds",
        })
    }
}

/// A value that names no lookup, as JSON text; `from_env` when it is the
/// VM's `PLUGPROOF_PROPERTIES` rather than the configuration's `properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLookup {
    pub value: String,
    pub from_env: bool,
}

impl fmt::Display for BadLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.from_env {
            format!("the VM's environment variable {PROPERTIES_ENV}")
        } else {
            format!("`{PROPERTIES_KEY}`")
        };
        write!(f, "{what} is {}; expected \"higress\" (the default) or \"xds\"", self.value)
    }
}

fn named(value: &str) -> Option<Lookup> {
    match value {
        "higress" => Some(Lookup::Higress),
        "xds" => Some(Lookup::Xds),
        _ => None,
    }
}

/// The lookup of the module's deployment: its VM's `PLUGPROOF_PROPERTIES`
/// (`vmConfig.env`), else Higress's.
pub fn deployment_lookup(env: Option<&str>) -> Result<Lookup, BadLookup> {
    match env {
        None => Ok(Lookup::default()),
        Some(value) => named(value).ok_or_else(|| BadLookup { value: Value::from(value).to_string(), from_env: true }),
    }
}

/// Takes the `properties` option out of a plugin configuration: the lookup
/// it names (`default`, the deployment's, without one), and the
/// configuration without it, for the plugin's parser. Anything but a JSON
/// object with that key goes on untouched, so the plugin's parser still
/// judges empty or malformed configurations.
pub fn take_lookup(bytes: &[u8], default: Lookup) -> Result<(Lookup, Cow<'_, [u8]>), BadLookup> {
    let Ok(Value::Object(mut object)) = serde_json::from_slice(bytes) else {
        return Ok((default, Cow::Borrowed(bytes)));
    };
    let Some(value) = object.remove(PROPERTIES_KEY) else {
        return Ok((default, Cow::Borrowed(bytes)));
    };
    let lookup =
        value.as_str().and_then(named).ok_or_else(|| BadLookup { value: value.to_string(), from_env: false })?;
    Ok((lookup, Cow::Owned(Value::Object(object).to_string().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookup(config: Value) -> Result<Lookup, BadLookup> {
        take_lookup(config.to_string().as_bytes(), Lookup::default()).map(|(lookup, _)| lookup)
    }

    /// What `lookup` reads from a host that has every property: the names
    /// it gets and each path it asks for.
    fn read_all(lookup: Lookup) -> ((String, String), Vec<String>) {
        let mut asked = Vec::new();
        let names = lookup.read(|path| {
            let path = path.join(".");
            asked.push(path.clone());
            Some(format!("value of {path}").into_bytes())
        });
        (names, asked)
    }

    #[test]
    fn higress_is_the_default() {
        assert_eq!(lookup(json!({"name": "n"})), Ok(Lookup::Higress));
        assert_eq!(take_lookup(b"", Lookup::default()).unwrap(), (Lookup::Higress, Cow::Borrowed(&b""[..])));
    }

    #[test]
    fn option_names_the_lookup() {
        assert_eq!(lookup(json!({"properties": "higress"})), Ok(Lookup::Higress));
        assert_eq!(lookup(json!({"properties": "xds"})), Ok(Lookup::Xds));
    }

    #[test]
    fn other_values_are_rejected_with_the_accepted_ones() {
        for (value, text) in [
            (json!("envoy"), r#""envoy""#),
            (json!("XDS"), r#""XDS""#),
            (json!(""), r#""""#),
            (json!(1), "1"),
            (json!(null), "null"),
            (json!(["xds"]), r#"["xds"]"#),
        ] {
            let err = lookup(json!({"properties": value})).unwrap_err();
            assert_eq!(err, BadLookup { value: text.to_owned(), from_env: false });
            assert_eq!(
                err.to_string(),
                format!("`properties` is {text}; expected \"higress\" (the default) or \"xds\"")
            );
        }
    }

    #[test]
    fn option_is_taken_out_of_the_configuration() {
        let (_, rest) = take_lookup(br#"{"properties": "xds", "name": "g", "_rules_": []}"#, Lookup::Higress).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&rest).unwrap(), json!({"name": "g", "_rules_": []}));
        let (_, rest) = take_lookup(br#"{"properties": "higress"}"#, Lookup::Xds).unwrap();
        assert_eq!(&rest[..], b"{}");
    }

    #[test]
    fn configuration_without_the_option_goes_on_untouched() {
        for bytes in [&br#"{"name": "g",  "b": 1}"#[..], b"[", b"[1]", b"\"text\"", b" "] {
            let (lookup, rest) = take_lookup(bytes, Lookup::Higress).unwrap();
            assert_eq!((lookup, &rest[..]), (Lookup::Higress, bytes));
        }
    }

    #[test]
    fn option_inside_a_rule_is_not_the_option() {
        let bytes = br#"{"_rules_": [{"_match_domain_": ["a"], "properties": "bogus"}]}"#;
        let (lookup, rest) = take_lookup(bytes, Lookup::Higress).unwrap();
        assert_eq!((lookup, &rest[..]), (Lookup::Higress, &bytes[..]));
    }

    #[test]
    fn higress_reads_only_the_top_level_properties() {
        let (names, asked) = read_all(Lookup::Higress);
        assert_eq!(asked, ["route_name", "cluster_name"]);
        assert_eq!(names, ("value of route_name".to_owned(), "value of cluster_name".to_owned()));
    }

    #[test]
    fn xds_reads_only_the_xds_properties() {
        let (names, asked) = read_all(Lookup::Xds);
        assert_eq!(asked, ["xds.route_name", "xds.cluster_name"]);
        assert_eq!(names, ("value of xds.route_name".to_owned(), "value of xds.cluster_name".to_owned()));
    }

    #[test]
    fn missing_properties_read_as_empty_without_fallback() {
        // Upstream Envoy: only the xds.* properties exist.
        let upstream = |path: Vec<&str>| (path[0] == "xds").then(|| path.join(".").into_bytes());
        assert_eq!(Lookup::Higress.read(upstream), (String::new(), String::new()));
        assert_eq!(Lookup::Xds.read(upstream), ("xds.route_name".to_owned(), "xds.cluster_name".to_owned()));
        // Higress's Envoy: only the top-level properties exist.
        let higress = |path: Vec<&str>| (path.len() == 1).then(|| path.join(".").into_bytes());
        assert_eq!(Lookup::Xds.read(higress), (String::new(), String::new()));
        assert_eq!(Lookup::Higress.read(higress), ("route_name".to_owned(), "cluster_name".to_owned()));
    }

    #[test]
    fn the_deployment_names_the_lookup_of_configs_without_the_option() {
        assert_eq!(deployment_lookup(None), Ok(Lookup::Higress));
        assert_eq!(deployment_lookup(Some("xds")), Ok(Lookup::Xds));
        let (lookup, rest) = take_lookup(br#"{"_rules_": []}"#, Lookup::Xds).unwrap();
        assert_eq!((lookup, &rest[..]), (Lookup::Xds, &br#"{"_rules_": []}"#[..]));
        let (lookup, _) = take_lookup(br#"{"properties": "higress"}"#, Lookup::Xds).unwrap();
        assert_eq!(lookup, Lookup::Higress, "a config's own option wins");
        let err = deployment_lookup(Some("XDS")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"the VM's environment variable PLUGPROOF_PROPERTIES is "XDS"; expected "higress" (the default) or "xds""#
        );
    }

    #[test]
    fn display_is_the_option_value() {
        assert_eq!(Lookup::Higress.to_string(), "higress");
        assert_eq!(Lookup::Xds.to_string(), "xds");
    }
}
