//! `runtime`: a proxy-wasm HTTP filter for tests of what a plugin does at
//! run time, beyond the request it is given. Configured with
//!
//! ```json
//! {"name": "r1",
//!  "counter": "runtime_requests",
//!  "shared": "hits",
//!  "tick_ms": 100,
//!  "queue": "jobs",
//!  "callouts": {"ok": {"cluster": "outbound|80||echo.example", "authority": "echo.example",
//!                      "path": "/", "timeout_ms": 500, "headers": {"x-echo-status": "503"}}}}
//! ```
//!
//! every key but `name` optional, on each request it
//! - counts the requests its VM served, whatever its config
//!   (`x-runtime-count`: a VM Envoy keeps across a config change goes on
//!   counting), and logs a line `runtime NAME: request N` (at info);
//! - adds one to its `counter` metric (a counter Envoy lists as
//!   `wasmcustom.NAME`, the metric's own name);
//! - adds one to the shared-data value `shared` by compare-and-swap, retried
//!   on a lost race (`x-runtime-shared`: the value it wrote);
//! - writes its VM's name (when it started) into the shared-data list
//!   `plugproof.runtime.vms`, by compare-and-swap, and reports how many VMs
//!   the list holds (`x-runtime-vms`): VMs of other workers, and VMs gone
//!   since, that served a request and share its `vm_id`;
//! - with `queue`, puts one item on the shared queue of that name (which
//!   its root context registered), counted by the counter
//!   `QUEUE_enqueued`; the root context of whichever VM Envoy tells the
//!   queue is ready takes every item off it, counted by `QUEUE_dequeued`;
//! - with `tick_ms`, reports how many ticks its root context had
//!   (`x-runtime-ticks`);
//! - when the request names a callout (`x-runtime-callout: NAME`), pauses,
//!   calls the `cluster` with a GET of `path` and waits at most `timeout_ms`,
//!   then reports what came back: `x-callout-status` (the `:status`, or
//!   `(none)` when the response had none, as after a timeout or a failed
//!   connection), `x-callout-body-bytes`, or `x-callout-error` when Envoy
//!   refused to dispatch the call (an unknown cluster).
//!
//! Built with the feature `higress-redis`, it sets up `redis: {cluster,
//! timeout_ms}` when configured, through Higress's host function
//! `proxy_redis_init`: upstream Envoy has no such import, and refuses the
//! module when it loads it.
//!
//! Every answer carries `x-runtime: NAME` and `x-runtime-version: v1` (`v2`
//! when built with the feature `v2`). The logic lives here as plain
//! functions; `filter` is the proxy-wasm glue.

use std::collections::BTreeMap;

use serde::Deserialize;

mod filter;
#[cfg(feature = "higress-redis")]
mod redis;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
    pub counter: Option<String>,
    pub shared: Option<String>,
    pub tick_ms: Option<u64>,
    pub queue: Option<String>,
    /// With the feature `higress-redis`: the Redis cluster to set up.
    pub redis: Option<Redis>,
    #[serde(default)]
    pub callouts: BTreeMap<String, Callout>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redis {
    pub cluster: String,
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callout {
    pub cluster: String,
    pub authority: String,
    #[serde(default = "root")]
    pub path: String,
    pub timeout_ms: u64,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn root() -> String {
    "/".to_owned()
}

pub fn parse_configuration(bytes: &[u8]) -> Result<Config, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Which build of the module this is (`x-runtime-version`).
pub const VERSION: &str = if cfg!(feature = "v2") { "v2" } else { "v1" };

/// The request header naming the callout to make.
pub const CALLOUT_HEADER: &str = "x-runtime-callout";
/// What a response without a `:status` reports.
pub const NO_STATUS: &str = "(none)";

/// The shared-data key where each VM that served a request writes its name.
pub const VMS_KEY: &str = "plugproof.runtime.vms";

/// The list of VM names in `current` (comma-separated), with `me` added if
/// it is not there yet.
pub fn with_vm(current: Option<&[u8]>, me: &str) -> String {
    let current = current.and_then(|bytes| std::str::from_utf8(bytes).ok()).unwrap_or_default();
    let mut names: Vec<&str> = current.split(',').filter(|name| !name.is_empty()).collect();
    if !names.contains(&me) {
        names.push(me);
    }
    names.join(",")
}

/// The shared-data value after `current` (absent: 0) is counted once more.
pub fn incremented(current: Option<&[u8]>) -> u64 {
    current.and_then(|bytes| std::str::from_utf8(bytes).ok()).and_then(|text| text.parse::<u64>().ok()).unwrap_or(0) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_needs_only_a_name() {
        let config = parse_configuration(br#"{"name": "r"}"#).unwrap();
        assert_eq!((config.name.as_str(), config.counter, config.callouts.len()), ("r", None, 0));
        assert!(parse_configuration(b"{}").is_err());
        assert!(parse_configuration(br#"{"name": "r", "other": 1}"#).is_err());
    }

    #[test]
    fn a_callout_names_its_cluster_authority_and_timeout() {
        let text = br#"{"name": "r", "callouts": {"ok": {"cluster": "c", "authority": "a", "timeout_ms": 5}}}"#;
        let callout = &parse_configuration(text).unwrap().callouts["ok"];
        assert_eq!((callout.path.as_str(), callout.timeout_ms), ("/", 5));
        assert!(parse_configuration(br#"{"name": "r", "callouts": {"ok": {"cluster": "c"}}}"#).is_err());
    }

    #[test]
    fn a_vm_is_listed_once() {
        assert_eq!(with_vm(None, "7"), "7");
        assert_eq!(with_vm(Some(b"5,7"), "7"), "5,7");
        assert_eq!(with_vm(Some(b"5"), "7"), "5,7");
    }

    #[test]
    fn a_shared_count_starts_at_one() {
        assert_eq!(incremented(None), 1);
        assert_eq!(incremented(Some(b"41")), 42);
        assert_eq!(incremented(Some(b"junk")), 1);
    }
}
