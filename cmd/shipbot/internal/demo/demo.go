// Package demo creates shipbot's embedded default: a local bare environment
// repo with a history of deploys, a config and a policy, so `make demo` runs
// with no accounts.
package demo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/shipbot/shipbot/deploy"
)

// Files of a demo directory.
const (
	RepoDir    = "env.git"
	ConfigFile = "shipbot.yaml"
	ModelFile  = "model.conf"
	PolicyFile = "policy.csv"
)

// Setup creates what is missing in dir (the repo, config, model, policy) and
// keeps what is there, so a demo can be resumed. It returns the config path
// and whether the repo was created now.
func Setup(dir string) (config string, created bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("demo dir: %w", err)
	}
	repo := filepath.Join(dir, RepoDir)
	if _, err := os.Stat(repo); errors.Is(err, fs.ErrNotExist) {
		// Build next to the target and rename, so an interrupted setup never
		// leaves half a repo that a later run would reuse.
		tmp := repo + ".tmp"
		os.RemoveAll(tmp)
		if err := writeRepo(tmp); err != nil {
			os.RemoveAll(tmp)
			return "", false, fmt.Errorf("demo repo: %w", err)
		}
		if err := os.Rename(tmp, repo); err != nil {
			return "", false, fmt.Errorf("demo repo: %w", err)
		}
		created = true
	} else if err != nil {
		return "", false, fmt.Errorf("demo repo: %w", err)
	}
	for name, content := range map[string]func() ([]byte, error){
		ConfigFile: func() ([]byte, error) { return []byte(configYAML), nil },
		ModelFile:  func() ([]byte, error) { return fs.ReadFile(deploy.Examples, "examples/model.conf") },
		PolicyFile: func() ([]byte, error) { return fs.ReadFile(deploy.Examples, "examples/policy.csv") },
	} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		data, err := content()
		if err != nil {
			return "", false, err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return "", false, fmt.Errorf("demo: %w", err)
		}
	}
	return filepath.Join(dir, ConfigFile), created, nil
}

const configYAML = `# shipbot demo configuration, written by ` + "`shipbot demo`" + ` (edit freely; it is kept).
repo:
  url: env.git            # the bare repo beside this file stands in for GitHub
  branch: main
  cacheDir: cache         # shipbot's warm clone
committer:
  name: shipbot
  email: shipbot@shipbot.local
identity:
  emailDomain: shop.example.com   # chat user alice -> author alice <alice@shop.example.com>
policy:
  model: model.conf
  policy: policy.csv
chat:
  confirmTimeout: 2m
  channel: "#ops"

environments:             # in promotion order
  - name: dev
    cluster: dev-eu1
  - name: staging
    cluster: staging-eu1
  - name: prod
    cluster: prod-eu1
    protected: true       # --why must name a PagerDuty incident or a Jira issue

apps:
  checkout:
    layout: kustomize
    image: registry.example.com/shop/checkout
    envs:
      dev:     {path: apps/checkout/overlays/dev}
      staging: {path: apps/checkout/overlays/staging}
      prod:    {path: apps/checkout/overlays/prod, argoApp: checkout-prod}
  payments:
    layout: helm
    image: registry.example.com/shop/payments
    tagPath: image.tag
    annotationsPath: podAnnotations
    envs:
      dev:     {path: apps/payments/values-dev.yaml}
      staging: {path: apps/payments/values-staging.yaml}
      prod:    {path: apps/payments/values-prod.yaml}
  search:
    layout: manifest
    image: registry.example.com/shop/search
    envs:
      dev:     {path: apps/search/dev}
      staging: {path: apps/search/staging}
      prod:    {path: apps/search/prod}
`
