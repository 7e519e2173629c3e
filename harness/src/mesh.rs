//! The mesh's fixed names, which scenarios, the model and the real control
//! plane share.

/// The gateway's namespace: Higress's, where its converted WasmPlugins live.
pub const GATEWAY_NAMESPACE: &str = "higress-system";
/// The mesh's root namespace: its WasmPlugins apply to every proxy.
pub const ROOT_NAMESPACE: &str = "istio-system";
/// The label the scenarios' gateway carries, as they write it in a
/// WasmPlugin's selector (as istio's ingress gateway carries it); where it
/// lands, it stands for the labels of the gateway the scenario drives.
pub const GATEWAY_LABEL: (&str, &str) = ("istio", "ingressgateway");
/// The name of the scenario's Gateway (an Istio one, or a Gateway API one,
/// which a WasmPlugin's `targetRef` names).
pub const GATEWAY_NAME: &str = "plugproof-gateway";
/// The label istio gives a Gateway API gateway's workloads, naming their
/// Gateway: what makes a proxy a Gateway API gateway to istiod.
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";
/// What a `targetRef` to a Gateway API Gateway names as its group and kind.
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// The port the scenarios' gateway listens on for HTTP, as they write it in
/// a WasmPlugin's `match[].ports` (an ingress gateway's Service port); where
/// it lands, it stands for the gateway's listener port, which is the run's own.
pub const GATEWAY_PORT: u32 = 80;
