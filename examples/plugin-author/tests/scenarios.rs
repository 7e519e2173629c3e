//! The scenarios in `scenarios/`, each on every target of
//! `PLUGPROOF_TARGETS` (default `envoy`; `envoy,istio` adds real istiod).

use std::process::ExitCode;

use plugproof::testing::{test_main, Suite};

fn main() -> ExitCode {
    test_main(Suite::from_env(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")))
}
