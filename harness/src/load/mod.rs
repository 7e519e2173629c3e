//! Bounded background load for reload steps: keep-alive HTTP/1.1 and HTTP/2
//! connections, each HTTP/2 connection carrying several concurrent streams,
//! short requests paced at their share of a total rate, and long streams
//! (an answer that comes late, a body streamed in chunks) held across the
//! change. Every response, every long stream and every connection's end is
//! recorded, so the analysis can tell which connection and stream saw which
//! version when, and whether the proxy closed or cut anything, and how.
//!
//! The load runs on the traffic runtime (`traffic`), multi-threaded, for
//! a bounded time: the plan's duration, then at most `GRACE` for answers
//! still due.

mod clock;
mod connection;
mod lane;
pub mod tcp;
mod traffic;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

pub use crate::components::echo::StreamShape;
use connection::Slot;
pub use traffic::traffic;

/// How long after the load's end an answer still due may take; then it is
/// given up, so that a proxy that never answers cannot hold a step.
pub const GRACE: Duration = Duration::from_secs(5);

/// What the load sends and for how long.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub host: String,
    pub path: String,
    /// Keep-alive HTTP/1.1 connections for short requests.
    pub http1: usize,
    /// Cleartext HTTP/2 connections.
    pub http2: usize,
    /// Concurrent short streams on each HTTP/2 connection.
    pub streams: usize,
    /// Short requests per second, over all connections.
    pub rate: u32,
    pub duration: Duration,
    pub long: Option<LongStreams>,
}

/// Long streams, each open from its start to its backend's last chunk;
/// one after another on each of their lanes while the load runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongStreams {
    /// Lanes on HTTP/1.1 connections of their own.
    pub http1: usize,
    /// Lanes on each HTTP/2 connection, beside its short streams.
    pub http2: usize,
    /// What the backend answers each of them.
    pub shape: StreamShape,
}

impl LoadPlan {
    /// Connection slots for short requests: HTTP/1.1 first, then HTTP/2.
    pub fn short_slots(&self) -> usize {
        self.http1 + self.http2
    }

    /// Every connection slot: the short ones, then long streams' own HTTP/1.1.
    pub fn slots(&self) -> usize {
        self.short_slots() + self.long.as_ref().map_or(0, |l| l.http1)
    }

    /// Lanes sending short requests, one at a time each.
    pub fn short_lanes(&self) -> usize {
        self.http1 + self.http2 * self.streams
    }
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

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

/// One short request's fate. Times are since the load started.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The client connection slot (0..short_slots).
    pub slot: usize,
    pub protocol: Protocol,
    /// Which physical connection of the slot (1 for the first; 0: none).
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

/// One long stream, from its request to its end. Times are since the load
/// started.
///
/// What the plugin did to it shows only in its response headers: a
/// proxy-wasm plugin such as `stamp` sets them once, when they pass, with
/// the configuration its stream's filter was created with. Nothing it
/// stamps travels with the body's chunks or trailers, so the version in
/// force when the stream ends cannot be observed; its completeness can.
#[derive(Debug, Clone)]
pub struct LongStream {
    pub slot: usize,
    pub protocol: Protocol,
    pub connection: u32,
    pub started: Duration,
    /// When its response headers came (after the backend's delay).
    pub answered: Option<Duration>,
    pub ended: Duration,
    pub status: Option<u16>,
    /// The version header's value in its response headers.
    pub version: Option<String>,
    /// Body chunks received whole, of those the backend sends.
    pub chunks: u32,
    pub expected_chunks: u32,
    pub end: StreamEnd,
}

/// How a long stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every chunk came, then the end of the body.
    Completed,
    /// The proxy reset it (HTTP/2 RST_STREAM), with its reason.
    Reset(String),
    /// Cut on a connection whose close the proxy had announced (GOAWAY, or
    /// `connection: close` on the stream's own response).
    ClosedWithNotice(String),
    /// Cut without notice, never sent, or anything else that went wrong.
    Error(String),
}

