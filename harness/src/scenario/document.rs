//! The YAML shape of a scenario file (v1), exactly as users write it.
//!
//! Every struct rejects unknown fields; values whose position matters for a
//! later check (references, resource kinds) are wrapped in `Spanned` so that
//! the loader can point at them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::feature::Feature;
use crate::failure::FailureKind;
pub use crate::targets::filters::FilterRef;

/// A JSON object as written in YAML (plugin configurations).
pub type JsonObject = Map<String, Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDoc {
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub features: Vec<Feature>,
    #[serde(default)]
    pub plugins: BTreeMap<String, Spanned<PluginDoc>>,
    #[serde(default)]
    pub services: Vec<Spanned<ServiceDoc>>,
    #[serde(default)]
    pub routes: Vec<Spanned<RouteDoc>>,
    #[serde(default)]
    pub tcp_listeners: Vec<Spanned<TcpListenerDoc>>,
    /// Wasm services: singleton VMs the gateway's Envoy runs from its bootstrap.
    #[serde(default)]
    pub wasm_services: Vec<Spanned<WasmServiceDoc>>,
    #[serde(default)]
    pub resources: Vec<Spanned<ResourceDoc>>,
    /// Native istio security resources (AuthorizationPolicy,
    /// RequestAuthentication), applied as written; istio profile only.
    #[serde(default)]
    pub policies: Vec<Spanned<JsonObject>>,
    #[serde(default)]
    pub gateway: Option<Spanned<GatewayDoc>>,
    /// Secrets for WasmPlugins' `imagePullSecret`, made by the run.
    #[serde(default)]
    pub pull_secrets: Vec<Spanned<PullSecretDoc>>,
    /// The scenario's registry asks for a login, over TLS.
    #[serde(default)]
    pub private_registry: Option<Spanned<PrivateRegistryDoc>>,
    /// What turns the scenario's Higress WasmPlugins into what istiod reads.
    #[serde(default)]
    pub translator: Option<Spanned<Translator>>,
    pub steps: Vec<Spanned<StepDoc>>,
}

/// A `kubernetes.io/dockerconfigjson` Secret the run makes, holding a
/// user and password for the scenario's registry, which a WasmPlugin names
/// in `imagePullSecret`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullSecretDoc {
    pub name: String,
    /// Default `istio-system`; istiod reads it from the WasmPlugin's own namespace.
    pub namespace: Option<String>,
    /// Whether it holds the registry's password (`right`, the default) or another (`wrong`).
    #[serde(default)]
    pub login: SecretLogin,
}

/// `private_registry`: `true`, or how the registry is set up.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PrivateRegistryDoc {
    On(bool),
    With(PrivateRegistry),
}

/// How a private registry is set up beyond its login and TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRegistry {
    /// The realm of its Basic challenge (default an https URL on a public name).
    pub realm: Option<String>,
}

/// What a pull secret holds for the scenario's registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretLogin {
    #[default]
    Right,
    Wrong,
}

/// What translates a scenario's `extensions.higress.io` WasmPlugins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Translator {
    /// plugproof's model of Higress's controller (`translate::higress`):
    /// the Istio WasmPlugins it makes are applied. Every target.
    #[default]
    Plugproof,
    /// The cluster's own Higress controller: the Higress WasmPlugins are
    /// applied as written, so that its translation is what is tested.
    HigressController,
}

/// The gateway process itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayDoc {
    /// Environment of the gateway's Envoy (what `valueFrom: HOST` reads).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// What configures it.
    pub api: Option<Spanned<RoutingApi>>,
    /// Its Envoy's worker threads (default 1: boots fast on small
    /// machines; each worker holds its own Wasm VMs).
    pub concurrency: Option<Spanned<u32>>,
}

