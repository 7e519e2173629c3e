//go:build tools

// Package pin pins the Helm plugproof renders istio's charts (from an istio
// pin's module) with, to install istiod in its local cluster; the file is
// never compiled.
package pin

import _ "helm.sh/helm/v4/cmd/helm"
