//! Pure translations: Higress WasmPlugin -> Istio WasmPlugin; the filter
//! placement model; Istio WasmPlugin -> Envoy ECDS (standalone profile).

pub mod ecds;
pub mod higress;
pub mod istio;
pub mod istiod;
pub mod placement;

pub use higress::{as_written, to_istio, TranslateError};
pub use istio::IstioWasmPlugin;
pub use istiod::IstiodVersion;