/// What configures the scenario's gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoutingApi {
    /// An Istio Gateway selecting it by label, and a VirtualService per host.
    #[default]
    Istio,
    /// A Gateway API Gateway (manual deployment: its address names a
    /// Service the gateway stands behind) and an HTTPRoute per route; the
    /// gateway carries `gateway.networking.k8s.io/gateway-name`.
    GatewayApi,
}

/// A module pushed to the registry under the plugin's name, from exactly
/// one source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDoc {
    /// A built-in test module (`plugins/modules.yaml`).
    pub module: Option<Spanned<String>>,
    /// A `.wasm` file, relative to the scenario file.
    pub file: Option<Spanned<String>>,
    /// An image in a registry the user names.
    pub oci: Option<Spanned<String>>,
    /// A crate, built for wasm32; relative to the scenario file.
    pub cargo: Option<Spanned<String>>,
    /// A Go main package, built with `GOOS=wasip1 GOARCH=wasm -buildmode=c-shared`; relative to the scenario file.
    pub go: Option<Spanned<String>>,
    pub tag: Option<String>,
    #[serde(default)]
    pub layout: Layout,
}

impl PluginDoc {
    /// Each source given: (key, value).
    pub fn sources(&self) -> Vec<(&'static str, &Spanned<String>)> {
        source_fields(&self.module, &self.file, &self.oci, &self.cargo, &self.go)
    }
}

fn source_fields<'a>(
    module: &'a Option<Spanned<String>>,
    file: &'a Option<Spanned<String>>,
    oci: &'a Option<Spanned<String>>,
    cargo: &'a Option<Spanned<String>>,
    go: &'a Option<Spanned<String>>,
) -> Vec<(&'static str, &'a Spanned<String>)> {
    [("module", module), ("file", file), ("oci", oci), ("cargo", cargo), ("go", go)]
        .into_iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| (key, v)))
        .collect()
}

/// How a module is packed in the registry (see `oci::layout`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Wasm Image Specification, *oci* variant: a runtime-config layer and
    /// the module as an `application/vnd.module.wasm.content.layer.v1+wasm` layer.
    #[default]
    Oci,
    /// *compat* variant: one OCI tar+gzip layer holding `plugin.wasm`.
    Compat,
    /// A Docker image with one tar+gzip layer holding `plugin.wasm`.
    Docker,
    /// Only the raw module layer (which istio's agent rejects).
    SingleWasmLayer,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDoc {
    pub name: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    /// What its backend speaks (default HTTP, the echo backend; TCP: bytes echoed back).
    pub protocol: Option<ServiceProtocol>,
    /// Its backend is down: its address refuses connections (default false).
    #[serde(default)]
    pub down: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ServiceProtocol {
    #[default]
    Http,
    Tcp,
}

/// A TCP listener of the gateway, which proxies each connection to a TCP service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpListenerDoc {
    pub name: String,
    pub service: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDoc {
    pub name: String,
    pub hosts: Vec<String>,
    pub path: Option<String>,
    pub service: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceDoc {
    #[serde(rename = "apiVersion")]
    pub api_version: Spanned<String>,
    pub kind: Spanned<String>,
    pub metadata: MetadataDoc,
    pub spec: WasmPluginSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataDoc {
    pub name: String,
    pub namespace: Option<String>,
}

/// The spec of an Istio `WasmPlugin` (extensions.istio.io/v1alpha1) together
/// with the fields Higress's `WasmPlugin` (extensions.higress.io/v1alpha1) adds,
/// and a `TrafficExtension`'s `wasm` (istio 1.30). The loader rejects the
/// fields that are not the resource's, and lifts a TrafficExtension's `wasm`
/// into the fields a WasmPlugin has at the top.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WasmPluginSpec {
    /// Empty (at an unknown place) when not written: a TrafficExtension has it under `wasm`.
    #[serde(default = "unwritten")]
    pub url: Spanned<String>,
    pub sha256: Option<String>,
    pub image_pull_policy: Option<PullPolicy>,
    pub image_pull_secret: Option<String>,
    pub plugin_config: Option<JsonObject>,
    pub plugin_name: Option<String>,
    pub phase: Option<Phase>,
    pub priority: Option<i32>,
    pub fail_strategy: Option<FailStrategy>,
    pub vm_config: Option<VmConfig>,
    pub default_config: Option<Spanned<JsonObject>>,
    pub default_config_disable: Option<Spanned<bool>>,
    pub match_rules: Option<Spanned<Vec<MatchRule>>>,
    /// Which workloads of its namespace it applies to (Istio's).
    pub selector: Option<Spanned<WorkloadSelector>>,
    /// What it attaches to, instead of a selector (Istio's, Gateway API style).
    pub target_ref: Option<Spanned<TargetRef>>,
    pub target_refs: Option<Spanned<Vec<TargetRef>>>,
    /// Which traffic of the workload it applies to (Istio's `match`).
    #[serde(rename = "match")]
    pub traffic: Option<Spanned<Vec<TrafficSelector>>>,
    /// A TrafficExtension's module and how it runs.
    pub wasm: Option<Spanned<WasmConfig>>,
    /// An HTTP filter (unset, `HTTP`) or a network filter (`NETWORK`).
    #[serde(rename = "type")]
    pub plugin_type: Option<PluginType>,
}

/// What kind of filter a Wasm plugin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PluginType {
    UnspecifiedPluginType,
    Http,
    Network,
}

fn unwritten() -> Spanned<String> {
    Spanned::new(String::new(), serde_saphyr::Location::UNKNOWN, serde_saphyr::Location::UNKNOWN)
}

/// A TrafficExtension's `wasm`: what a WasmPlugin says at the top of its spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WasmConfig {
    pub url: Spanned<String>,
    pub sha256: Option<String>,
    pub image_pull_policy: Option<PullPolicy>,
    pub image_pull_secret: Option<String>,
    pub plugin_config: Option<JsonObject>,
    pub plugin_name: Option<String>,
    pub fail_strategy: Option<FailStrategy>,
    pub vm_config: Option<VmConfig>,
    #[serde(rename = "type")]
    pub plugin_type: Option<PluginType>,
}

