//! Addresses for one run. Each run takes its own 127.x.y.z address, so runs
//! in parallel (nextest runs each scenario in its own process) cannot collide
//! on ports, even on ports that a component insists on.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Loopback {
    ip: Ipv4Addr,
    /// Ports handed out: a port found free is released until its
    /// component binds it, and the kernel may offer it again meanwhile.
    given: Arc<Mutex<BTreeSet<u16>>>,
}

impl Loopback {
    /// A random address in 127.0.0.0/8, avoiding 127.0.0.1 and the
    /// network and broadcast-looking ends.
    pub fn for_run() -> Self {
        let [a, b, c]: [u8; 3] = rand::random();
        let ip = Ipv4Addr::new(127, a.clamp(2, 254), b, c.clamp(1, 254));
        Loopback { ip, given: Arc::default() }
    }

    /// An address of this machine that others share (one a cluster's
    /// Pods reach it at): ports are still handed out once per run.
    pub fn at(ip: Ipv4Addr) -> Self {
        Loopback { ip, given: Arc::default() }
    }

    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// A port free on this address now, never handed out before by this
    /// run. Nothing else uses this address, so the port stays free until
    /// the component binds it.
    pub fn free_port(&self) -> io::Result<u16> {
        let mut given = self.given.lock().expect("the port set is never poisoned");
        loop {
            let port = TcpListener::bind((self.ip, 0))?.local_addr()?.port();
            if given.insert(port) {
                return Ok(port);
            }
        }
    }

    pub fn free_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from((self.ip, self.free_port()?)))
    }
}
