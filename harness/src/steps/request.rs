//! `request` + `expect`: one HTTP request through the gateway.

use reqwest::Method;

use crate::assert::http::Exchange;
use crate::outcome::{Failure, FailureKind};
use crate::profiles::Deployment;
use crate::scenario::RequestSpec;

/// Sends `request` to the gateway and reads the whole answer.
pub async fn send(
    deployment: &dyn Deployment,
    http: &reqwest::Client,
    request: &RequestSpec,
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
    Ok(Exchange { status, headers, body })
}
