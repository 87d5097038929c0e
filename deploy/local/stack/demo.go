package stack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Envs of the demo env repo, in promotion order.
var Envs = []string{"dev", "staging", "prod"}

// DemoApps are one Application per demo app and env, named APP-ENV (the
// demo config names checkout-prod as argoApp; the rest are discovered).
// dev and staging sync automatically; prod is manual, as many teams run it:
// shipbot syncs prod itself (argo.syncManual: true), so both paths of the
// watcher run against the real server.
func DemoApps() []App {
	var apps []App
	for _, env := range Envs {
		auto := env != "prod"
		apps = append(apps,
			App{Name: "checkout-" + env, Path: "apps/checkout/overlays/" + env, Namespace: "checkout-" + env, Automated: auto},
			App{Name: "payments-" + env, Path: "apps/payments/chart", Values: []string{"../values-" + env + ".yaml"}, Namespace: "payments-" + env, Automated: auto},
			App{Name: "search-" + env, Path: "apps/search/" + env, Namespace: "search-" + env, Automated: auto},
		)
	}
	return apps
}

// Demo is a demo directory made by `shipbot demo`, with a config that
// points shipbot at the local Argo CD.
type Demo struct {
	Dir    string // the demo directory
	Repo   string // the bare env repo in it
	Config string // shipbot-argocd.yaml: the demo config plus an argo: section
}

// SetupDemo creates the demo directory with the shipbot binary itself
// (`shipbot demo --dir DIR` with no input: it seeds the repo, key, config
// and policy, then exits), so the env repo is exactly the demo's.
func SetupDemo(ctx context.Context, shipbot, dir string) (*Demo, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, shipbot, "demo", "--dir", dir)
	cmd.Stdin = bytes.NewReader(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("stack: shipbot demo: %w: %s", err, out)
	}
	return &Demo{Dir: dir, Repo: filepath.Join(dir, "env.git"), Config: filepath.Join(dir, "shipbot-argocd.yaml")}, nil
}

// WriteConfig writes the demo's config with an argo: section for s: the
// local argocd-server over plain HTTP, the shipbot account's token, and
// syncManual so shipbot syncs the prod apps itself.
func (d *Demo) WriteConfig(s *Stack, timeout string) error {
	return d.WriteConfigTo(d.Config, "cache", s, timeout, true)
}

// WriteConfigTo writes a config like WriteConfig to path, with its own
// cache directory for shipbot's clone (two shipbot processes never share
// one) and syncManual as given.
func (d *Demo) WriteConfigTo(path, cacheDir string, s *Stack, timeout string, syncManual bool) error {
	base, err := os.ReadFile(filepath.Join(d.Dir, "shipbot.yaml"))
	if err != nil {
		return err
	}
	if bytes.Contains(base, []byte("\nargo:")) {
		return fmt.Errorf("stack: %s already has an argo: section", filepath.Join(d.Dir, "shipbot.yaml"))
	}
	if cacheDir != "cache" {
		base = bytes.Replace(base, []byte("cacheDir: cache "), []byte("cacheDir: "+cacheDir+" "), 1)
	}
	var b strings.Builder
	b.Write(base)
	fmt.Fprintf(&b, `
# Added by deploy/local: the local Argo CD (inside the harness's network namespace).
argo:
  server: %s
  tokenFile: %s
  syncManual: %t        # true: shipbot syncs apps without automated sync (prod) to its commit
  timeout: %s
`, ArgoURL, s.TokenFile, syncManual, timeout)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
