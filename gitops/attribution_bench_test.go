package gitops_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

// The history reads that attribution by field changes, on the monorepo of
// `make bench` (1,000 apps x 3 environments, 10,000 commits): with
// -benchtime large enough to compare before and after (`make bench` runs
// its lookups twice).
//
//	go test ./gitops/ -run '^$' -bench AttributionBigRepo -benchtime 300x
func BenchmarkAttributionBigRepo(b *testing.B) {
	src, apps := gittest.BigRepoCached(b, gittest.BigRepoOptions{Seed: 1})
	ctx := context.Background()
	r, err := repo.Open(ctx, repo.Options{URL: src, CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	cat := &gitops.Catalog{
		Envs: []gitops.Environment{{Name: "dev"}, {Name: "staging"}, {Name: "prod"}},
		Apps: map[string]map[string]gitops.Target{},
	}
	for _, a := range apps {
		if cat.Apps[a.Name] == nil {
			cat.Apps[a.Name] = map[string]gitops.Target{}
		}
		cat.Apps[a.Name][a.Env] = gitops.Target{App: a.Name, Env: a.Env, Location: edit.Location{
			Layout: edit.Layout(a.Layout), Path: a.Path, Image: a.Image,
		}}
	}
	svc, err := gitops.NewService(gitops.ServiceOptions{
		Catalog: cat, Repo: r, Authorizer: &FakeAuthorizer{AuthorizeFunc: func(gitops.AuthzQuery) gitops.Decision {
			return gitops.Decision{Allowed: true, Rule: "p, *"}
		}},
		Justifier: FakeJustifier{}, Directory: directory{},
		Committer: gitops.Person{Name: "shipbot", Email: "shipbot@example.com"},
	})
	if err != nil {
		b.Fatal(err)
	}
	tip, err := r.Fetch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.IndexAt(ctx, tip.Hash()); err != nil {
		b.Fatal(err)
	}
	pick := func(i int) gittest.BigApp { return apps[(i*7919)%len(apps)] }
	b.Run("prev_tag", func(b *testing.B) {
		i := 0
		for b.Loop() {
			a := pick(i)
			i++
			if _, err := svc.PreviousTag(ctx, a.Name, a.Env); err != nil && !errors.Is(err, gitops.ErrNoPrevious) {
				b.Fatal(err)
			}
		}
	})
	b.Run("history_10", func(b *testing.B) {
		i := 0
		for b.Loop() {
			a := pick(i)
			i++
			resp := svc.Handle(ctx, gitops.Request{ID: fmt.Sprintf("shp-b-%d", i), Action: gitops.ActionHistory, App: a.Name, Env: a.Env, User: "alice", Limit: 10})
			if resp.Outcome != gitops.OutcomeAnswered {
				b.Fatal(resp.Text)
			}
		}
	})
	b.Run("audit_app_env", func(b *testing.B) {
		i := 0
		for b.Loop() {
			a := pick(i)
			i++
			if _, err := svc.Audit(ctx, gitops.AuditOptions{App: a.Name, Env: a.Env, Checker: &FakeChecker{CheckFunc: func(*object.Commit) (string, string) { return gitops.SignatureGood, "k" }}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
