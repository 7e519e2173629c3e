//! Capabilities a scenario can require; a target that lacks one skips it.
//! A target has what its profile can do, what its istiod does, and what
//! its Envoy serves (see `target`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    /// Modules fetched by istio's agent itself: pull policy, `sha256`, fail
    /// strategy when a fetch fails (istio profile).
    AgentFetch,
    /// A step can replace the gateway with a new one (`gateway: replace`):
    /// its own file system, so an empty Wasm cache, as a new Pod has
    /// (istio profile, local cluster).
    NewGateway,
    /// A step can restart the gateway in place (`gateway: restart`): the
    /// same Pod, address and volumes, the agent's Wasm cache an `emptyDir`
    /// as in istio's injected gateway (cluster profile).
    RestartedGateway,
    /// The gateway's environment is the scenario's (`gateway.env`): the
    /// run starts the gateway (every profile, not an installed gateway).
    GatewayEnv,
    /// The scenario's registry is its own, which a `registry: stop` step
    /// stops (every profile, unless the run pushes to a registry the user
    /// names).
    OwnRegistry,
    /// Native filters placed by istiod (jwt_authn, rbac) from
    /// RequestAuthentication and AuthorizationPolicy (istio profile).
    NativeFilters,
    /// Modules handed to Envoy directly, with no agent in between: what
    /// Envoy itself does with them (standalone profile).
    DirectDelivery,
    /// istiod sends failStrategy as the deprecated `fail_open` bool, as
    /// istiod before 1.25 does, not as `failure_policy`.
    LegacyFailOpen,
    /// istiod turns WasmPlugins into TrafficExtensions (1.30 on): their
    /// filters are `extensions.istio.io/trafficextension/NS.NAME~istio-translated-wasmplugin`,
    /// and ties sort by that name; it reads TrafficExtension resources.
    TrafficExtensions,
    /// Envoy serves the Wasm properties `route_name` and `cluster_name`
    /// that the Higress Go SDK reads (Higress's Envoy; upstream before 1.33).
    RouteNameProperty,
    /// Envoy serves `xds.route_name` and `xds.cluster_name` (upstream from 1.25).
    XdsProperties,
    /// Its istiod knows failStrategy `FAIL_RELOAD` (1.27 on), which it sends
    /// Envoy as `failure_policy: FAIL_RELOAD`; an older one's API refuses it.
    FailReload,
    /// The cluster's own Higress controller translates `extensions.higress.io`
    /// WasmPlugins (`translator: higress-controller`): the cluster target
    /// with `--higress-controller`, on a cluster where Higress runs.
    HigressController,
    /// The gateway can be given TCP listeners (`tcp_listeners`), each
    /// proxying to a TCP echo backend (every profile).
    TcpListeners,
    /// Its istiod puts `type: NETWORK` plugins on every listener of the
    /// gateway as 1.30 does (the version that model was checked against).
    NetworkPlugins,
    /// The gateway's Envoy runs the scenario's Wasm services from a
    /// bootstrap plugproof writes (standalone profile).
    WasmServices,
    /// The run starts the gateway, so `gateway.concurrency` sets its
    /// Envoy's worker threads (as `gateway-env`).
    GatewayConcurrency,
    /// The gateway can be a Gateway API gateway (`gateway: {api:
    /// gateway-api}`): a Gateway and HTTPRoutes configure it (istio
    /// profile, with the Gateway API's CRDs; the standalone profile models
    /// it), with istiod 1.30 or later, against which the model was checked.
    GatewayApi,
    /// istiod knows who the gateway is: it sends its service account's
    /// token with its XDS requests, and istiod checks it (as over mTLS in a
    /// cluster), so istiod hands it its WasmPlugins' pull secrets (istio
    /// profile: istiod with `XDS_AUTH_PLAINTEXT`).
    VerifiedGateway,
    /// The scenario's own registry can ask for a login over TLS with a CA
    /// of the run's, which the gateway trusts (`private_registry: true`).
    PrivateRegistry,
}

impl Feature {
    pub const ALL: [Feature; 20] = [
        Feature::AgentFetch,
        Feature::NewGateway,
        Feature::RestartedGateway,
        Feature::GatewayEnv,
        Feature::OwnRegistry,
        Feature::NativeFilters,
        Feature::DirectDelivery,
        Feature::LegacyFailOpen,
        Feature::TrafficExtensions,
        Feature::RouteNameProperty,
        Feature::XdsProperties,
        Feature::FailReload,
        Feature::HigressController,
        Feature::TcpListeners,
        Feature::NetworkPlugins,
        Feature::WasmServices,
        Feature::GatewayApi,
        Feature::GatewayConcurrency,
        Feature::VerifiedGateway,
        Feature::PrivateRegistry,
    ];

    /// Known only once the target's Envoy has been asked (see `target::probe`).
    pub fn is_probed(self) -> bool {
        matches!(self, Feature::RouteNameProperty | Feature::XdsProperties)
    }

    pub fn name(self) -> &'static str {
        match self {
            Feature::AgentFetch => "agent-fetch",
            Feature::NewGateway => "new-gateway",
            Feature::RestartedGateway => "restarted-gateway",
            Feature::GatewayEnv => "gateway-env",
            Feature::OwnRegistry => "own-registry",
            Feature::NativeFilters => "native-filters",
            Feature::DirectDelivery => "direct-delivery",
            Feature::LegacyFailOpen => "legacy-fail-open",
            Feature::TrafficExtensions => "traffic-extensions",
            Feature::RouteNameProperty => "route-name-property",
            Feature::XdsProperties => "xds-properties",
            Feature::FailReload => "fail-reload",
            Feature::HigressController => "higress-controller",
            Feature::TcpListeners => "tcp-listeners",
            Feature::NetworkPlugins => "network-plugins",
            Feature::WasmServices => "wasm-services",
            Feature::GatewayApi => "gateway-api",
            Feature::GatewayConcurrency => "gateway-concurrency",
            Feature::VerifiedGateway => "verified-gateway",
            Feature::PrivateRegistry => "private-registry",
        }
    }
}
