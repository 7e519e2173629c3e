//! The test modules: the catalog in `plugins/modules.yaml`, the wasm
//! toolchain, and a build cached by a hash of the plugin sources (and the
//! toolchain), so unchanged sources are never rebuilt.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use sha2::Digest;

use super::{is_executable, memo, on_path, Cache, ProvisionError};

pub(super) const TARGET: &str = "wasm32-unknown-unknown";

/// The modules `plugins/` can build: name -> crate and cargo features.
#[derive(Debug, Clone)]
pub struct ModuleCatalog {
    pub workspace: PathBuf,
    pub modules: BTreeMap<String, ModuleSpec>,
}

/// A crate to build (with features), or literal `bytes` for a corrupt module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSpec {
    #[serde(rename = "crate")]
    pub krate: Option<String>,
    #[serde(default)]
    pub features: Vec<String>,
    pub bytes: Option<String>,
}

impl ModuleCatalog {
    pub fn load(workspace: &Path) -> Result<Self, ProvisionError> {
        let path = workspace.join("modules.yaml");
        let text =
            std::fs::read_to_string(&path).map_err(ProvisionError::io("cannot read the module catalog", &path))?;
        let modules: BTreeMap<String, ModuleSpec> = serde_saphyr::from_str(&text)
            .map_err(|e| ProvisionError::Catalog { path: path.clone(), message: e.to_string() })?;
        if let Some((name, _)) = modules.iter().find(|(_, m)| m.krate.is_some() == m.bytes.is_some()) {
            let message = format!("module `{name}` needs exactly one of `crate` and `bytes`");
            return Err(ProvisionError::Catalog { path, message });
        }
        Ok(ModuleCatalog { workspace: workspace.to_path_buf(), modules })
    }

    pub fn names(&self) -> BTreeSet<String> {
        self.modules.keys().cloned().collect()
    }
}

/// Built modules: one `NAME.wasm` per catalog entry.
#[derive(Debug, Clone)]
pub struct BuiltModules {
    dir: PathBuf,
}

impl BuiltModules {
    pub fn path(&self, module: &str) -> PathBuf {
        self.dir.join(format!("{module}.wasm"))
    }
}

/// How this machine builds for wasm32.
#[derive(Debug)]
pub(super) enum Toolchain {
    /// A toolchain that ships the target's standard library (rustup with the target).
    Native { version: String },
    /// Debian's rustc-web: std is built from source (`-Zbuild-std`).
    BuildStd { cargo: PathBuf, rustc: PathBuf, version: String },
}

impl Toolchain {
    /// What `rustc` says of itself is remembered per binary (`memo`); the
    /// rustup proxy's answer is not: which toolchain it runs can change.
    pub(super) fn detect(cache: &Cache) -> Result<Self, ProvisionError> {
        if let Some(version) = native_target_version() {
            return Ok(Toolchain::Native { version });
        }
        let (cargo, rustc) = (PathBuf::from("/usr/bin/cargo"), PathBuf::from("/usr/bin/rustc"));
        if !is_executable(&rustc) || !is_executable(&cargo) {
            return Err(ProvisionError::WasmToolchain(
                "the default toolchain lacks the wasm32-unknown-unknown standard library and /usr/bin/rustc (rustc-web) is missing".into(),
            ));
        }
        let sysroot =
            memo::output_of(cache, "rustc --print sysroot", &rustc, Command::new(&rustc).args(["--print", "sysroot"]))
                .ok_or_else(|| ProvisionError::WasmToolchain("/usr/bin/rustc --print sysroot failed".into()))?;
        let library = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library");
        if !library.is_dir() {
            return Err(ProvisionError::WasmToolchain(format!(
                "{} is missing (package rust-web-src)",
                library.display()
            )));
        }
        if on_path("wasm-ld").is_none() {
            return Err(ProvisionError::WasmToolchain("wasm-ld is not on PATH (package lld)".into()));
        }
        let version = memo::output_of(cache, "rustc -V", &rustc, Command::new(&rustc).arg("-V"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        Ok(Toolchain::BuildStd { cargo, rustc, version })
    }

    pub(super) fn mode(&self) -> &'static str {
        match self {
            Toolchain::Native { .. } => "native std",
            Toolchain::BuildStd { .. } => "rustc-web, -Zbuild-std",
        }
    }

    pub(super) fn id(&self) -> String {
        match self {
            Toolchain::Native { version } => format!("native {version}"),
            Toolchain::BuildStd { version, .. } => format!("build-std {version}"),
        }
    }

    /// `cargo build --release --target wasm32-unknown-unknown` in `workspace`.
    pub(super) fn cargo(&self, workspace: &Path, target_dir: &Path) -> Command {
        let mut cmd = match self {
            Toolchain::Native { .. } => Command::new("cargo"),
            Toolchain::BuildStd { cargo, .. } => Command::new(cargo),
        };
        // An outer cargo (nextest, `cargo run`) exports settings meant for the host build.
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_BUILD_TARGET",
            "CARGO",
        ] {
            cmd.env_remove(var);
        }
        cmd.current_dir(workspace).env("CARGO_TARGET_DIR", target_dir).args(["build", "--release", "--target", TARGET]);
        if let Toolchain::BuildStd { rustc, .. } = self {
            cmd.env("RUSTC", rustc)
                .env("RUSTC_BOOTSTRAP", "1")
                .env_remove("RUSTUP_TOOLCHAIN")
                .env(format!("CARGO_TARGET_{}_LINKER", TARGET.to_uppercase().replace('-', "_")), "wasm-ld")
                .arg("-Zbuild-std=std,panic_abort");
        }
        cmd
    }
}

