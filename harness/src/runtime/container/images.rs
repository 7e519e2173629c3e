//! Images a target runs: ones plugproof builds itself from what it already
//! provisions (`images/envoy`, `images/gateway`: FROM scratch, the
//! binaries and the libraries they link, nothing pulled), or ones the user
//! names, pulled if absent. Either way the image is asked what it holds:
//! its Envoy's version, and for a gateway image its agent.

use std::path::{Path, PathBuf};
use std::process::Command;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

use testcontainers::bollard::models::{ContainerCreateBody, HostConfig};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions, WaitContainerOptions,
};
use testcontainers::core::BuildImageOptions;
use testcontainers::runners::AsyncBuilder;
use testcontainers::GenericBuildableImage;

use super::engine::{self, ContainerError};
use super::Image;

/// Where an image's programs are: as in `envoyproxy/envoy` and
/// `istio/proxyv2` (and Higress's gateway, which is laid out as istio's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayout {
    pub envoy: PathBuf,
    pub agent: Option<PathBuf>,
    pub bootstrap_template: Option<PathBuf>,
}

/// The layout of each kind of image.
pub const IMAGE_LAYOUT: (&str, &str, &str) =
    ("/usr/local/bin/envoy", "/usr/local/bin/pilot-agent", "/var/lib/istio/envoy/envoy_bootstrap_tmpl.json");

/// What an image must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// Envoy alone (`envoyproxy/envoy`).
    Envoy,
    /// istio's agent and Envoy (`istio/proxyv2`, `higress/gateway`).
    Gateway,
}

impl ImageKind {
    pub fn layout(self) -> ImageLayout {
        let (envoy, agent, template) = IMAGE_LAYOUT;
        match self {
            ImageKind::Envoy => ImageLayout { envoy: envoy.into(), agent: None, bootstrap_template: None },
            ImageKind::Gateway => ImageLayout {
                envoy: envoy.into(),
                agent: Some(agent.into()),
                bootstrap_template: Some(template.into()),
            },
        }
    }

    fn name(self) -> &'static str {
        match self {
            ImageKind::Envoy => "envoy",
            ImageKind::Gateway => "gateway",
        }
    }
}

/// An image plugproof builds from binaries it provisioned, defined by
/// `images/NAME/Containerfile`.
#[derive(Debug, Clone)]
pub struct LocalImage {
    pub name: &'static str,
    /// `images/`: where each image's Containerfile is.
    pub definitions: PathBuf,
    /// What the tag says before its content hash: `1.40.0`, `1.30-9739e10eb9d7-envoy-1.40.0`.
    pub version: String,
    /// Programs put in (each with the libraries it links): the host file,
    /// and where the image has it.
    pub binaries: Vec<(PathBuf, PathBuf)>,
    /// Other files put in, likewise.
    pub files: Vec<(PathBuf, PathBuf)>,
    /// Folders the image's user owns (`owned/` of the Containerfile).
    pub owned: &'static [&'static str],
}

/// An image plugproof built: what runs it, and its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub id: String,
    pub reference: String,
}

