//! The Istio `WasmPlugin` every scenario resource becomes, and the names
//! the istiod it goes to derives from it.

use serde::Serialize;

use super::istiod::{IstiodVersion, Naming};
use crate::scenario::{
    FailStrategy, JsonObject, Phase, PluginType, PullPolicy, Reference, ResourceKind, TargetRef, TrafficSelector,
    VmConfig, WorkloadSelector,
};

#[derive(Debug, Clone, PartialEq)]
pub struct IstioWasmPlugin {
    pub kind: ResourceKind,
    pub name: String,
    pub namespace: String,
    /// The scenario plugin its url refers to, and how.
    pub plugin: String,
    pub reference: Reference,
    pub spec: IstioSpec,
    /// Creation order: 0 for the resources deployed together, then one
    /// more for each a step creates (see `profiles::InForce`).
    pub created: u32,
    /// The istiod that turns it into a filter.
    pub istiod: IstiodVersion,
    /// `NAMESPACE/NAME` as the scenario writes it (`namespace` and `name`
    /// are where it is deployed; see `profiles::Names`).
    pub written: String,
}

impl IstioWasmPlugin {
    /// The HTTP filter name and ECDS resource name istiod uses.
    pub fn filter_name(&self) -> String {
        self.naming().filter_name(&self.namespace, &self.name)
    }

    /// The name in the Wasm filter's plugin configuration.
    pub fn plugin_config_name(&self) -> String {
        self.naming().config_name(&self.namespace, &self.name)
    }

    /// The name istiod sorts plugins created in the same second by (from
    /// 1.30 its TrafficExtension's: a WasmPlugin's is
    /// `NAME~istio-translated-wasmplugin`, so `a-b` sorts before `a`).
    pub fn sort_name(&self) -> String {
        self.naming().sort_name(&self.name)
    }

    fn naming(&self) -> Naming {
        match self.kind {
            ResourceKind::WasmPlugin => self.istiod.naming(),
            ResourceKind::TrafficExtension => Naming::OwnTrafficExtension,
        }
    }

    /// The phase istiod files the plugin under (unset is `UNSPECIFIED_PHASE`).
    pub fn phase(&self) -> Phase {
        self.spec.phase.unwrap_or(Phase::UnspecifiedPhase)
    }
}

/// `spec` of an extensions.istio.io/v1alpha1 WasmPlugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioSpec {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<JsonObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_strategy: Option<FailStrategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_config: Option<VmConfig>,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Vec<TrafficSelector>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    #[serde(rename = "targetRef", skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetRef>,
    #[serde(rename = "targetRefs", skip_serializing_if = "Option::is_none")]
    pub target_refs: Option<Vec<TargetRef>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub plugin_type: Option<PluginType>,
}

impl IstioSpec {
    /// Whether istiod makes it a network filter (`type: NETWORK`), not an HTTP one.
    pub fn network(&self) -> bool {
        self.plugin_type == Some(PluginType::Network)
    }

    /// Whether it attaches by `targetRef` or `targetRefs`, not by selector.
    pub fn targets(&self) -> bool {
        !self.target_list().is_empty()
    }

    /// What it attaches to: `targetRefs`, or else `targetRef` (as istiod
    /// reads them: pilot/pkg/model/policyattachment.go `GetTargetRefs`).
    pub fn target_list(&self) -> Vec<&TargetRef> {
        match (&self.target_refs, &self.target_ref) {
            (Some(refs), _) if !refs.is_empty() => refs.iter().collect(),
            (_, Some(one)) => vec![one],
            _ => Vec::new(),
        }
    }
}
