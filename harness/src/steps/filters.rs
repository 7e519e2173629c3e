//! `filters`: the gateway listener's HTTP filter chain, read from Envoy's
//! `/config_dump`.

use crate::components::envoy::dump::http_filters;
use crate::failure::{Failure, FailureKind};
use crate::profiles::Deployment;

/// The HTTP filter names of the gateway's listener, in order.
pub async fn chain(deployment: &dyn Deployment) -> Result<Vec<String>, Failure> {
    let dump = deployment.admin().config_dump().await.map_err(|e| Failure::new(e.kind(), e.to_string()))?;
    http_filters(&dump, None).map_err(|e| Failure::new(FailureKind::Expectation, e))
}
