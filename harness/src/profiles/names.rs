//! Where a scenario's namespaces and names land. On a control plane shared
//! by many scenarios each scenario runs in namespaces of its own: its
//! `higress-system` becomes `PREFIX-higress-system`, and so on. The root
//! namespace is istiod's and stays; a WasmPlugin in it is renamed
//! `PREFIX-NAME` instead (its selector keeps it to the scenario's gateway).
//! The prefix is the same in front of every name of one scenario, so the
//! order istiod sorts them in does not change.

use serde::Serialize;

use crate::mesh::{GATEWAY_NAMESPACE, ROOT_NAMESPACE};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Names {
    /// None: every name as the scenario writes it.
    prefix: Option<String>,
}

impl Names {
    /// The scenario's names as they are (one scenario per control plane).
    pub fn as_written() -> Self {
        Names::default()
    }

    /// A fresh prefix: lowercase letters and digits, unique enough that
    /// scenarios of parallel processes never share one.
    pub fn unique() -> Self {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let tail: String = (0..6).map(|_| ALPHABET[rand::random::<u8>() as usize % ALPHABET.len()] as char).collect();
        Names { prefix: Some(format!("p{tail}")) }
    }

    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// Where the scenario's namespace `namespace` lands.
    pub fn namespace(&self, namespace: &str) -> String {
        match &self.prefix {
            Some(prefix) if namespace != ROOT_NAMESPACE => format!("{prefix}-{namespace}"),
            _ => namespace.to_owned(),
        }
    }

    /// What the scenario's object `namespace/name` is called where it lands.
    pub fn name(&self, namespace: &str, name: &str) -> String {
        match &self.prefix {
            Some(prefix) if namespace == ROOT_NAMESPACE => format!("{prefix}-{name}"),
            _ => name.to_owned(),
        }
    }

    /// The gateway's namespace, where the scenario's Higress namespace lands.
    pub fn gateway_namespace(&self) -> String {
        self.namespace(GATEWAY_NAMESPACE)
    }

    /// For labels and object names that must be unique to the scenario.
    pub fn unique_name(&self, name: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}-{name}"),
            None => name.to_owned(),
        }
    }

    /// Each namespace as written and where it landed, for evidence.
    pub fn mapping<'a>(&self, namespaces: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
        namespaces.into_iter().map(|ns| (ns.to_owned(), self.namespace(ns))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_lands_in_its_own_namespaces_and_keeps_the_root() {
        let names = Names { prefix: Some("pabc123".into()) };
        assert_eq!(names.namespace("higress-system"), "pabc123-higress-system");
        assert_eq!(names.namespace("default"), "pabc123-default");
        assert_eq!(names.namespace("istio-system"), "istio-system");
        assert_eq!(names.name("istio-system", "stamp"), "pabc123-stamp");
        assert_eq!(names.name("higress-system", "stamp"), "stamp");
    }

    #[test]
    fn as_written_changes_nothing() {
        let names = Names::as_written();
        assert_eq!((names.namespace("default"), names.name("istio-system", "p")), ("default".into(), "p".into()));
    }

    #[test]
    fn prefixes_are_names_kubernetes_takes() {
        let prefix = Names::unique().prefix().expect("a prefix").to_owned();
        assert_eq!(prefix.len(), 7);
        assert!(prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()), "{prefix}");
    }
}
