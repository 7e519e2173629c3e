//! The ingress gateway `cluster up` installs, as a user's cluster has one:
//! a Deployment of istio's agent and Envoy from the gateway image, in
//! `istio-ingress`, with istio's usual labels, so that a run can drive an
//! installed gateway (`--gateway-selector`) here as on a user's cluster.
//! It is a plain Deployment rather than istio's `gateway` chart, whose Pod
//! istiod's injection webhook would fill in for mTLS over the cluster's
//! DNS; this cluster has neither (its gateways talk plaintext XDS to
//! istiod's Pod, as the scenarios' own do).

use serde_json::{json, Value};

use crate::components::envoy::access_log;
use crate::runtime::container::IMAGE_LAYOUT;

pub const NAMESPACE: &str = "istio-ingress";
pub const NAME: &str = "istio-ingressgateway";
/// The labels of its Pod, which `--gateway-selector` names.
pub const LABELS: [(&str, &str); 2] = [("app", "istio-ingressgateway"), ("istio", "ingressgateway")];

/// Its namespace and Deployment, from `image`, configured by the istiod at `istiod` (`IP:PORT` of plaintext XDS).
pub fn manifests(image: &str, istiod: &str) -> Vec<Value> {
    let (envoy, agent, template) = IMAGE_LAYOUT;
    let labels: serde_json::Map<String, Value> = LABELS.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    // The drain the scenarios' own gateways have, which the drain scenarios pin.
    let proxy_config = format!(
        "discoveryAddress: {istiod}\ncontrolPlaneAuthPolicy: NONE\nbinaryPath: {envoy}\nconfigPath: /etc/istio/proxy\n\
         proxyBootstrapTemplatePath: {template}\nconcurrency: 1\ndrainDuration: 5s\nterminationDrainDuration: 1s\n\
         fileFlushInterval: {flush}s\n\
         proxyStatsMatcher: {{inclusionPrefixes: [extension_config_discovery, listener_manager]}}\n",
        flush = access_log::FLUSH.as_secs_f64(),
    );
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    // The node's network, as the scenarios' own gateways on this cluster.
                    "hostNetwork": true,
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "istio-proxy",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "command": [agent],
                        "args": [
                            "proxy", "router",
                            format!("--domain={NAMESPACE}.svc.cluster.local"),
                            "--proxyLogLevel=warning",
                            "--proxyComponentLogLevel=misc:error,wasm:info",
                            "--log_output_level=default:info",
                        ],
                        "env": [
                            {"name": "POD_NAME", "valueFrom": field("metadata.name")},
                            {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
                            {"name": "INSTANCE_IP", "valueFrom": field("status.podIP")},
                            {"name": "SERVICE_ACCOUNT", "valueFrom": field("spec.serviceAccountName")},
                            {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"},
                            {"name": "ISTIO_METAJSON_LABELS", "value": Value::Object(labels.clone()).to_string()},
                            // No CA: the gateway serves plain HTTP and needs no certificates.
                            {"name": "FILE_MOUNTED_CERTS", "value": "true"},
                            // Runs' registries serve plain HTTP, wherever they are.
                            {"name": "WASM_INSECURE_REGISTRIES", "value": "*"},
                            {"name": "PROXY_CONFIG", "value": proxy_config},
                        ],
                        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}, "periodSeconds": 2},
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/etc/istio/proxy"},
                            {"name": "wasm", "mountPath": "/var/lib/istio/data"},
                        ],
                    }],
                    "volumes": [{"name": "config", "emptyDir": {}}, {"name": "wasm", "emptyDir": {}}],
                },
            },
        },
    });
    vec![namespace, deployment]
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;

    use super::*;

    #[test]
    fn the_gateway_is_a_deployment_its_labels_select_configured_by_istiods_pod() {
        let objects = manifests("localhost/plugproof/gateway:1", "10.244.0.5:15010");
        let deployment: Deployment = serde_json::from_value(objects[1].clone()).expect("a Deployment");
        let spec = deployment.spec.expect("a spec");
        let pod_labels = spec.template.metadata.and_then(|m| m.labels).expect("labels");
        assert_eq!(pod_labels.get("istio").map(String::as_str), Some("ingressgateway"));
        assert_eq!(spec.selector.match_labels, Some(pod_labels));
        let container = &spec.template.spec.expect("a Pod spec").containers[0];
        let proxy_config = container.env.as_ref().and_then(|e| e.iter().find(|v| v.name == "PROXY_CONFIG")).cloned();
        assert!(proxy_config.and_then(|v| v.value).is_some_and(|v| v.contains("discoveryAddress: 10.244.0.5:15010")));
    }
}