/// An Istio WasmPlugin's `selector`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// An Istio WasmPlugin's `targetRef` (or one of its `targetRefs`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRef {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    pub name: String,
    /// Refused by the loader, as by istio's API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One entry of an Istio WasmPlugin's `match`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<WorkloadMode>,
    /// The listener ports it applies to (any, if none); the loader checks each is 1-65535.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSelector>,
}

/// One port of a `match` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortSelector {
    pub number: u32,
}

/// The traffic a `match` entry selects; a gateway's is CLIENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkloadMode {
    Undefined,
    Client,
    Server,
    ClientAndServer,
}

impl Default for WasmPluginSpec {
    /// An empty spec (no url), the base for building one in code.
    fn default() -> Self {
        WasmPluginSpec {
            url: unwritten(),
            sha256: None,
            image_pull_policy: None,
            image_pull_secret: None,
            plugin_config: None,
            plugin_name: None,
            phase: None,
            priority: None,
            fail_strategy: None,
            vm_config: None,
            default_config: None,
            default_config_disable: None,
            match_rules: None,
            selector: None,
            target_ref: None,
            target_refs: None,
            traffic: None,
            wasm: None,
            plugin_type: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    Authn,
    Authz,
    Stats,
    UnspecifiedPhase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailStrategy {
    FailClose,
    FailOpen,
    /// Envoy reloads the plugin's VM after it fails, then serves new
    /// requests with it (istiod 1.27 on: `failure_policy: FAIL_RELOAD`).
    FailReload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum PullPolicy {
    #[serde(rename = "UNSPECIFIED_POLICY")]
    Unspecified,
    IfNotPresent,
    Always,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    #[serde(default)]
    pub env: Vec<EnvVar>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvValueSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnvValueSource {
    Inline,
    Host,
}

/// One entry of a Higress `matchRules` list.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<JsonObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_disable: Option<bool>,
}

/// One step; exactly one action key must be set: `request` (with
/// `expect`), `tcp`, `filters`, `push`, `apply`, `delete`, `reload`,
/// `registry` or `gateway`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDoc {
    pub name: Option<String>,
    pub request: Option<RequestSpec>,
    pub expect: Option<Expect>,
    pub filters: Option<FilterOrder>,
    pub push: Option<PushDoc>,
    pub apply: Option<Spanned<ResourceDoc>>,
    /// `NAME` or `NAMESPACE/NAME` of a WasmPlugin to remove.
    pub delete: Option<Spanned<String>>,
    pub reload: Option<Spanned<ReloadDoc>>,
    /// Changes made one after another, round the list, `times` in all,
    /// each taken by the gateway before the next.
    pub cycle: Option<Spanned<CycleDoc>>,
    /// Bytes sent on a new connection to a TCP listener, and those expected back.
    pub tcp: Option<Spanned<TcpExchange>>,
    /// Values of the gateway's Envoy stats (counters and gauges), by name.
    pub stats: Option<Spanned<BTreeMap<String, Spanned<StatDoc>>>>,
    /// Lines of the gateway's log (its Envoy's, where plugins log).
    pub logs: Option<Spanned<LogsDoc>>,
    /// `stop`: the run's registry stops (what was fetched stays fetched).
    pub registry: Option<RegistryAction>,
    /// `replace`: the gateway ends and a new one starts in its place;
    /// `restart`: it ends and starts again in place.
    pub gateway: Option<GatewayAction>,
    pub eventually: Option<Spanned<Eventually>>,
    /// For `push`, `apply`, `delete`: what the gateway must do with the
    /// change (default: take it, or have nothing to take).
    pub expect_update: Option<UpdateExpect>,
    /// The step is known to fail, in the way this names: it still runs and
    /// is checked in full; a failure of that kind and message is reported
    /// as expected, any other failure stays a failure, and a pass is an
    /// error (the mark is stale).
    pub expected_failure: Option<Spanned<ExpectedFailureDoc>>,
}

/// `cycle`: `times` changes, `changes[0]`, `changes[1]`, ... and round again.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleDoc {
    pub times: Spanned<u32>,
    pub changes: Vec<Spanned<ChangeDoc>>,
}

/// What a stat must be: a number (exactly), bounds, or bounds on its
/// change since the last `stats` step that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum StatDoc {
    Equals(i64),
    Bounds(StatBounds),
    Delta { delta: StatDelta },
}

/// `{min, max}`, either or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatBounds {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

/// A change: a number (exactly), or bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum StatDelta {
    Equals(i64),
    Bounds(StatBounds),
}