impl StreamEnd {
    /// A short label: `completed`, `reset`, `closed with notice`, `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamEnd::Completed => "completed",
            StreamEnd::Reset(_) => "reset",
            StreamEnd::ClosedWithNotice(_) => "closed with notice",
            StreamEnd::Error(_) => "error",
        }
    }

    /// What was seen, for a stream that did not complete.
    pub fn detail(&self) -> Option<&str> {
        match self {
            StreamEnd::Completed => None,
            StreamEnd::Reset(d) | StreamEnd::ClosedWithNotice(d) | StreamEnd::Error(d) => Some(d),
        }
    }
}

/// What the gateway says of its drain, from its admin API (`/server_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainInForce {
    /// `--drain-time-s`, as Envoy prints it (`5s`).
    pub time: String,
    /// `--drain-strategy` (`Immediate`, `Gradual`).
    pub strategy: String,
}

#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub samples: Vec<Sample>,
    pub ends: Vec<ConnectionEnd>,
    /// Connections opened, per slot.
    pub connects: Vec<u32>,
    pub streams: Vec<LongStream>,
    /// Requests that never went out because their connection was going
    /// away (closed, or after the proxy's GOAWAY, which promises that the
    /// streams it did not process are safe to retry), each sent again at
    /// once on a new connection. The connection's end is recorded as any.
    pub resent: usize,
    pub duration: Duration,
    /// The gateway's drain settings, when its admin API told them.
    pub drain: Option<DrainInForce>,
}

/// Runs the load to its end; `started` tells the caller when it began.
pub async fn run(spec: &LoadSpec, started: tokio::sync::oneshot::Sender<Instant>) -> Recording {
    let spec = Arc::new(spec.clone());
    traffic().spawn(drive(spec, started)).await.expect("the load does not panic")
}

async fn drive(spec: Arc<LoadSpec>, started: tokio::sync::oneshot::Sender<Instant>) -> Recording {
    let plan = &spec.plan;
    let long_http2 = plan.long.as_ref().map_or(0, |l| l.http2);
    let clock = clock::Clock::start(plan.duration);
    let _ = started.send(clock.started);
    let lanes = plan.short_lanes().max(1);
    let interval = Duration::from_secs_f64(lanes as f64 / f64::from(plan.rate.max(1)));
    let slots: Vec<Arc<Slot>> = (0..plan.slots())
        .map(|index| {
            let protocol =
                if index < plan.http1 || index >= plan.short_slots() { Protocol::Http1 } else { Protocol::Http2 };
            Arc::new(Slot::new(index, protocol, spec.clone(), clock.clone()))
        })
        .collect();
    let mut tasks = JoinSet::new();
    let mut short = 0;
    for slot in &slots {
        let (shorts, longs) = match (slot.index, slot.protocol) {
            (i, Protocol::Http1) if i < plan.http1 => (1, 0),
            (_, Protocol::Http1) => (0, 1),
            (_, Protocol::Http2) => (plan.streams, long_http2),
        };
        for _ in 0..shorts {
            // Spread the lanes' ticks over one interval.
            let offset = interval.mul_f64(short as f64 / lanes as f64);
            short += 1;
            tasks.spawn(lane::short(slot.clone(), interval, offset));
        }
        for _ in 0..longs {
            tasks.spawn(lane::long(slot.clone()));
        }
    }
    let mut recording = Recording { connects: vec![0; slots.len()], ..Default::default() };
    while let Some(joined) = tasks.join_next().await {
        let seen = joined.expect("a lane does not panic");
        recording.samples.extend(seen.samples);
        recording.streams.extend(seen.streams);
        recording.resent += seen.resent;
    }
    recording.duration = clock.started.elapsed();
    for slot in slots {
        let (ends, connects) = slot.finish().await;
        recording.connects[slot.index] = connects;
        recording.ends.extend(ends);
    }
    recording.samples.sort_by_key(|s| s.sent);
    recording.streams.sort_by_key(|s| s.started);
    recording.ends.sort_by_key(|e| e.at);
    recording
}

