//! The parts a scenario runs against: the OCI registry, Envoy, echo backends.

pub mod echo;
pub mod envoy;
pub mod registry;

use std::process::ExitStatus;

use crate::runtime::ProcessError;

#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{name} exited ({status}) during start-up; the last lines of its log ({log}):\n{tail}")]
    Exited { name: String, status: ExitStatus, log: String, tail: String },
    #[error("{name} was not ready within {waited:?}: {detail}; the last lines of its log ({log}):\n{tail}")]
    NotReady { name: String, waited: std::time::Duration, detail: String, log: String, tail: String },
    #[error("Envoy rejected the configuration: {message}")]
    EnvoyRejected { message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
}
