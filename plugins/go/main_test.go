package main

import "testing"

// Host tests of the configuration parser (the ABI glue needs a host):
//
//	go test .   (plain host build; abi.go is wasm-only)
func TestParseConfig(t *testing.T) {
	good := map[string]config{
		`{"name": "go-hello", "header": "x-go-plugin"}`: {Name: "go-hello", Header: "x-go-plugin"},
		`{"name": "go-hello"}`:                          {Name: "go-hello", Header: "x-go-plugin"},
		` {"name": "a", "header": "x-a"} `:              {Name: "a", Header: "x-a"},
	}
	for raw, want := range good {
		got, err := parseConfig([]byte(raw))
		if err != nil || got != want {
			t.Errorf("parseConfig(%s) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
	for _, raw := range []string{
		``, `not json`, `{}`, `{"name": ""}`, `{"name": 1}`, `{"name": "a", "hedaer": "x"}`,
		`{"name": "a", "header": "X-Upper"}`, `{"name": "a", "header": ":status"}`, `{"name": "a"} {}`,
		`{"name": "a", "header": "x y"}`,
	} {
		if c, err := parseConfig([]byte(raw)); err == nil {
			t.Errorf("parseConfig(%s) = %+v, want an error", raw, c)
		}
	}
}