/// `logs`: lines of the gateway's log since the scenario's gateway started
/// that match `matches` (a regular expression): at least one, or exactly
/// `count`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsDoc {
    pub matches: Spanned<String>,
    pub count: Option<usize>,
}

/// What a change step requires of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateExpect {
    /// Envoy took every update the change makes.
    Applied,
    /// Envoy refused an update the change makes (and keeps what it had).
    Rejected,
    /// The change makes no update for the gateway (it does not reach it).
    Unchanged,
}

impl UpdateExpect {
    pub fn name(self) -> &'static str {
        match self {
            UpdateExpect::Applied => "applied",
            UpdateExpect::Rejected => "rejected",
            UpdateExpect::Unchanged => "unchanged",
        }
    }
}

/// `expected_failure`: why the step fails, and which failure that is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailureMark {
    pub reason: String,
    /// The failure's kind (`expectation`, `rejected`, `deadline`, ...).
    pub kind: Option<FailureKind>,
    /// Regular expressions naming the failed checks: one, or a list.
    pub matches: Option<OneOrMany>,
    /// The mark holds only on targets with every one of these features...
    #[serde(default)]
    pub when: Vec<Feature>,
    /// ... and none of these; elsewhere the step must pass.
    #[serde(default)]
    pub unless: Vec<Feature>,
}

