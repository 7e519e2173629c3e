//go:build tools

// Package pin pins the istio commands plugproof builds; the file is never compiled.
package pin

import (
	_ "istio.io/istio/pilot/cmd/pilot-agent"
	_ "istio.io/istio/pilot/cmd/pilot-discovery"
)
