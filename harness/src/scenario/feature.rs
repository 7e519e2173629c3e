//! Capabilities a scenario can require; a profile that lacks one skips it.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    /// Modules fetched by istio's agent itself: pull policy, `sha256`, fail
    /// strategy when a fetch fails.
    AgentFetch,
    /// Native filters placed by istiod (jwt_authn, rbac) from
    /// RequestAuthentication and AuthorizationPolicy.
    NativeFilters,
    /// Modules handed to Envoy directly, with no agent in between (what
    /// Envoy itself does with them).
    DirectDelivery,
    /// The fail strategy sent as the deprecated `fail_open` bool, as istiod
    /// before 1.25 (and gateways built on it) send it; istiod 1.30 sends
    /// `failure_policy` only.
    LegacyFailOpen,
}

impl Feature {
    pub fn name(self) -> &'static str {
        match self {
            Feature::AgentFetch => "agent-fetch",
            Feature::NativeFilters => "native-filters",
            Feature::DirectDelivery => "direct-delivery",
            Feature::LegacyFailOpen => "legacy-fail-open",
        }
    }
}
