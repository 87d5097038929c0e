package githubtest_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/gitops/forge/github/githubtest"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// setup returns a double with a branch "topic" one commit ahead of main,
// and a go-github client for it.
func setup(t *testing.T, o githubtest.Options) (*githubtest.Server, *github.Client, string) {
	t.Helper()
	o.BareRepo = gittest.InitBare(t)
	gittest.Seed(t, o.BareRepo, map[string]string{"a.txt": "one\n"}, "seed")
	s := githubtest.New(t, o)
	work := filepath.Join(t.TempDir(), "w")
	gittest.Git(t, "", "clone", "--quiet", s.GitURL(), work)
	if err := os.WriteFile(filepath.Join(work, "b.txt"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, work, "add", "-A")
	gittest.Git(t, work, "commit", "--quiet", "-m", "topic")
	gittest.Git(t, work, "push", "--quiet", "origin", "HEAD:refs/heads/topic")
	c := client(t, s)
	if o.Token != "" {
		c = c.WithAuthToken(o.Token)
	}
	return s, c, work
}

// client is a go-github client of s.
func client(t *testing.T, s *githubtest.Server) *github.Client {
	t.Helper()
	c := github.NewClient(nil)
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

func status(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		return er.Response.StatusCode
	}
	return 0
}

func TestPullRequestLifecycleAndMerge(t *testing.T) {
	s, c, _ := setup(t, githubtest.Options{Enterprise: true, Token: "t0k"})
	ctx := context.Background()
	newPR := &github.NewPullRequest{Title: github.String("topic"), Head: github.String("topic"), Base: github.String("main")}
	pr, resp, err := c.PullRequests.Create(ctx, "shipbot", "env", newPR)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v", err)
	}
	if _, _, err := c.PullRequests.Create(ctx, "shipbot", "env", newPR); status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate: %v", err)
	}
	if _, _, err := c.PullRequests.Create(ctx, "shipbot", "env", &github.NewPullRequest{Title: github.String("x"), Head: github.String("main"), Base: github.String("main")}); status(err) != http.StatusUnprocessableEntity {
		t.Errorf("no commits: %v", err)
	}
	if pr.GetNumber() != 1 || pr.GetMergeable() != true {
		t.Errorf("pr %d mergeable %v", pr.GetNumber(), pr.Mergeable)
	}

	// Merging with a stale sha is refused.
	if _, _, err := c.PullRequests.Merge(ctx, "shipbot", "env", 1, "", &github.PullRequestOptions{SHA: strings.Repeat("0", 40)}); status(err) != http.StatusConflict {
		t.Errorf("stale sha: %v", err)
	}
	res, _, err := c.PullRequests.Merge(ctx, "shipbot", "env", 1, "", &github.PullRequestOptions{SHA: pr.GetHead().GetSHA(), MergeMethod: "merge"})
	if err != nil || !res.GetMerged() {
		t.Fatalf("merge: %v", err)
	}
	got := s.PR(1)
	if !got.GetMerged() || got.GetMergeCommitSHA() != res.GetSHA() {
		t.Errorf("after merge: merged %v merge commit %s want %s", got.GetMerged(), got.GetMergeCommitSHA(), res.GetSHA())
	}
	if _, _, err := c.PullRequests.Merge(ctx, "shipbot", "env", 1, "", nil); status(err) != http.StatusMethodNotAllowed {
		t.Errorf("merge twice: %v", err)
	}
	want := []string{
		"POST /repos/shipbot/env/pulls", "POST /repos/shipbot/env/pulls", "POST /repos/shipbot/env/pulls",
		"PUT /repos/shipbot/env/pulls/1/merge", "PUT /repos/shipbot/env/pulls/1/merge", "PUT /repos/shipbot/env/pulls/1/merge",
	}
	if got := s.Requests(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s", strings.Join(got, "\n"))
	}
}

func TestMergeCreatesARealMergeCommit(t *testing.T) {
	s, c, work := setup(t, githubtest.Options{})
	ctx := context.Background()
	n := s.OpenPR("alice", "topic", "main", "topic")
	// main moves on, so the merge is a real one.
	gittest.Git(t, work, "checkout", "--quiet", "-B", "other", "origin/main")
	if err := os.WriteFile(filepath.Join(work, "c.txt"), []byte("three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, work, "add", "-A")
	gittest.Git(t, work, "commit", "--quiet", "-m", "other")
	gittest.Git(t, work, "push", "--quiet", "origin", "HEAD:main")
	res, _, err := c.PullRequests.Merge(ctx, "shipbot", "env", n, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, work, "fetch", "--quiet", "origin")
	if got := gittest.Git(t, work, "rev-parse", "origin/main"); got != res.GetSHA() {
		t.Errorf("main = %s, want the merge commit %s", got, res.GetSHA())
	}
	parents := strings.Fields(gittest.Git(t, work, "rev-list", "--parents", "-n1", "origin/main"))
	if len(parents) != 3 {
		t.Errorf("merge commit parents: %v", parents[1:])
	}
}

func TestAuthAndRateLimit(t *testing.T) {
	s, _, _ := setup(t, githubtest.Options{Token: "t0k"})
	ctx := context.Background()
	anon := client(t, s)
	if _, _, err := anon.PullRequests.List(ctx, "shipbot", "env", nil); status(err) != http.StatusUnauthorized {
		t.Errorf("anonymous: %v", err)
	}
	authed := anon.WithAuthToken("t0k")
	s.RateLimit(1, http.StatusForbidden, http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1"}})
	var rl *github.RateLimitError
	if _, _, err := authed.PullRequests.List(ctx, "shipbot", "env", nil); !errors.As(err, &rl) {
		t.Errorf("rate limited: %v", err)
	}
	if _, _, err := authed.PullRequests.List(ctx, "shipbot", "env", nil); err != nil {
		t.Errorf("after: %v", err)
	}
}
