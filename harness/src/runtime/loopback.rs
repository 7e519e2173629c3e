//! Addresses for one run. Each run takes its own 127.x.y.z address, so runs
//! in parallel (nextest runs each scenario in its own process) cannot collide
//! on ports, even on ports that a component insists on.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

#[derive(Debug, Clone, Copy)]
pub struct Loopback {
    ip: Ipv4Addr,
}

impl Loopback {
    /// A random address in 127.0.0.0/8, avoiding 127.0.0.1 and the
    /// network and broadcast-looking ends.
    pub fn for_run() -> Self {
        let [a, b, c]: [u8; 3] = rand::random();
        let ip = Ipv4Addr::new(127, a.clamp(2, 254), b, c.clamp(1, 254));
        Loopback { ip }
    }

    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// A port free on this address now. Nothing else uses this address, so
    /// the port stays free until the component binds it.
    pub fn free_port(&self) -> io::Result<u16> {
        Ok(TcpListener::bind((self.ip, 0))?.local_addr()?.port())
    }

    pub fn free_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from((self.ip, self.free_port()?)))
    }
}