/// A string, or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> &[String] {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one),
            OneOrMany::Many(many) => many,
        }
    }
}

/// `expected_failure` as written; a bare reason is refused with a hint.
#[derive(Debug, Clone)]
pub struct ExpectedFailureDoc(pub ExpectedFailureMark);

impl<'de> Deserialize<'de> for ExpectedFailureDoc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MarkVisitor;

        impl<'de> Visitor<'de> for MarkVisitor {
            type Value = ExpectedFailureDoc;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map with `reason` and `matches` (and optionally `kind`, `when`, `unless`)")
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(de::Error::custom(
                    "`expected_failure` names what must fail: write `{reason: WHY, matches: REGEX, kind: KIND}` \
                     (matches: a regex, or a list, naming each failed check by its diff lines `-expected` / `+actual`; \
                     kind, optional: one of expectation, rejected, exited, deadline, transport, provisioning, setup)",
                ))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                ExpectedFailureMark::deserialize(de::value::MapAccessDeserializer::new(map)).map(ExpectedFailureDoc)
            }
        }

        deserializer.deserialize_any(MarkVisitor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryAction {
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayAction {
    Replace,
    Restart,
}

/// `reload`: a change applied while bounded background load runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadDoc {
    pub load: LoadDoc,
    /// When to apply the change, after the load starts (default 1s).
    #[serde(default, deserialize_with = "human_duration")]
    pub after: Option<Duration>,
    pub change: ChangeDoc,
    pub version: VersionDoc,
    #[serde(default)]
    pub expect: ReloadExpectDoc,
}

/// A reload's load. Counts and times are spanned so that a value out of
/// the load's bounds is reported where it is written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadDoc {
    /// A TCP load on one of the scenario's TCP listeners, instead of HTTP.
    pub tcp: Option<Spanned<TcpLoadDoc>>,
    pub host: Option<String>,
    pub path: Option<String>,
    /// Keep-alive HTTP/1.1 connections (default 4).
    pub http1: Option<Spanned<usize>>,
    /// HTTP/2 connections, cleartext (default 2).
    pub http2: Option<Spanned<usize>>,
    /// Concurrent short streams on each HTTP/2 connection (default 1).
    pub streams: Option<Spanned<usize>>,
    /// Short requests per second over all connections (default 1000).
    pub rate: Option<Spanned<u32>>,
    /// How long the load runs (default 5s).
    pub duration: Option<Spanned<HumanDuration>>,
    /// Long streams held across the change (default none).
    pub long: Option<Spanned<LongDoc>>,
}

/// `reload.load.tcp`: connections through a TCP listener, each message
/// echoed back behind the stamps of the network filters that ran.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpLoadDoc {
    pub listener: String,
    /// Connections opened as the load starts and kept to its end (default 4).
    pub held: Option<Spanned<usize>>,
    /// How often each held connection exchanges a message (default 100ms).
    pub every: Option<Spanned<HumanDuration>>,
    /// New connections a second, each one exchange (default 20).
    pub rate: Option<Spanned<u32>>,
}

/// `load.long`: lanes that open long streams one after another, and what
/// the backend answers each (a late answer, a body streamed in chunks).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongDoc {
    /// Lanes on HTTP/1.1 connections of their own (default 0).
    pub http1: Option<Spanned<usize>>,
    /// Lanes on each HTTP/2 connection, beside its short streams (default 0).
    pub http2: Option<Spanned<usize>>,
    /// The backend waits this long before its response headers (default 0s).
    pub delay: Option<Spanned<HumanDuration>>,
    /// Then streams this many body chunks (default 10; 0: the JSON echo).
    pub chunks: Option<Spanned<u32>>,
    /// This far apart (default 500ms).
    pub every: Option<Spanned<HumanDuration>>,
    /// Of this many bytes each (default 64).
    pub size: Option<Spanned<usize>>,
}

