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
