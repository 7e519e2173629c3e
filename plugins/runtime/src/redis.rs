//! Higress's Redis host functions, which its Envoy adds to the proxy-wasm
//! ABI (the names and signatures of its Go SDK); upstream Envoy has none.

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_redis_init(
        cluster: *const u8,
        cluster_size: usize,
        username: *const u8,
        username_size: usize,
        password: *const u8,
        password_size: usize,
        timeout_ms: u32,
    ) -> u32;
}

/// Sets up the Redis client of `cluster`: the host's status (0: ok).
pub fn init(cluster: &str, timeout_ms: u32) -> u32 {
    // SAFETY: each pointer and size is a live string's, read by the host only during the call.
    unsafe { proxy_redis_init(cluster.as_ptr(), cluster.len(), "".as_ptr(), 0, "".as_ptr(), 0, timeout_ms) }
}
