package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
)

const good = `
signing:
  mode: off
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
		"signing.key: required: every commit is signed",
		`apps.checkout.layout (line 12): "kustomise" is not a layout: use kustomize, helm, manifest or application`,
		`apps.checkout.envs.dev.path (line 15): "../outside" must be relative to the repo root and stay inside it`,
		`apps.checkout.image (line 13): "Registry/Checkout:1.0" is not an image name`,
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

// An unknown key is reported with its line, beside every other problem.
func TestParseUnknownKey(t *testing.T) {
	_, err := Parse("x.yaml", []byte("repo:\n  url: a\n  brnach: main\nchat:\n  confirmTimeout: soon\n"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`line 3: unknown key "brnach"`, `chat.confirmTimeout (line 5): "soon"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "config.File") {
		t.Errorf("the message names a Go type: %v", err)
	}
}

func TestValidImage(t *testing.T) {
	for img, want := range map[string]bool{
		"registry.example.com/shop/checkout": true, "localhost:5000/app": true, "nginx": true, "ghcr.io/a/b-c_d.e": true,
		"registry.example.com/shop/checkout:1.4.2": false, "nginx:1.25": false, "a/b@sha256:abc": false, "Registry/Checkout": false, "": false, "a//b": false,
	} {
		if got := validImage(img); got != want {
			t.Errorf("validImage(%q) = %v, want %v", img, got, want)
		}
	}
}