/// A duration written like `10s` or `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(HumanDuration(human_duration(d)?.expect("a parsed duration")))
    }
}

/// Exactly one of `push`, `apply`, `delete`, as the steps of that name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeDoc {
    pub push: Option<PushDoc>,
    pub apply: Option<Spanned<ResourceDoc>>,
    pub delete: Option<Spanned<String>>,
}

/// What tells the old version from the new: a response header's value
/// (HTTP), or the stamps before each answer (TCP, no `header`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionDoc {
    pub header: Option<String>,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadExpectDoc {
    /// Failed requests allowed (default 0); a request fails on a transport
    /// error or a status other than `status`.
    pub errors: Option<u32>,
    /// The status every response must have (default 200).
    pub status: Option<u16>,
    /// Whether the proxy may close connections (default `none`).
    pub closes: Option<Closes>,
    /// Every connection must see `version.to` this long after the change
    /// (default 2s); shorter than the rest of the load, so that the load
    /// goes on to show every connection stays switched.
    #[serde(default, deserialize_with = "human_duration")]
    pub switch_within: Option<Duration>,
    /// With long streams: one started before the change must be answered
    /// after the gateway took it (default true); false for a scenario
    /// whose long streams must answer before the change.
    pub across: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Closes {
    /// No connection may be closed by the proxy.
    None,
    /// Allows announced closes: the proxy may close connections, each
    /// announced first (HTTP/1 `connection: close`, HTTP/2 GOAWAY).
    Graceful,
    /// A listener drain: every connection open at the change must be
    /// closed by the proxy after it, each announced first.
    Drain,
}

/// Pushes a module (from one source, as in `plugins`) under a plugin's
/// repository and tag (re-pointing the tag); later `plugin://NAME` urls are
/// bound to the new digest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushDoc {
    pub plugin: Spanned<String>,
    pub module: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub oci: Option<Spanned<String>>,
    pub cargo: Option<Spanned<String>>,
    pub go: Option<Spanned<String>>,
}

impl PushDoc {
    pub fn sources(&self) -> Vec<(&'static str, &Spanned<String>)> {
        source_fields(&self.module, &self.file, &self.oci, &self.cargo, &self.go)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default = "default_method")]
    pub method: String,
    pub host: String,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}

fn default_method() -> String {
    "GET".to_owned()
}

fn default_path() -> String {
    "/".to_owned()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: Option<u16>,
    /// Envoy's response code details for the request (`%RESPONSE_CODE_DETAILS%`,
    /// e.g. `wasm_fail_stream`), read from the gateway's access log.
    pub details: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderExpect>,
    pub body: Option<BodyExpect>,
    pub backend: Option<BackendExpect>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyExpect {
    pub contains: Option<String>,
    pub equals: Option<String>,
    /// JSON pointer (RFC 6901) -> expected value.
    #[serde(default)]
    pub json: BTreeMap<String, Value>,
}

/// What the echo backend reports it received.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendExpect {
    pub service: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderExpect>,
}

/// A header value is a string (equality) or a map with one of
/// `equals`, `regex`, `absent: true`.
#[derive(Debug, Clone)]
pub enum HeaderExpect {
    Equals(String),
    Matches(regex::Regex),
    Absent,
}

