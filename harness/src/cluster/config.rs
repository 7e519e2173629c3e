//! What the node's programs are configured with, as text: containerd's
//! config, the CNI network, the kubelet's and kube-proxy's configurations
//! and the kubeconfig every program and the harness use. No I/O here.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::components::apiserver::TOKEN;

/// The node's name, and the address Pods reach it (and its API server) at:
/// the gateway of their bridge.
pub const NODE_NAME: &str = "plugproof-node";
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
/// The Pods' addresses: one /24 on the node's bridge.
pub const POD_SUBNET: &str = "10.244.0.0/24";
pub const BRIDGE: &str = "cni0";
/// The Services' addresses (the API server's `--service-cluster-ip-range`):
/// the only addresses a Pod routes through the node, so nothing a Pod
/// sends leaves the node's network.
pub const SERVICE_SUBNET: &str = "10.96.0.0/16";

/// A kubeconfig for the admin token, against `server`, trusting the API
/// server's own certificate `ca`.
pub fn kubeconfig(server: &str, ca: &Path) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: plugproof\n  cluster:\n    server: {server}\n    certificate-authority: {}\n\
         users:\n- name: admin\n  user:\n    token: {TOKEN}\ncontexts:\n- name: plugproof\n  context:\n    cluster: plugproof\n    user: admin\n\
         current-context: plugproof\n",
        ca.display()
    )
}

/// containerd (config version 2): its state in `dir`, the CRI plugin with
/// `sandbox` as the Pod sandbox image, runc with cgroupfs, the CNI network
/// in `cni_conf`. A negative oom_score_adj is refused here (no
/// CAP_SYS_RESOURCE), so containers keep theirs (`restrict_oom_score_adj`).
pub fn containerd(dir: &Path, sandbox: &str, cni_bin: &Path, cni_conf: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox}"
  disable_apparmor = true
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{}"
    conf_dir = "{}"
"#,
        cni_bin.display(),
        cni_conf.display()
    )
}

/// The Pods' network: a bridge with the node as gateway (masquerading,
/// hairpin for a Pod that reaches itself through a Service), port mappings,
/// loopback; addresses from `data` (host-local).
pub fn cni(data: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "plugproof",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP.to_string()}]],
                    "routes": [{"dst": SERVICE_SUBNET}],
                    "dataDir": data,
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "loopback"},
        ],
    })
    .to_string()
}

/// The kubelet: cgroupfs on cgroup v1 (which 1.36 refuses unless told),
/// anonymous access for the API server's logs and port-forwards, its volume
/// plugins in `dir`, no eviction for a host whose disks are the machine's.
pub fn kubelet(containerd: &Path, dir: &Path) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://{}
address: {NODE_IP}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
volumePluginDir: {}/volume-plugins
clusterDomain: cluster.local
resolvConf: ""
serializeImagePulls: false
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: false
"#,
        containerd.display(),
        dir.display()
    )
}

/// kube-proxy in iptables mode, leaving conntrack's global limits alone.
pub fn kube_proxy(kubeconfig: &Path) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: {}
clusterCIDR: {POD_SUBNET}
hostnameOverride: {NODE_NAME}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
"#,
        kubeconfig.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_names_the_node_as_gateway() {
        let cni: serde_json::Value = serde_json::from_str(&cni(Path::new("/s/cni"))).expect("JSON");
        assert_eq!(cni["plugins"][0]["ipam"]["ranges"][0][0]["gateway"], "10.244.0.1");
        assert_eq!(cni["plugins"][0]["ipam"]["dataDir"], "/s/cni");
    }

    #[test]
    fn containerd_keeps_oom_scores_and_cgroupfs() {
        let text =
            containerd(Path::new("/s/c"), "localhost/plugproof/pause:1", Path::new("/usr/lib/cni"), Path::new("/s/n"));
        assert!(text.contains("restrict_oom_score_adj = true"));
        assert!(text.contains("SystemdCgroup = false"));
        assert!(text.contains(r#"address = "/s/c/containerd.sock""#));
    }
}
