//! One client connection slot: connect, send paced requests one at a time,
//! record each answer, and reconnect when the proxy ends the connection.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderName, HeaderValue, CONNECTION, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{Answer, ConnectionEnd, LoadSpec, Protocol, Sample, SlotRecording};

type Body = Empty<Bytes>;

enum Sender {
    Http1(http1::SendRequest<Body>),
    Http2(http2::SendRequest<Body>),
}

/// What every request of a slot sends and reads, parsed once.
struct Target {
    /// The path (HTTP/1, with a Host header) or the whole URI (HTTP/2,
    /// whose :authority comes from it).
    uri: Uri,
    host: HeaderValue,
    version: HeaderName,
}

impl Target {
    fn new(protocol: Protocol, spec: &LoadSpec) -> Result<Self, String> {
        let (host, path) = (&spec.plan.host, &spec.plan.path);
        let uri = match protocol {
            Protocol::Http1 => path.parse(),
            Protocol::Http2 => format!("http://{host}{path}").parse(),
        };
        Ok(Target {
            uri: uri.map_err(|e| format!("request: {e}"))?,
            host: host.parse().map_err(|e| format!("request: host: {e}"))?,
            version: spec.version_header.parse().map_err(|e| format!("version header: {e}"))?,
        })
    }
}

/// A physical connection and the task driving it (it ends when the proxy
/// closes the connection: Ok after a graceful close, Err otherwise).
struct Client {
    sender: Sender,
    driver: JoinHandle<Result<(), hyper::Error>>,
}

/// The response of one request: status, version, and whether the proxy
/// announced it closes the connection (HTTP/1 `connection: close`).
struct Reply {
    status: u16,
    version: Option<String>,
    closing: bool,
}

impl Client {
    async fn connect(protocol: Protocol, spec: &LoadSpec) -> Result<Self, String> {
        let stream = TcpStream::connect(spec.target).await.map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        match protocol {
            Protocol::Http1 => {
                let (sender, connection) = http1::handshake(io).await.map_err(|e| format!("handshake: {e}"))?;
                Ok(Client { sender: Sender::Http1(sender), driver: tokio::spawn(connection) })
            }
            Protocol::Http2 => {
                let (sender, connection) =
                    http2::handshake(TokioExecutor::new(), io).await.map_err(|e| format!("handshake: {e}"))?;
                Ok(Client { sender: Sender::Http2(sender), driver: tokio::spawn(connection) })
            }
        }
    }

    async fn send(&mut self, target: &Target) -> Result<Reply, String> {
        let mut request = Request::new(Body::new());
        *request.uri_mut() = target.uri.clone();
        let response = match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await.map_err(|e| format!("connection closed: {e}"))?;
                request.headers_mut().insert(HOST, target.host.clone());
                sender.send_request(request).await
            }
            Sender::Http2(sender) => {
                sender.ready().await.map_err(|e| format!("connection closed: {e}"))?;
                sender.send_request(request).await
            }
        }
        .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let version = headers.get(&target.version).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let closing = headers.get(CONNECTION).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        response.into_body().collect().await.map_err(|e| format!("body: {e}"))?;
        Ok(Reply { status, version, closing })
    }

    /// Whether the proxy has ended the connection, and if so gracefully.
    async fn ended(&mut self) -> Option<bool> {
        if !self.driver.is_finished() {
            return None;
        }
        Some(matches!((&mut self.driver).await, Ok(Ok(()))))
    }
}

pub(super) async fn drive(
    slot: usize,
    protocol: Protocol,
    spec: &LoadSpec,
    interval: Duration,
    started: Instant,
    deadline: Instant,
) -> SlotRecording {
    let mut seen = SlotRecording::default();
    let since_start = || started.elapsed();
    let failed = |connection, sent, error: String| Sample {
        slot,
        protocol,
        connection,
        sent,
        answered: since_start(),
        outcome: Answer::Failed(error),
    };
    let target = match Target::new(protocol, spec) {
        Ok(target) => target,
        Err(error) => {
            seen.samples.push(failed(0, since_start(), error));
            return seen;
        }
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while Instant::now() < deadline {
        ticks.tick().await;
        let sent = since_start();
        let mut client = match Client::connect(protocol, spec).await {
            Ok(client) => client,
            Err(error) => {
                seen.samples.push(failed(0, sent, error));
                continue;
            }
        };
        seen.connects += 1;
        let connection = seen.connects;
        let end = |graceful| ConnectionEnd { slot, at: since_start(), graceful };
        loop {
            if Instant::now() >= deadline {
                // The load is over: this side closes, which is no proxy's doing.
                return seen;
            }
            if let Some(graceful) = client.ended().await {
                seen.ends.push(end(graceful && protocol == Protocol::Http2));
                break;
            }
            let sent = since_start();
            match client.send(&target).await {
                Ok(reply) => {
                    seen.samples.push(Sample {
                        slot,
                        protocol,
                        connection,
                        sent,
                        answered: since_start(),
                        outcome: Answer::Response { status: reply.status, version: reply.version },
                    });
                    if reply.closing {
                        seen.ends.push(end(true));
                        break;
                    }
                }
                Err(error) => {
                    seen.samples.push(failed(connection, sent, error));
                    let graceful = client.ended().await.unwrap_or(false) && protocol == Protocol::Http2;
                    seen.ends.push(end(graceful));
                    break;
                }
            }
            ticks.tick().await;
        }
    }
    seen
}
