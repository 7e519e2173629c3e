//! The HTTP client the harness uses to talk to the components it started.

use std::time::Duration;

/// reqwest and oci-client share rustls; it needs a process-wide crypto
/// provider even though every endpoint here is plain HTTP on loopback.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client that never goes through a proxy (everything is on loopback),
/// does not follow redirects (a redirect is something to assert on), and
/// opens a new connection for every request: a kept-alive connection to the
/// gateway would still run a listener that a change has replaced, so a
/// request step would see the old configuration after the change was taken.
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client with these settings always builds")
}
