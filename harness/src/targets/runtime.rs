//! How a target's gateway runs, resolved: host processes of the binaries
//! provisioned for it, or containers of an image, one plugproof builds from
//! those binaries (`images/`) or one the user names, asked what it holds.

use std::sync::Arc;

use super::spec::{ImageSource, RuntimeSpec, TargetSpec};
use super::Needs;
use crate::options::Options;
use crate::provision::{version_of, EnvoyBuild, EnvoySource, IstioKit, ProvisionError};
use crate::runtime::container::{run_once, ContainerError, ContainerRuntime, Image, ImageKind, LocalImage, NamedImage};
use crate::runtime::{HostRuntime, Program, Runtime};

pub struct Resolved {
    pub envoy: EnvoyBuild,
    pub runtime: Arc<dyn Runtime>,
    pub image: Option<Image>,
}

/// `envoy` is the provisioned Envoy, none for a named image (whose own it is).
pub async fn resolve(
    spec: &TargetSpec,
    options: &Options,
    envoy: Option<EnvoyBuild>,
    kit: Option<&IstioKit>,
    needs: &Needs,
) -> Result<Resolved, ProvisionError> {
    let kind = if needs.programs.contains(&Program::Agent) { ImageKind::Gateway } else { ImageKind::Envoy };
    match (&spec.runtime, envoy) {
        (RuntimeSpec::Process, Some(envoy)) => {
            let runtime = HostRuntime {
                envoy: envoy.path.clone(),
                agent: kit.map(|k| k.agent.clone()),
                bootstrap_template: kit.map(|k| k.bootstrap_template.clone()),
            };
            Ok(Resolved { envoy, runtime: Arc::new(runtime), image: None })
        }
        // A cluster's node holds the image plugproof built, loaded by `plugproof cluster up`.
        (RuntimeSpec::Container(ImageSource::Local) | RuntimeSpec::Pod, Some(envoy)) => {
            let version = match kit {
                Some(kit) if kind == ImageKind::Gateway => format!("{}-envoy-{}", kit.pin, envoy.version),
                _ => envoy.version.clone(),
            };
            let agent = kit.map(|k| k.agent.as_path());
            let template = kit.map(|k| k.bootstrap_template.as_path());
            let built =
                LocalImage::gateway(kind, &options.images, version, &envoy.path, agent, template).build().await?;
            let image = Image { id: built.id, reference: built.reference, digest: None, layout: kind.layout() };
            let envoy = EnvoyBuild { path: image.layout.envoy.clone(), ..envoy };
            Ok(Resolved { envoy, runtime: Arc::new(ContainerRuntime { image: image.clone() }), image: Some(image) })
        }
        (RuntimeSpec::Container(ImageSource::Named(reference)), _) => {
            let image = NamedImage { reference: reference.clone(), kind }.resolve().await?;
            let envoy = image_envoy(&image, spec).await?;
            if let Some(agent) = &image.layout.agent {
                run_once(&image, agent, &["version", "-s"], "pilot-agent").await?;
            }
            Ok(Resolved { envoy, runtime: Arc::new(ContainerRuntime { image: image.clone() }), image: Some(image) })
        }
        (_, None) => unreachable!("only a named image comes without a provisioned Envoy"),
    }
}

/// The image's Envoy, asked its version; it must be the one the target
/// names, if it names one.
async fn image_envoy(image: &Image, spec: &TargetSpec) -> Result<EnvoyBuild, ContainerError> {
    let printed = run_once(image, &image.layout.envoy, &["--version"], "Envoy").await?;
    let (version, build) = version_of(&printed).ok_or_else(|| ContainerError::Lacks {
        reference: image.reference.clone(),
        program: "Envoy",
        path: image.layout.envoy.display().to_string(),
        hint: format!("`--version` printed {:?}", printed.trim()),
    })?;
    if spec.envoy_named {
        let wanted = match &spec.envoy {
            EnvoySource::Wheel(version) => version.clone(),
            other => format!("{other:?}"),
        };
        if wanted != version {
            return Err(ContainerError::EnvoyMismatch { reference: image.reference.clone(), found: version, wanted });
        }
    }
    let source = EnvoySource::Image(image.reference.clone());
    Ok(EnvoyBuild { path: image.layout.envoy.clone(), source, version, build })
}
