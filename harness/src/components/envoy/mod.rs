//! Envoy: the process (for the standalone profile) and its admin API.

mod admin;
pub mod dump;

pub use admin::Admin;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::ComponentError;
use crate::runtime::{Process, ProcessSpec};
use dump::Readiness;

/// What must be loaded before a scenario's steps start.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub listeners: Vec<String>,
    pub ecds: Vec<String>,
    /// Route names that must be in some route configuration.
    pub routes: Vec<String>,
}

pub struct Envoy {
    process: Process,
    admin: Admin,
}

impl Envoy {
    /// Starts Envoy on `bootstrap`; its admin API must be at `admin`. `env`
    /// is added to its environment (what Wasm `valueFrom: HOST` reads).
    pub fn start(
        binary: &Path,
        bootstrap: &Path,
        admin: SocketAddr,
        log: &Path,
        concurrency: u32,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ComponentError> {
        let spec = ProcessSpec::new("envoy", binary, log.to_path_buf())
            .arg("-c")
            .arg(bootstrap)
            // Parallel runs must not share the hot-restart shared memory.
            .arg("--disable-hot-restart")
            .arg("--concurrency")
            .arg(concurrency.to_string())
            .arg("--log-level")
            .arg("info")
            // As the istio profile's pilot-agent runs Envoy (drainDuration 5s):
            // a listener change drains the old chain's connections at once.
            .arg("--drain-time-s")
            .arg("5")
            .arg("--drain-strategy")
            .arg("immediate");
        let spec = env.iter().fold(spec, |spec, (k, v)| spec.env(k, v));
        let process = Process::spawn(&spec)?;
        Ok(Envoy { process, admin: Admin::new(admin) })
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
        let log = self.process.log_path().to_path_buf();
        wait_until_loaded(&self.admin, expected, timeout, &log, || {
            if let Some(status) = self.process.exited() {
                return Err(ComponentError::Exited {
                    name: "envoy".into(),
                    status,
                    log: self.process.log_path().display().to_string(),
                    tail: self.process.log_tail(15),
                });
            }
            Ok(())
        })
        .await
    }

    pub async fn stop(self) {
        self.process.stop(Duration::from_secs(2)).await;
    }
}

/// Polls `admin` until `expected` is loaded. `alive` reports a component
/// that died or a rejection seen elsewhere (a log).
pub async fn wait_until_loaded(
    admin: &Admin,
    expected: &Expected,
    timeout: Duration,
    log: &Path,
    mut alive: impl FnMut() -> Result<(), ComponentError>,
) -> Result<(), ComponentError> {
    let started = Instant::now();
    loop {
        alive()?;
        let pending = match loaded(admin, expected).await {
            Readiness::Ready => return Ok(()),
            Readiness::Rejected(message) => {
                // Envoy's log says why; prefer its words to ours.
                let message = rejection_in_log(log).unwrap_or(message);
                return Err(ComponentError::EnvoyRejected { message });
            }
            Readiness::Pending(what) => what,
        };
        if started.elapsed() > timeout {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            return Err(ComponentError::NotReady {
                name: "envoy".into(),
                waited: timeout,
                detail: pending,
                log: log.display().to_string(),
                tail: lines[lines.len().saturating_sub(15)..].join("\n"),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
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
/// format and istio's (tab-separated, through pilot-agent) are read.
fn rejection_in_log(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let rejected =
        lines.iter().position(|l| l.contains("warning") && (l.contains("rejected") || l.contains("update failure")))?;
    let first =
        lines[..rejected].iter().rposition(|l| !(l.contains("error") || l.contains("critical"))).map_or(0, |i| i + 1);
    let messages: Vec<&str> =
        lines[first.max(rejected.saturating_sub(5))..=rejected].iter().map(|l| message(l)).collect();
    Some(messages.join("\n"))
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
