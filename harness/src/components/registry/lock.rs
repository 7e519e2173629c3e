//! What makes a registry private: TLS with a certificate from a CA made for
//! the run (trusted by no one else), and a login checked against an
//! htpasswd file (Distribution takes bcrypt only, and only over TLS).

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

/// bcrypt's least cost: the registry checks the hash on every request, and
/// the password is the run's own, thrown away with it.
const HASH_COST: u32 = 4;

/// The default realm of the registry's Basic challenge: an https URL on a
/// public name, never fetched for Basic auth. istio 1.30's agent reads
/// every realm as a bearer realm and refuses any other (a plain name, a
/// private or loopback address), so with one the gateway fetches nothing.
const REALM: &str = "https://registry.plugproof.example/";

/// A CA, and the login a registry it certifies asks for.
pub struct RegistryLock {
    pub user: String,
    pub password: String,
    realm: String,
    ca: Issuer<'static, KeyPair>,
    ca_pem: String,
}

impl fmt::Debug for RegistryLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryLock").field("user", &self.user).field("password", &"<redacted>").finish()
    }
}

impl RegistryLock {
    /// A new CA for a registry whose login is `user` and `password`, its
    /// challenge's realm `realm` (default `REALM`).
    pub fn new(user: &str, password: &str, realm: Option<&str>) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "plugproof registry CA");
        let ca_pem = params.self_signed(&key)?.pem();
        Ok(RegistryLock {
            user: user.to_owned(),
            password: password.to_owned(),
            realm: realm.unwrap_or(REALM).to_owned(),
            ca: Issuer::new(params, key),
            ca_pem,
        })
    }

    /// The CA certificate (PEM) a client must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the registry's certificate (for `ip`), key and htpasswd file
    /// into `dir`, and returns the lines of its config that use them.
    pub fn write(&self, dir: &Path, ip: IpAddr) -> std::io::Result<String> {
        let other = |e: rcgen::Error| std::io::Error::other(format!("cannot make the registry's certificate: {e}"));
        let key = KeyPair::generate().map_err(other)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
        params.subject_alt_names = vec![SanType::IpAddress(ip)];
        params.distinguished_name.push(DnType::CommonName, ip.to_string());
        let cert = params.signed_by(&key, &self.ca).map_err(other)?;
        let (cert_path, key_path, htpasswd) = (dir.join("tls.crt"), dir.join("tls.key"), dir.join("htpasswd"));
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        let hash = bcrypt::hash(&self.password, HASH_COST).map_err(std::io::Error::other)?;
        std::fs::write(&htpasswd, format!("{}:{hash}\n", self.user))?;
        Ok(format!(
            "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: {}\n    path: {}\n",
            cert_path.display(),
            key_path.display(),
            serde_json::to_string(&self.realm).expect("a string serialises"),
            htpasswd.display()
        ))
    }
}
