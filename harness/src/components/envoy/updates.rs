//! Whether Envoy took or refused the xDS updates a change makes, read from
//! the counters it keeps per subscription (`update_success`,
//! `update_rejected`, and for a filter's config `config_reload`) before and
//! after the change. No I/O here: the caller reads the stats.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::dump::ECDS_STATS_PREFIX;

/// Envoy's gauge of listeners still warming (waiting for their ECDS).
pub const WARMING: &str = "listener_manager.total_listeners_warming";
/// The `/stats` filter that reads every counter this module needs.
pub const STATS_FILTER: &str = r"\.update_(success|rejected)$|\.config_reload$|total_listeners_warming$";

/// An xDS resource whose updates Envoy counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Resource {
    /// The listeners (LDS).
    Listeners,
    /// The clusters (CDS).
    Clusters,
    /// A route configuration (RDS), by its connection manager's stat prefix and its name.
    Routes { stat_prefix: String, name: String },
    /// An HTTP filter's configuration (ECDS), by filter name.
    Filter(String),
}

impl Resource {
    fn stat(&self, counter: &str) -> String {
        match self {
            Resource::Listeners => format!("listener_manager.lds.{counter}"),
            Resource::Clusters => format!("cluster_manager.cds.{counter}"),
            Resource::Routes { stat_prefix, name } => format!("http.{stat_prefix}.rds.{name}.{counter}"),
            Resource::Filter(name) => format!("{ECDS_STATS_PREFIX}{name}.{counter}"),
        }
    }

    /// The counter that moves once Envoy has taken an update of it. A filter's
    /// `update_success` also counts a config identical to the one in force
    /// (a control plane's repeated push), which changes nothing; `config_reload`
    /// counts only a new config, once every worker has it.
    fn taken(&self) -> &'static str {
        match self {
            Resource::Filter(_) => "config_reload",
            _ => "update_success",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Listeners => f.write_str("listeners (LDS)"),
            Resource::Clusters => f.write_str("clusters (CDS)"),
            Resource::Routes { name, .. } => write!(f, "routes {name} (RDS)"),
            Resource::Filter(name) => write!(f, "filter {name} (ECDS)"),
        }
    }
}

/// What Envoy did with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateKind {
    /// Every update the change makes was taken (and no listener is warming).
    Applied,
    /// Envoy refused at least one of them, and keeps what it had.
    Rejected,
    /// The change makes no update for the gateway.
    Unchanged,
}

impl UpdateKind {
    pub fn name(self) -> &'static str {
        match self {
            UpdateKind::Applied => "applied",
            UpdateKind::Rejected => "rejected",
            UpdateKind::Unchanged => "unchanged",
        }
    }
}

/// A change step's record of the gateway's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Update {
    pub kind: UpdateKind,
    /// From the change until Envoy had acted on it.
    pub took: Duration,
    /// When Envoy acted on it, as closely as its counters tell (none when
    /// the change made no update for it).
    #[serde(skip)]
    pub acted: Option<Acted>,
    /// The updates the change makes.
    pub resources: Vec<Resource>,
    /// The resources Envoy refused, with Envoy's own words.
    pub rejection: Option<String>,
}

/// When Envoy acted on an update: after the last reading of its counters
/// that showed it pending began, and before the first that showed it done
/// ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acted {
    pub after: Instant,
    pub by: Instant,
}

impl Update {
    pub fn unchanged() -> Self {
        Update {
            kind: UpdateKind::Unchanged,
            took: Duration::ZERO,
            acted: None,
            resources: Vec::new(),
            rejection: None,
        }
    }

    /// One line: what happened to what, and how long it took.
    pub fn summary(&self) -> String {
        let what: Vec<String> = self.resources.iter().map(ToString::to_string).collect();
        match self.kind {
            UpdateKind::Unchanged => "the gateway had nothing to update".to_owned(),
            kind => format!(
                "{} by the gateway after {:.0} ms: {}",
                kind.name(),
                self.took.as_secs_f64() * 1000.0,
                what.join(", ")
            ),
        }
    }
}

/// Counter values by stat name, as `/stats` reports them.
pub type Stats = BTreeMap<String, u64>;

