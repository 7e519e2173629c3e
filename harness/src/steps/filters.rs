//! `filters`: the gateway listener's HTTP filter chain, or a listener's
//! network filters, read from Envoy's `/config_dump`.

use crate::components::envoy::dump::{http_filters, network_filters};
use crate::failure::{Failure, FailureKind};
use crate::profiles::Deployment;
use crate::scenario::FilterOrder;

/// The filter names `order` is about, in order.
pub async fn chain(deployment: &dyn Deployment, order: &FilterOrder) -> Result<Vec<String>, Failure> {
    let dump = deployment.admin().config_dump().await.map_err(|e| Failure::new(e.kind(), e.to_string()))?;
    let filters = match &order.network {
        None => http_filters(&dump, None),
        Some(listener) => {
            let Some(name) = deployment.envoy_listener(listener) else {
                return Err(Failure::new(FailureKind::Setup, format!("the gateway has no listener `{listener}`")));
            };
            network_filters(&dump, &name)
        }
    };
    filters.map_err(|e| Failure::new(FailureKind::Expectation, e))
}
