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
}

impl Feature {
    pub fn name(self) -> &'static str {
        match self {
            Feature::AgentFetch => "agent-fetch",
            Feature::NativeFilters => "native-filters",
            Feature::DirectDelivery => "direct-delivery",
        }
    }
}
