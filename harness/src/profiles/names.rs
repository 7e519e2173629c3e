//! Where a scenario's namespaces and names land. On a control plane shared
//! by many scenarios each scenario runs in namespaces of its own: its
//! `higress-system` becomes `PREFIX-higress-system`, and so on. The root
//! namespace is istiod's and stays; a WasmPlugin in it is renamed
//! `PREFIX-NAME` instead (its selector keeps it to the scenario's gateway).
//! The prefix is the same in front of every name of one scenario, so the
//! order istiod sorts them in does not change. On a gateway installed in a
//! cluster, the scenario's gateway namespace is that gateway's (a
//! WasmPlugin only reaches the workloads of its own namespace or the
//! root): objects there are renamed `PREFIX-NAME` too, and the scenario's
//! own Gateway and routes go to `PREFIX-higress-system`.

use serde::Serialize;

use crate::mesh::{GATEWAY_NAMESPACE, ROOT_NAMESPACE};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Names {
    /// None: every name as the scenario writes it.
    prefix: Option<String>,
    /// The namespace of the installed gateway the scenario runs on, if it runs on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    installed: Option<String>,
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
        Names { prefix: Some(format!("p{tail}")), installed: None }
    }

    /// These names, for a scenario on the gateway installed in `namespace`.
    pub fn on_installed_gateway(self, namespace: &str) -> Self {
        Names { installed: Some(namespace.to_owned()), ..self }
    }

    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// Where the scenario's namespace `namespace` lands.
    pub fn namespace(&self, namespace: &str) -> String {
        match (&self.prefix, &self.installed) {
            (_, Some(installed)) if namespace == GATEWAY_NAMESPACE => installed.clone(),
            (Some(prefix), _) if namespace != ROOT_NAMESPACE => format!("{prefix}-{namespace}"),
            _ => namespace.to_owned(),
        }
    }

    /// What the scenario's object `namespace/name` is called where it lands.
    pub fn name(&self, namespace: &str, name: &str) -> String {
        match &self.prefix {
            Some(prefix) if !self.owns(&self.namespace(namespace)) => format!("{prefix}-{name}"),
            _ => name.to_owned(),
        }
    }

    /// The gateway's namespace, where the scenario's Higress namespace lands.
    pub fn gateway_namespace(&self) -> String {
        self.namespace(GATEWAY_NAMESPACE)
    }

    /// Where the scenario's own Gateway, services and routes go: the
    /// gateway's namespace, unless that is an installed gateway's.
    pub fn scenario_namespace(&self) -> String {
        match (&self.prefix, &self.installed) {
            (Some(prefix), Some(_)) => format!("{prefix}-{GATEWAY_NAMESPACE}"),
            _ => self.gateway_namespace(),
        }
    }

    /// Whether the namespace (where it landed) is the scenario's own, made
    /// and removed with it; not the root's or an installed gateway's.
    pub fn owns(&self, landed: &str) -> bool {
        landed != ROOT_NAMESPACE && self.installed.as_deref() != Some(landed)
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
        let names = Names { prefix: Some("pabc123".into()), installed: None };
        assert_eq!(names.namespace("higress-system"), "pabc123-higress-system");
        assert_eq!(names.namespace("default"), "pabc123-default");
        assert_eq!(names.namespace("istio-system"), "istio-system");
        assert_eq!(names.name("istio-system", "stamp"), "pabc123-stamp");
        assert_eq!(names.name("higress-system", "stamp"), "stamp");
    }

    #[test]
    fn on_an_installed_gateway_its_namespace_is_shared_so_names_there_are_prefixed() {
        let names = Names { prefix: Some("pabc123".into()), installed: None }.on_installed_gateway("istio-ingress");
        assert_eq!(names.gateway_namespace(), "istio-ingress");
        assert_eq!(names.name("higress-system", "stamp"), "pabc123-stamp");
        assert_eq!(names.scenario_namespace(), "pabc123-higress-system");
        assert_eq!((names.namespace("default"), names.name("default", "p")), ("pabc123-default".into(), "p".into()));
        assert!(!names.owns("istio-ingress") && !names.owns("istio-system") && names.owns("pabc123-default"));
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
