//go:build tools

// Package pin pins the kube-apiserver plugproof builds; the file is never compiled.
package pin

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
