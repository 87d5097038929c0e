package github

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/forge/github/githubtest"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// fixture is an environment repo on the GitHub double with a shipbot
// adapter talking to it.
type fixture struct {
	t     *testing.T
	bare  string
	gh    *githubtest.Server
	forge *Forge
	work  string // a clone of the double's git URL
	base  string // main's first commit
}

const token = "ghp_test-token"

func newFixture(t *testing.T, gopts githubtest.Options, fopts Options) *fixture {
	t.Helper()
	bare := gittest.InitBare(t)
	base := gittest.Seed(t, bare, map[string]string{"apps/checkout/prod/kustomization.yaml": "images:\n- name: checkout\n  newTag: 1.4.1\n"}, "seed")
	gopts.BareRepo = bare
	if gopts.Token == "" && gopts.App == nil {
		gopts.Token = token
	}
	srv := githubtest.New(t, gopts)
	if fopts.BaseURL == "" {
		fopts.BaseURL = srv.URL()
	}
	fopts.Owner, fopts.Repo = "shipbot", "env"
	if fopts.Token == "" && fopts.App == nil {
		fopts.Token = token
	}
	f, err := New(fopts)
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	gittest.Git(t, "", "clone", "--quiet", srv.GitURL(), work)
	return &fixture{t: t, bare: bare, gh: srv, forge: f, work: work, base: base}
}

// proposalBranch commits a change onto a new branch from main and pushes
// it over smart HTTP; it returns the commit.
func (fx *fixture) proposalBranch(branch, tag string) string {
	fx.t.Helper()
	g := func(args ...string) string { return gittest.Git(fx.t, fx.work, args...) }
	g("fetch", "--quiet", "origin")
	g("checkout", "--quiet", "-B", branch, "origin/main")
	p := filepath.Join(fx.work, "apps/checkout/prod/kustomization.yaml")
	if err := os.WriteFile(p, []byte("images:\n- name: checkout\n  newTag: "+tag+"\n"), 0o644); err != nil {
		fx.t.Fatal(err)
	}
	g("commit", "--quiet", "-am", "promote checkout to "+tag)
	g("push", "--quiet", "origin", "HEAD:refs/heads/"+branch)
	return g("rev-parse", "HEAD")
}

func (fx *fixture) open(branch string) gitops.ForgeProposal {
	fx.t.Helper()
	p, err := fx.forge.Open(context.Background(), gitops.ProposalSpec{
		RequestID: branch[len(gitops.ProposalBranchPrefix):],
		Branch:    branch,
		Base:      "main",
		Title:     "promote checkout",
		Body:      "body",
	})
	if err != nil {
		fx.t.Fatal(err)
	}
	return p
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// clock is a settable clock shared by the double and the adapter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
