//! The two artifact layouts, as bytes: the Wasm OCI artifact
//! (`application/vnd.module.wasm.content.layer.v1+wasm`) and a Docker image
//! with one tar+gzip layer holding `plugin.wasm`.

use std::io::Read;

use serde_json::json;
use sha2::Digest;

use crate::scenario::Layout;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The file istio's agent looks for inside an image layer.
const MODULE_FILE: &str = "plugin.wasm";

/// Everything one push uploads.
#[derive(Debug, Clone)]
pub struct Packed {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
    pub manifest_media_type: &'static str,
}

impl Packed {
    /// The manifest digest: what a reference by digest names.
    pub fn digest(&self) -> String {
        digest_of(&self.manifest)
    }
}

pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

pub fn pack(module: &[u8], layout: Layout) -> Packed {
    let (config, layer, config_type, layer_type, manifest_type) = match layout {
        Layout::Oci => (b"{}".to_vec(), module.to_vec(), WASM_CONFIG, WASM_LAYER, OCI_MANIFEST),
        Layout::Docker => {
            let tar = tar_with_module(module);
            let config = json!({
                "architecture": "wasm",
                "os": "wasip1",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [digest_of(&tar)]},
            });
            (config.to_string().into_bytes(), gzip(&tar), DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST)
        }
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": digest_of(&config), "size": config.len()},
        "layers": [{"mediaType": layer_type, "digest": digest_of(&layer), "size": layer.len()}],
    });
    Packed { config, layer, manifest: manifest.to_string().into_bytes(), manifest_media_type: manifest_type }
}

fn tar_with_module(module: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(&mut header, MODULE_FILE, module).expect("appending to an in-memory tar cannot fail");
    builder.into_inner().expect("finishing an in-memory tar cannot fail")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

/// The module inside a pulled layer of the given media type.
pub fn unpack_module(layer_media_type: &str, layer: &[u8]) -> Result<Vec<u8>, String> {
    match layer_media_type {
        WASM_LAYER => Ok(layer.to_vec()),
        DOCKER_LAYER | OCI_GZIP_LAYER => {
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
            let entries = archive.entries().map_err(|e| format!("not a tar+gzip layer: {e}"))?;
            for entry in entries {
                let mut entry = entry.map_err(|e| format!("corrupt tar entry: {e}"))?;
                if entry.path().is_ok_and(|p| p.to_string_lossy().trim_start_matches("./") == MODULE_FILE) {
                    let mut module = Vec::new();
                    entry.read_to_end(&mut module).map_err(|e| format!("cannot read {MODULE_FILE}: {e}"))?;
                    return Ok(module);
                }
            }
            Err(format!("the layer holds no {MODULE_FILE}"))
        }
        other => Err(format!("unexpected layer media type {other}")),
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::oci(Layout::Oci, OCI_MANIFEST, WASM_LAYER)]
    #[case::docker(Layout::Docker, DOCKER_MANIFEST, DOCKER_LAYER)]
    fn packs_and_unpacks(#[case] layout: Layout, #[case] manifest_type: &str, #[case] layer_type: &str) {
        let module = b"\0asm\x01\0\0\0 test module".to_vec();
        let packed = pack(&module, layout);
        let manifest: serde_json::Value = serde_json::from_slice(&packed.manifest).unwrap();
        assert_eq!(manifest["mediaType"], manifest_type);
        assert_eq!(manifest["layers"][0]["mediaType"], layer_type);
        assert_eq!(manifest["layers"][0]["digest"], digest_of(&packed.layer));
        assert_eq!(manifest["config"]["digest"], digest_of(&packed.config));
        assert_eq!(unpack_module(layer_type, &packed.layer).unwrap(), module);
    }

    #[test]
    fn packing_is_reproducible_so_digests_are_stable() {
        let module = b"\0asm\x01\0\0\0".to_vec();
        assert_eq!(pack(&module, Layout::Docker).digest(), pack(&module, Layout::Docker).digest());
        assert_ne!(pack(&module, Layout::Docker).digest(), pack(&module, Layout::Oci).digest());
    }
}
