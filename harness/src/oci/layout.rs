//! The artifact layouts a module is pushed in, as bytes. Istio's agent
//! (pkg/wasm/imagefetcher.go) accepts the Docker image and the two variants
//! of the Wasm Image Specification (solo-io/wasm): *oci* (a runtime-config
//! layer plus the raw module layer) and *compat* (one OCI tar+gzip layer
//! holding `plugin.wasm`). A single raw-module layer is pushed too, to pin
//! that the agent rejects it.

use std::io::Read;

use serde_json::{json, Value};
use sha2::Digest;

use crate::scenario::Layout;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// The file istio's agent looks for inside an image layer.
const MODULE_FILE: &str = "plugin.wasm";

/// Everything one push uploads.
#[derive(Debug, Clone)]
pub struct Packed {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
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

fn descriptor(media_type: &str, blob: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": digest_of(blob), "size": blob.len()})
}

/// An image config for the tar+gzip layouts, naming the uncompressed layer.
fn image_config(tar: &[u8]) -> Vec<u8> {
    json!({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(tar)]},
    })
    .to_string()
    .into_bytes()
}

/// What a layout puts in the manifest, before the digests are filled in.
struct Shape {
    manifest_type: &'static str,
    config_type: &'static str,
    config: Vec<u8>,
    layers: Vec<(&'static str, Vec<u8>)>,
    annotations: Option<Value>,
}

fn shape(module: &[u8], layout: Layout) -> Shape {
    let runtime_config = json!({"type": "envoy_proxy", "abi_version": "0.2.1", "config": {"root_ids": []}});
    let runtime_config = runtime_config.to_string().into_bytes();
    match layout {
        Layout::Oci => Shape {
            manifest_type: OCI_MANIFEST,
            config_type: WASM_CONFIG,
            config: runtime_config.clone(),
            layers: vec![(WASM_CONFIG, runtime_config), (WASM_LAYER, module.to_vec())],
            annotations: None,
        },
        Layout::Compat => {
            let tar = tar_with_module(module);
            Shape {
                manifest_type: OCI_MANIFEST,
                config_type: OCI_CONFIG,
                config: image_config(&tar),
                layers: vec![(OCI_GZIP_LAYER, gzip(&tar))],
                annotations: Some(json!({"module.wasm.image/variant": "compat"})),
            }
        }
        Layout::Docker => {
            let tar = tar_with_module(module);
            Shape {
                manifest_type: DOCKER_MANIFEST,
                config_type: DOCKER_CONFIG,
                config: image_config(&tar),
                layers: vec![(DOCKER_LAYER, gzip(&tar))],
                annotations: None,
            }
        }
        Layout::SingleWasmLayer => Shape {
            manifest_type: OCI_MANIFEST,
            config_type: WASM_CONFIG,
            config: b"{}".to_vec(),
            layers: vec![(WASM_LAYER, module.to_vec())],
            annotations: None,
        },
    }
}

pub fn pack(module: &[u8], layout: Layout) -> Packed {
    let shape = shape(module, layout);
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": shape.manifest_type,
        "config": descriptor(shape.config_type, &shape.config),
        "layers": shape.layers.iter().map(|(t, blob)| descriptor(t, blob)).collect::<Vec<_>>(),
    });
    if let Some(annotations) = shape.annotations {
        manifest["annotations"] = annotations;
    }
    Packed {
        config: shape.config,
        layers: shape.layers.into_iter().map(|(_, blob)| blob).collect(),
        manifest: manifest.to_string().into_bytes(),
        manifest_media_type: shape.manifest_type,
    }
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

/// The layer of `manifest` that carries the module: the raw Wasm layer if
/// there is one, else the first tar+gzip layer. Returns (digest, media type).
pub fn module_layer(manifest: &Value) -> Result<(String, String), String> {
    let layers: Vec<(&str, &str)> = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some((l["digest"].as_str()?, l["mediaType"].as_str()?)))
        .collect();
    layers
        .iter()
        .find(|(_, t)| *t == WASM_LAYER)
        .or_else(|| layers.iter().find(|(_, t)| *t == DOCKER_LAYER || *t == OCI_GZIP_LAYER))
        .map(|(d, t)| (d.to_string(), t.to_string()))
        .ok_or_else(|| format!("no layer holds a Wasm module (layers: {layers:?})"))
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
    #[case::oci(Layout::Oci, OCI_MANIFEST, &[WASM_CONFIG, WASM_LAYER])]
    #[case::compat(Layout::Compat, OCI_MANIFEST, &[OCI_GZIP_LAYER])]
    #[case::docker(Layout::Docker, DOCKER_MANIFEST, &[DOCKER_LAYER])]
    #[case::single_wasm_layer(Layout::SingleWasmLayer, OCI_MANIFEST, &[WASM_LAYER])]
    fn packs_and_unpacks(#[case] layout: Layout, #[case] manifest_type: &str, #[case] layer_types: &[&str]) {
        let module = b"\0asm\x01\0\0\0 test module".to_vec();
        let packed = pack(&module, layout);
        let manifest: Value = serde_json::from_slice(&packed.manifest).unwrap();
        assert_eq!(manifest["mediaType"], manifest_type);
        let types: Vec<&str> =
            manifest["layers"].as_array().unwrap().iter().map(|l| l["mediaType"].as_str().unwrap()).collect();
        assert_eq!(types, layer_types);
        for (descriptor, blob) in manifest["layers"].as_array().unwrap().iter().zip(&packed.layers) {
            assert_eq!(descriptor["digest"], digest_of(blob));
        }
        assert_eq!(manifest["config"]["digest"], digest_of(&packed.config));
        let (digest, media_type) = module_layer(&manifest).unwrap();
        let blob = packed.layers.iter().find(|b| digest_of(b) == digest).unwrap();
        assert_eq!(unpack_module(&media_type, blob).unwrap(), module);
    }

    #[test]
    fn packing_is_reproducible_so_digests_are_stable() {
        let module = b"\0asm\x01\0\0\0".to_vec();
        assert_eq!(pack(&module, Layout::Docker).digest(), pack(&module, Layout::Docker).digest());
        assert_ne!(pack(&module, Layout::Docker).digest(), pack(&module, Layout::Compat).digest());
    }
}
