//! Bounded background load for reload steps: keep-alive HTTP/1.1 and HTTP/2
//! connections, each sending one request at a time at its share of a total
//! rate, for a bounded time. Every response and every connection's end is
//! recorded, so the analysis can tell which connection saw which version
//! when, and whether the proxy closed a connection, gracefully or not.

mod connection;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

/// What the load sends and for how long.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub host: String,
    pub path: String,
    pub http1: usize,
    pub http2: usize,
    /// Requests per second, over all connections.
    pub rate: u32,
    pub duration: Duration,
}

/// A plan aimed at a gateway.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: SocketAddr,
    pub plan: LoadPlan,
    /// The response header whose value names the version that answered.
    pub version_header: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// One request's fate. Times are since the load started.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The client connection slot (0..http1+http2).
    pub slot: usize,
    pub protocol: Protocol,
    /// Which physical connection of the slot (1 for the first).
    pub connection: u32,
    pub sent: Duration,
    pub answered: Duration,
    pub outcome: Answer,
}

#[derive(Debug, Clone)]
pub enum Answer {
    Response { status: u16, version: Option<String> },
    Failed(String),
}

/// How a physical connection ended before the load did.
#[derive(Debug, Clone)]
pub struct ConnectionEnd {
    /// The connection slot it belonged to.
    pub slot: usize,
    pub at: Duration,
    /// Announced first: `connection: close` (HTTP/1) or GOAWAY (HTTP/2).
    pub graceful: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub samples: Vec<Sample>,
    pub ends: Vec<ConnectionEnd>,
    /// Connections opened, per slot.
    pub connects: Vec<u32>,
    pub duration: Duration,
}

/// What one connection slot saw; each slot's task owns its own.
#[derive(Default)]
struct SlotRecording {
    samples: Vec<Sample>,
    ends: Vec<ConnectionEnd>,
    connects: u32,
}

/// Runs the load to its end; `started` tells the caller when it began.
pub async fn run(spec: &LoadSpec, started: tokio::sync::oneshot::Sender<Instant>) -> Recording {
    let slots = spec.plan.http1 + spec.plan.http2;
    let load_started = Instant::now();
    let _ = started.send(load_started);
    let interval = Duration::from_secs_f64(slots as f64 / f64::from(spec.plan.rate.max(1)));
    let deadline = load_started + spec.plan.duration;
    let spec = Arc::new(spec.clone());
    let mut tasks = JoinSet::new();
    for slot in 0..slots {
        let protocol = if slot < spec.plan.http1 { Protocol::Http1 } else { Protocol::Http2 };
        // Spread the slots' ticks over one interval.
        let offset = interval.mul_f64(slot as f64 / slots.max(1) as f64);
        let spec = spec.clone();
        tasks.spawn(async move {
            tokio::time::sleep(offset).await;
            let seen = connection::drive(slot, protocol, &spec, interval, load_started, deadline).await;
            (slot, seen)
        });
    }
    let mut recording = Recording { connects: vec![0; slots], ..Default::default() };
    while let Some(joined) = tasks.join_next().await {
        let (slot, seen) = joined.expect("a connection task does not panic");
        recording.samples.extend(seen.samples);
        recording.ends.extend(seen.ends);
        recording.connects[slot] = seen.connects;
    }
    recording.duration = load_started.elapsed();
    recording.samples.sort_by_key(|s| s.sent);
    recording
}