/// The default `rustc`'s version if it has the wasm32 standard library.
fn native_target_version() -> Option<String> {
    let libdir = capture(Command::new("rustc").args(["--print", "target-libdir", "--target", TARGET]))?;
    let has_std = std::fs::read_dir(libdir.trim())
        .ok()?
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"));
    has_std.then(|| capture(Command::new("rustc").arg("-V")).unwrap_or_default().trim().to_owned())
}

fn capture(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Blocking: builds every catalog module unless this exact source tree was
/// built before. Parallel callers wait for one build. The key is the
/// sources alone: the toolchain is looked for only to build (asking rustup
/// costs every run and every test process tens of milliseconds), and the
/// record says which built them.
pub fn build_modules(cache: &Cache, catalog: &ModuleCatalog) -> Result<BuiltModules, ProvisionError> {
    let key = source_hash(&catalog.workspace, "built-in modules")?;
    let dir = cache.path(&format!("modules/{}", &key[..16]));
    let built = BuiltModules { dir: dir.clone() };
    let complete = dir.join(".complete");
    if complete.exists() {
        return Ok(built);
    }
    let toolchain = Toolchain::detect(cache)?;
    let what = format!(
        "building {} test modules for {TARGET} ({}; a cold build takes a minute or two)",
        catalog.modules.len(),
        toolchain.mode()
    );
    cache.fill(
        "wasm-build",
        what,
        || complete.exists(),
        || {
            std::fs::create_dir_all(&dir).map_err(ProvisionError::io("cannot create", &dir))?;
            let target_dir = cache.path("wasm-target");
            let log = cache.path("modules/last-build.log");
            build_all(&toolchain, catalog, &target_dir, &log, &built)?;
            let record = format!("{key}\n{}\n", toolchain.id());
            std::fs::write(&complete, record).map_err(ProvisionError::io("cannot write", &complete))
        },
    )?;
    Ok(built)
}

fn build_all(
    toolchain: &Toolchain,
    catalog: &ModuleCatalog,
    target_dir: &Path,
    log: &Path,
    built: &BuiltModules,
) -> Result<(), ProvisionError> {
    // One cargo invocation per feature set; the artifacts of one are copied
    // out before the next overwrites them.
    let mut by_features: BTreeMap<&[String], Vec<(&String, &str)>> = BTreeMap::new();
    for (name, spec) in &catalog.modules {
        match (&spec.krate, &spec.bytes) {
            (Some(krate), _) => by_features.entry(spec.features.as_slice()).or_default().push((name, krate)),
            (None, Some(bytes)) => {
                let dest = built.path(name);
                std::fs::write(&dest, bytes).map_err(ProvisionError::io("cannot write the module", &dest))?;
            }
            (None, None) => unreachable!("the catalog checks each module has a crate or bytes"),
        }
    }
    for (features, modules) in by_features {
        let mut cmd = toolchain.cargo(&catalog.workspace, target_dir);
        cmd.arg("--locked");
        for (_, krate) in &modules {
            cmd.args(["-p", krate]);
        }
        if !features.is_empty() {
            let qualified: Vec<String> =
                modules.iter().flat_map(|(_, krate)| features.iter().map(move |f| format!("{krate}/{f}"))).collect();
            cmd.arg("--features").arg(qualified.join(","));
        }
        super::run_logged(cmd, log)?;
        for (name, krate) in modules {
            let artifact = target_dir.join(TARGET).join("release").join(format!("{}.wasm", krate.replace('-', "_")));
            let dest = built.path(name);
            std::fs::copy(&artifact, &dest).map_err(ProvisionError::io("cannot copy the built module", &artifact))?;
        }
    }
    Ok(())
}

/// sha256 over the toolchain id and every source file of the workspace
/// (paths and contents, sorted), skipping build output and hidden files.
pub(super) fn source_hash(workspace: &Path, toolchain: &str) -> Result<String, ProvisionError> {
    let mut files = Vec::new();
    let mut pending = vec![workspace.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(ProvisionError::io("cannot list", &dir))? {
            let path = entry.map_err(ProvisionError::io("cannot list", &dir))?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = sha2::Sha256::new();
    hasher.update(toolchain.as_bytes());
    for file in files {
        let relative = file.strip_prefix(workspace).unwrap_or(&file);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(&file).map_err(ProvisionError::io("cannot read", &file))?);
        hasher.update([0]);
    }
    Ok(hex::encode(hasher.finalize()))
}
