package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops/edit"
)

const good = `
repo:
  url: env.git
  cacheDir: cache
policy:
  policy: policy.csv
chat:
  confirmTimeout: 90s
environments:
  - name: dev
  - name: prod
    cluster: prod-eu1
    protected: true
apps:
  checkout:
    layout: kustomize
    image: registry.example.com/shop/checkout
    envs:
      dev: {path: apps/checkout/overlays/dev/}
      prod: {path: apps/checkout/overlays/prod, argoApp: checkout-prod}
  payments:
    layout: helm
    image: registry.example.com/shop/payments
    envs:
      prod: {path: apps/payments/values-prod.yaml, tagPath: app.image.tag}
`

func TestParseGood(t *testing.T) {
	cfg, err := Parse("/etc/shipbot/shipbot.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RepoURL != "/etc/shipbot/env.git" || cfg.CacheDir != "/etc/shipbot/cache" || cfg.PolicyFile != "/etc/shipbot/policy.csv" {
		t.Errorf("relative paths not resolved against the config dir: %q %q %q", cfg.RepoURL, cfg.CacheDir, cfg.PolicyFile)
	}
	if cfg.Branch != "main" || cfg.ConfirmTimeout != 90*time.Second || cfg.Committer.Name != "shipbot" {
		t.Errorf("defaults: branch %q timeout %v committer %v", cfg.Branch, cfg.ConfirmTimeout, cfg.Committer)
	}
	if len(cfg.Catalog.Envs) != 2 || !cfg.Catalog.Envs[1].Protected || cfg.Catalog.Envs[0].Cluster != "dev" {
		t.Errorf("envs = %+v", cfg.Catalog.Envs)
	}
	co := cfg.Catalog.Apps["checkout"]["prod"]
	if co.Layout != edit.LayoutKustomize || co.Path != "apps/checkout/overlays/prod" || co.ArgoApp != "checkout-prod" || co.Image != "registry.example.com/shop/checkout" {
		t.Errorf("checkout/prod = %+v", co)
	}
	if p := cfg.Catalog.Apps["checkout"]["dev"].Path; p != "apps/checkout/overlays/dev" {
		t.Errorf("path not cleaned: %q", p)
	}
	if tp := cfg.Catalog.Apps["payments"]["prod"].TagPath; tp != "app.image.tag" {
		t.Errorf("per-env tagPath = %q", tp)
	}
}

func TestParseProblemsSayWhereAndHow(t *testing.T) {
	bad := `
repo:
  url: https://user:secret@github.com/acme/env.git
environments:
  - name: dev
  - name: Prod_1
  - name: dev
chat:
  confirmTimeout: soon
apps:
  checkout:
    layout: kustomise
    image: Registry/Checkout:1.0
    envs:
      dev: {path: ../outside}
      qa: {path: apps/checkout/qa}
  payments:
    layout: helm
    image: registry.example.com/payments
    envs:
      dev: {path: apps/payments/, tagPath: "image tag"}
`
	_, err := Parse("shipbot.yaml", []byte(bad))
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *Error", err)
	}
	want := []string{
		"repo.url (line 3): must not carry credentials",
		`environments[1].name (line 6): "Prod_1" is not a valid environment name`,
		`environments[2].name (line 7): environment "dev" is listed twice`,
		`chat.confirmTimeout (line 9): "soon" is not a positive duration`,
		"policy.policy: required: a casbin policy file",
		`apps.checkout.envs.dev.layout (line 15): "kustomise" is not a layout: use kustomize, helm or manifest`,
		`apps.checkout.envs.dev.path (line 15): "../outside" must be relative to the repo root and stay inside it`,
		`apps.checkout.envs.dev.image (line 15): "Registry/Checkout:1.0" is not an image name`,
		`apps.checkout.envs.qa (line 16): unknown environment "qa"; declare it under environments`,
		`apps.payments.envs.dev.path (line 21): "apps/payments": for the helm layout the path is the values file`,
		`apps.payments.envs.dev.tagPath (line 21): "image tag" is not a dotted path`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing problem %q in:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "secret") && !strings.Contains(msg, "must not carry credentials") {
		t.Error("error echoes the secret")
	}
	if len(ce.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(ce.Problems), len(want), msg)
	}
}

func TestParseUnknownKey(t *testing.T) {
	_, err := Parse("x.yaml", []byte("repo:\n  url: a\n  brnach: main\n"))
	if err == nil || !strings.Contains(err.Error(), "brnach") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want the unknown key and its line", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}
