//! One client connection slot: connect, send paced requests one at a time,
//! record each answer, and reconnect when the proxy ends the connection.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{Answer, ConnectionEnd, LoadSpec, Protocol, Recorder, Sample};

type Body = Empty<Bytes>;

enum Sender {
    Http1(http1::SendRequest<Body>),
    Http2(http2::SendRequest<Body>),
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

    async fn send(&mut self, spec: &LoadSpec) -> Result<Reply, String> {
        let response = match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await.map_err(|e| format!("connection closed: {e}"))?;
                let request = Request::get(&spec.plan.path).header("host", &spec.plan.host).body(Body::new());
                sender.send_request(request.map_err(|e| e.to_string())?).await
            }
            Sender::Http2(sender) => {
                sender.ready().await.map_err(|e| format!("connection closed: {e}"))?;
                let uri = format!("http://{}{}", spec.plan.host, spec.plan.path);
                let request = Request::get(uri).body(Body::new());
                sender.send_request(request.map_err(|e| e.to_string())?).await
            }
        }
        .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let version = header(&spec.version_header);
        let closing = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
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
    deadline: Instant,
    recorder: &Recorder,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let failed = |connection, sent, error: String| Sample {
        slot,
        protocol,
        connection,
        sent,
        answered: recorder.since_start(),
        outcome: Answer::Failed(error),
    };
    while Instant::now() < deadline {
        ticks.tick().await;
        let sent = recorder.since_start();
        let mut client = match Client::connect(protocol, spec).await {
            Ok(client) => client,
            Err(error) => {
                recorder.sample(failed(0, sent, error));
                continue;
            }
        };
        let connection = recorder.connected(slot);
        let end = |graceful| ConnectionEnd { slot, protocol, connection, at: recorder.since_start(), graceful };
        loop {
            if Instant::now() >= deadline {
                // The load is over: this side closes, which is no proxy's doing.
                return;
            }
            if let Some(graceful) = client.ended().await {
                recorder.end(end(graceful && protocol == Protocol::Http2));
                break;
            }
            let sent = recorder.since_start();
            match client.send(spec).await {
                Ok(reply) => {
                    recorder.sample(Sample {
                        slot,
                        protocol,
                        connection,
                        sent,
                        answered: recorder.since_start(),
                        outcome: Answer::Response { status: reply.status, version: reply.version },
                    });
                    if reply.closing {
                        recorder.end(end(true));
                        break;
                    }
                }
                Err(error) => {
                    recorder.sample(failed(connection, sent, error));
                    let graceful = client.ended().await.unwrap_or(false) && protocol == Protocol::Http2;
                    recorder.end(end(graceful));
                    break;
                }
            }
            ticks.tick().await;
        }
    }
}
