//! Bounded background load for reload steps: keep-alive HTTP/1.1 and HTTP/2
//! connections, each sending one request at a time at its share of a total
//! rate, for a bounded time. Every response and every connection's end is
//! recorded, so the analysis can tell which connection saw which version
//! when, and whether the proxy closed a connection, gracefully or not.

mod connection;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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
    pub slot: usize,
    pub protocol: Protocol,
    pub connection: u32,
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

/// Shared by the connection tasks while the load runs.
#[derive(Clone)]
struct Recorder {
    started: Instant,
    inner: Arc<Mutex<Recording>>,
}

impl Recorder {
    fn since_start(&self) -> Duration {
        self.started.elapsed()
    }

    fn sample(&self, sample: Sample) {
        self.inner.lock().expect("the recording lock is never poisoned").samples.push(sample);
    }

    fn end(&self, end: ConnectionEnd) {
        self.inner.lock().expect("the recording lock is never poisoned").ends.push(end);
    }

    fn connected(&self, slot: usize) -> u32 {
        let mut recording = self.inner.lock().expect("the recording lock is never poisoned");
        recording.connects[slot] += 1;
        recording.connects[slot]
    }
}

/// Runs the load to its end; `started` tells the caller when it began.
pub async fn run(spec: &LoadSpec, started: tokio::sync::oneshot::Sender<Instant>) -> Recording {
    let slots = spec.plan.http1 + spec.plan.http2;
    let recorder = Recorder {
        started: Instant::now(),
        inner: Arc::new(Mutex::new(Recording { connects: vec![0; slots], ..Default::default() })),
    };
    let _ = started.send(recorder.started);
    let interval = Duration::from_secs_f64(slots as f64 / f64::from(spec.plan.rate.max(1)));
    let deadline = recorder.started + spec.plan.duration;
    let spec = Arc::new(spec.clone());
    let mut tasks = JoinSet::new();
    for slot in 0..slots {
        let protocol = if slot < spec.plan.http1 { Protocol::Http1 } else { Protocol::Http2 };
        // Spread the slots' ticks over one interval.
        let offset = interval.mul_f64(slot as f64 / slots.max(1) as f64);
        let (spec, recorder) = (spec.clone(), recorder.clone());
        tasks.spawn(async move {
            tokio::time::sleep(offset).await;
            connection::drive(slot, protocol, &spec, interval, deadline, &recorder).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut recording = recorder.inner.lock().expect("the recording lock is never poisoned").clone();
    recording.duration = recorder.started.elapsed();
    recording.samples.sort_by_key(|s| s.sent);
    recording
}
