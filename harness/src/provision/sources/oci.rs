//! `oci:`: a module pulled from a registry the user names (plain HTTP on
//! loopback, HTTPS elsewhere or with a CA given; credentials if given), kept in the cache by
//! its manifest digest. The run then pushes it into its own registry, as it
//! does every module, so digest binding, layouts and pushes work alike.

use std::path::PathBuf;

use super::super::Cache;
use crate::oci::{OciError, RegistryClient};
use crate::options::OciAccess;

pub async fn pull(cache: &Cache, reference: &str, access: &OciAccess) -> Result<PathBuf, OciError> {
    let ca = match &access.ca {
        Some(path) => Some(std::fs::read(path).map_err(|e| OciError::Content {
            reference: reference.to_owned(),
            message: format!("cannot read the CA certificate {} (PLUGPROOF_OCI_CA_FILE): {e}", path.display()),
        })?),
        None => None,
    };
    let login = access.login.as_ref().map(|a| (a.username.as_str(), a.password.as_str()));
    let client = RegistryClient::remote(reference, login, ca.as_deref())?;
    let (module, digest) = client.pull_reference(reference).await?;
    let path = cache.path(&format!("pulled/{}.wasm", digest.trim_start_matches("sha256:")));
    let write = |e: std::io::Error| OciError::Content {
        reference: reference.to_owned(),
        message: format!("cannot keep it: {e}"),
    };
    std::fs::create_dir_all(cache.path("pulled")).map_err(write)?;
    let partial = path.with_extension("partial");
    std::fs::write(&partial, module).map_err(write)?;
    std::fs::rename(&partial, &path).map_err(write)?;
    Ok(path)
}
