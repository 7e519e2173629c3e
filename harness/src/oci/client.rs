//! Talking to registries with `oci-client`: the run's own (plain HTTP on
//! loopback, anonymous) and the ones users name for `oci:` modules (plain
//! HTTP on loopback, HTTPS elsewhere, with credentials if given).

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::layout::{digest_of, module_layer, pack, unpack_module, DOCKER_MANIFEST, OCI_MANIFEST};
use crate::scenario::Layout;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("registry {registry}: {action} {reference}: {source}{}", hint(source))]
    Registry {
        registry: String,
        action: &'static str,
        reference: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    #[error("{reference}: {message}")]
    Content { reference: String, message: String },
}

/// What to do about a registry's refusal, where the user can do something.
fn hint(source: &oci_client::errors::OciDistributionError) -> &'static str {
    use oci_client::errors::OciDistributionError as E;
    match source {
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => {
            " (the registry wants a login it was not given: set PLUGPROOF_OCI_USERNAME and PLUGPROOF_OCI_PASSWORD \
             to one it takes)"
        }
        E::ServerError { message, .. } if message.contains("HTTP request to an HTTPS server") => {
            " (the registry speaks TLS, and plain HTTP goes to a loopback registry unless a CA is given: set \
             PLUGPROOF_OCI_CA_FILE to the PEM file of the CA of its certificate)"
        }
        E::RequestError(e) if format!("{e:?}").contains("certificate") => {
            " (the registry's TLS certificate is not trusted: if it comes from a CA of your own, set \
             PLUGPROOF_OCI_CA_FILE to that CA's PEM file)"
        }
        _ => "",
    }
}

pub struct RegistryClient {
    host: String,
    client: Client,
    auth: RegistryAuth,
}

impl RegistryClient {
    /// `host` is `IP:PORT` of a registry serving plain HTTP.
    pub fn new(host: &str) -> Self {
        crate::http::install_crypto_provider();
        let client = Client::new(ClientConfig { protocol: ClientProtocol::Http, ..Default::default() });
        RegistryClient { host: host.to_owned(), client, auth: RegistryAuth::Anonymous }
    }

    /// A client for the registry of `reference` (`HOST[:PORT]/REPO[:TAG|@DIGEST]`):
    /// plain HTTP if the host is loopback and no `ca` (PEM) is given, HTTPS
    /// otherwise, trusting `ca` too; basic auth if `credentials` are given.
    pub fn remote(reference: &str, credentials: Option<(&str, &str)>, ca: Option<&[u8]>) -> Result<Self, OciError> {
        let parsed: Reference = reference.parse().map_err(|e| OciError::Content {
            reference: reference.to_owned(),
            message: format!("not an image reference ({e}); write HOST[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST]"),
        })?;
        let host = parsed.resolve_registry().to_owned();
        Ok(Self::login(&host, credentials, ca))
    }

    /// A client for the registry at `host`, as `remote` says.
    pub fn login(host: &str, credentials: Option<(&str, &str)>, ca: Option<&[u8]>) -> Self {
        crate::http::install_crypto_provider();
        let protocol = if is_loopback(host) && ca.is_none() { ClientProtocol::Http } else { ClientProtocol::Https };
        let auth = match credentials {
            Some((user, password)) => RegistryAuth::Basic(user.to_owned(), password.to_owned()),
            None => RegistryAuth::Anonymous,
        };
        let extra_root_certificates = ca
            .map(|pem| vec![Certificate { encoding: CertificateEncoding::Pem, data: pem.to_vec() }])
            .unwrap_or_default();
        let config = ClientConfig { protocol, extra_root_certificates, ..Default::default() };
        RegistryClient { host: host.to_owned(), client: Client::new(config), auth }
    }

    fn reference(&self, repository: &str, tag_or_digest: &str) -> Reference {
        let separator = if tag_or_digest.starts_with("sha256:") { '@' } else { ':' };
        format!("{}/{repository}{separator}{tag_or_digest}", self.host)
            .parse()
            .expect("registry host, repository and tag were validated")
    }

