package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
)

// Tool returns the path of a rendering tool (helm, kustomize): $SHIPBOT_HELM
// for helm, then PATH, then the binaries the local Argo CD stack builds
// (deploy/local/build.sh, under ~/.cache/shipbot-e2e); "" when there is none,
// and the test that needs it skips.
func Tool(name string) string {
	if name == "helm" {
		if p := os.Getenv("SHIPBOT_HELM"); p != "" {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		if m, _ := filepath.Glob(filepath.Join(home, ".cache", "shipbot-e2e", "*", "bin", name)); len(m) > 0 {
			return m[0]
		}
	}
	return ""
}
