package gitops_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// An overlay without an images entry takes its tag from the base: a
// rollback to a tag adds the entry (as `kustomize edit set image` would),
// and the plan says the tag was not set before. A digest pin in the overlay
// is never dropped silently.
func TestTagNotWrittenAndDigestPin(t *testing.T) {
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) {
		for app, path := range map[string]string{"web": "apps/web/overlays/prod", "pinned": "apps/pinned/overlays/prod", "bare": "apps/bare/overlays/prod"} {
			o.Catalog.Apps[app] = map[string]gitops.Target{"prod": {App: app, Env: "prod", Location: edit.Location{
				Layout: edit.LayoutKustomize, Path: path, Image: "registry.example.com/" + app,
			}}}
		}
	})
	base := func(app, tag string) map[string]string {
		return map[string]string{
			"apps/" + app + "/base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
			"apps/" + app + "/base/deployment.yaml":    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + app + "\nspec:\n  template:\n    spec:\n      containers:\n        - name: " + app + "\n          image: registry.example.com/" + app + tag + "\n",
		}
	}
	files := base("web", ":2.0.0")
	for k, v := range base("pinned", ":2.0.0") {
		files[k] = v
	}
	for k, v := range base("bare", "") {
		files[k] = v
	}
	files["apps/bare/overlays/prod/kustomization.yaml"] = "resources:\n  - ../../base\n"
	files["apps/web/overlays/prod/kustomization.yaml"] = "# web in prod\nresources:\n  - ../../base\n"
	files["apps/pinned/overlays/prod/kustomization.yaml"] = "resources:\n  - ../../base\nimages:\n  - name: registry.example.com/pinned\n    newTag: 2.1.0\n    digest: sha256:" + strings.Repeat("a", 64) + "\n"
	gittest.Seed(t, f.bare, files, "two more apps")
	ctx := context.Background()

	req := func(app string) gitops.Request {
		return gitops.Request{ID: gitops.NewRequestID(app), Action: gitops.ActionRollback, App: app, Env: "prod", Tag: "1.9.0", Why: "OPS-1", User: "alice"}
	}
	// The tag as kustomize builds it: the base's.
	resp := f.svc.Handle(ctx, req("web"))
	if resp.Outcome != gitops.OutcomeConfirm || !strings.Contains(resp.Text, "rollback web in prod: 2.0.0 -> 1.9.0") ||
		!strings.Contains(resp.Text, "+  - name: registry.example.com/web") || !strings.Contains(resp.Text, "+    newTag: 1.9.0") {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	resp.Plan.Answer = "yes, deploy 1.9.0" // a tag never deployed
	done := f.svc.Confirm(ctx, resp.Plan)
	if done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("confirm: %s", done.Text)
	}
	if subj := gittest.Git(t, f.bare, "log", "-1", "--format=%s"); subj != "rollback web in prod: 2.0.0 -> 1.9.0" {
		t.Errorf("subject = %q", subj)
	}

	// No tag anywhere (Kubernetes pulls :latest): the plan says so, the
	// commit has no From.
	resp = f.svc.Handle(ctx, req("bare"))
	if resp.Outcome != gitops.OutcomeConfirm || !strings.Contains(resp.Text, "rollback bare in prod: (not set) -> 1.9.0 (1.9.0: NEVER DEPLOYED in any environment; the tag was not set:") {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	resp.Plan.Answer = "yes, deploy 1.9.0"
	if done := f.svc.Confirm(ctx, resp.Plan); done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("confirm: %s", done.Text)
	}
	if subj := gittest.Git(t, f.bare, "log", "-1", "--format=%s"); subj != "rollback bare in prod: (not set) -> 1.9.0" {
		t.Errorf("subject = %q", subj)
	}
	if tr := gittest.Git(t, f.bare, "log", "-1", "--format=%(trailers:key=Shipbot-From,valueonly)%(trailers:key=Shipbot-To,valueonly)"); tr != "1.9.0" {
		t.Errorf("From/To trailers = %q, want no From and To 1.9.0", tr)
	}

	resp = f.svc.Handle(ctx, req("pinned"))
	if resp.Outcome != gitops.OutcomeConfirm || !strings.Contains(resp.Text, "PIN DROPPED: digest sha256:") {
		t.Fatalf("the plan does not say the pin is dropped: %s: %s", resp.Outcome, resp.Text)
	}
}
