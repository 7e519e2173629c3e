//! An in-process echo backend per service: answers every request with JSON
//! of what it received (method, path, query, host, headers, body) and its name.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::runtime::Loopback;

/// The JSON field naming the service that answered.
pub const SERVICE_FIELD: &str = "service";

pub struct EchoServer {
    name: String,
    addr: SocketAddr,
    // Aborting the accept loop drops its JoinSet, which aborts every connection.
    task: tokio::task::JoinHandle<()>,
}

impl EchoServer {
    /// Listens on a port of `loopback`'s (so that no component of the run
    /// is offered the same port meanwhile).
    pub async fn start(name: &str, loopback: &Loopback) -> std::io::Result<Self> {
        let listener = TcpListener::bind(loopback.free_addr()?).await?;
        let addr = listener.local_addr()?;
        let service_name: Arc<str> = Arc::from(name);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
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

async fn echo(service: Arc<str>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
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
    let report = json!({
        SERVICE_FIELD: &*service,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or_default(),
        "host": host,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let response = Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(report.to_string())))
        .expect("a response with these parts always builds");
    Ok(response)
}
