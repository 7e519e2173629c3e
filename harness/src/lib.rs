//! plugproof: an end-to-end conformance harness for proxy-wasm plugins in
//! real Envoy (and, through the istio profile, real istiod).
//!
//! A scenario (YAML, `scenario`) is staged by `run`: modules built by
//! `provision` are pushed to a real registry (`components`, `oci`), the
//! profile (`profiles`) deploys the resources, translated by `translate`,
//! and each step is executed in `steps` and checked by `assert`.
//! `report` tells the user; `testing` makes a folder of scenarios a test
//! binary, here and in the user's own repository.

pub mod assert;
pub mod audit;
pub mod cluster;
pub mod components;
pub mod failure;
pub mod files;
pub mod http;
pub mod load;
pub mod mesh;
pub mod oci;
pub mod options;
pub mod outcome;
pub mod profiles;
pub mod provision;
pub mod report;
pub mod run;
pub mod runtime;
pub mod scenario;
pub mod steps;
pub mod targets;
pub mod testing;
pub mod translate;
