//go:build tools

// Package pin pins the Kubernetes node and controller programs plugproof
// builds for its local cluster (`plugproof cluster up`); the file is never
// compiled. The API server is the kube-apiserver pin's.
package pin

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
