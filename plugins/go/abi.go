//go:build wasip1

package main

// The proxy-wasm ABI v0.2.1, written out by hand: the host functions this
// plugin calls, the callbacks it exports, and the memory hand-over between
// the two. No SDK: the standard Go compiler (go1.24+, wasip1 c-shared) can
// export and import wasm functions itself, and TinyGo is not needed.
//
// Types follow cmd/compile's table for go:wasmimport/go:wasmexport: uint32,
// bool and unsafe.Pointer are one i32; a string parameter is an (i32 pointer,
// i32 length) pair, which is exactly how the ABI passes (data, size).

import "unsafe"

// Values from the ABI spec (the Rust SDK's src/types.rs has the same).
const (
	logInfo  = 2
	logError = 4

	statusOK = 0

	bufferPluginConfiguration = 7
	mapResponseHeaders        = 2

	actionContinue = 0
)

//go:wasmimport env proxy_log
func proxyLog(level uint32, message string) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(bufferType, start, maxSize uint32, returnData *uint32, returnSize *uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(mapType uint32, key, value string) uint32

// proxy_abi_version_0_2_1 is how the host picks the ABI: it looks for an
// exported function of that name and refuses a module without a known one.
//
//go:wasmexport proxy_abi_version_0_2_1
func proxyAbiVersion() {}

// allocations keeps the buffers handed to the host reachable until we take
// them back: the host writes into them after proxy_on_memory_allocate
// returns, and only Go references keep the GC from freeing them (Go's GC
// does not move heap objects, so the address stays valid). Keyed by address.
var allocations = map[uintptr][]byte{}

// proxy_on_memory_allocate is called by the host, inside a host call such as
// proxy_get_buffer_bytes, for memory to copy its answer into.
//
//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) unsafe.Pointer {
	buf := make([]byte, max(size, 1)) // never a zero-size (nil) address
	p := unsafe.Pointer(&buf[0])
	allocations[uintptr(p)] = buf[:size]
	return p
}

// Out-parameters of host calls. Globals, not locals: the host writes them
// while Go may run (proxy_on_memory_allocate), and a global never moves
// the way a goroutine stack can.
var returnData, returnSize uint32

// getBuffer reads a whole host buffer (e.g. the plugin configuration).
func getBuffer(bufferType, size uint32) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	if proxyGetBufferBytes(bufferType, 0, size, &returnData, &returnSize) != statusOK {
		return nil, false
	}
	buf, ok := allocations[uintptr(returnData)]
	delete(allocations, uintptr(returnData))
	return buf[:min(returnSize, uint32(len(buf)))], ok
}

func logf(level uint32, message string) { proxyLog(level, message) }

// The context callbacks. Envoy calls proxy_on_context_create(root, 0) for the
// plugin's root context and (stream, root) for each HTTP stream.

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(contextID, parentID uint32) { onContextCreate(contextID, parentID) }

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(rootID, vmConfigurationSize uint32) bool { return true }

//go:wasmexport proxy_on_configure
func proxyOnConfigure(rootID, pluginConfigurationSize uint32) bool {
	return onConfigure(rootID, pluginConfigurationSize)
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(contextID, numHeaders uint32, endOfStream bool) uint32 {
	onResponseHeaders(contextID)
	return actionContinue
}

//go:wasmexport proxy_on_done
func proxyOnDone(contextID uint32) bool { return true }

//go:wasmexport proxy_on_delete
func proxyOnDelete(contextID uint32) { onDelete(contextID) }
