//! Ports for programs that bind every interface of a network namespace
//! shared by parallel runs (pilot-agent and its Envoy): blocks taken from
//! below the kernel's ephemeral range (so no connection is handed one),
//! each claimed with a lock file while a run uses it, so runs in other
//! processes never take the same block. A lock dies with its process.

use std::fs::{File, TryLockError};
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

/// Ports per block.
pub const BLOCK: u16 = 8;
/// Where blocks start; the ephemeral range starts above them.
const FLOOR: u16 = 20000;

/// A claimed block of ports, free until dropped.
#[derive(Debug)]
pub struct PortBlock {
    first: u16,
    _lock: File,
}

impl PortBlock {
    /// Claims a free block, with its lock file in `locks`.
    pub fn claim(locks: &Path) -> io::Result<PortBlock> {
        std::fs::create_dir_all(locks)?;
        let ceiling = ephemeral_floor().saturating_sub(BLOCK);
        let blocks = (ceiling.saturating_sub(FLOOR)) / BLOCK;
        if blocks == 0 {
            return Err(io::Error::other("no ports below the ephemeral range for fixed-port programs"));
        }
        let start: u16 = rand::random::<u16>() % blocks;
        for offset in 0..blocks {
            let first = FLOOR + ((start + offset) % blocks) * BLOCK;
            let lock = File::create(locks.join(format!("{first}.lock")))?;
            match lock.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => return Err(e),
            }
            // Something outside plugproof may hold a port of the block.
            if (first..first + BLOCK).all(|p| TcpListener::bind((Ipv4Addr::UNSPECIFIED, p)).is_ok()) {
                return Ok(PortBlock { first, _lock: lock });
            }
        }
        Err(io::Error::other("every block of fixed ports is taken"))
    }

    /// The `index`th port of the block.
    pub fn port(&self, index: u16) -> u16 {
        assert!(index < BLOCK, "a block has {BLOCK} ports");
        self.first + index
    }
}

/// The lowest port the kernel hands out to connections.
fn ephemeral_floor() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_held_at_once_never_overlap() {
        let locks = tempfile::tempdir().expect("a temp dir");
        let blocks: Vec<PortBlock> = (0..20).map(|_| PortBlock::claim(locks.path()).expect("a block")).collect();
        let mut firsts: Vec<u16> = blocks.iter().map(|b| b.port(0)).collect();
        firsts.sort_unstable();
        firsts.dedup();
        assert_eq!(firsts.len(), 20);
        assert!(firsts.iter().all(|p| *p >= FLOOR && p % BLOCK == 0));
    }
}
