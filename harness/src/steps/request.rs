//! `request` + `expect`: one HTTP request through the gateway.

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Method;

use crate::assert::http::Exchange;
use crate::components::envoy::access_log;
use crate::failure::{Failure, FailureKind};
use crate::profiles::Deployment;
use crate::scenario::RequestSpec;

/// Requests named in the access log, numbered per process (each gateway's
/// log belongs to one scenario of one process).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Sends `request` to the gateway and reads the whole answer; with
/// `details`, also what the gateway's access log says of it.
pub async fn send(
    deployment: &dyn Deployment,
    http: &reqwest::Client,
    request: &RequestSpec,
    details: bool,
) -> Result<Exchange, Failure> {
    let transport = |message: String| Failure::new(FailureKind::Transport, message);
    let url = format!("http://{}{}", deployment.gateway(), request.path);
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|e| Failure::new(FailureKind::Setup, format!("method {}: {e}", request.method)))?;
    let mut builder = http.request(method, &url).header("host", &request.host);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let logged = details.then(|| {
        let id = format!("{}-{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let from = std::fs::metadata(deployment.access_log()).map_or(0, |m| m.len());
        (id, from)
    });
    if let Some((id, _)) = &logged {
        builder = builder.header(access_log::REQUEST_HEADER, id);
    }
    let response = builder
        .send()
        .await
        .map_err(|e| transport(format!("{} {} (Host: {}) failed: {e}", request.method, url, request.host)))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = response.text().await.map_err(|e| transport(format!("reading the response body: {e}")))?;
    let details = match logged {
        Some((id, from)) => access_log::find(deployment.access_log(), from, &id).await.map(|entry| entry.details),
        None => None,
    };
    Ok(Exchange { status, details, headers, body })
}