impl LocalImage {
    /// The image of a target's gateway programs (`images/envoy`,
    /// `images/gateway`), laid out as `kind` says.
    pub fn gateway(
        kind: ImageKind,
        definitions: &Path,
        version: String,
        envoy: &Path,
        agent: Option<&Path>,
        template: Option<&Path>,
    ) -> Self {
        let layout = kind.layout();
        let mut binaries = vec![(envoy.to_path_buf(), layout.envoy.clone())];
        binaries.extend(agent.zip(layout.agent.clone()).map(|(host, inside)| (host.to_path_buf(), inside)));
        let files = template
            .zip(layout.bootstrap_template)
            .map(|(host, inside)| (host.to_path_buf(), inside))
            .into_iter()
            .collect();
        let owned: &'static [&'static str] = match kind {
            // What istio's agent writes: its config and Wasm cache.
            ImageKind::Gateway => &["etc/istio/proxy", "var/lib/istio/data", "tmp"],
            ImageKind::Envoy => &[],
        };
        LocalImage { name: kind.name(), definitions: definitions.to_path_buf(), version, binaries, files, owned }
    }

    /// The image of a registry to run in a cluster (`images/registry`):
    /// Debian's docker-registry, which `registry` is, and its config.
    pub fn registry(definitions: &Path, registry: &Path) -> Self {
        LocalImage {
            name: "registry",
            definitions: definitions.to_path_buf(),
            version: "distribution".into(),
            binaries: vec![(registry.to_path_buf(), "/usr/bin/registry".into())],
            files: vec![(definitions.join("registry/config.yml"), "/etc/docker/registry/config.yml".into())],
            owned: &[],
        }
    }

    /// Builds it unless an image of the same content is there already; it
    /// is tagged `localhost/plugproof/NAME:VERSION-HASH`, the hash over the
    /// Containerfile and every file put in.
    pub async fn build(&self) -> Result<Built, ContainerError> {
        engine::client().await?;
        let containerfile = self.definitions.join(self.name).join("Containerfile");
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        for (binary, inside) in &self.binaries {
            files.push((binary.clone(), format!("rootfs{}", inside.display())));
            for library in linked(binary).map_err(|message| self.build_error(&containerfile, message))? {
                files.push((library.clone(), format!("rootfs{}", library.display())));
            }
        }
        files.extend(self.files.iter().map(|(host, inside)| (host.clone(), format!("rootfs{}", inside.display()))));
        files.sort();
        files.dedup_by(|a, b| a.1 == b.1);
        let hash = content_hash(&containerfile, &files).map_err(|e| self.build_error(&containerfile, e))?;
        let (name, tag) = (format!("localhost/plugproof/{}", self.name), format!("{}-{hash}", self.version));
        let reference = format!("{name}:{tag}");
        let mut buildable = GenericBuildableImage::new(name, tag).with_dockerfile(&containerfile);
        for (host, inside) in &files {
            buildable = buildable.with_file(host, inside.clone());
        }
        for owned in self.owned {
            buildable = buildable.with_data(Vec::new(), format!("owned/{owned}/.keep"));
        }
        if image_id(&reference).await.is_err() {
            let started = std::time::Instant::now();
            eprintln!("plugproof: building image {reference} from {} ...", containerfile.display());
            // The built image is run by its id, below, not through this handle.
            let _built = buildable
                .build_image_with(BuildImageOptions::new().with_skip_if_exists(true))
                .await
                .map_err(|e| self.build_error(&containerfile, e.to_string()))?;
            eprintln!("plugproof: building image {reference}: done in {:.1}s", started.elapsed().as_secs_f64());
        }
        Ok(Built { id: image_id(&reference).await?, reference })
    }

    fn build_error(&self, containerfile: &Path, message: String) -> ContainerError {
        ContainerError::Build {
            image: format!("localhost/plugproof/{}:{}", self.name, self.version),
            containerfile: containerfile.display().to_string(),
            message,
        }
    }
}