impl<'de> Deserialize<'de> for HeaderExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;

        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = HeaderExpect;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a header value, or a map with one of `equals`, `regex`, `absent: true`")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(HeaderExpect::Equals(v.to_owned()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(HeaderExpect::Equals(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(HeaderExpect::Equals(v.to_string()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(HeaderExpect::Equals(v.to_string()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                const FIELDS: &[&str] = &["equals", "regex", "absent"];
                let key: String =
                    map.next_key()?.ok_or_else(|| de::Error::custom("expected one of `equals`, `regex`, `absent`"))?;
                let expect = match key.as_str() {
                    "equals" => HeaderExpect::Equals(map.next_value()?),
                    "regex" => {
                        let pattern: String = map.next_value()?;
                        let re = regex::Regex::new(&pattern)
                            .map_err(|e| de::Error::custom(format!("invalid regex: {e}")))?;
                        HeaderExpect::Matches(re)
                    }
                    "absent" => {
                        if !map.next_value::<bool>()? {
                            return Err(de::Error::custom(
                                "`absent: false` means nothing; write the expected value instead",
                            ));
                        }
                        HeaderExpect::Absent
                    }
                    other => return Err(de::Error::unknown_field(other, FIELDS)),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "`{extra}`: a header expectation takes exactly one of `equals`, `regex`, `absent`"
                    )));
                }
                Ok(expect)
            }
        }

        deserializer.deserialize_any(HeaderVisitor)
    }
}

/// `filters`: the gateway listener's HTTP filters, in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterOrder {
    pub order: Vec<FilterRef>,
    /// Exact list instead of an ordered subsequence.
    #[serde(default)]
    pub exact: bool,
    /// The network filters of a listener instead of the HTTP filters:
    /// `http` for the HTTP listener, or the name of a TCP listener.
    #[serde(default)]
    pub network: Option<String>,
}

/// How long and how steadily an expectation must hold: a map, or `once`
/// for exactly one attempt (no retry hides the first answer).
#[derive(Debug, Clone, Copy)]
pub enum Eventually {
    Once,
    Retry(Retry),
}

impl<'de> Deserialize<'de> for Eventually {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventuallyVisitor;

        impl<'de> Visitor<'de> for EventuallyVisitor {
            type Value = Eventually;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`once`, or a map of `times`, `within`, `every` (or `always`, `every`)")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "once" => Ok(Eventually::Once),
                    other => Err(de::Error::custom(format!(
                        "`{other}`: write `once` (one attempt, no retry) or a map of `times`, `within`, `every`"
                    ))),
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Retry::deserialize(de::value::MapAccessDeserializer::new(map)).map(Eventually::Retry)
            }
        }

        deserializer.deserialize_any(EventuallyVisitor)
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts that must all hold, none allowed to fail (instead of
    /// `times` and `within`).
    pub always: Option<u32>,
    /// Consecutive passes required (default 3).
    pub times: Option<u32>,
    /// Deadline, e.g. `10s`, `500ms` (default 10s).
    #[serde(default, deserialize_with = "human_duration")]
    pub within: Option<Duration>,
    /// Pause between attempts that hold (default none), so that `times`
    /// passes span a while: `{times: 40, every: 50ms}` watches for 2 s.
    #[serde(default, deserialize_with = "human_duration")]
    pub every: Option<Duration>,
}

fn human_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|e| de::Error::custom(format!("`{text}` is not a duration like 10s or 500ms: {e}")))
}

/// A `tcp` step: a new connection to the listener `listener` (or the one
/// named `connection`, opened by the first step that names it and kept open
/// until the scenario ends), `send` written on it, then what comes back read
/// until it is as long as `expect` (or the connection ends), which it must equal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpExchange {
    pub listener: String,
    #[serde(default)]
    pub connection: Option<String>,
    pub send: String,
    pub expect: String,
}

/// A Wasm service (`envoy.bootstrap.wasm`, a singleton VM on Envoy's main
/// thread) running one of the scenario's plugins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmServiceDoc {
    pub name: String,
    pub plugin: Spanned<String>,
    /// Its plugin configuration (JSON).
    pub config: Option<JsonObject>,
    /// The VM's `vm_id` (default empty, as istiod leaves its filters'): VMs
    /// of one `vm_id` share their shared data.
    #[serde(default)]
    pub vm_id: String,
}
