//! Test modules in the registry: packing them in the layouts istio's agent
//! accepts (and one it rejects), pushing them, pulling them back by digest.

mod client;
mod layout;

pub use client::{OciError, RegistryClient};
