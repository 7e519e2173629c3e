//! Connections to the gateway: a slot keeps one physical connection at a
//! time, shared by its lanes (one on HTTP/1.1, several streams on HTTP/2),
//! and replaces it when the proxy ends it, recording how it ended.

use std::error::Error as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2, TrySendError};
use hyper::header::{HeaderName, HeaderValue, CONNECTION, HOST};
use hyper::{Request, Response, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::clock::Clock;
use super::{ConnectionEnd, LoadSpec, Protocol, StreamShape};

type Body = Empty<Bytes>;

/// How long a slot waits, when a lane gives up a connection, for its
/// driver to tell how it ended.
const END_WAIT: Duration = Duration::from_secs(1);

/// What every request of a slot sends and reads, parsed once.
pub(super) struct Target {
    /// The path (HTTP/1, with a Host header) or the whole URI (HTTP/2,
    /// whose :authority comes from it).
    uri: Uri,
    host: HeaderValue,
    pub version: HeaderName,
    /// A long stream's request headers, which ask the backend for it.
    long: Vec<(HeaderName, HeaderValue)>,
}

impl Target {
    pub fn new(protocol: Protocol, spec: &LoadSpec) -> Result<Self, String> {
        let (host, path) = (&spec.plan.host, &spec.plan.path);
        let uri = match protocol {
            Protocol::Http1 => path.parse(),
            Protocol::Http2 => format!("http://{host}{path}").parse(),
        };
        let long = spec.plan.long.as_ref().map_or(Vec::new(), |l| shape_headers(&l.shape));
        Ok(Target {
            uri: uri.map_err(|e| format!("request: {e}"))?,
            host: host.parse().map_err(|e| format!("request: host: {e}"))?,
            version: spec.version_header.parse().map_err(|e| format!("version header: {e}"))?,
            long,
        })
    }

    pub fn request(&self, protocol: Protocol, long: bool) -> Request<Body> {
        let mut request = Request::new(Body::new());
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        if protocol == Protocol::Http1 {
            headers.insert(HOST, self.host.clone());
        }
        if long {
            headers.extend(self.long.iter().cloned());
        }
        request
    }
}

fn shape_headers(shape: &StreamShape) -> Vec<(HeaderName, HeaderValue)> {
    shape
        .headers()
        .into_iter()
        .map(|(name, value)| {
            (HeaderName::from_static(name), HeaderValue::from_str(&value).expect("numbers and units are header-safe"))
        })
        .collect()
}

enum Sender {
    // HTTP/1.1 sends one request at a time: its slot has one lane.
    Http1(tokio::sync::Mutex<http1::SendRequest<Body>>),
    // HTTP/2's sender is a handle to the connection: each stream clones it.
    Http2(http2::SendRequest<Body>),
}

/// The end of a connection's driver: when, and whether gracefully.
#[derive(Default)]
struct Ended {
    at: OnceLock<(Duration, bool)>,
    notify: Notify,
}

/// One physical connection.
pub(super) struct Connection {
    /// Which connection of its slot (1 for the first).
    pub number: u32,
    protocol: Protocol,
    sender: Sender,
    ended: Arc<Ended>,
    /// An HTTP/1.1 response announced the close (`connection: close`), when.
    announced: OnceLock<Duration>,
    /// A lane found it unusable.
    given_up: AtomicBool,
}

/// Why a request went wrong.
pub(super) enum SendError {
    /// The proxy never processed it: the connection was going away (after
    /// a GOAWAY, or closed before the request went out), so it is safe to
    /// send again on a new connection.
    Unsent(String),
    /// The proxy reset the stream (HTTP/2 RST_STREAM).
    Reset(String),
    Failed(String),
}

impl Connection {
    async fn open(protocol: Protocol, spec: &LoadSpec, number: u32, clock: &Clock) -> Result<Self, String> {
        let stream = TcpStream::connect(spec.target).await.map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        let ended = Arc::new(Ended::default());
        let on_end = {
            let (ended, clock) = (ended.clone(), clock.clone());
            move |result: Result<(), hyper::Error>| {
                let _ = ended.at.set((clock.since(), result.is_ok()));
                ended.notify.notify_waiters();
            }
        };
        let sender = match protocol {
            Protocol::Http1 => {
                let (sender, connection) = http1::handshake(io).await.map_err(|e| format!("handshake: {e}"))?;
                tokio::spawn(async move { on_end(connection.await) });
                Sender::Http1(tokio::sync::Mutex::new(sender))
            }
            Protocol::Http2 => {
                let (sender, connection) =
                    http2::handshake(TokioExecutor::new(), io).await.map_err(|e| format!("handshake: {e}"))?;
                // This driver ends at a GOAWAY (Ok) or when the connection
                // fails; streams already open go on until they end.
                tokio::spawn(async move { on_end(connection.await) });
                Sender::Http2(sender)
            }
        };
        Ok(Connection { number, protocol, sender, ended, announced: OnceLock::new(), given_up: AtomicBool::new(false) })
    }

    /// Whether it cannot take another request.
    pub fn done(&self) -> bool {
        self.ended.at.get().is_some() || self.announced.get().is_some() || self.given_up.load(Ordering::Relaxed)
    }

    /// The proxy announced its end: `connection: close`, or a GOAWAY (an
    /// HTTP/2 driver's graceful end; an HTTP/1.1 one ends well on any close).
    pub fn announced(&self) -> bool {
        self.announced.get().is_some()
            || (self.protocol == Protocol::Http2 && self.ended.at.get().is_some_and(|(_, graceful)| *graceful))
    }

    pub fn give_up(&self) {
        self.given_up.store(true, Ordering::Relaxed);
    }

    /// Sends `request` and waits for the response's headers, noting when
    /// they announce the connection's close.
    pub async fn send(&self, request: Request<Body>, clock: &Clock) -> Result<Response<Incoming>, SendError> {
        let sent = match &self.sender {
            Sender::Http1(sender) => {
                let sent = {
                    let mut sender = sender.lock().await;
                    if let Err(e) = sender.ready().await {
                        return Err(SendError::Unsent(format!("connection closed: {}", chain(&e))));
                    }
                    sender.try_send_request(request)
                };
                sent.await
            }
            Sender::Http2(sender) => sender.clone().try_send_request(request).await,
        };
        let response = sent.map_err(classify_send)?;
        if response.headers().get(CONNECTION).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close")) {
            let _ = self.announced.set(clock.since());
        }
        Ok(response)
    }

    /// How it ended, for the record: waits a moment for its driver.
    async fn end(&self, slot: usize, clock: &Clock) -> ConnectionEnd {
        if let Some(at) = self.announced.get() {
            return ConnectionEnd { slot, at: *at, graceful: true };
        }
        let notified = self.ended.notify.notified();
        if self.ended.at.get().is_none() {
            let _ = tokio::time::timeout(END_WAIT, notified).await;
        }
        match self.ended.at.get() {
            // Only HTTP/2 can announce in its driver's end (a GOAWAY).
            Some((at, graceful)) => {
                ConnectionEnd { slot, at: *at, graceful: *graceful && self.protocol == Protocol::Http2 }
            }
            None => ConnectionEnd { slot, at: clock.since(), graceful: false },
        }
    }
}

