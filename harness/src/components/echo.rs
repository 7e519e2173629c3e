//! An in-process echo backend per service: answers every request with JSON
//! of what it received (method, path, query, host, headers, body) and its
//! name. A request can ask for a long answer instead (`StreamShape`, set in
//! `x-echo-*` headers): the answer comes after a delay, and its body can be a
//! stream of server-sent events, so that a stream stays open across a change.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::runtime::Loopback;

/// The JSON field naming the service that answered.
pub const SERVICE_FIELD: &str = "service";

/// How long the backend waits before its response headers.
pub const DELAY_HEADER: &str = "x-echo-delay";
/// How many body chunks (server-sent events) it streams; 0 or absent: the JSON echo.
pub const CHUNKS_HEADER: &str = "x-echo-chunks";
/// How far apart the chunks are sent (the first one this long after the headers).
pub const EVERY_HEADER: &str = "x-echo-every";
/// The size of each chunk in bytes.
pub const SIZE_HEADER: &str = "x-echo-size";
/// The status of the JSON echo (default 200).
pub const STATUS_HEADER: &str = "x-echo-status";

/// Bounds of a long answer: a backend never holds a stream open longer
/// than `MAX_LENGTH`, nor sends more than `MAX_CHUNKS` × `MAX_SIZE` bytes.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
pub const MAX_CHUNKS: u32 = 1000;
pub const MAX_EVERY: Duration = Duration::from_secs(10);
/// The smallest chunk that holds an event's fields (`event`, `id`, `data`).
pub const MIN_SIZE: usize = 32;
pub const MAX_SIZE: usize = 64 * 1024;
pub const MAX_LENGTH: Duration = Duration::from_secs(60);

/// The event name of the last chunk, which tells a complete stream from a
/// cut one whose bytes happen to add up.
pub const LAST_EVENT: &str = "end";

/// A long answer: `delay` before the response headers, then `chunks`
/// server-sent events of exactly `size` bytes, `every` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamShape {
    pub delay: Duration,
    pub chunks: u32,
    pub every: Duration,
    pub size: usize,
}

impl StreamShape {
    /// From the moment the request arrives to the last chunk.
    pub fn length(&self) -> Duration {
        self.delay + self.every * self.chunks
    }

    /// The body's size: the JSON echo's is not known beforehand.
    pub fn body_bytes(&self) -> Option<usize> {
        (self.chunks > 0).then(|| self.chunks as usize * self.size)
    }

