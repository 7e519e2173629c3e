//! Bounded TCP load for a reload on one of the gateway's TCP listeners:
//! connections held from the load's start, each exchanging a short message
//! at a steady pace, and new connections at a steady rate, each one
//! exchange and then closed by the client. Every exchange records what
//! came back before the echoed message (the stamps of the network filters
//! that ran), and every connection when the proxy closed it, if it did.
//!
//! A held connection the proxy closes is opened again at once, as a
//! client would; the new one is a connection of its own in the record.
//!
//! One more new connection opens the moment the change begins: no gateway
//! takes a change that instantly, so the record always holds what a
//! client got just before the switch, however the rate's ticks fall
//! against the change.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::clock::Clock;
use super::{traffic, DrainInForce};

/// How long an answer may take before the exchange counts as failed.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// What the TCP load does and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpLoadPlan {
    /// Connections opened as the load starts and kept until it ends.
    pub held: usize,
    /// How often each held connection exchanges a message.
    pub every: Duration,
    /// New connections per second, each one exchange and closed.
    pub rate: u32,
    pub duration: Duration,
}

/// One exchange: a message written, what came back read. Times are since
/// the load started.
#[derive(Debug, Clone)]
pub struct TcpSample {
    pub connection: u32,
    pub sent: Duration,
    pub outcome: TcpAnswer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpAnswer {
    /// The message came back whole, after these bytes (the stamps).
    Stamped(String),
    /// The proxy closed a held connection before the message came back.
    Cut,
    /// No connection, no answer in time, or an answer that was not the message.
    Failed(String),
}

/// One physical connection. Times are since the load started.
#[derive(Debug, Clone)]
pub struct TcpConnection {
    pub id: u32,
    /// Opened by a held lane (else: one exchange on a new connection).
    pub held: bool,
    pub opened: Duration,
    /// When the proxy closed it, seen by its client.
    pub closed_by_proxy: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct TcpRecording {
    pub samples: Vec<TcpSample>,
    pub connections: Vec<TcpConnection>,
    pub duration: Duration,
    /// The gateway's drain settings, when its admin API told them.
    pub drain: Option<DrainInForce>,
}

/// Runs the load against `target` to its end; `started` tells the caller
/// when it began, and `change_began` tells the load when the change did.
pub async fn run(
    target: SocketAddr,
    plan: &TcpLoadPlan,
    started: oneshot::Sender<std::time::Instant>,
    change_began: oneshot::Receiver<()>,
) -> TcpRecording {
    let plan = plan.clone();
    traffic().spawn(drive(target, plan, started, change_began)).await.expect("the TCP load does not panic")
}

/// What one lane saw.
#[derive(Default)]
struct Seen {
    samples: Vec<TcpSample>,
    connections: Vec<TcpConnection>,
}

async fn drive(
    target: SocketAddr,
    plan: TcpLoadPlan,
    started: oneshot::Sender<std::time::Instant>,
    change_began: oneshot::Receiver<()>,
) -> TcpRecording {
    let clock = Clock::start(plan.duration);
    let _ = started.send(clock.started);
    let ids = Arc::new(AtomicU32::new(1));
    let mut lanes = JoinSet::new();
    for lane in 0..plan.held {
        lanes.spawn(held(target, lane, plan.every, clock.clone(), ids.clone()));
    }
    lanes.spawn(fresh(target, plan.rate, clock.clone(), ids, change_began));
    let mut recording = TcpRecording::default();
    while let Some(joined) = lanes.join_next().await {
        let seen = joined.expect("a lane does not panic");
        recording.samples.extend(seen.samples);
        recording.connections.extend(seen.connections);
    }
    recording.duration = clock.since();
    recording.samples.sort_by_key(|s| s.sent);
    recording.connections.sort_by_key(|c| c.id);
    recording
}

/// A held lane: one connection at a time, a message every `every`; a
/// connection the proxy closes is replaced at once.
async fn held(target: SocketAddr, lane: usize, every: Duration, clock: Clock, ids: Arc<AtomicU32>) -> Seen {
    let mut seen = Seen::default();
    let mut count = 0u64;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    'connections: while !clock.over() {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let opened = clock.since();
        let mut stream = match TcpStream::connect(target).await {
            Ok(stream) => stream,
            Err(e) => {
                let outcome = TcpAnswer::Failed(format!("connect: {e}"));
                seen.samples.push(TcpSample { connection: id, sent: opened, outcome });
                ticks.tick().await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let index = seen.connections.len();
        seen.connections.push(TcpConnection { id, held: true, opened, closed_by_proxy: None });
        loop {
            if clock.over() {
                break 'connections;
            }
            count += 1;
            let message = format!("h{lane}.{count};");
            let sent = clock.since();
            let outcome = exchange(&mut stream, &message).await;
            let cut = outcome == TcpAnswer::Cut;
            seen.samples.push(TcpSample { connection: id, sent, outcome });
            if cut || closed_while_waiting(&mut stream, &mut ticks).await {
                seen.connections[index].closed_by_proxy = Some(clock.since());
                continue 'connections;
            }
        }
    }
    seen
}

/// Waits for the next tick, watching the connection meanwhile: true if the
/// proxy closed it (it sends nothing unasked).
async fn closed_while_waiting(stream: &mut TcpStream, ticks: &mut tokio::time::Interval) -> bool {
    let mut byte = [0u8; 1];
    tokio::select! {
        _ = ticks.tick() => false,
        read = stream.read(&mut byte) => matches!(read, Ok(0) | Err(_)),
    }
}

/// New connections at `rate` a second, each one exchange, then closed;
/// and one more as the change begins.
async fn fresh(
    target: SocketAddr,
    rate: u32,
    clock: Clock,
    ids: Arc<AtomicU32>,
    mut change_began: oneshot::Receiver<()>,
) -> Seen {
    let mut exchanges = JoinSet::new();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let mut cued = false;
    let mut count = 0u64;
    while !clock.over() {
        tokio::select! {
            _ = ticks.tick() => {}
            began = &mut change_began, if !cued => {
                cued = true;
                if began.is_err() {
                    continue;
                }
            }
        }
        if clock.over() {
            break;
        }
        count += 1;
        let (clock, id) = (clock.clone(), ids.fetch_add(1, Ordering::Relaxed));
        exchanges.spawn(async move {
            let opened = clock.since();
            let connection = TcpConnection { id, held: false, opened, closed_by_proxy: None };
            let outcome = match TcpStream::connect(target).await {
                Ok(mut stream) => {
                    let _ = stream.set_nodelay(true);
                    match exchange(&mut stream, &format!("n{count};")).await {
                        TcpAnswer::Cut => TcpAnswer::Failed("closed before the answer".into()),
                        answer => answer,
                    }
                }
                Err(e) => TcpAnswer::Failed(format!("connect: {e}")),
            };
            (connection, TcpSample { connection: id, sent: opened, outcome })
        });
    }
    let mut seen = Seen::default();
    while let Some(joined) = exchanges.join_next().await {
        let (connection, sample) = joined.expect("an exchange does not panic");
        seen.connections.push(connection);
        seen.samples.push(sample);
    }
    seen
}

/// Writes `message` and reads until the answer ends with it: what came
/// before it is the answer's stamps.
async fn exchange(stream: &mut TcpStream, message: &str) -> TcpAnswer {
    if let Err(e) = stream.write_all(message.as_bytes()).await {
        return TcpAnswer::Failed(format!("write: {e}"));
    }
    let mut received = Vec::new();
    let read = tokio::time::timeout(ANSWER_TIMEOUT, async {
        let mut buffer = [0u8; 1024];
        while !received.ends_with(message.as_bytes()) {
            match stream.read(&mut buffer).await {
                Ok(0) => return Err(TcpAnswer::Cut),
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Err(TcpAnswer::Cut),
                Err(e) => return Err(TcpAnswer::Failed(format!("read: {e}"))),
            }
        }
        Ok(())
    })
    .await;
    match read {
        Ok(Ok(())) => {
            let stamps = &received[..received.len() - message.len()];
            TcpAnswer::Stamped(String::from_utf8_lossy(stamps).into_owned())
        }
        Ok(Err(ended)) => ended,
        Err(_) => {
            let received = String::from_utf8_lossy(&received);
            TcpAnswer::Failed(format!("no answer within {ANSWER_TIMEOUT:?} (received {received:?})"))
        }
    }
}

#[cfg(test)]
mod tests {
    //! The load against a TCP echo backend directly: every message comes
    //! back bare, unless the backend goes away.

    use super::*;
    use crate::components::echo::EchoServer;
    use crate::runtime::Loopback;

    fn plan(duration_ms: u64) -> TcpLoadPlan {
        TcpLoadPlan {
            held: 2,
            every: Duration::from_millis(50),
            rate: 40,
            duration: Duration::from_millis(duration_ms),
        }
    }

    async fn run_load(target: SocketAddr, plan: &TcpLoadPlan) -> TcpRecording {
        let (started, _) = oneshot::channel();
        let (_, change_began) = oneshot::channel();
        run(target, plan, started, change_began).await
    }

    #[tokio::test]
    async fn held_and_new_connections_echo_bare() {
        let echo = EchoServer::start_tcp("bytes", &Loopback::for_run()).await.expect("a TCP echo");
        let recording = run_load(echo.addr(), &plan(1000)).await;
        let held: Vec<&TcpConnection> = recording.connections.iter().filter(|c| c.held).collect();
        assert_eq!(held.len(), 2, "one connection per held lane: {:?}", recording.connections);
        assert!(recording.connections.iter().all(|c| c.closed_by_proxy.is_none()));
        // 40/s for 1 s, and 20/s on each held lane.
        let fresh = recording.connections.len() - 2;
        assert!((36..=42).contains(&fresh), "{fresh}");
        assert!((36..=44).contains(&(recording.samples.len() - fresh)), "{}", recording.samples.len());
        assert!(recording.samples.iter().all(|s| s.outcome == TcpAnswer::Stamped(String::new())));
    }

    #[tokio::test]
    async fn a_new_connection_opens_as_the_change_begins() {
        let echo = EchoServer::start_tcp("bytes", &Loopback::for_run()).await.expect("a TCP echo");
        // Two a second: ticks at 0 and 500 ms, none near the change at 300 ms.
        let plan = TcpLoadPlan { held: 0, rate: 2, ..plan(900) };
        let (started, when) = oneshot::channel();
        let (began, change_began) = oneshot::channel();
        let target = echo.addr();
        let load = tokio::spawn(async move { run(target, &plan, started, change_began).await });
        let load_started = when.await.expect("the load starts");
        tokio::time::sleep_until((load_started + Duration::from_millis(300)).into()).await;
        began.send(()).expect("the load listens for the change");
        let recording = load.await.expect("the load ends");
        let opened: Vec<u128> = recording.connections.iter().map(|c| c.opened.as_millis()).collect();
        assert_eq!(opened.len(), 3, "{opened:?}");
        assert!((300..480).contains(&opened[1]), "the cued one, before the 500 ms tick: {opened:?}");
    }

    #[tokio::test]
    async fn a_held_connection_the_server_drops_is_replaced() {
        let echo = EchoServer::start_tcp("bytes", &Loopback::for_run()).await.expect("a TCP echo");
        let target = echo.addr();
        let load = tokio::spawn(async move { run_load(target, &plan(1500)).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(echo);
        let recording = load.await.expect("the load ends");
        // A reconnect racing the listener's close may be accepted, then closed too.
        let first = |c: &&TcpConnection| c.held && c.opened < Duration::from_millis(400);
        let held: Vec<&TcpConnection> = recording.connections.iter().filter(first).collect();
        let closed: Vec<Duration> = held.iter().filter_map(|c| c.closed_by_proxy).collect();
        assert_eq!(closed.len(), 2, "both held connections closed: {held:?}");
        assert!(closed.iter().all(|at| (450..800).contains(&at.as_millis())), "{closed:?}");
        let refused = |s: &&TcpSample| matches!(&s.outcome, TcpAnswer::Failed(e) if e.starts_with("connect: "));
        assert!(recording.samples.iter().filter(refused).count() > 10, "later connections are refused");
    }
}
