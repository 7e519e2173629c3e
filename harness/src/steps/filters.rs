//! `filters`: the gateway listener's HTTP filter chain, read from Envoy's
//! `/config_dump`, checked for order.

use crate::assert::filters::verify;
use crate::assert::Verdict;
use crate::components::envoy::dump::http_filters;
use crate::profiles::Deployment;
use crate::scenario::FilterOrder;

pub async fn attempt(deployment: &Deployment, order: &FilterOrder) -> Result<Verdict, String> {
    let dump = deployment.config_dump().await.map_err(|e| e.to_string())?;
    let chain = http_filters(&dump, None)?;
    Ok(verify(order, &chain))
}
