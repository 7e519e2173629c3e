//! What a version of istiod does that a Wasm plugin can see: how it names
//! the plugin's filter and ECDS resource, which name it sorts ties by, and
//! how it sends failStrategy. The standalone profile renders a version's
//! behaviour; the istio profile runs the real one, whose version its pin
//! names. Taken from istio's source (pilot/pkg/model/extensions.go and
//! push_context.go at each release).

use std::fmt;

/// An istiod minor version (`1.MINOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IstiodVersion {
    pub minor: u32,
}

/// The suffix istiod 1.30 gives a WasmPlugin's TrafficExtension.
pub const TRANSLATED_SUFFIX: &str = "~istio-translated-wasmplugin";

/// How istiod names a WasmPlugin's HTTP filter and ECDS resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// 1.21 to 1.25: `extenstions.istio.io/wasmplugin/NS.NAME` (sic, istio#48786).
    MisspeltWasmPlugin,
    /// 1.26 to 1.29: `extensions.istio.io/wasmplugin/NS.NAME`.
    WasmPlugin,
    /// 1.30 on: `extensions.istio.io/trafficextension/NS.NAME~istio-translated-wasmplugin`.
    TrafficExtension,
    /// A TrafficExtension written as one (1.30 on): `extensions.istio.io/trafficextension/NS.NAME`.
    OwnTrafficExtension,
}

impl Naming {
    /// Tried in this order when reading a filter's name: a WasmPlugin's
    /// TrafficExtension before a TrafficExtension's own, whose names it would also read.
    pub const ALL: [Naming; 4] =
        [Naming::MisspeltWasmPlugin, Naming::WasmPlugin, Naming::TrafficExtension, Naming::OwnTrafficExtension];

    fn prefix(self) -> &'static str {
        match self {
            Naming::MisspeltWasmPlugin => "extenstions.istio.io/wasmplugin/",
            Naming::WasmPlugin => "extensions.istio.io/wasmplugin/",
            Naming::TrafficExtension | Naming::OwnTrafficExtension => "extensions.istio.io/trafficextension/",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Naming::TrafficExtension => TRANSLATED_SUFFIX,
            Naming::MisspeltWasmPlugin | Naming::WasmPlugin | Naming::OwnTrafficExtension => "",
        }
    }

    /// The filter's (and ECDS resource's) name.
    pub fn filter_name(self, namespace: &str, name: &str) -> String {
        format!("{}{}", self.prefix(), self.config_name(namespace, name))
    }

    /// The `name` in the Wasm filter's plugin configuration.
    pub fn config_name(self, namespace: &str, name: &str) -> String {
        format!("{namespace}.{name}{}", self.suffix())
    }

    /// The name istiod sorts plugins created in the same second by.
    pub fn sort_name(self, name: &str) -> String {
        format!("{name}{}", self.suffix())
    }

    /// The `(namespace, name)` a filter name of this scheme stands for.
    pub fn parse(self, filter: &str) -> Option<(String, String)> {
        let rest = filter.strip_prefix(self.prefix())?.strip_suffix(self.suffix())?;
        let (namespace, name) = rest.split_once('.')?;
        Some((namespace.to_owned(), name.to_owned()))
    }
}

/// How istiod sends a WasmPlugin's failStrategy to Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailField {
    /// `failure_policy`, from 1.25 (FAIL_CLOSE sent as FAIL_CLOSED).
    FailurePolicy,
    /// The deprecated `fail_open` bool, before 1.25.
    FailOpen,
}

impl IstiodVersion {
    /// The oldest and newest versions the model knows.
    pub const OLDEST: IstiodVersion = IstiodVersion { minor: 21 };
    pub const NEWEST: IstiodVersion = IstiodVersion { minor: 31 };
    /// What the standalone profile models unless told otherwise: the
    /// version of the default istio pin.
    pub const DEFAULT: IstiodVersion = IstiodVersion { minor: 30 };

