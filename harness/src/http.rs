//! The HTTP client the harness uses to talk to the components it started.

use std::time::Duration;

/// reqwest and oci-client share rustls; it needs a process-wide crypto
/// provider even though every endpoint here is plain HTTP on loopback.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client that never goes through a proxy (everything is on loopback)
/// and does not follow redirects (a redirect is something to assert on).
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client with these settings always builds")
}
