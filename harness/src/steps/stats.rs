//! `stats`: every counter and gauge of the gateway's Envoy, and its
//! allocator's figures, from its admin API.

use std::collections::BTreeMap;

use crate::failure::{Failure, FailureKind};
use crate::profiles::Deployment;

/// The values the last `stats` step read, by name, for later deltas.
pub type StatsSeen = BTreeMap<String, i64>;

/// The prefix of the admin API's `/memory` fields among the stats read.
pub const MEMORY_PREFIX: &str = "admin.memory.";

/// Every counter and gauge, and the admin API's `/memory` fields as
/// `admin.memory.FIELD` (current at each read).
pub async fn read(deployment: &dyn Deployment) -> Result<BTreeMap<String, i64>, Failure> {
    let admin = deployment.admin();
    let failed = |e| Failure::new(FailureKind::Transport, format!("reading the gateway's stats: {e}"));
    let stats = admin.stats("").await.map_err(failed)?;
    let memory = admin.memory().await.map_err(failed)?;
    let memory = memory.into_iter().map(|(field, value)| (format!("{MEMORY_PREFIX}{field}"), value));
    Ok(stats.into_iter().chain(memory).map(|(name, value)| (name, i64::try_from(value).unwrap_or(i64::MAX))).collect())
}
