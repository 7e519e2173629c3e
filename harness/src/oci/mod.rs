//! Test modules in the registry: packing them in the two layouts istio's
//! agent accepts, pushing them, and pulling them back by digest.

mod client;
mod layout;

pub use client::{OciError, RegistryClient};
pub use layout::{digest_of, pack, unpack_module, Packed};

/// The repository a scenario plugin is pushed to.
pub fn repository(plugin: &str) -> String {
    format!("plugproof/{plugin}")
}
