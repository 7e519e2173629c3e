// Command goplugin is a proxy-wasm HTTP filter built with the standard Go
// compiler: it adds one response header, named and valued by its plugin
// configuration, to every response, and rejects a configuration that does
// not parse. See README.md.
package main

import (
	"bytes"
	"encoding/json"
	"strings"
)

// A c-shared (reactor) module still needs a main; the host never calls it.
// The host calls _initialize, which starts the Go runtime, then the exports.
func main() {}

// config is the plugin configuration, e.g.
// {"name": "go-hello", "header": "x-go-plugin"}.
type config struct {
	// Name is the header's value; required, so a config that is not ours
	// (or empty) is refused instead of silently stamping "".
	Name string `json:"name"`
	// Header is the response header to add; x-go-plugin if absent.
	Header string `json:"header"`
}

const defaultHeader = "x-go-plugin"

// parseConfig is the whole of what the plugin accepts. Unknown keys are an
// error too: a misspelt "header" should fail loudly, not fall back.
func parseConfig(raw []byte) (config, error) {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	if dec.More() {
		return c, errorString("trailing data after the JSON object")
	}
	if c.Name == "" {
		return c, errorString(`"name" is required`)
	}
	if c.Header == "" {
		c.Header = defaultHeader
	}
	// Envoy would reject (or mangle) an invalid header name on the response;
	// catch it at configure time where the error is visible.
	if !validHeaderName(c.Header) {
		return c, errorString(`"header" is not a lowercase HTTP header name: ` + c.Header)
	}
	return c, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

func validHeaderName(name string) bool {
	if name == "" || strings.HasPrefix(name, ":") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.!#$%&'*+^`|~", r)) {
			return false
		}
	}
	return true
}

// quote shows a raw configuration in a log line, bounded in length.
func quote(raw []byte) string {
	const limit = 200
	s := string(raw)
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	b, _ := json.Marshal(s)
	return string(b)
}
