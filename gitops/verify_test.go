package gitops_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// Every plan is checked by rendering the app before and after the change:
// the plan says what the render showed; a From the layout's field gets
// wrong (a patch sets the image) is taken from the render.
func TestPlanIsCheckedByRendering(t *testing.T) {
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) {
		for _, app := range []string{"web", "patched"} {
			o.Catalog.Apps[app] = map[string]gitops.Target{"prod": {App: app, Env: "prod", Location: edit.Location{
				Layout: edit.LayoutKustomize, Path: app + "/prod", Image: "ghcr.io/acme/" + app,
			}}}
		}
	})
	deployment := func(app, tag string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + app + "\nspec:\n  template:\n    spec:\n      containers:\n        - name: " + app + "\n          image: ghcr.io/acme/" + app + ":" + tag + "\n"
	}
	files := map[string]string{}
	for _, app := range []string{"web", "patched"} {
		files[app+"/base/kustomization.yaml"] = "resources:\n  - deployment.yaml\n"
		files[app+"/base/deployment.yaml"] = deployment(app, "1.0.0")
		files[app+"/prod/kustomization.yaml"] = "resources:\n  - ../base\n"
	}
	// patched: prod's overlay sets the image with a patch, not an images entry.
	files["patched/prod/kustomization.yaml"] = "resources:\n  - ../base\npatches:\n  - path: version.yaml\n"
	files["patched/prod/version.yaml"] = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: patched\nspec:\n  template:\n    spec:\n      containers:\n        - name: patched\n          image: ghcr.io/acme/patched:2.0.0\n"
	gittest.Seed(t, f.bare, files, "two overlays")
	ctx := context.Background()

	resp := f.svc.Handle(ctx, gitops.Request{ID: gitops.NewRequestID("r1"), Action: gitops.ActionRestart, App: "web", Env: "prod", Why: "OPS-1", User: "alice"})
	if resp.Outcome != gitops.OutcomeConfirm || !strings.Contains(resp.Text, "checked by rendering (kustomize v5.4.2 (in-process)): Deployment/web restarts, nothing else changes") {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}

	resp = f.svc.Handle(ctx, gitops.Request{ID: gitops.NewRequestID("r2"), Action: gitops.ActionRollback, App: "patched", Env: "prod", Tag: "1.5.0", Why: "OPS-1", User: "alice"})
	if resp.Outcome != gitops.OutcomeConfirm || !strings.Contains(resp.Text, "rollback patched in prod: 2.0.0 -> 1.5.0") ||
		!strings.Contains(resp.Text, "before the change it runs 2.0.0; the field the layout reads says 1.0.0") {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	resp.Plan.Answer = "yes, deploy 1.5.0" // a tag never deployed
	if done := f.svc.Confirm(ctx, resp.Plan); done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("confirm: %s", done.Text)
	}
	if tr := gittest.Git(t, f.bare, "log", "-1", "--format=%(trailers:key=Shipbot-From,valueonly)"); tr != "2.0.0" {
		t.Errorf("Shipbot-From = %q, want 2.0.0 (what ran)", tr)
	}
}

// A Helm tag written where the chart doesn't read it changes nothing that
// is deployed: the check by rendering refuses the plan, and nothing is
// written.
func TestPlanThatChangesNothingIsRefused(t *testing.T) {
	helm := gittest.Tool("helm")
	if helm == "" {
		t.Skip("no helm binary (SHIPBOT_HELM, PATH, or deploy/local/build.sh)")
	}
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) {
		o.Render = edit.RenderOptions{Helm: helm}
		o.Catalog.Apps["charted"] = map[string]gitops.Target{"prod": {App: "charted", Env: "prod", Location: edit.Location{
			Layout: edit.LayoutHelm, Path: "charted/values-prod.yaml", Chart: "charted/chart", Image: "ghcr.io/acme/charted",
		}}}
	})
	gittest.Seed(t, f.bare, map[string]string{
		"charted/chart/Chart.yaml":  "apiVersion: v2\nname: charted\nversion: 0.1.0\n",
		"charted/chart/values.yaml": "image:\n  repository: ghcr.io/acme/charted\n  version: 1.0.0\n",
		"charted/chart/templates/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: charted\nspec:\n  template:\n    spec:\n      containers:\n" +
			"        - name: charted\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.version }}\"\n",
		"charted/values-prod.yaml": "image:\n  tag: 1.0.0 # not what the chart reads\n",
	}, "a chart that reads image.version")
	head := gittest.Git(t, f.bare, "rev-parse", "HEAD")
	resp := f.svc.Handle(context.Background(), gitops.Request{ID: gitops.NewRequestID("r1"), Action: gitops.ActionRollback, App: "charted", Env: "prod", Tag: "0.9.0", Why: "OPS-1", User: "alice"})
	if resp.Outcome != gitops.OutcomeRejected || !strings.Contains(resp.Text, "not changing charted in prod: rendered with helm template") ||
		!strings.Contains(resp.Text, "0.9.0") {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	if got := gittest.Git(t, f.bare, "rev-parse", "HEAD"); got != head {
		t.Errorf("a refused plan wrote %s", got)
	}
}
