//! `logs`: the gateway's log, where its Envoy writes (plugins' lines among them).

use crate::failure::{Failure, FailureKind};
use crate::profiles::Deployment;

pub fn read(deployment: &dyn Deployment) -> Result<String, Failure> {
    let path = deployment.gateway_log();
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| Failure::new(FailureKind::Setup, format!("reading the gateway's log {}: {e}", path.display())))
}