    fn error(
        &self,
        action: &'static str,
        reference: &Reference,
    ) -> impl FnOnce(oci_client::errors::OciDistributionError) -> OciError {
        let (registry, reference) = (self.host.clone(), reference.whole());
        move |source| OciError::Registry { registry, action, reference, source }
    }

    /// Pushes `module` as `repository:tag` and returns the manifest digest.
    pub async fn push(&self, repository: &str, tag: &str, module: &[u8], layout: Layout) -> Result<String, OciError> {
        let packed = pack(module, layout);
        let reference = self.reference(repository, tag);
        if self.auth != RegistryAuth::Anonymous {
            // Blob and manifest pushes take no login of their own: it is stored for the repository first.
            self.client
                .auth(&reference, &self.auth, RegistryOperation::Push)
                .await
                .map_err(self.error("log in to push", &reference))?;
        }
        for blob in packed.layers.iter().chain([&packed.config]) {
            self.client
                .push_blob(&reference, blob.clone(), &digest_of(blob))
                .await
                .map_err(self.error("push blob to", &reference))?;
        }
        let content_type = packed.manifest_media_type.parse().expect("a valid header value");
        self.client
            .push_manifest_raw(&reference, packed.manifest.clone(), content_type)
            .await
            .map_err(self.error("push manifest", &reference))?;
        Ok(packed.digest())
    }

    /// The manifest digest `repository:tag` names now.
    pub async fn digest_of(&self, repository: &str, tag: &str) -> Result<String, OciError> {
        let reference = self.reference(repository, tag);
        self.client.fetch_manifest_digest(&reference, &self.auth).await.map_err(self.error("resolve", &reference))
    }

    /// Pulls `repository@digest` and returns the module it carries, after
    /// checking the manifest and layer against their digests.
    pub async fn pull_module(&self, repository: &str, digest: &str) -> Result<Vec<u8>, OciError> {
        self.pull(&self.reference(repository, digest), digest).await
    }

    /// Pulls the module `reference` names (by tag or digest) and returns it
    /// with the manifest digest.
    pub async fn pull_reference(&self, reference: &str) -> Result<(Vec<u8>, String), OciError> {
        let parsed: Reference = reference.parse().map_err(|e| OciError::Content {
            reference: reference.to_owned(),
            message: format!("not an image reference: {e}"),
        })?;
        let digest = match parsed.digest() {
            Some(digest) => digest.to_owned(),
            None => {
                self.client.fetch_manifest_digest(&parsed, &self.auth).await.map_err(self.error("resolve", &parsed))?
            }
        };
        Ok((self.pull(&parsed, &digest).await?, digest))
    }

    async fn pull(&self, reference: &Reference, digest: &str) -> Result<Vec<u8>, OciError> {
        let content = |message: String| OciError::Content { reference: reference.whole(), message };
        let (manifest, _) = self
            .client
            .pull_manifest_raw(reference, &self.auth, &[OCI_MANIFEST, DOCKER_MANIFEST])
            .await
            .map_err(self.error("pull manifest", reference))?;
        if digest_of(&manifest) != digest {
            return Err(content(format!("manifest digest is {}", digest_of(&manifest))));
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&manifest).map_err(|e| content(format!("manifest is not JSON: {e}")))?;
        let (layer_digest, media_type) = module_layer(&manifest).map_err(&content)?;
        let mut blob = Vec::new();
        self.client
            .pull_blob(reference, layer_digest.as_str(), &mut blob)
            .await
            .map_err(self.error("pull layer of", reference))?;
        if digest_of(&blob) != layer_digest {
            return Err(content(format!("layer digest is {}, manifest says {layer_digest}", digest_of(&blob))));
        }
        unpack_module(&media_type, &blob).map_err(content)
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_hosts_are_spoken_to_in_plain_http() {
        for host in ["localhost:5000", "127.0.0.1:5000", "127.3.0.1", "[::1]:5000", "localhost"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["ghcr.io", "registry.example:5000", "10.0.0.1:5000"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
