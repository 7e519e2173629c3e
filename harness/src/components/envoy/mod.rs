//! Envoy: the process (for the standalone profile) and its admin API.

pub mod access_log;
mod admin;
pub mod dump;
mod hints;
pub mod updates;

pub use admin::Admin;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{still_running, ComponentError};
use crate::runtime::{Launch, Program, Running, Runtime};
use dump::Readiness;
use updates::{Progress, Readings, Resource, Stats, Update, UpdateKind, STATS_FILTER};

/// What must be loaded before a scenario's steps start.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub listeners: Vec<String>,
    pub ecds: Vec<String>,
    /// Route names that must be in some route configuration.
    pub routes: Vec<String>,
}

pub struct Envoy {
    process: Box<dyn Running>,
    admin: Admin,
}

/// What Envoy is started with.
pub struct EnvoyStart<'a> {
    pub bootstrap: &'a Path,
    /// Its admin API must be at this address.
    pub admin: SocketAddr,
    pub log: PathBuf,
    /// The scenario's folder, which holds the bootstrap, xDS files, modules
    /// and logs (a container sees it at the same path).
    pub dir: &'a Path,
    pub concurrency: u32,
    /// Added to its environment (what Wasm `valueFrom: HOST` reads).
    pub env: &'a BTreeMap<String, String>,
}

impl Envoy {
    /// Starts Envoy as `runtime` runs it.
    pub async fn start(runtime: &dyn Runtime, start: EnvoyStart<'_>) -> Result<Self, ComponentError> {
        let launch = Launch::new(Program::Envoy, start.dir, start.log)
            .arg("-c")
            .arg(start.bootstrap)
            // Parallel runs must not share the hot-restart shared memory.
            .arg("--disable-hot-restart")
            .arg("--concurrency")
            .arg(start.concurrency.to_string())
            .arg("--log-level")
            .arg("info")
            // As the istio profile's pilot-agent runs Envoy (drainDuration 5s):
            // a listener change drains the old chain's connections at once.
            .arg("--drain-time-s")
            .arg("5")
            .arg("--drain-strategy")
            .arg("immediate")
            .arg("--file-flush-interval-msec")
            .arg(access_log::FLUSH.as_millis().to_string())
            .envs(start.env);
        let process = runtime.start(&launch).await?;
        Ok(Envoy { process, admin: Admin::new(start.admin) })
    }

    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// Waits until every expected listener is active and every expected
    /// ECDS resource is loaded; fails fast, with Envoy's own message, when
    /// Envoy exits or rejects a resource.
    pub async fn wait_ready(&mut self, expected: &Expected, timeout: Duration) -> Result<(), ComponentError> {
        wait_until_loaded(&self.admin, expected, timeout, self.process.as_mut()).await
    }

    pub fn parts(&mut self) -> (&Admin, &mut dyn Running) {
        (&self.admin, self.process.as_mut())
    }

    /// Evidence of how it ran beyond its log (a container's inspection).
    pub async fn evidence(&self) -> Vec<(String, serde_json::Value)> {
        self.process.evidence().await
    }

    pub async fn stop(self) {
        self.process.stop(Duration::from_secs(2)).await;
    }
}

