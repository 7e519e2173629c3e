//! A port of a Pod, reached through the cluster's API (as `kubectl
//! port-forward` reaches it): a listener on this machine's loopback whose
//! every connection the API server's port-forward carries to the Pod. The
//! Pod is named, not resolved once: a Pod that is replaced under the same
//! name is reached again. Ended when dropped.
//!
//! What it does not always carry: an answer. Now and then the gateway
//! answers (its access log says so) and nothing arrives here, with no
//! error from the kubelet; the client waits for its own timeout (request
//! steps then ask the access log, `steps::request`). A port nothing
//! listens on closes the connection at once.

use std::net::{Ipv4Addr, SocketAddr};

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct PortForward {
    local: SocketAddr,
    accept: JoinHandle<()>,
}

impl PortForward {
    /// Listens on a free loopback port for `port` of Pod `name`.
    pub async fn start(pods: Api<Pod>, name: &str, port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let local = listener.local_addr()?;
        let name = name.to_owned();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(carry(pods.clone(), name.clone(), port, client));
            }
        });
        Ok(PortForward { local, accept })
    }

    /// Where the Pod's port is reached.
    pub fn local(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One connection: opened to the Pod when the client connects; if the Pod
/// cannot be reached, the client's connection is closed, as a refused one.
async fn carry(pods: Api<Pod>, name: String, port: u16, mut client: TcpStream) {
    let mut forwarder = match pods.portforward(&name, &[port]).await {
        Ok(forwarder) => forwarder,
        Err(e) => {
            tracing::debug!("port-forward to {name}:{port}: {e}");
            return;
        }
    };
    let Some(mut upstream) = forwarder.take_stream(port) else { return };
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!("port-forward to {name}:{port} ended: {e}");
    }
    drop(upstream);
    let _ = forwarder.join().await;
}
