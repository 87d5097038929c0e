package gitops_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// A change that would also change another environment (prod's overlay
// builds on staging's; a values file two environments stack) is refused
// with the reason, and nothing is written. A file apps share is fine when
// only this app's field moves.
func TestChangeThatReachesAnotherEnvironmentIsRefused(t *testing.T) {
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) {
		kust := func(app, env, path string) gitops.Target {
			return gitops.Target{App: app, Env: env, Location: edit.Location{Layout: edit.LayoutKustomize, Path: path, Image: "ghcr.io/acme/" + app}}
		}
		// layered: prod's overlay is staging's plus replicas.
		o.Catalog.Apps["layered"] = map[string]gitops.Target{
			"staging": kust("layered", "staging", "layered/staging"),
			"prod":    kust("layered", "prod", "layered/prod"),
		}
		// pinned: the same, but prod pins its own tag.
		o.Catalog.Apps["pinned"] = map[string]gitops.Target{
			"staging": kust("pinned", "staging", "pinned/staging"),
			"prod":    kust("pinned", "prod", "pinned/prod"),
		}
		helm := func(env string, files ...string) gitops.Target {
			return gitops.Target{App: "charted", Env: env, Location: edit.Location{Layout: edit.LayoutHelm, Path: files[len(files)-1], Image: "ghcr.io/acme/charted", ValuesFiles: files}}
		}
		// charted: staging has no file of its own, prod overrides nothing.
		o.Catalog.Apps["charted"] = map[string]gitops.Target{
			"staging": helm("staging", "charted/values.yaml"),
			"prod":    helm("prod", "charted/values.yaml", "charted/values-prod.yaml"),
		}
	})
	deployment := func(app string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + app + "\nspec:\n  template:\n    spec:\n      containers:\n        - name: " + app + "\n          image: ghcr.io/acme/" + app + ":1.0.0\n"
	}
	files := map[string]string{
		"layered/base/kustomization.yaml":    "resources:\n  - deployment.yaml\n",
		"layered/base/deployment.yaml":       deployment("layered"),
		"layered/staging/kustomization.yaml": "resources:\n  - ../base\n",
		"layered/prod/kustomization.yaml":    "resources:\n  - ../staging\nreplicas:\n  - name: layered\n    count: 3\n",
		"pinned/base/kustomization.yaml":     "resources:\n  - deployment.yaml\n",
		"pinned/base/deployment.yaml":        deployment("pinned"),
		"pinned/staging/kustomization.yaml":  "resources:\n  - ../base\n",
		"pinned/prod/kustomization.yaml":     "resources:\n  - ../staging\nimages:\n  - name: ghcr.io/acme/pinned\n    newTag: 0.9.0\n",
		"charted/values.yaml":                "image:\n  repository: ghcr.io/acme/charted\n  tag: 1.0.0\n",
		"charted/values-prod.yaml":           "replicas: 3\n",
	}
	gittest.Seed(t, f.bare, files, "three apps whose environments share files")
	head := gittest.Git(t, f.bare, "rev-parse", "HEAD")
	ctx := context.Background()
	req := func(action gitops.Action, app, tag string) gitops.Request {
		return gitops.Request{ID: gitops.NewRequestID(app), Action: action, App: app, Env: "staging", Tag: tag, Why: "OPS-1", User: "alice"}
	}
	for _, c := range []struct {
		name string
		req  gitops.Request
		want string
	}{
		{"tag through a shared overlay", req(gitops.ActionRollback, "layered", "0.8.0"), "not changing layered in staging: the change would also change layered in prod (it reads layered/staging/kustomization.yaml too: its tag would go 1.0.0 -> 0.8.0)"},
		{"restart through a shared overlay", req(gitops.ActionRestart, "pinned", ""), "the change would also change pinned in prod (its build includes pinned/staging/kustomization.yaml, and with it the restart)"},
		{"values file two environments read", req(gitops.ActionRollback, "charted", "0.8.0"), "the change would also change charted in prod (it reads charted/values.yaml too: its tag would go 1.0.0 -> 0.8.0)"},
	} {
		resp := f.svc.Handle(ctx, c.req)
		if resp.Outcome != gitops.OutcomeRejected || !strings.Contains(resp.Text, c.want) {
			t.Errorf("%s: %s: %s\nwant %q", c.name, resp.Outcome, resp.Text, c.want)
		}
	}
	// prod pins its own tag: staging's tag change doesn't reach it.
	resp := f.svc.Handle(ctx, req(gitops.ActionRollback, "pinned", "0.8.0"))
	if resp.Outcome != gitops.OutcomeConfirm {
		t.Fatalf("a tag prod overrides: %s: %s", resp.Outcome, resp.Text)
	}
	if got := gittest.Git(t, f.bare, "rev-parse", "HEAD"); got != head {
		t.Errorf("refused requests wrote %s", got)
	}
}