#[cfg(test)]
mod tests {
    //! The load against an echo backend directly (it speaks HTTP/1.1 and
    //! cleartext HTTP/2): no proxy in between, so every request answers and
    //! every stream completes, unless the backend goes away.

    use super::*;
    use crate::components::echo::EchoServer;
    use crate::runtime::Loopback;

    fn spec(addr: SocketAddr, duration: Duration, long: Option<LongStreams>) -> LoadSpec {
        LoadSpec {
            target: addr,
            plan: LoadPlan {
                host: "echo.example.com".into(),
                path: "/".into(),
                http1: 1,
                http2: 1,
                streams: 3,
                rate: 200,
                duration,
                long,
            },
            version_header: "content-type".into(),
        }
    }

    fn shape(chunks: u32, every_ms: u64) -> StreamShape {
        StreamShape { delay: Duration::from_millis(100), chunks, every: Duration::from_millis(every_ms), size: 40 }
    }

    async fn run_load(spec: &LoadSpec) -> Recording {
        let (tx, _rx) = tokio::sync::oneshot::channel();
        run(spec, tx).await
    }

    #[tokio::test]
    async fn short_requests_multiplex_and_long_streams_complete() {
        let echo = EchoServer::start("echo", &Loopback::for_run()).await.expect("an echo server");
        let long = LongStreams { http1: 1, http2: 2, shape: shape(4, 100) };
        let recording = run_load(&spec(echo.addr(), Duration::from_millis(1200), Some(long))).await;
        // 200/s over 4 lanes for 1.2 s.
        assert!((200..=260).contains(&recording.samples.len()), "{}", recording.samples.len());
        assert!(recording.samples.iter().all(|s| matches!(
            &s.outcome,
            Answer::Response { status: 200, version: Some(v) } if v == "application/json"
        )));
        assert_eq!(recording.connects, vec![1, 1, 1], "one connection per slot, the HTTP/2 one shared");
        assert!(recording.ends.is_empty(), "{:?}", recording.ends);
        // Each lane: one 0.5 s stream after another while one fits.
        assert_eq!(recording.streams.len(), 6, "{:?}", recording.streams);
        for stream in &recording.streams {
            assert_eq!(stream.end, StreamEnd::Completed, "{stream:?}");
            assert_eq!((stream.chunks, stream.expected_chunks), (4, 4));
            assert_eq!(stream.version.as_deref(), Some("text/event-stream"));
            let answered = stream.answered.expect("answered") - stream.started;
            assert!(answered >= Duration::from_millis(100), "the backend's delay: {answered:?}");
        }
        assert_eq!(recording.streams.iter().filter(|s| s.protocol == Protocol::Http2).count(), 4);
    }

    #[tokio::test]
    async fn a_stream_the_backend_drops_is_cut_without_notice() {
        let echo = EchoServer::start("echo", &Loopback::for_run()).await.expect("an echo server");
        let long = LongStreams { http1: 1, http2: 1, shape: shape(20, 100) };
        let spec = spec(echo.addr(), Duration::from_millis(2500), Some(long));
        let load = tokio::spawn(async move { run_load(&spec).await });
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Aborting the echo server aborts its connections: both streams break.
        drop(echo);
        let recording = load.await.expect("the load ends");
        let cut: Vec<&LongStream> =
            recording.streams.iter().filter(|s| s.started < Duration::from_millis(600)).collect();
        assert_eq!(cut.len(), 2, "{:?}", recording.streams);
        for stream in cut {
            let StreamEnd::Error(error) = &stream.end else { panic!("{stream:?}") };
            assert!(error.starts_with("closed without notice: after "), "{error}");
            assert!((3..=6).contains(&stream.chunks), "{stream:?}");
        }
        assert!(recording.samples.iter().any(|s| matches!(s.outcome, Answer::Failed(_))), "later requests fail");
    }
}