fn classify_send(mut error: TrySendError<Request<Body>>) -> SendError {
    let unsent = error.take_message().is_some();
    let text = chain(&error.into_error());
    if unsent || is_go_away(&text) {
        SendError::Unsent(text)
    } else if is_reset(&text) {
        SendError::Reset(text)
    } else {
        SendError::Failed(text)
    }
}

/// An error with its causes, which name what happened on the wire (hyper's
/// own message is only its category).
pub(super) fn chain(error: &hyper::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The proxy's GOAWAY ended the stream before it was processed (h2 reports
/// a received GOAWAY as a "connection error received").
fn is_go_away(text: &str) -> bool {
    text.contains("connection error received")
}

/// The proxy reset the stream (h2: "stream error received").
pub(super) fn is_reset(text: &str) -> bool {
    text.contains("stream error received")
}

/// One connection slot: its connection now, and what became of the others.
pub(super) struct Slot {
    pub index: usize,
    pub protocol: Protocol,
    pub spec: Arc<LoadSpec>,
    pub clock: Clock,
    current: Mutex<Option<Arc<Connection>>>,
    /// Held while a connection is replaced, so that one lane replaces it
    /// and the others wait for the new one.
    replacing: tokio::sync::Mutex<()>,
    record: Mutex<(Vec<ConnectionEnd>, u32)>,
}

impl Slot {
    pub fn new(index: usize, protocol: Protocol, spec: Arc<LoadSpec>, clock: Clock) -> Self {
        Slot {
            index,
            protocol,
            spec,
            clock,
            current: Default::default(),
            replacing: Default::default(),
            record: Default::default(),
        }
    }

    fn live(&self) -> Option<Arc<Connection>> {
        self.current.lock().expect("not poisoned").as_ref().filter(|c| !c.done()).cloned()
    }

    /// The slot's connection, opened if there is none or the one there is
    /// done (its end recorded then, once).
    pub async fn connection(&self) -> Result<Arc<Connection>, String> {
        if let Some(connection) = self.live() {
            return Ok(connection);
        }
        let _replacing = self.replacing.lock().await;
        if let Some(connection) = self.live() {
            return Ok(connection);
        }
        let done = self.current.lock().expect("not poisoned").take();
        if let Some(connection) = done {
            let end = connection.end(self.index, &self.clock).await;
            self.record.lock().expect("not poisoned").0.push(end);
        }
        let number = self.record.lock().expect("not poisoned").1 + 1;
        let connection = Arc::new(Connection::open(self.protocol, &self.spec, number, &self.clock).await?);
        self.record.lock().expect("not poisoned").1 = number;
        *self.current.lock().expect("not poisoned") = Some(connection.clone());
        Ok(connection)
    }

    /// Lets go of its connection, as a client does when it has nothing more
    /// to send; records its end if the proxy had ended it already.
    pub async fn release(&self) {
        let current = self.current.lock().expect("not poisoned").take();
        if let Some(connection) = current.filter(|c| c.ended.at.get().is_some() || c.announced.get().is_some()) {
            let end = connection.end(self.index, &self.clock).await;
            self.record.lock().expect("not poisoned").0.push(end);
        }
    }

    /// The ends of its connections (the last one's if the proxy ended it
    /// before the load did), and how many it opened.
    pub async fn finish(&self) -> (Vec<ConnectionEnd>, u32) {
        self.release().await;
        std::mem::take(&mut *self.record.lock().expect("not poisoned"))
    }
}
