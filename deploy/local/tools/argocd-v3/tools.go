//go:build tools

// Package main pins the Argo CD v3 command (one binary for server,
// repo-server and application-controller; the role is picked by
// ARGOCD_BINARY_NAME) so `go build github.com/argoproj/argo-cd/v3/cmd`
// resolves in this module.
package main

import _ "github.com/argoproj/argo-cd/v3/cmd"