    /// `1.24`, `1.30.3`, `1.31-dev`: the minor version, if the model knows it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let known = format!("{} to {}", IstiodVersion::OLDEST, IstiodVersion::NEWEST);
        let minor = text
            .trim()
            .strip_prefix("1.")
            .and_then(|rest| rest.split(['.', '-']).next())
            .and_then(|minor| minor.parse().ok())
            .ok_or_else(|| format!("`{text}` is not an istiod version like 1.24 (the model knows {known})"))?;
        let version = IstiodVersion { minor };
        if !(IstiodVersion::OLDEST..=IstiodVersion::NEWEST).contains(&version) {
            return Err(format!("istiod {version} is not modelled; the model knows {known}"));
        }
        Ok(version)
    }

    pub fn naming(self) -> Naming {
        match self.minor {
            ..=25 => Naming::MisspeltWasmPlugin,
            26..=29 => Naming::WasmPlugin,
            _ => Naming::TrafficExtension,
        }
    }

    /// Whether its API has failStrategy `FAIL_RELOAD` (istio#55604, 1.27).
    pub fn fail_reload(self) -> bool {
        self.minor >= 27
    }

    /// Whether the model of where it puts NETWORK plugins on a gateway (on
    /// every listener, ahead of the HTTP connection manager or TCP proxy)
    /// holds for it: checked against the real istiod 1.30, and not modelled
    /// for earlier ones.
    pub fn network_plugins(self) -> bool {
        self.minor >= 30
    }

    /// Whether the model of which WasmPlugins reach a Gateway API gateway
    /// (by `targetRef(s)` to it) holds for it: checked against the real
    /// istiod 1.30 only.
    pub fn gateway_api_policies(self) -> bool {
        self.minor >= 30
    }

    pub fn fail_field(self) -> FailField {
        if self.minor < 25 {
            FailField::FailOpen
        } else {
            FailField::FailurePolicy
        }
    }
}

impl fmt::Display for IstiodVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::misspelt("1.24", "extenstions.istio.io/wasmplugin/ns.p", "ns.p", "p")]
    #[case::wasmplugin("1.29", "extensions.istio.io/wasmplugin/ns.p", "ns.p", "p")]
    #[case::trafficextension(
        "1.30-dev",
        "extensions.istio.io/trafficextension/ns.p~istio-translated-wasmplugin",
        "ns.p~istio-translated-wasmplugin",
        "p~istio-translated-wasmplugin"
    )]
    fn names_by_version(#[case] version: &str, #[case] filter: &str, #[case] config: &str, #[case] sort: &str) {
        let naming = IstiodVersion::parse(version).expect("a known version").naming();
        assert_eq!(naming.filter_name("ns", "p"), filter);
        assert_eq!(naming.config_name("ns", "p"), config);
        assert_eq!(naming.sort_name("p"), sort);
        assert_eq!(naming.parse(filter), Some(("ns".to_owned(), "p".to_owned())));
    }

    #[test]
    fn a_name_of_another_scheme_does_not_parse() {
        let old = Naming::WasmPlugin.filter_name("ns", "p");
        assert_eq!(Naming::TrafficExtension.parse(&old), None);
        assert_eq!(Naming::MisspeltWasmPlugin.parse(&old), None);
    }

    #[test]
    fn fail_strategy_field_changes_at_1_25() {
        assert_eq!(IstiodVersion::parse("1.24").unwrap().fail_field(), FailField::FailOpen);
        assert_eq!(IstiodVersion::parse("1.25").unwrap().fail_field(), FailField::FailurePolicy);
    }

    #[rstest]
    #[case::too_old("1.20", "istiod 1.20 is not modelled; the model knows 1.21 to 1.31")]
    #[case::not_a_version("latest", "`latest` is not an istiod version like 1.24 (the model knows 1.21 to 1.31)")]
    fn unknown_versions_are_refused(#[case] text: &str, #[case] message: &str) {
        assert_eq!(IstiodVersion::parse(text).unwrap_err(), message);
    }
}
