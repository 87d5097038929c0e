package main

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// `shipbot version` says what was built: module version, commit, its time,
// uncommitted changes, toolchain (issue 14 item 10).
func TestFormatVersion(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-21T09:14:03Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	for _, tc := range []struct {
		linked string
		info   *debug.BuildInfo
		want   string
	}{
		{"dev", stamped, "shipbot v1.2.3 (commit 0123456789ab 2026-11-21T09:14:03Z with uncommitted changes, go1.26.8 linux/amd64)"},
		{"v9.9.9", stamped, "shipbot v9.9.9 (commit 0123456789ab 2026-11-21T09:14:03Z with uncommitted changes, go1.26.8 linux/amd64)"},
		{"dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"shipbot (devel) (no VCS information: built outside a git checkout or with -buildvcs=false, go1.26.8)"},
		{"dev", nil, "shipbot dev (no build information)"},
	} {
		if got := formatVersion(tc.linked, tc.info); got != tc.want {
			t.Errorf("formatVersion(%q, ...) =\n %q\nwant\n %q", tc.linked, got, tc.want)
		}
	}
}

// serve --help lists every SHIPBOT_* variable serve reads: each one named
// in the Slack configuration and in serve.go (issue 14 item 10).
func TestServeHelpListsItsEnvironment(t *testing.T) {
	help := helpFor(flags("serve", nil)).text
	re := regexp.MustCompile(`"(SHIPBOT_[A-Z_]+)"`)
	for _, f := range []string{"../../chat/slack/config.go", "serve.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			if !strings.Contains(help, "\n  "+m[1]+" ") {
				t.Errorf("serve --help does not list %s (read in %s)", m[1], f)
			}
		}
	}
}

// The documentation a user of shipbot has never points at ../shared/,
// files they do not have (issue 14 item 10).
func TestDocsPointOnlyAtTheirOwnFiles(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	more, _ := filepath.Glob("../../deploy/*/*.md")
	files = append(append(files, "../../README.md"), more...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "../shared") || strings.Contains(string(b), "](shared/") {
			t.Errorf("%s points at ../shared/", f)
		}
	}
}
