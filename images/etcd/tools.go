//go:build tools

// Package pin pins the etcd plugproof builds; the file is never compiled.
package pin

import _ "go.etcd.io/etcd/server/v3"
