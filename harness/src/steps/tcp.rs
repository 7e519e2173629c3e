//! `tcp`: a new connection to one of the gateway's TCP listeners, bytes
//! written, and what comes back read.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::failure::{Failure, FailureKind};
use crate::profiles::Deployment;
use crate::scenario::TcpExchange;

/// How long the answer may take to arrive in full.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The connections `tcp` steps named, open until the scenario ends.
pub type Connections = BTreeMap<String, TcpStream>;

/// What came back after `exchange.send`, on a new connection or the named
/// one: read until it is as long as the expectation, the connection ends,
/// or the read times out (what came by then is the answer). A named
/// connection the gateway closed answers nothing.
pub async fn exchange(
    deployment: &dyn Deployment,
    connections: &mut Connections,
    exchange: &TcpExchange,
) -> Result<Vec<u8>, Failure> {
    let Some(addr) = deployment.tcp_listener(&exchange.listener) else {
        let message = format!("the gateway has no TCP listener `{}`", exchange.listener);
        return Err(Failure::new(FailureKind::Setup, message));
    };
    let transport = |e: std::io::Error| {
        Failure::new(FailureKind::Transport, format!("tcp listener {} at {addr}: {e}", exchange.listener))
    };
    let mut fresh = None;
    let stream = match &exchange.connection {
        Some(name) => match connections.entry(name.clone()) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(new) => new.insert(TcpStream::connect(addr).await.map_err(transport)?),
        },
        None => fresh.insert(TcpStream::connect(addr).await.map_err(transport)?),
    };
    if stream.write_all(exchange.send.as_bytes()).await.is_err() {
        return Ok(Vec::new());
    }
    let mut received = Vec::new();
    let wanted = exchange.expect.len();
    let _ = tokio::time::timeout(READ_TIMEOUT, async {
        let mut buffer = [0u8; 4096];
        while received.len() < wanted {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    Ok(received)
}
