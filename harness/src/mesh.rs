//! The mesh's fixed names, which scenarios, the model and the real control
//! plane share.

/// The gateway's namespace: Higress's, where its converted WasmPlugins live.
pub const GATEWAY_NAMESPACE: &str = "higress-system";
/// The mesh's root namespace: its WasmPlugins apply to every proxy.
pub const ROOT_NAMESPACE: &str = "istio-system";
