//! Whether Envoy took or refused the xDS updates a change makes, read from
//! the counters it keeps per subscription (`update_success`,
//! `update_rejected`, and for a filter's config `config_reload`) before and
//! after the change. No I/O here: the caller reads the stats.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::dump::ecds_stats;

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
    /// An HTTP or network filter's configuration (ECDS), by filter name.
    Filter(String),
}

impl Resource {
    /// The stat names its `counter` may have (a filter's: one per layer, see `ecds_stats`).
    fn stats(&self, counter: &str) -> Vec<String> {
        match self {
            Resource::Listeners => vec![format!("listener_manager.lds.{counter}")],
            Resource::Clusters => vec![format!("cluster_manager.cds.{counter}")],
            Resource::Routes { stat_prefix, name } => vec![format!("http.{stat_prefix}.rds.{name}.{counter}")],
            Resource::Filter(name) => ecds_stats(name, counter).collect(),
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
    /// When Envoy acted on each resource it acted on: a listener change
    /// (which starts a drain) can come well before a filter's config.
    #[serde(skip)]
    pub acted_each: BTreeMap<Resource, Acted>,
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
            acted_each: BTreeMap::new(),
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

fn moved(r: &Resource, counter: &str, before: &Stats, now: &Stats) -> bool {
    let value = |stats: &Stats| r.stats(counter).iter().filter_map(|s| stats.get(s)).sum::<u64>();
    value(now) > value(before)
}

/// Whether Envoy has acted on `r`: refused it, or taken it and, for the
/// listeners, put them in force (no new listener is still warming, so the
/// old ones are draining).
fn acted_on(r: &Resource, before: &Stats, now: &Stats) -> bool {
    let warm = !matches!(r, Resource::Listeners) || now.get(WARMING).copied().unwrap_or(0) == 0;
    moved(r, "update_rejected", before, now) || (moved(r, r.taken(), before, now) && warm)
}

/// Successive readings of the counters after a change, each between two
/// instants: where the updates stand, and when Envoy acted on each.
#[derive(Debug)]
pub struct Readings {
    before: Stats,
    /// Per resource: when the last reading that showed it not acted on began.
    pending_since: BTreeMap<Resource, Instant>,
    /// When the last reading that showed anything pending began.
    any_pending_since: Instant,
    acted: BTreeMap<Resource, Acted>,
}

impl Readings {
    /// `before`: the counters read at `at`, just before the change.
    pub fn new(resources: &[Resource], before: Stats, at: Instant) -> Self {
        let pending_since = resources.iter().map(|r| (r.clone(), at)).collect();
        Readings { before, pending_since, any_pending_since: at, acted: BTreeMap::new() }
    }

    /// Takes the counters `now`, read by a reading that began at `began`
    /// and ended at `ended`.
    pub fn read(&mut self, now: &Stats, began: Instant, ended: Instant) -> Progress {
        for (resource, since) in &mut self.pending_since {
            if self.acted.contains_key(resource) {
                continue;
            }
            if acted_on(resource, &self.before, now) {
                self.acted.insert(resource.clone(), Acted { after: *since, by: ended });
            } else {
                *since = began;
            }
        }
        let resources: Vec<Resource> = self.pending_since.keys().cloned().collect();
        let progress = progress(&resources, &self.before, now);
        if matches!(progress, Progress::Pending(_)) {
            self.any_pending_since = began;
        }
        progress
    }

    /// When Envoy acted on the change as a whole, once a reading ending at
    /// `ended` showed it decided; and on each resource it acted on.
    pub fn acted(self, ended: Instant) -> (Acted, BTreeMap<Resource, Acted>) {
        (Acted { after: self.any_pending_since, by: ended }, self.acted)
    }
}

pub fn progress(resources: &[Resource], before: &Stats, now: &Stats) -> Progress {
    let moved = |r: &Resource, counter: &str| moved(r, counter, before, now);
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
    fn each_resource_is_timed_by_the_readings_around_its_own_counter() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut readings = Readings::new(&both(), stats(&[(LDS_OK, 1), (ECDS_OK, 1)]), at(0));
        assert!(matches!(readings.read(&stats(&[(LDS_OK, 1), (ECDS_OK, 1)]), at(10), at(20)), Progress::Pending(_)));
        assert!(matches!(readings.read(&stats(&[(LDS_OK, 2), (ECDS_OK, 1)]), at(30), at(40)), Progress::Pending(_)));
        assert!(matches!(readings.read(&stats(&[(LDS_OK, 2), (ECDS_OK, 1)]), at(50), at(60)), Progress::Pending(_)));
        assert_eq!(readings.read(&stats(&[(LDS_OK, 2), (ECDS_OK, 2)]), at(70), at(80)), Progress::Applied);
        let (all, each) = readings.acted(at(80));
        assert_eq!(all, Acted { after: at(50), by: at(80) });
        assert_eq!(each[&Resource::Listeners], Acted { after: at(10), by: at(40) });
        assert_eq!(each[&Resource::Filter("plug".into())], Acted { after: at(50), by: at(80) });
    }

    #[test]
    fn listeners_act_once_no_new_listener_is_warming() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut readings = Readings::new(&[Resource::Listeners], stats(&[(LDS_OK, 1)]), at(0));
        readings.read(&stats(&[(LDS_OK, 2), (WARMING, 1)]), at(10), at(20));
        readings.read(&stats(&[(LDS_OK, 2), (WARMING, 0)]), at(30), at(40));
        let (_, each) = readings.acted(at(40));
        assert_eq!(each[&Resource::Listeners], Acted { after: at(10), by: at(40) });
    }

    #[test]
    fn stat_names_follow_envoy() {
        let routes = Resource::Routes { stat_prefix: "gateway".into(), name: "gateway".into() };
        assert_eq!(routes.stats("update_success"), ["http.gateway.rds.gateway.update_success"]);
        assert_eq!(Resource::Clusters.stats("update_rejected"), ["cluster_manager.cds.update_rejected"]);
        let network = "extension_config_discovery.network_filter.plug.config_reload";
        assert!(Resource::Filter("plug".into()).stats("config_reload").contains(&network.to_owned()));
        let filter = regex::Regex::new(STATS_FILTER).expect("a valid filter");
        assert!(filter.is_match(ECDS_NO) && filter.is_match(ECDS_OK) && filter.is_match(WARMING));
        assert!(!filter.is_match("server.uptime"));
    }
}
