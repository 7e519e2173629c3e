//! `stats`: every counter and gauge of the gateway's Envoy, from its admin API.

use std::collections::BTreeMap;

use crate::failure::{Failure, FailureKind};
use crate::profiles::Deployment;

/// The values the last `stats` step read, by name, for later deltas.
pub type StatsSeen = BTreeMap<String, i64>;

pub async fn read(deployment: &dyn Deployment) -> Result<BTreeMap<String, i64>, Failure> {
    let stats = deployment
        .admin()
        .stats("")
        .await
        .map_err(|e| Failure::new(FailureKind::Transport, format!("reading the gateway's stats: {e}")))?;
    Ok(stats.into_iter().map(|(name, value)| (name, i64::try_from(value).unwrap_or(i64::MAX))).collect())
}
