module plugproof.dev/fixtures/goplugin

// go:wasmexport needs Go 1.24; no requirements, so no go.sum either.
go 1.24