// Problems come in the same order every run (maps are iterated sorted).
func TestProblemsAreStable(t *testing.T) {
	cfg := "repo: {url: a}\npolicy: {policy: p.csv}\nenvironments: [{name: a}, {name: b}, {name: c}]\napps:\n  x:\n    envs:\n      c: {path: p}\n      a: {path: p}\n      b: {path: p}\n"
	_, first := Parse("x.yaml", []byte(cfg))
	for range 10 {
		if _, err := Parse("x.yaml", []byte(cfg)); err.Error() != first.Error() {
			t.Fatalf("order changed:\n%v\n---\n%v", first, err)
		}
	}
	if !strings.Contains(first.Error(), "apps.x.envs.a.layout") {
		t.Errorf("a missing layout is reported per env when set nowhere: %v", first)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

// The documented example config is valid.
func TestExampleConfig(t *testing.T) {
	cfg, err := Load("../../../../deploy/examples/shipbot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Catalog.Apps) != 3 || cfg.Catalog.Apps["payments"]["prod"].TagPath != "image.tag" || !cfg.Catalog.Envs[2].Protected {
		t.Errorf("example parsed as %+v", cfg.Catalog)
	}
}

func TestFreezeWindows(t *testing.T) {
	cfg, err := Parse("/x/shipbot.yaml", []byte(good+`
freezes:
  blocks: [promote, restart]
  windows:
    - {name: weekend, envs: [prod], timezone: Europe/Berlin, from: "Fri 16:00", to: "Mon 08:00"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.FreezeWindows) != 1 || cfg.FreezeWindows[0].From.String() != "Fri 16:00" || cfg.FreezeWindows[0].Location.String() != "Europe/Berlin" {
		t.Errorf("windows = %+v", cfg.FreezeWindows)
	}
	if len(cfg.FreezeBlocks) != 2 {
		t.Errorf("blocks = %v", cfg.FreezeBlocks)
	}
	_, err = Parse("/x/shipbot.yaml", []byte(good+`
freezes:
  blocks: [deploy]
  windows:
    - {envs: [qa], timezone: Mars/Olympus, from: "Friday", to: "Mon 25:00", actions: [status]}
`))
	for _, want := range []string{`freezes.blocks[0] (line 30): "deploy"`, "freezes.windows[0].name", `freezes.windows[0].envs[0] (line 32): unknown environment "qa"`,
		`freezes.windows[0].timezone (line 32): "Mars/Olympus"`, `freezes.windows[0].from (line 32): "Friday" is not a time of the week`, `freezes.windows[0].to (line 32): "Mon 25:00" is not a time of day`,
		`freezes.windows[0].actions[0] (line 32): "status"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// The slack: section becomes the SHIPBOT_* keys that override it.
func TestSlackSection(t *testing.T) {
	cfg, err := Parse("/etc/shipbot/shipbot.yaml", []byte(good+`
slack:
  mode: http
  signingSecretFile: secrets/slack-signing
  botTokenFile: /run/secrets/bot
  emailDomains: [acme.example, acme.dev]
  userGroups: {S2SRE: sre, S1REL: "slack:release"}
  cacheTTL: 90s
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"SHIPBOT_SLACK_MODE": "http", "SHIPBOT_SLACK_SIGNING_SECRET_FILE": "/etc/shipbot/secrets/slack-signing",
		"SHIPBOT_SLACK_BOT_TOKEN_FILE": "/run/secrets/bot", "SHIPBOT_SLACK_EMAIL_DOMAINS": "acme.example,acme.dev",
		"SHIPBOT_SLACK_USERGROUPS": "S1REL=slack:release,S2SRE=sre", "SHIPBOT_SLACK_CACHE_TTL": "90s",
	}
	if len(cfg.Slack) != len(want) {
		t.Errorf("slack = %v", cfg.Slack)
	}
	for k, v := range want {
		if cfg.Slack[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg.Slack[k], v)
		}
	}
}

// userGroups: {} turns Slack user groups off (absent: every group); a name
// that can't be passed on is refused with its key.
func TestSlackUserGroups(t *testing.T) {
	cfg, err := Parse("shipbot.yaml", []byte(good+"slack:\n  userGroups: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := cfg.Slack["SHIPBOT_SLACK_USERGROUPS"]; !ok || v != "" {
		t.Errorf("userGroups {}: %q %v, want set and empty", v, ok)
	}
	cfg, err = Parse("shipbot.yaml", []byte(good+"slack:\n  mode: socket\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Slack["SHIPBOT_SLACK_USERGROUPS"]; ok {
		t.Error("userGroups absent: the key is set")
	}
	_, err = Parse("shipbot.yaml", []byte(good+"slack:\n  userGroups: {S1: \"sre,admins\"}\n"))
	if err == nil || !strings.Contains(err.Error(), "slack.userGroups.S1") {
		t.Errorf("a name with a comma: %v", err)
	}
}

// The argo: section: the token from a file (anchored at the config) or from
// an environment variable, never both.
func TestArgoSection(t *testing.T) {
	cfg, err := Parse("/etc/shipbot/shipbot.yaml", []byte(good+"argo: {server: https://argocd.example.com, tokenFile: secrets/argocd, timeout: 2m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Argo; a.TokenFile != "/etc/shipbot/secrets/argocd" || a.TokenEnv != "" || a.Timeout != 2*time.Minute {
		t.Errorf("argo = %+v", a)
	}
	cfg, err = Parse("shipbot.yaml", []byte(good+"argo: {server: https://argocd.example.com, tokenEnv: SHIPBOT_ARGOCD_TOKEN}\n"))
	if err != nil || cfg.Argo.TokenEnv != "SHIPBOT_ARGOCD_TOKEN" || cfg.Argo.TokenFile != "" {
		t.Fatalf("tokenEnv: %+v %v", cfg.Argo, err)
	}
	for doc, want := range map[string]string{
		"argo: {server: https://argocd.example.com}\n":                                    "argo.tokenFile",
		"argo: {server: https://argocd.example.com, tokenFile: t, tokenEnv: T}\n":         "argo.tokenEnv",
		"argo: {server: https://argocd.example.com, tokenEnv: \"$TOKEN\"}\n":              `"$TOKEN" is not an environment variable name`,
		"argo: {server: https://argocd.example.com, tokenEnv: TOKEN, timeout: forever}\n": "argo.timeout",
		"argo: {tokenEnv: TOKEN}\n":                                                       "argo.server",
	} {
		if _, err := Parse("shipbot.yaml", []byte(good+doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", strings.TrimSpace(doc), err, want)
		}
	}
}

func TestRegistrySection(t *testing.T) {
	cfg, err := Parse("/etc/shipbot/shipbot.yaml", []byte(good))
	if err != nil || cfg.Registry != nil {
		t.Fatalf("no registry section: %+v %v, want no check", cfg.Registry, err)
	}
	cfg, err = Parse("/etc/shipbot/shipbot.yaml", []byte(good+"registry: {dockerConfig: secrets/pull/.dockerconfigjson, insecure: [127.0.0.1:5000, registry.local], timeout: 3s, onError: warn}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Registry
	if r.DockerConfig != "/etc/shipbot/secrets/pull/.dockerconfigjson" || strings.Join(r.Insecure, ",") != "127.0.0.1:5000,registry.local" || r.Timeout != 3*time.Second || r.OnError != gitops.RegistryWarn {
		t.Errorf("registry = %+v", r)
	}
	cfg, err = Parse("shipbot.yaml", []byte(good+"registry: {}\n"))
	if err != nil || cfg.Registry == nil || cfg.Registry.OnError != gitops.RegistryRefuse || cfg.Registry.Timeout != 10*time.Second || cfg.Registry.DockerConfig != "" {
		t.Fatalf("defaults: %+v %v, want refuse, 10s, the default keychain", cfg.Registry, err)
	}
	for doc, want := range map[string]string{
		"registry: {onError: ignore}\n":                       `registry.onError (line 28): "ignore": use refuse`,
		"registry: {timeout: soon}\n":                         `registry.timeout (line 28): "soon" is not a positive duration`,
		"registry: {timeout: -1s}\n":                          "registry.timeout",
		"registry: {insecure: [\"http://127.0.0.1:5000\"]}\n": `registry.insecure[0] (line 28): "http://127.0.0.1:5000" is not a registry host`,
		"registry: {dockerconfig: x}\n":                       `unknown key "dockerconfig"`,
	} {
		if _, err := Parse("shipbot.yaml", []byte(good+doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", strings.TrimSpace(doc), err, want)
		}
	}
}

// The application layout (the tag in an Argo CD Application manifest) is
// accepted with the manifest file as its path; a directory is refused.
func TestApplicationLayout(t *testing.T) {
	base := strings.Split(good, "apps:\n")[0] + "apps:\n"
	cfg, err := Parse("shipbot.yaml", []byte(base+`  cart:
    layout: application
    image: registry.example.com/shop/cart
    envs:
      prod: {path: argocd/apps/cart-prod.yaml, argoApp: cart-prod}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Catalog.Apps["cart"]["prod"].Location
	want := edit.Location{Layout: edit.LayoutApplication, Path: "argocd/apps/cart-prod.yaml", Image: "registry.example.com/shop/cart"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("location (-want +got):\n%s", diff)
	}
	_, err = Parse("shipbot.yaml", []byte(base+`  cart:
    layout: application
    image: registry.example.com/shop/cart
    envs:
      prod: {path: argocd/apps}
`))
	if err == nil || !strings.Contains(err.Error(), `"argocd/apps": for the application layout the path is the Argo CD Application manifest`) {
		t.Fatalf("directory path: %v", err)
	}
}

// A Helm values stack is per environment, in Helm's order, ending with the
// file edits go to; the chart and the image's other names are carried to
// the location.
func TestHelmValuesStack(t *testing.T) {
	base := strings.Split(good, "apps:\n")[0] + "apps:\n"
	cfg, err := Parse("shipbot.yaml", []byte(base+`  shop:
    layout: helm
    image: ghcr.io/acme/shop
    names: [docker.io/acme/shop]
    chart: charts/shop
    envs:
      prod:
        path: envs/prod/values.yaml
        valuesFiles: [envs/values-common.yaml, envs/prod/values.yaml]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := edit.Location{Layout: edit.LayoutHelm, Path: "envs/prod/values.yaml", Image: "ghcr.io/acme/shop",
		ValuesFiles: []string{"envs/values-common.yaml", "envs/prod/values.yaml"}, Chart: "charts/shop", Names: []string{"docker.io/acme/shop"}}
	if diff := cmp.Diff(want, cfg.Catalog.Apps["shop"]["prod"].Location); diff != "" {
		t.Fatalf("location (-want +got):\n%s", diff)
	}
	for _, c := range []struct{ doc, key, want string }{
		{`  shop:
    layout: helm
    image: ghcr.io/acme/shop
    envs:
      prod: {path: envs/prod/values.yaml, valuesFiles: [envs/prod/values.yaml, envs/values-common.yaml]}
`, "apps.shop.envs.prod.valuesFiles", `the helm layout's stack of values files in Helm's order, ending with path ("envs/prod/values.yaml")`},
		{`  shop:
    layout: helm
    image: ghcr.io/acme/shop
    valuesFiles: [values.yaml]
    envs:
      prod: {path: values.yaml}
`, "apps.shop.valuesFiles", `values files belong to each environment`},
		{`  shop:
    layout: helm
    image: ghcr.io/acme/shop
    envs:
      prod: {path: values.yaml, valuesFiles: [../other/values.yaml, values.yaml]}
`, "apps.shop.envs.prod.valuesFiles[0]", `"../other/values.yaml" must be relative to the repo root`},
		{`  shop:
    layout: kustomize
    image: ghcr.io/acme/shop
    names: ["ghcr.io/acme/shop:1.0"]
    envs:
      prod: {path: overlays/prod}
`, "apps.shop.names[0]", `"ghcr.io/acme/shop:1.0" is not an image name`},
	} {
		if _, err := Parse("shipbot.yaml", []byte(base+c.doc)); err == nil || !strings.Contains(err.Error(), "- "+c.key+" (line") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\nerr = %v\nwant %s: %q", c.doc, err, c.key, c.want)
		}
	}
}

// render: helm is auto by default (resolved when shipbot starts), off, or
// a path relative to the config file; the timeout is a duration.
func TestRenderSection(t *testing.T) {
	cfg, err := Parse("/etc/shipbot/shipbot.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Render.Helm != "auto" || cfg.Render.Timeout != 30*time.Second {
		t.Errorf("default render = %+v", cfg.Render)
	}
	for doc, want := range map[string]edit.RenderOptions{
		"render: {helm: off, timeout: 5s}\n":    {Timeout: 5 * time.Second},
		"render: {helm: bin/helm}\n":            {Helm: "/etc/shipbot/bin/helm", Timeout: 30 * time.Second},
		"render: {helm: /usr/local/bin/helm}\n": {Helm: "/usr/local/bin/helm", Timeout: 30 * time.Second},
	} {
		cfg, err := Parse("/etc/shipbot/shipbot.yaml", []byte(good+doc))
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if cfg.Render != want {
			t.Errorf("%s: render = %+v, want %+v", doc, cfg.Render, want)
		}
	}
	if _, err := Parse("shipbot.yaml", []byte(good+"render: {timeout: soon}\n")); err == nil || !strings.Contains(err.Error(), `render.timeout`) {
		t.Errorf("bad timeout: %v", err)
	}
	if _, err := Parse("shipbot.yaml", []byte(good+"render: {kubeVersion: latest}\n")); err == nil || !strings.Contains(err.Error(), `render.kubeVersion`) {
		t.Errorf("bad kubeVersion: %v", err)
	}
}

func TestParseRepoTimeoutsAndMaintenance(t *testing.T) {
	src := strings.Replace(good, "  cacheDir: cache\n", "  cacheDir: cache\n  pushTimeout: 20s\n  resolveTimeout: 10m\n  resolveBackoff: 1s\n  maintenance:\n    looseObjects: 500\n    packs: 6\n    interval: 30m\n", 1)
	cfg, err := Parse("/etc/shipbot/shipbot.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PushTimeout != 20*time.Second || cfg.ResolveTimeout != 10*time.Minute || cfg.ResolveBackoff != time.Second {
		t.Errorf("timeouts = %v %v %v", cfg.PushTimeout, cfg.ResolveTimeout, cfg.ResolveBackoff)
	}
	if m := cfg.Maintenance; m.Disabled || m.LooseObjects != 500 || m.Packs != 6 || m.Interval != 30*time.Minute {
		t.Errorf("maintenance = %+v", m)
	}
	def, err := Parse("/etc/shipbot/shipbot.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if def.PushTimeout != 0 || def.Maintenance.Interval != 0 || def.Maintenance.Disabled {
		t.Errorf("absent keys must leave the defaults to the service and the repo: %+v %+v", def.PushTimeout, def.Maintenance)
	}

	bad := strings.Replace(good, "  cacheDir: cache\n", "  cacheDir: cache\n  pushTimeout: -5s\n  maintenance:\n    packs: -1\n    interval: often\n", 1)
	_, err = Parse("shipbot.yaml", []byte(bad))
	if err == nil {
		t.Fatal("bad repo settings accepted")
	}
	for _, w := range []string{
		`repo.pushTimeout (line 7): "-5s" is not a positive duration`,
		`repo.maintenance.packs (line 9): -1 is negative`,
		`repo.maintenance.interval (line 10): "often" is not a positive duration`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

func TestParseHA(t *testing.T) {
	cfg, err := Parse("/etc/shipbot/shipbot.yaml", []byte(good+"ha:\n  enabled: true\n  leaseDuration: 20s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HA == nil || !strings.HasPrefix(cfg.HA.Lease, "shipbot-") || len(cfg.HA.Lease) != len("shipbot-")+12 || cfg.HA.LeaseDuration != 20*time.Second {
		t.Fatalf("HA = %+v", cfg.HA)
	}
	other, err := Parse("/etc/shipbot/shipbot.yaml", []byte(strings.Replace(good, "url: env.git", "url: other.git", 1)+"ha:\n  enabled: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if other.HA.Lease == cfg.HA.Lease {
		t.Error("two environment repos share a Lease")
	}
	if off, _ := Parse("/etc/shipbot/shipbot.yaml", []byte(good)); off.HA != nil {
		t.Error("HA without ha.enabled")
	}
	_, err = Parse("shipbot.yaml", []byte(good+"ha:\n  enabled: true\n  lease: Shipbot_Env\n  retryPeriod: often\n"))
	for _, w := range []string{`ha.lease (line 30): "Shipbot_Env" is not a Kubernetes object name`, `ha.retryPeriod (line 31): "often" is not a positive duration`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
}

func TestParseHAOutsideACluster(t *testing.T) {
	cfg, err := Parse("/etc/shipbot/shipbot.yaml", []byte(good+"ha:\n  enabled: true\n  server: https://10.0.0.1:6443\n  namespace: shipbot\n  tokenFile: kube-token\n  caFile: ca.crt\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.HA; h.Server != "https://10.0.0.1:6443" || h.TokenFile != "/etc/shipbot/kube-token" || h.CAFile != "/etc/shipbot/ca.crt" || h.Namespace != "shipbot" {
		t.Errorf("HA = %+v", h)
	}
	_, err = Parse("shipbot.yaml", []byte(good+"ha:\n  enabled: true\n  server: kube:6443\n"))
	for _, w := range []string{`ha.server (line 30): "kube:6443" is not the URL of a Kubernetes API server`, "ha.namespace (line 28): required with ha.server"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in %v", w, err)
		}
	}
}