/// Where the updates of `resources` stand, comparing `now` with `before`.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// These have not been acted on yet (or a new listener is still warming).
    Pending(Vec<String>),
    Applied,
    Rejected(Vec<Resource>),
}

pub fn progress(resources: &[Resource], before: &Stats, now: &Stats) -> Progress {
    let moved = |r: &Resource, counter: &str| {
        let stat = r.stat(counter);
        now.get(&stat).copied().unwrap_or(0) > before.get(&stat).copied().unwrap_or(0)
    };
    let rejected: Vec<Resource> = resources.iter().filter(|r| moved(r, "update_rejected")).cloned().collect();
    if !rejected.is_empty() {
        return Progress::Rejected(rejected);
    }
    let mut pending: Vec<String> =
        resources.iter().filter(|r| !moved(r, r.taken())).map(|r| format!("{r}: no update yet")).collect();
    if pending.is_empty() && now.get(WARMING).copied().unwrap_or(0) > 0 {
        pending.push("a listener is still warming".to_owned());
    }
    if pending.is_empty() {
        Progress::Applied
    } else {
        Progress::Pending(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(pairs: &[(&str, u64)]) -> Stats {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    const LDS_OK: &str = "listener_manager.lds.update_success";
    const ECDS_OK: &str = "extension_config_discovery.http_filter.plug.config_reload";
    const ECDS_SAME: &str = "extension_config_discovery.http_filter.plug.update_success";
    const ECDS_NO: &str = "extension_config_discovery.http_filter.plug.update_rejected";

    fn both() -> Vec<Resource> {
        vec![Resource::Listeners, Resource::Filter("plug".into())]
    }

    #[test]
    fn pending_until_every_counter_moved() {
        let before = stats(&[(LDS_OK, 1), (ECDS_OK, 1)]);
        let now = stats(&[(LDS_OK, 2), (ECDS_OK, 1)]);
        let Progress::Pending(pending) = progress(&both(), &before, &now) else { panic!("pending") };
        assert_eq!(pending, ["filter plug (ECDS): no update yet"]);
        let now = stats(&[(LDS_OK, 2), (ECDS_OK, 2)]);
        assert_eq!(progress(&both(), &before, &now), Progress::Applied);
    }

    #[test]
    fn a_filter_config_pushed_again_unchanged_is_not_the_update() {
        let before = stats(&[(ECDS_OK, 1), (ECDS_SAME, 1)]);
        let now = stats(&[(ECDS_OK, 1), (ECDS_SAME, 2)]);
        assert!(matches!(progress(&[Resource::Filter("plug".into())], &before, &now), Progress::Pending(_)));
    }

    #[test]
    fn a_new_filter_counts_from_zero() {
        let now = stats(&[(ECDS_OK, 1)]);
        assert_eq!(progress(&[Resource::Filter("plug".into())], &Stats::new(), &now), Progress::Applied);
    }

    #[test]
    fn a_warming_listener_is_not_applied_yet() {
        let before = stats(&[(LDS_OK, 1)]);
        let now = stats(&[(LDS_OK, 2), (WARMING, 1)]);
        assert!(matches!(progress(&[Resource::Listeners], &before, &now), Progress::Pending(_)));
    }

    #[test]
    fn a_rejection_decides_at_once() {
        let before = stats(&[(ECDS_OK, 1)]);
        let now = stats(&[(ECDS_NO, 1)]);
        assert_eq!(progress(&both(), &before, &now), Progress::Rejected(vec![Resource::Filter("plug".into())]));
    }

    #[test]
    fn stat_names_follow_envoy() {
        let routes = Resource::Routes { stat_prefix: "gateway".into(), name: "gateway".into() };
        assert_eq!(routes.stat("update_success"), "http.gateway.rds.gateway.update_success");
        assert_eq!(Resource::Clusters.stat("update_rejected"), "cluster_manager.cds.update_rejected");
        let filter = regex::Regex::new(STATS_FILTER).expect("a valid filter");
        assert!(filter.is_match(ECDS_NO) && filter.is_match(ECDS_OK) && filter.is_match(WARMING));
        assert!(!filter.is_match("server.uptime"));
    }
}
