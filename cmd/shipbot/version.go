package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// versionString is what `shipbot version` prints and serve logs: the
// module version, the VCS revision and time the binary was built from
// (and whether the work tree had changes), and the Go toolchain, from the
// build information Go stamps into every binary. A version set at link
// time (-ldflags "-X main.version=...") comes first.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = nil
	}
	return formatVersion(version, info)
}

func formatVersion(linked string, info *debug.BuildInfo) string {
	v := linked
	if info != nil && (v == "" || v == "dev") {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	if info == nil {
		return "shipbot " + v + " (no build information)"
	}
	s := map[string]string{}
	for _, kv := range info.Settings {
		s[kv.Key] = kv.Value
	}
	var parts []string
	if rev := s["vcs.revision"]; rev != "" {
		p := "commit " + rev[:min(12, len(rev))]
		if t := s["vcs.time"]; t != "" {
			p += " " + t
		}
		if s["vcs.modified"] == "true" {
			p += " with uncommitted changes"
		}
		parts = append(parts, p)
	} else {
		parts = append(parts, "no VCS information: built outside a git checkout or with -buildvcs=false")
	}
	goos, goarch := s["GOOS"], s["GOARCH"]
	parts = append(parts, strings.TrimSpace(info.GoVersion+" "+strings.Trim(goos+"/"+goarch, "/")))
	return fmt.Sprintf("shipbot %s (%s)", v, strings.Join(parts, ", "))
}