/// Polls `admin` until `expected` is loaded. `process` runs Envoy (itself,
/// or pilot-agent) and logs what Envoy logs.
pub async fn wait_until_loaded(
    admin: &Admin,
    expected: &Expected,
    timeout: Duration,
    process: &mut dyn Running,
) -> Result<(), ComponentError> {
    let started = Instant::now();
    loop {
        still_running(process)?;
        let pending = match loaded(admin, expected).await {
            Readiness::Ready => return Ok(()),
            Readiness::Rejected(message) => {
                // Envoy's log says why; prefer its words to ours.
                let message = hints::explain(rejection_in_log(process.log_path(), 0).unwrap_or(message));
                return Err(ComponentError::EnvoyRejected { message });
            }
            Readiness::Pending(what) => what,
        };
        if started.elapsed() > timeout {
            return Err(ComponentError::NotReady {
                name: "envoy".into(),
                waited: timeout,
                detail: pending,
                log: process.log_path().display().to_string(),
                tail: process.log_tail(15),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Where an update is measured from: Envoy's counters and the end of its
/// log just before the change.
#[derive(Debug)]
pub struct Baseline {
    stats: Stats,
    log_len: u64,
    at: Instant,
}

impl Baseline {
    pub async fn take(admin: &Admin, process: &dyn Running) -> Result<Self, ComponentError> {
        let log_len = std::fs::metadata(process.log_path()).map_or(0, |m| m.len());
        Ok(Baseline { stats: admin.stats(STATS_FILTER).await?, log_len, at: Instant::now() })
    }
}

/// Waits until Envoy has taken or refused every update in `resources`
/// since `baseline`; fails when Envoy exits, or with what is still pending
/// when `within` passes.
pub async fn await_update(
    admin: &Admin,
    process: &mut dyn Running,
    resources: Vec<Resource>,
    baseline: Baseline,
    within: Duration,
) -> Result<Update, ComponentError> {
    if resources.is_empty() {
        return Ok(Update::unchanged());
    }
    let mut readings = Readings::new(&resources, baseline.stats, baseline.at);
    loop {
        still_running(process)?;
        let reading = Instant::now();
        let pending = match admin.stats(STATS_FILTER).await {
            Ok(now) => {
                let ended = Instant::now();
                let (kind, refused) = match readings.read(&now, reading, ended) {
                    Progress::Pending(pending) => (Err(pending.join("; ")), Vec::new()),
                    Progress::Applied => (Ok(UpdateKind::Applied), Vec::new()),
                    Progress::Rejected(refused) => (Ok(UpdateKind::Rejected), refused),
                };
                match kind {
                    Err(pending) => pending,
                    Ok(kind) => {
                        let took = baseline.at.elapsed();
                        let rejection = if refused.is_empty() {
                            None
                        } else {
                            Some(rejection(admin, &refused, process.log_path(), baseline.log_len).await)
                        };
                        let (acted, acted_each) = readings.acted(ended);
                        return Ok(Update { kind, took, acted: Some(acted), acted_each, resources, rejection });
                    }
                }
            }
            Err(e) => format!("cannot read stats: {e}"),
        };
        if baseline.at.elapsed() > within {
            return Err(ComponentError::UpdateNotSeen {
                waited: within,
                pending,
                log: process.log_path().display().to_string(),
                tail: process.log_tail(15),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Envoy's words for the refused resources: the config dump's error state,
/// else what its log said since the change.
async fn rejection(admin: &Admin, refused: &[Resource], log: &Path, from: u64) -> String {
    let names: Vec<String> = refused.iter().map(ToString::to_string).collect();
    let refused_here = |(name, _): &(String, String)| {
        refused.iter().any(|r| match r {
            Resource::Filter(filter) => name == &format!("ECDS {filter}"),
            Resource::Listeners => name.starts_with("listener "),
            Resource::Clusters | Resource::Routes { .. } => false,
        })
    };
    let details: Vec<String> = match admin.config_dump().await {
        Ok(dump) => {
            dump::error_details(&dump).into_iter().filter(refused_here).map(|(n, d)| format!("{n}: {d}")).collect()
        }
        Err(_) => Vec::new(),
    };
    let words = if details.is_empty() { rejection_in_log(log, from) } else { Some(details.join("\n")) };
    match words {
        Some(words) => hints::explain(format!("{}: {words}", names.join(", "))),
        None => format!("{}: Envoy counted the update as rejected", names.join(", ")),
    }
}

/// Waits until Envoy no longer serves listener `name` (it is removed, or
/// draining); else says what it still serves after `timeout`.
pub async fn await_removed(admin: &Admin, name: &str, timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let left = match admin.config_dump().await {
            Ok(dump) if !dump::serves(&dump, name) => return Ok(()),
            Ok(_) => format!("listener {name}"),
            Err(e) => format!("an admin API that does not answer ({e})"),
        };
        if started.elapsed() > timeout {
            return Err(format!("{left} {timeout:?} later"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn loaded(admin: &Admin, expected: &Expected) -> Readiness {
    let Ok(dump) = admin.config_dump().await else {
        return Readiness::Pending("the admin API does not answer".into());
    };
    match dump::readiness(&dump, expected) {
        Readiness::Ready => {}
        other => return other,
    }
    match admin.stats(&format!("^{}", regex::escape(dump::ECDS_STATS_PREFIX))).await {
        Ok(stats) => dump::ecds_applied(&stats, expected),
        Err(e) => Readiness::Pending(format!("cannot read stats: {e}")),
    }
}

/// Envoy logs a rejected xDS update as a warning with the reason, after the
/// errors that led to it (a Wasm plugin's own log line, a failed VM): those
/// lines are the clearest message a user can get. Both Envoy's own log
/// format and istio's (tab-separated, through pilot-agent) are read, from
/// byte `from` on.
fn rejection_in_log(log: &Path, from: u64) -> Option<String> {
    let bytes = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(bytes.get(from as usize..)?);
    let lines: Vec<&str> = text.lines().collect();
    let rejected = lines.iter().position(|l| {
        matches!(level(l), "warning" | "warn") && (l.contains("rejected") || l.contains("update failure"))
    })?;
    // A VM that cannot be made says why in a warning of its own, before the errors.
    let leads = |l: &&str| matches!(level(l), "error" | "critical") || l.contains("Failed to create Wasm VM");
    let first = lines[..rejected].iter().rposition(|l| !leads(l)).map_or(0, |i| i + 1);
    let messages: Vec<&str> =
        lines[first.max(rejected.saturating_sub(5))..=rejected].iter().map(|l| message(l)).collect();
    Some(messages.join("\n"))
}

/// The level of a log line, in either format.
fn level(line: &str) -> &str {
    // istio: "TIME\tLEVEL\t..."
    if line.contains('\t') {
        return line.split('\t').nth(1).unwrap_or_default();
    }
    // Envoy: "[TIME][THREAD][LEVEL]..."
    line.split('[').nth(3).and_then(|rest| rest.split(']').next()).unwrap_or_default()
}

/// The message of a log line without its time, thread, level and source.
fn message(line: &str) -> &str {
    // istio: "TIME\tLEVEL\tenvoy LOGGER SOURCE\tMESSAGE\tthread=N"
    if let Some(message) = line.split('\t').nth(3) {
        return message;
    }
    // Envoy: "[TIME][THREAD][LEVEL][LOGGER] [SOURCE] MESSAGE"
    line.split_once("] ").map_or(line, |(_, rest)| rest.split_once("] ").map_or(rest, |(_, m)| m))
}

#[cfg(test)]
mod tests {
    use super::level;

    #[test]
    fn levels_in_both_log_formats() {
        let envoy = "[2026-11-22 01:08:41.106][16248][critical][wasm] [source/context.cc:1160] an error here";
        assert_eq!(level(envoy), "critical");
        let istio = "2026-11-22T01:08:41.106Z\twarning\tenvoy config source/x.cc:1\tan error here\tthread=1";
        assert_eq!(level(istio), "warning");
        assert_eq!(level("no level at all"), "");
    }
}
