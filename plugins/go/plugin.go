//go:build wasip1

package main

// The plugin's callbacks, called from the ABI exports in abi.go.

import "runtime"

// Per-VM state. One VM runs one thread (a worker), so no locking.
var (
	// configs holds each root context's accepted configuration.
	configs = map[uint32]config{}
	// roots maps a stream context to its root context.
	roots = map[uint32]uint32{}
)

func onContextCreate(contextID, parentID uint32) {
	if parentID != 0 {
		roots[contextID] = parentID
	}
}

func onConfigure(rootID, size uint32) bool {
	raw, ok := getBuffer(bufferPluginConfiguration, size)
	if !ok {
		logf(logError, "goplugin: cannot read the plugin configuration")
		return false
	}
	c, err := parseConfig(raw)
	if err != nil {
		// Returning false makes Envoy refuse the plugin (the listener, or
		// startup); the log line says why.
		logf(logError, "goplugin: rejecting configuration "+quote(raw)+": "+err.Error())
		return false
	}
	configs[rootID] = c
	logf(logInfo, "goplugin ("+runtime.Version()+"): adding "+c.Header+": "+c.Name+" to every response")
	return true
}

func onResponseHeaders(contextID uint32) {
	c, ok := configs[roots[contextID]]
	if !ok {
		return // no accepted config: Envoy would not run us, but stay harmless
	}
	if proxyAddHeaderMapValue(mapResponseHeaders, c.Header, c.Name) != statusOK {
		logf(logError, "goplugin: cannot add "+c.Header)
	}
}

func onDelete(contextID uint32) {
	delete(roots, contextID)
	delete(configs, contextID)
}
