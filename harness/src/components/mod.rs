//! The parts a scenario runs against: the OCI registry, Envoy, echo backends.

pub mod apiserver;
pub mod echo;
pub mod envoy;
pub mod etcd;
pub mod gateway;
pub mod istiod;
pub mod node;
pub mod registry;

use std::future::Future;
use std::time::{Duration, Instant};

use crate::failure::FailureKind;
use crate::runtime::{ProcessError, Running, RuntimeError};

#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{name} exited ({status}) during start-up; the last lines of its log ({log}):\n{tail}")]
    Exited { name: String, status: String, log: String, tail: String },
    #[error("{name} was not ready within {waited:?}: {detail}; the last lines of its log ({log}):\n{tail}")]
    NotReady { name: String, waited: std::time::Duration, detail: String, log: String, tail: String },
    #[error("Envoy rejected the configuration: {message}")]
    EnvoyRejected { message: String },
    #[error("the gateway did not act on the change within {waited:?}: {pending}; the last lines of its log ({log}):\n{tail}")]
    UpdateNotSeen { waited: Duration, pending: String, log: String, tail: String },
    #[error("{what} still answers {waited:?} after it was ended; see `plugproof cluster status` for Pods the node has not ended")]
    StillAnswering { what: String, waited: Duration },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} does not answer; {hint}")]
    Unreachable { what: String, hint: String },
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ComponentError {
    pub fn kind(&self) -> FailureKind {
        match self {
            ComponentError::Exited { .. } => FailureKind::Exited,
            ComponentError::NotReady { .. }
            | ComponentError::UpdateNotSeen { .. }
            | ComponentError::StillAnswering { .. } => FailureKind::Deadline,
            ComponentError::EnvoyRejected { .. } => FailureKind::Rejected,
            ComponentError::Http { .. } => FailureKind::Transport,
            ComponentError::Process(_)
            | ComponentError::Runtime(_)
            | ComponentError::Io { .. }
            | ComponentError::Unreachable { .. } => FailureKind::Setup,
        }
    }
}

/// How often `wait_healthy` asks: a probe of a component not yet listening
/// is refused at once, and a scenario's registry is on its critical path.
const POLL: Duration = Duration::from_millis(5);

/// Polls `healthy` until it says yes. Fails with the process's log when the
/// process exits first, or when `timeout` passes.
pub(crate) async fn wait_healthy<F, Fut>(
    process: &mut dyn Running,
    timeout: Duration,
    probe: &str,
    mut healthy: F,
) -> Result<(), ComponentError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        still_running(process)?;
        if healthy().await {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(ComponentError::NotReady {
                name: process.name().to_owned(),
                waited: timeout,
                detail: format!("{probe} never answered"),
                log: process.log_path().display().to_string(),
                tail: process.log_tail(20),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Fails with the last lines of its log when `process` has exited.
pub(crate) fn still_running(process: &mut dyn Running) -> Result<(), ComponentError> {
    match process.exited() {
        Some(status) => Err(ComponentError::Exited {
            name: process.name().to_owned(),
            status,
            log: process.log_path().display().to_string(),
            tail: process.log_tail(20),
        }),
        None => Ok(()),
    }
}

/// GET `url` and parse its JSON body; any failure names the URL.
pub(crate) async fn get_json(http: &reqwest::Client, url: &str) -> Result<serde_json::Value, ComponentError> {
    let http_err = |source| ComponentError::Http { what: format!("GET {url}"), source };
    let response = http.get(url).send().await.map_err(http_err)?;
    response.error_for_status().map_err(http_err)?.json().await.map_err(http_err)
}

/// True when `url` answers a 2xx status.
/// A client for health endpoints served on a program's own self-signed certificate.
pub(crate) fn self_signed_client(timeout: std::time::Duration) -> reqwest::Client {
    crate::http::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .timeout(timeout)
        .build()
        .expect("a client with these settings always builds")
}

pub(crate) async fn answers(http: &reqwest::Client, url: &str) -> bool {
    http.get(url).send().await.is_ok_and(|r| r.status().is_success())
}
