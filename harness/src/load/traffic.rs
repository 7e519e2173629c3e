//! The runtime the load and the echo backends run on. The harness drives a
//! scenario on a single-threaded runtime; the traffic of a reload (thousands
//! of requests per second through the gateway and back to the backends)
//! gets a multi-threaded one, so that it can use every core Envoy leaves.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

static TRAFFIC: OnceLock<Runtime> = OnceLock::new();

/// The process's traffic runtime, started on first use; it lives as long
/// as the process (its threads are idle between loads).
pub fn traffic() -> &'static Handle {
    TRAFFIC
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
                .thread_name("plugproof-traffic")
                .enable_all()
                .build()
                .expect("a multi-threaded runtime starts")
        })
        .handle()
}