/// The shared libraries `binary` links, as `ldd` resolves them here.
fn linked(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let out = Command::new("ldd").arg(binary).output().map_err(|e| format!("cannot run ldd: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        return Err(format!("ldd {}: {}", binary.display(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    // `libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)`, `/lib64/ld-linux-x86-64.so.2 (0x...)`.
    Ok(text
        .lines()
        .filter_map(|line| {
            let path = line.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

fn content_hash(containerfile: &Path, files: &[(PathBuf, String)]) -> Result<String, String> {
    let mut hasher = Sha256::new();
    let read = |path: &Path| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    hasher.update(read(containerfile)?);
    for (host, inside) in files {
        hasher.update(inside.as_bytes());
        hasher.update(read(host)?);
    }
    Ok(hex::encode(hasher.finalize())[..12].to_owned())
}

/// An image the user names: pulled if absent, then asked what it holds.
#[derive(Debug, Clone)]
pub struct NamedImage {
    pub reference: String,
    pub kind: ImageKind,
}

impl NamedImage {
    /// The image, with the digest the engine knows it by.
    pub async fn resolve(&self) -> Result<Image, ContainerError> {
        let docker = engine::client().await?;
        let fail = |message: String| ContainerError::Image { reference: self.reference.clone(), message };
        if docker.inspect_image(&self.reference).await.is_err() {
            let options = CreateImageOptionsBuilder::new().from_image(&self.reference).build();
            let mut pull = docker.create_image(Some(options), None, None);
            while let Some(progress) = pull.next().await {
                progress.map_err(|e| {
                    fail(format!("not here, and it cannot be pulled ({e}); pull or build it, or name another"))
                })?;
            }
        }
        let inspect = docker.inspect_image(&self.reference).await.map_err(|e| fail(e.to_string()))?;
        let id = inspect.id.ok_or_else(|| fail("the engine gives no image id".into()))?;
        let digest = inspect.repo_digests.and_then(|d| d.into_iter().next());
        Ok(Image { id, reference: self.reference.clone(), digest, layout: self.kind.layout() })
    }
}

async fn image_id(reference: &str) -> Result<String, ContainerError> {
    let docker = engine::client().await?;
    let inspect = docker
        .inspect_image(reference)
        .await
        .map_err(|e| ContainerError::Image { reference: reference.to_owned(), message: e.to_string() })?;
    inspect.id.ok_or_else(|| ContainerError::Image { reference: reference.to_owned(), message: "no image id".into() })
}

/// Runs one of the image's programs to its end and returns what it printed.
/// (Through the engine's API directly: a program that ends at once passes
/// through states, such as Podman's `stopped`, that testcontainers' start
/// does not read.)
pub async fn run_once(
    image: &Image,
    program: &Path,
    args: &[&str],
    what: &'static str,
) -> Result<String, ContainerError> {
    let lacks = |message: String| ContainerError::Lacks {
        reference: image.reference.clone(),
        program: what,
        path: program.display().to_string(),
        hint: message,
    };
    let docker = engine::client().await?;
    let mut host = HostConfig::default();
    engine::join_network(&mut host);
    let labels = HashMap::from([(engine::OWNER.to_owned(), crate::runtime::owner::me())]);
    let config = ContainerCreateBody {
        image: Some(image.id.clone()),
        entrypoint: Some(vec![program.to_string_lossy().into_owned()]),
        cmd: Some(args.iter().map(|a| (*a).to_owned()).collect()),
        labels: Some(labels),
        host_config: Some(host),
        ..Default::default()
    };
    // Removed below; if this process is killed first, by its reaper.
    super::reaper::ensure();
    let id =
        docker.create_container(None::<CreateContainerOptions>, config).await.map_err(|e| lacks(e.to_string()))?.id;
    let ran = async {
        docker.start_container(&id, None::<StartContainerOptions>).await.map_err(|e| lacks(e.to_string()))?;
        let mut waited = docker.wait_container(&id, None::<WaitContainerOptions>);
        let mut code = 0;
        while let Some(status) = waited.next().await {
            match status {
                Ok(status) => code = status.status_code,
                // A non-zero exit comes as an error carrying the code.
                Err(testcontainers::bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => code = c,
                Err(e) => return Err(lacks(e.to_string())),
            }
        }
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
        let mut logs = docker.logs(&id, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&chunk.to_string());
        }
        match code {
            0 => Ok(text),
            code => Err(lacks(format!("it exited with code {code}: {}", text.trim()))),
        }
    }
    .await;
    let remove = RemoveContainerOptionsBuilder::new().force(true).build();
    let _ = docker.remove_container(&id, Some(remove)).await;
    ran
}
