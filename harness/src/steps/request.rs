//! `request` + `expect`: one HTTP request through the gateway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;

use crate::assert::http::Exchange;
use crate::components::envoy::access_log;
use crate::failure::{Failure, FailureKind};
use crate::profiles::Deployment;
use crate::scenario::RequestSpec;

/// Requests named in the access log, numbered per process (each gateway's
/// log belongs to one scenario of one process).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How long a request through a port-forward may take before the
/// gateway's access log is asked whether it answered.
const FORWARDED_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a request whose answer a port-forward lost is sent again.
const LOST_RETRIES: u32 = 2;

/// Sends `request` to the gateway and reads the whole answer; with
/// `details`, also what the gateway's access log says of it. Through a
/// port-forward (which can lose an answer, see `runtime::port_forward`), a
/// request that times out is sent again if, and only if, the gateway's
/// access log shows that it answered: the harness lost that answer, the
/// gateway did not.
pub async fn send(
    deployment: &dyn Deployment,
    http: &reqwest::Client,
    request: &RequestSpec,
    details: bool,
) -> Result<Exchange, Failure> {
    let mut lost = 0;
    loop {
        match attempt(deployment, http, request, details).await {
            Err(Attempt::Lost { failure, .. }) if lost == LOST_RETRIES => return Err(failure),
            Err(Attempt::Lost { code, .. }) => {
                lost += 1;
                tracing::info!(host = %request.host, code, "the port-forward lost the gateway's answer; sending again");
            }
            Err(Attempt::Failed(failure)) => return Err(failure),
            Ok(exchange) => return Ok(exchange),
        }
    }
}

enum Attempt {
    Failed(Failure),
    /// The gateway answered (`code`, as its access log says), but the answer never came.
    Lost {
        failure: Failure,
        code: String,
    },
}

async fn attempt(
    deployment: &dyn Deployment,
    http: &reqwest::Client,
    request: &RequestSpec,
    details: bool,
) -> Result<Exchange, Attempt> {
    let forwarded = deployment.forwarded();
    let transport = |message: String| Failure::new(FailureKind::Transport, message);
    let url = format!("http://{}{}", deployment.gateway(), request.path);
    let method = Method::from_bytes(request.method.as_bytes())
        .map_err(|e| Attempt::Failed(Failure::new(FailureKind::Setup, format!("method {}: {e}", request.method))))?;
    let mut builder = http.request(method, &url).header("host", &request.host);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    if forwarded {
        builder = builder.timeout(FORWARDED_TIMEOUT);
    }
    let logged = (details || forwarded).then(|| {
        let id = format!("{}-{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let from = std::fs::metadata(deployment.access_log()).map_or(0, |m| m.len());
        (id, from)
    });
    if let Some((id, _)) = &logged {
        builder = builder.header(access_log::REQUEST_HEADER, id);
    }
    let named = logged.as_ref();
    let failed = move |error: reqwest::Error, what: String| async move {
        let failure = transport(format!("{what}: {error}"));
        let answered = match (named, forwarded && error.is_timeout()) {
            (Some((id, from)), true) => access_log::find(deployment.access_log(), *from, id).await,
            _ => None,
        };
        match answered {
            // 0: the gateway had not answered when the client gave up.
            Some(entry) if entry.code != "0" => Attempt::Lost { failure, code: entry.code },
            _ => Attempt::Failed(failure),
        }
    };
    let response = match builder.send().await {
        Ok(response) => response,
        Err(e) => return Err(failed(e, format!("{} {} (Host: {}) failed", request.method, url, request.host)).await),
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = match response.text().await {
        Ok(body) => body,
        Err(e) => return Err(failed(e, "reading the response body".into()).await),
    };
    let details = match (details, &logged) {
        (true, Some((id, from))) => {
            access_log::find(deployment.access_log(), *from, id).await.map(|entry| entry.details)
        }
        _ => None,
    };
    Ok(Exchange { status, details, headers, body })
}
