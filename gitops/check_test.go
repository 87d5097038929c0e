package gitops_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

// CheckTargets reads every target as plans and status do: a path that is
// not in the repo, a layout that can't read the tag and an unreadable
// freezes file are reported; the rest is not.
func TestCheckTargets(t *testing.T) {
	var r *repo.Repo
	var cat *gitops.Catalog
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) {
		r, cat = o.Repo, o.Catalog
		cat.Apps["ghost"] = map[string]gitops.Target{"prod": {App: "ghost", Env: "prod", Location: edit.Location{Layout: edit.LayoutKustomize, Path: "apps/ghost/prod", Image: "registry.example.com/ghost"}}}
		cat.Apps["wrong"] = map[string]gitops.Target{"prod": {App: "wrong", Env: "prod", Location: edit.Location{Layout: edit.LayoutManifest, Path: "README.md", Image: "registry.example.com/wrong"}}}
	})
	gittest.Seed(t, f.bare, map[string]string{gitops.FreezesPath: "freezes: [unclosed\n"}, "a broken freezes file")
	snap, err := r.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := gitops.CheckTargets(snap, "main", cat)
	if len(got) != 3 {
		t.Fatalf("%d problems, want 3: %+v", len(got), got)
	}
	if got[0].App != "ghost" || !strings.HasPrefix(got[0].Problem, "apps/ghost/prod is not in the environment repo (branch main at ") {
		t.Errorf("ghost: %+v", got[0])
	}
	if got[1].App != "wrong" || !strings.Contains(got[1].Problem, "the tag of registry.example.com/wrong can't be read at README.md") {
		t.Errorf("wrong: %+v", got[1])
	}
	if got[2].App != "" || !strings.HasPrefix(got[2].Problem, gitops.FreezesPath+": ") {
		t.Errorf("freezes file: %+v", got[2])
	}
}