    /// The request headers that ask a backend for this answer.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (DELAY_HEADER, format!("{}ms", self.delay.as_millis())),
            (CHUNKS_HEADER, self.chunks.to_string()),
            (EVERY_HEADER, format!("{}ms", self.every.as_millis())),
            (SIZE_HEADER, self.size.to_string()),
        ]
    }

    /// What a request asks for: `None` for the plain JSON echo at once; an
    /// error, naming the header, for a value out of bounds.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, String> {
        let text = |name: &str| headers.get(name).map(|v| v.to_str().map_err(|_| format!("{name}: not text")));
        let duration = |name: &str, max: Duration| -> Result<Duration, String> {
            let Some(value) = text(name).transpose()? else { return Ok(Duration::ZERO) };
            let parsed = humantime::parse_duration(value)
                .map_err(|e| format!("{name}: `{value}` is not a duration like 500ms: {e}"))?;
            if parsed > max {
                return Err(format!("{name}: {value} is longer than the backend's bound, {max:?}"));
            }
            Ok(parsed)
        };
        let number = |name: &str, max: usize| -> Result<Option<usize>, String> {
            let Some(value) = text(name).transpose()? else { return Ok(None) };
            let parsed: usize = value.parse().map_err(|_| format!("{name}: `{value}` is not a whole number"))?;
            if parsed > max {
                return Err(format!("{name}: {value} is more than the backend's bound, {max}"));
            }
            Ok(Some(parsed))
        };
        let delay = duration(DELAY_HEADER, MAX_DELAY)?;
        let chunks = number(CHUNKS_HEADER, MAX_CHUNKS as usize)?.unwrap_or(0) as u32;
        let every = duration(EVERY_HEADER, MAX_EVERY)?;
        let size = number(SIZE_HEADER, MAX_SIZE)?.unwrap_or(MIN_SIZE);
        if size < MIN_SIZE {
            return Err(format!("{SIZE_HEADER}: {size} is less than {MIN_SIZE}, the size of an event's fields"));
        }
        let shape = StreamShape { delay, chunks, every, size };
        if shape.length() > MAX_LENGTH {
            return Err(format!(
                "{DELAY_HEADER} + {CHUNKS_HEADER} × {EVERY_HEADER} is {:?}, longer than the backend's bound, {MAX_LENGTH:?}",
                shape.length()
            ));
        }
        Ok((delay > Duration::ZERO || chunks > 0).then_some(shape))
    }

    /// Chunk `index` (1-based) of the stream: one event, padded to `size`.
    pub fn chunk(&self, index: u32) -> Bytes {
        let event = if index == self.chunks { LAST_EVENT } else { "chunk" };
        let fields = format!("event: {event}\nid: {index}\ndata: ");
        let padding = self.size - fields.len() - 2;
        let mut chunk = String::with_capacity(self.size);
        chunk.push_str(&fields);
        chunk.extend(std::iter::repeat_n('.', padding));
        chunk.push_str("\n\n");
        Bytes::from(chunk)
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

pub struct EchoServer {
    name: String,
    addr: SocketAddr,
    // Aborting the accept loop drops its JoinSet, which aborts every connection.
    task: tokio::task::JoinHandle<()>,
}

impl EchoServer {
    /// Listens on a port of `loopback`'s (so that no component of the run
    /// is offered the same port meanwhile). It serves on the traffic
    /// runtime, beside the load, so that it can use every core.
    pub async fn start(name: &str, loopback: &Loopback) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(loopback.free_addr()?)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let service_name: Arc<str> = Arc::from(name);
        let task = crate::load::traffic().spawn(async move {
            let Ok(listener) = TcpListener::from_std(listener) else { return };
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let _ = stream.set_nodelay(true);
                let service_name = service_name.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| echo(service_name.clone(), req));
                    let _ =
                        auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(EchoServer { name: name.to_owned(), addr, task })
    }

    /// A backend that is down: an address of the run's where nothing listens
    /// (taken, then let go), so connections to it are refused.
    pub fn refusing(name: &str, loopback: &Loopback) -> std::io::Result<Self> {
        let addr = std::net::TcpListener::bind(loopback.free_addr()?)?.local_addr()?;
        let task = crate::load::traffic().spawn(async {});
        Ok(EchoServer { name: name.to_owned(), addr, task })
    }

    /// A TCP service's backend: writes back every byte it reads, on each
    /// connection, until the client closes it.
    pub async fn start_tcp(name: &str, loopback: &Loopback) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(loopback.free_addr()?)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let task = crate::load::traffic().spawn(async move {
            let Ok(listener) = TcpListener::from_std(listener) else { return };
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { continue };
                let _ = stream.set_nodelay(true);
                connections.spawn(async move {
                    let (mut reader, mut writer) = stream.split();
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(EchoServer { name: name.to_owned(), addr, task })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(service: Arc<str>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let shape = match StreamShape::from_headers(req.headers()) {
        Ok(shape) => shape,
        Err(error) => {
            let body = json!({SERVICE_FIELD: &*service, "error": error}).to_string();
            return Ok(respond(StatusCode::BAD_REQUEST, "application/json", full(body)));
        }
    };
    let status = match req.headers().get(STATUS_HEADER).map(|v| v.to_str().ok().and_then(|s| s.parse::<u16>().ok())) {
        None => StatusCode::OK,
        Some(code) => match code.and_then(|c| StatusCode::from_u16(c).ok()) {
            Some(status) => status,
            None => {
                let error = format!("{STATUS_HEADER}: not a status code 100-999");
                let body = json!({SERVICE_FIELD: &*service, "error": error}).to_string();
                return Ok(respond(StatusCode::BAD_REQUEST, "application/json", full(body)));
            }
        },
    };
    let Some(shape) = shape else {
        return Ok(respond(status, "application/json", full(report(&service, req).await)));
    };
    tokio::time::sleep(shape.delay).await;
    if shape.chunks == 0 {
        return Ok(respond(status, "application/json", full(report(&service, req).await)));
    }
    let events = futures::stream::unfold(1, move |index| async move {
        if index > shape.chunks {
            return None;
        }
        tokio::time::sleep(shape.every).await;
        Some((Ok(Frame::data(shape.chunk(index))), index + 1))
    });
    Ok(respond(StatusCode::OK, "text/event-stream", StreamBody::new(events).boxed_unsync()))
}

fn full(text: String) -> Body {
    Full::new(Bytes::from(text)).boxed_unsync()
}

fn respond(status: StatusCode, content_type: &str, body: Body) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body)
        .expect("a response with these parts always builds")
}

/// The JSON report of what the request carried.
async fn report(service: &str, req: Request<Incoming>) -> String {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        headers.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
    }
    let host = parts
        .uri
        .authority()
        .map(|a| a.to_string())
        .or_else(|| parts.headers.get("host").and_then(|h| h.to_str().ok()).map(str::to_owned))
        .unwrap_or_default();
    json!({
        SERVICE_FIELD: service,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or_default(),
        "host": host,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (hyper::header::HeaderName::from_static(k), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn a_request_without_stream_headers_gets_the_json_echo() {
        assert_eq!(StreamShape::from_headers(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn stream_headers_round_trip() {
        let shape =
            StreamShape { delay: Duration::from_millis(1500), chunks: 3, every: Duration::from_millis(250), size: 40 };
        let map: HeaderMap = shape
            .headers()
            .iter()
            .map(|(k, v)| (hyper::header::HeaderName::from_static(k), HeaderValue::from_str(v).unwrap()))
            .collect();
        assert_eq!(StreamShape::from_headers(&map), Ok(Some(shape)));
        assert_eq!(shape.length(), Duration::from_millis(2250));
        assert_eq!(shape.body_bytes(), Some(120));
    }

    #[test]
    fn values_beyond_the_bounds_are_refused_naming_the_header() {
        for (pairs, message) in [
            (vec![(DELAY_HEADER, "31s")], "x-echo-delay: 31s is longer than the backend's bound, 30s"),
            (vec![(CHUNKS_HEADER, "1001")], "x-echo-chunks: 1001 is more than the backend's bound, 1000"),
            (vec![(EVERY_HEADER, "soon")], "x-echo-every: `soon` is not a duration"),
            (vec![(CHUNKS_HEADER, "1"), (SIZE_HEADER, "8")], "x-echo-size: 8 is less than 32"),
            (
                vec![(CHUNKS_HEADER, "1000"), (EVERY_HEADER, "100ms")],
                "x-echo-delay + x-echo-chunks × x-echo-every is 100s, longer than the backend's bound, 60s",
            ),
        ] {
            let error = StreamShape::from_headers(&headers(&pairs)).unwrap_err();
            assert!(error.starts_with(message), "{error}");
        }
    }

    #[test]
    fn each_chunk_is_one_event_of_the_exact_size_and_the_last_says_so() {
        let shape = StreamShape { delay: Duration::ZERO, chunks: 2, every: Duration::ZERO, size: 40 };
        let (first, last) = (shape.chunk(1), shape.chunk(2));
        assert_eq!((first.len(), last.len()), (40, 40));
        assert!(first.starts_with(b"event: chunk\nid: 1\ndata: ..."), "{first:?}");
        assert!(last.starts_with(b"event: end\nid: 2\ndata: ") && last.ends_with(b".\n\n"), "{last:?}");
    }

    #[tokio::test]
    async fn the_backend_streams_late_and_refuses_what_is_out_of_bounds() {
        let echo = EchoServer::start("svc", &crate::runtime::Loopback::for_run()).await.expect("an echo server");
        let http = crate::http::client();
        let url = format!("http://{}/", echo.addr());
        let started = std::time::Instant::now();
        let response = http
            .get(&url)
            .header(DELAY_HEADER, "200ms")
            .header(CHUNKS_HEADER, "3")
            .header(EVERY_HEADER, "50ms")
            .header(SIZE_HEADER, "40")
            .send()
            .await
            .expect("an answer");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let body = response.bytes().await.expect("a body");
        assert!(started.elapsed() >= Duration::from_millis(350));
        assert_eq!(body.len(), 120);
        assert!(body[80..].starts_with(b"event: end\nid: 3\n"));
        let refused = http.get(&url).header(CHUNKS_HEADER, "5000").send().await.expect("an answer");
        assert_eq!(refused.status(), 400);
        let report: Value = refused.json().await.expect("JSON");
        assert_eq!(report["error"], "x-echo-chunks: 5000 is more than the backend's bound, 1000");
        let plain: Value = http.get(&url).send().await.expect("an answer").json().await.expect("JSON");
        assert_eq!(plain[SERVICE_FIELD], "svc");
    }
}
