//! Ctrl-C and termination: the run's future is dropped, which ends every
//! child process it owns (see `Process`'s `Drop`).

use std::future::Future;

use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, thiserror::Error)]
#[error("interrupted by {0}; every process the run started was stopped")]
pub struct Interrupted(pub &'static str);

/// Runs `work` until it finishes or the process gets SIGINT, SIGTERM or SIGHUP.
pub async fn until_interrupted<T>(work: impl Future<Output = T>) -> Result<T, Interrupted> {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        // Without handlers, the default actions still kill the harness and
        // PR_SET_PDEATHSIG still takes the children with it.
        return Ok(work.await);
    };
    tokio::select! {
        out = work => Ok(out),
        _ = int.recv() => Err(Interrupted("SIGINT")),
        _ = term.recv() => Err(Interrupted("SIGTERM")),
        _ = hup.recv() => Err(Interrupted("SIGHUP")),
    }
}
