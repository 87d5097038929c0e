package gitops_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// An image that moved registry: with its old name in Names, history follows
// it past the move, and the rollback deploys the earlier tag from the
// current registry; without, the history stops at the move.
func TestHistoryFollowsARegistryMove(t *testing.T) {
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) {
		for app, names := range map[string][]string{"moved": {"docker.io/acme/moved"}, "forgot": nil} {
			o.Catalog.Apps[app] = map[string]gitops.Target{"prod": {App: app, Env: "prod", Location: edit.Location{
				Layout: edit.LayoutManifest, Path: "apps/" + app, Image: "ghcr.io/acme/" + app, Names: names,
			}}}
		}
	})
	deploy := func(app, image string) map[string]string {
		return map[string]string{"apps/" + app + "/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + app +
			"\nspec:\n  template:\n    spec:\n      containers:\n        - name: " + app + "\n          image: " + image + "\n"}
	}
	for _, app := range []string{"moved", "forgot"} {
		gittest.Seed(t, f.bare, deploy(app, "docker.io/acme/"+app+":1.0.0"), app+" 1.0.0")
		gittest.Seed(t, f.bare, deploy(app, "docker.io/acme/"+app+":1.1.0"), app+" 1.1.0")
		gittest.Seed(t, f.bare, deploy(app, "ghcr.io/acme/"+app+":1.2.0"), app+" moves to ghcr.io")
	}
	ctx := context.Background()
	req := func(app string) gitops.Request {
		return gitops.Request{ID: gitops.NewRequestID(app), Action: gitops.ActionRollback, App: app, Env: "prod", Why: "OPS-1", User: "alice"}
	}
	resp := f.svc.Handle(ctx, req("moved"))
	if resp.Outcome != gitops.OutcomeConfirm || !strings.Contains(resp.Text, "rollback moved in prod: 1.2.0 -> 1.1.0") ||
		!strings.Contains(resp.Text, "+          image: ghcr.io/acme/moved:1.1.0") {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	if done := f.svc.Confirm(ctx, resp.Plan); done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("confirm: %s", done.Text)
	}
	if got := gittest.Git(t, f.bare, "show", "HEAD:apps/moved/deployment.yaml"); !strings.Contains(got, "image: ghcr.io/acme/moved:1.1.0") {
		t.Errorf("deployment after the rollback:\n%s", got)
	}

	resp = f.svc.Handle(ctx, req("forgot"))
	if resp.Outcome == gitops.OutcomeConfirm || !strings.Contains(resp.Text, "no earlier tag of forgot in prod") {
		t.Fatalf("without the old name the history must stop at the move: %s: %s", resp.Outcome, resp.Text)
	}
}

// History watches every file a tag is read from: a Helm values stack whose
// tag was bumped in the common file, a kustomize overlay whose tag comes
// from its base.
func TestHistoryReadsTheWholeStack(t *testing.T) {
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) {
		o.Catalog.Apps["stacked"] = map[string]gitops.Target{"prod": {App: "stacked", Env: "prod", Location: edit.Location{
			Layout: edit.LayoutHelm, Path: "stacked/values-prod.yaml", Image: "ghcr.io/acme/stacked",
			ValuesFiles: []string{"stacked/values.yaml", "stacked/values-prod.yaml"},
		}}}
		o.Catalog.Apps["based"] = map[string]gitops.Target{"prod": {App: "based", Env: "prod", Location: edit.Location{
			Layout: edit.LayoutKustomize, Path: "based/overlays/prod", Image: "ghcr.io/acme/based",
		}}}
	})
	values := func(tag string) map[string]string {
		return map[string]string{"stacked/values.yaml": "image:\n  repository: ghcr.io/acme/stacked\n  tag: " + tag + "\n"}
	}
	base := func(tag string) map[string]string {
		return map[string]string{"based/base/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: based\nspec:\n  template:\n    spec:\n      containers:\n        - name: based\n          image: ghcr.io/acme/based:" + tag + "\n"}
	}
	first := values("3.0.0")
	first["stacked/values-prod.yaml"] = "replicas: 3\n"
	for k, v := range base("5.0.0") {
		first[k] = v
	}
	first["based/base/kustomization.yaml"] = "resources:\n  - deployment.yaml\n"
	first["based/overlays/prod/kustomization.yaml"] = "resources:\n  - ../../base\n"
	gittest.Seed(t, f.bare, first, "stacked 3.0.0, based 5.0.0")
	gittest.Seed(t, f.bare, values("3.1.0"), "stacked 3.1.0 for everyone")
	gittest.Seed(t, f.bare, base("5.1.0"), "based 5.1.0 in the base")
	ctx := context.Background()
	for app, want := range map[string]string{"stacked": "rollback stacked in prod: 3.1.0 -> 3.0.0", "based": "rollback based in prod: 5.1.0 -> 5.0.0"} {
		resp := f.svc.Handle(ctx, gitops.Request{ID: gitops.NewRequestID(app), Action: gitops.ActionRollback, App: app, Env: "prod", Why: "OPS-1", User: "alice"})
		if resp.Outcome != gitops.OutcomeConfirm || !strings.Contains(resp.Text, want) {
			t.Errorf("%s: %s: %s", app, resp.Outcome, resp.Text)
		}
	}
}
