package github

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/forge/github/githubtest"
	"github.com/shipbot/shipbot/gitops/gittest"
)

var ctx = context.Background()

func TestOpenIsIdempotentLabelsAndRequestsReviewers(t *testing.T) {
	fx := newFixture(t,
		githubtest.Options{Collaborators: []string{"alice-gh", "bobby"}, Teams: []string{"sre-team"}},
		Options{
			Logins: map[string]string{"alice": "Alice-GH", "bob": "bobby", "erin": "erin-gh"},
			Teams:  map[string]string{"sre": "sre-team"},
		})
	head := fx.proposalBranch("shipbot/req-1", "1.4.2")
	spec := gitops.ProposalSpec{
		RequestID: "req-1",
		Branch:    "shipbot/req-1",
		Base:      "main",
		Head:      head,
		Title:     "promote checkout to 1.4.2 in prod",
		Body:      "the diff",
		Labels:    []string{"env:prod"},
		// carol has no GitHub login; erin's is no collaborator (GitHub
		// refuses the request with 422).
		Reviewers: []string{"alice", "bob", "carol", "erin"},
		Group:     "sre",
	}
	p, err := fx.forge.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	pr := fx.gh.PR(p.Number)
	want := gitops.ForgeProposal{Branch: "shipbot/req-1", Number: pr.GetNumber(), URL: pr.GetHTMLURL(), Via: pr.GetHTMLURL()}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("proposal (-want +got):\n%s", diff)
	}
	if !strings.HasSuffix(p.URL, "/shipbot/env/pull/1") {
		t.Errorf("URL = %q", p.URL)
	}
	if pr.GetTitle() != spec.Title || pr.GetBody() != spec.Body || pr.GetBase().GetRef() != "main" || pr.GetHead().GetSHA() != head {
		t.Errorf("pull request = %q %q %s <- %s", pr.GetTitle(), pr.GetBody(), pr.GetBase().GetRef(), pr.GetHead().GetSHA())
	}
	if diff := cmp.Diff([]string{"shipbot", "env:prod"}, fx.gh.Labels(p.Number)); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Alice-GH", "bobby"}, fx.gh.RequestedReviewers(p.Number)); diff != "" {
		t.Errorf("reviewers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"sre-team"}, fx.gh.RequestedTeams(p.Number)); diff != "" {
		t.Errorf("teams (-want +got):\n%s", diff)
	}

	// A retried Open finds the pull request and opens no second one.
	again, err := fx.forge.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if again != p {
		t.Errorf("reopen = %+v, want %+v", again, p)
	}
	reqs := fx.gh.Requests()
	if n := count(reqs, "POST /repos/shipbot/env/pulls"); n != 1 {
		t.Errorf("%d pull requests created, want 1: %v", n, reqs)
	}
	if n := len(fx.gh.PRs()); n != 1 {
		t.Errorf("%d pull requests, want 1", n)
	}
	if n := count(reqs, "POST /repos/shipbot/env/issues/1/labels"); n != 1 {
		t.Errorf("labels added %d times, want 1 (they were there already)", n)
	}
}

func TestOpenRefusesABranchThatIsNoProposal(t *testing.T) {
	fx := newFixture(t, githubtest.Options{}, Options{})
	_, err := fx.forge.Open(ctx, gitops.ProposalSpec{Branch: "main", Title: "x"})
	if err == nil {
		t.Fatal("Open of main succeeded")
	}
	if n := len(fx.gh.Requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestStatusReviews(t *testing.T) {
	fx := newFixture(t, githubtest.Options{PageSize: 2}, Options{Logins: map[string]string{"alice": "alice-gh", "bob": "Bobby"}})
	head := fx.proposalBranch("shipbot/req-2", "1.4.2")
	p := fx.open("shipbot/req-2")

	fx.gh.AddReview(p.Number, "BOBBY", "APPROVED", "")
	fx.gh.AddReview(p.Number, "stranger", "APPROVED", "")
	fx.gh.AddReview(p.Number, "alice-gh", "PENDING", "")
	dismissed := fx.gh.AddReview(p.Number, "alice-gh", "CHANGES_REQUESTED", "0123456789abcdef0123456789abcdef01234567")
	fx.gh.DismissReview(p.Number, dismissed)
	fx.gh.AddReview(p.Number, "alice-gh", "CHANGES_REQUESTED", "")
	fx.gh.AddReview(p.Number, "alice-gh", "COMMENTED", "")

	st, err := fx.forge.Status(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != gitops.ForgeOpen || st.Head != head || st.Conflict {
		t.Errorf("status = %s %s conflict=%v, want open %s", st.State, st.Head, st.Conflict, head)
	}
	type r struct {
		User, Login string
		State       gitops.ReviewState
		Commit      string
	}
	var got []r
	for i, x := range st.Reviews {
		got = append(got, r{x.User, x.Login, x.State, x.Commit})
		if x.At.IsZero() || !strings.Contains(x.URL, "#pullrequestreview-") {
			t.Errorf("review %d: at %v url %q", i, x.At, x.URL)
		}
		if i > 0 && x.At.Before(st.Reviews[i-1].At) {
			t.Errorf("review %d is older than the one before", i)
		}
	}
	want := []r{
		{"bob", "BOBBY", gitops.ReviewApproved, head},
		{"", "stranger", gitops.ReviewApproved, head},
		{"alice", "alice-gh", gitops.ReviewDismissed, "0123456789abcdef0123456789abcdef01234567"},
		{"alice", "alice-gh", gitops.ReviewChangesRequested, head},
		{"alice", "alice-gh", gitops.ReviewCommented, head},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reviews (-want +got):\n%s", diff)
	}
	// 6 reviews at 2 a page: every page was read.
	if n := count(fx.gh.Requests(), "GET /repos/shipbot/env/pulls/1/reviews"); n != 3 {
		t.Errorf("%d review pages read, want 3", n)
	}
	if st.Checks != gitops.ChecksNone {
		t.Errorf("checks = %s, want none", st.Checks)
	}
}

func TestStatusChecks(t *testing.T) {
	type step struct {
		required []string
		statuses [][2]string // context, state
		runs     [][3]string // name, status, conclusion
		want     gitops.CheckState
		failing  []string
	}
	tests := map[string]step{
		"required check failed": {
			required: []string{"ci/build", "policy"},
			statuses: [][2]string{{"ci/build", "success"}},
			runs:     [][3]string{{"policy", "completed", "failure"}, {"lint", "completed", "success"}},
			want:     gitops.ChecksFailure, failing: []string{"policy"},
		},
		"required check missing": {
			required: []string{"ci/build", "policy"},
			statuses: [][2]string{{"ci/build", "success"}},
			want:     gitops.ChecksPending, failing: []string{"policy"},
		},
		"required check running": {
			required: []string{"ci/build"},
			runs:     [][3]string{{"ci/build", "in_progress", ""}},
			want:     gitops.ChecksPending, failing: []string{"ci/build"},
		},
		"required checks passed, another failed": {
			required: []string{"ci/build", "policy"},
			statuses: [][2]string{{"ci/build", "success"}, {"optional", "error"}},
			runs:     [][3]string{{"policy", "completed", "success"}},
			want:     gitops.ChecksSuccess,
		},
		"unprotected, a reported check failed": {
			statuses: [][2]string{{"ci/build", "success"}},
			runs:     [][3]string{{"e2e", "completed", "timed_out"}},
			want:     gitops.ChecksFailure, failing: []string{"e2e"},
		},
		"unprotected, all passed": {
			statuses: [][2]string{{"ci/build", "success"}},
			runs:     [][3]string{{"e2e", "completed", "skipped"}},
			want:     gitops.ChecksSuccess,
		},
		"unprotected, nothing reported": {want: gitops.ChecksNone},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fx := newFixture(t, githubtest.Options{}, Options{})
			head := fx.proposalBranch("shipbot/req-3", "1.4.2")
			p := fx.open("shipbot/req-3")
			fx.gh.SetRequiredChecks("main", tc.required...)
			for _, s := range tc.statuses {
				fx.gh.SetStatus(head, s[0], s[1])
			}
			for _, r := range tc.runs {
				fx.gh.SetCheckRun(head, r[0], r[1], r[2])
			}
			// Checks of another commit don't count.
			fx.gh.SetStatus(fx.base, "ci/build", "failure")
			st, err := fx.forge.Status(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Checks != tc.want || !cmp.Equal(st.Failing, tc.failing) {
				t.Errorf("checks = %s %v, want %s %v", st.Checks, st.Failing, tc.want, tc.failing)
			}
		})
	}
}

func TestStatusConflict(t *testing.T) {
	fx := newFixture(t, githubtest.Options{}, Options{})
	fx.proposalBranch("shipbot/req-4", "1.4.2")
	p := fx.open("shipbot/req-4")
	st, err := fx.forge.Status(ctx, p)
	if err != nil || st.Conflict {
		t.Fatalf("before: conflict=%v err=%v", st.Conflict, err)
	}
	// Someone changes the same line on main.
	gittest.Seed(t, fx.bare, map[string]string{"apps/checkout/prod/kustomization.yaml": "images:\n- name: checkout\n  newTag: 1.5.0\n"}, "hotfix")
	if st, err = fx.forge.Status(ctx, p); err != nil || !st.Conflict {
		t.Fatalf("after: conflict=%v err=%v", st.Conflict, err)
	}
}

func TestStatusOfUnknownPullRequest(t *testing.T) {
	fx := newFixture(t, githubtest.Options{}, Options{})
	_, err := fx.forge.Status(ctx, gitops.ForgeProposal{Branch: "shipbot/nope", Number: 42})
	if !errors.Is(err, gitops.ErrProposalNotFound) {
		t.Fatalf("err = %v, want ErrProposalNotFound", err)
	}
	_, err = fx.forge.Status(ctx, gitops.ForgeProposal{Branch: "shipbot/nope"})
	if !errors.Is(err, gitops.ErrProposalNotFound) {
		t.Fatalf("by branch: err = %v, want ErrProposalNotFound", err)
	}
}

func TestMergedAfterPushToMain(t *testing.T) {
	fx := newFixture(t, githubtest.Options{}, Options{})
	head := fx.proposalBranch("shipbot/req-5", "1.4.2")
	p := fx.open("shipbot/req-5")

	// shipbot lands the approved commit: main fast-forwards to the head.
	gittest.Git(t, fx.work, "push", "--quiet", "origin", head+":refs/heads/main", head+":refs/heads/shipbot/req-5")
	if err := fx.forge.Merged(ctx, p, head); err != nil {
		t.Fatal(err)
	}
	pr := fx.gh.PR(p.Number)
	if !pr.GetMerged() || pr.GetState() != "closed" || pr.GetMergeCommitSHA() != head || pr.MergedAt == nil {
		t.Errorf("pull request: merged=%v state=%s merge commit=%s merged_at=%v", pr.GetMerged(), pr.GetState(), pr.GetMergeCommitSHA(), pr.MergedAt)
	}
	st, err := fx.forge.Status(ctx, p)
	if err != nil || st.State != gitops.ForgeMerged {
		t.Errorf("status = %s, %v; want merged", st.State, err)
	}
	if got := gittest.Git(t, fx.bare, "rev-parse", "main"); got != head {
		t.Errorf("main = %s, want %s", got, head)
	}
}

func TestMergedReportsAClosedPullRequest(t *testing.T) {
	fx := newFixture(t, githubtest.Options{}, Options{})
	head := fx.proposalBranch("shipbot/req-6", "1.4.2")
	p := fx.open("shipbot/req-6")
	if err := fx.forge.Close(ctx, p, "superseded"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := fx.forge.Merged(ctx, p, head)
	if err == nil || !strings.Contains(err.Error(), "did not mark") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("waited %v for a closed pull request", time.Since(start))
	}
}

func TestClose(t *testing.T) {
	fx := newFixture(t, githubtest.Options{}, Options{})
	fx.proposalBranch("shipbot/req-7", "1.4.2")
	p := fx.open("shipbot/req-7")
	if err := fx.forge.Close(ctx, p, "cancelled by alice"); err != nil {
		t.Fatal(err)
	}
	pr := fx.gh.PR(p.Number)
	if pr.GetState() != "closed" || pr.GetMerged() {
		t.Errorf("state %s merged %v, want closed", pr.GetState(), pr.GetMerged())
	}
	if diff := cmp.Diff([]string{"cancelled by alice"}, fx.gh.Comments(p.Number)); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}
	if out, _ := gittest.Run(fx.bare, "branch", "--list", "shipbot/req-7"); out != "" {
		t.Errorf("branch still there: %q", out)
	}
	st, err := fx.forge.Status(ctx, p)
	if err != nil || st.State != gitops.ForgeClosed {
		t.Errorf("status = %s, %v; want closed", st.State, err)
	}
	// Closing again: the branch is gone (422), which is fine.
	if err := fx.forge.Close(ctx, p, ""); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := fx.forge.Close(ctx, gitops.ForgeProposal{Branch: "shipbot/x", Number: 99}, "x"); !errors.Is(err, gitops.ErrProposalNotFound) {
		t.Errorf("close of unknown: %v", err)
	}
}

func TestComment(t *testing.T) {
	fx := newFixture(t, githubtest.Options{}, Options{})
	fx.proposalBranch("shipbot/req-8", "1.4.2")
	p := fx.open("shipbot/req-8")
	if err := fx.forge.Comment(ctx, p, "approvals reset: the head moved"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"approvals reset: the head moved"}, fx.gh.Comments(p.Number)); diff != "" {
		t.Errorf("comments (-want +got):\n%s", diff)
	}
}

func TestList(t *testing.T) {
	fx := newFixture(t, githubtest.Options{PageSize: 1}, Options{})
	fx.proposalBranch("shipbot/a", "1.4.2")
	fx.proposalBranch("feature/human", "1.4.3")
	fx.proposalBranch("shipbot/b", "1.4.4")
	fx.proposalBranch("shipbot/c", "1.4.5")
	a := fx.open("shipbot/a")
	human := fx.gh.OpenPR("alice-gh", "feature/human", "main", "by hand")
	b := fx.open("shipbot/b")
	c := fx.open("shipbot/c")
	if err := fx.forge.Close(ctx, c, "no longer needed"); err != nil {
		t.Fatal(err)
	}
	got, err := fx.forge.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]gitops.ForgeProposal{a, b}, got); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if human == 0 {
		t.Error("no human pull request")
	}
}

func TestGitHubAppAuth(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	clk := &clock{t: time.Now()}
	app := &githubtest.App{AppID: 1234, InstallationID: 5678, PublicKey: &key.PublicKey}
	fx := newFixture(t,
		githubtest.Options{App: app, Now: clk.Now},
		Options{App: &AppAuth{AppID: 1234, InstallationID: 5678, PrivateKeyPEM: pemKey}, Now: clk.Now})
	fx.proposalBranch("shipbot/req-9", "1.4.2")
	p := fx.open("shipbot/req-9")
	for range 3 {
		if _, err := fx.forge.Status(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	const exchange = "POST /app/installations/5678/access_tokens"
	if n := count(fx.gh.Requests(), exchange); n != 1 {
		t.Errorf("%d token exchanges for many calls, want 1 (cached)", n)
	}
	// A minute before the token expires, a new one is fetched.
	clk.Add(58 * time.Minute)
	if _, err := fx.forge.List(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(fx.gh.Requests(), exchange); n != 1 {
		t.Errorf("%d token exchanges at 58 min, want 1", n)
	}
	clk.Add(90 * time.Second)
	if _, err := fx.forge.List(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(fx.gh.Requests(), exchange); n != 2 {
		t.Errorf("%d token exchanges at 59.5 min, want 2", n)
	}

	// Another key: the double refuses the JWT.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := New(Options{
		BaseURL: fx.gh.URL(), Owner: "shipbot", Repo: "env",
		App: &AppAuth{AppID: 1234, InstallationID: 5678, PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})},
		Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.List(ctx); err == nil || !strings.Contains(err.Error(), "installation token") {
		t.Errorf("list with the wrong key: %v", err)
	}
}

func TestTokenAuthIsRequired(t *testing.T) {
	fx := newFixture(t, githubtest.Options{}, Options{})
	bad, err := New(Options{BaseURL: fx.gh.URL(), Owner: "shipbot", Repo: "env", Token: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.List(ctx); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("list with a wrong token: %v", err)
	}
	if _, err := fx.forge.List(ctx); err != nil {
		t.Errorf("list with the token: %v", err)
	}
}

func TestEnterpriseBaseURL(t *testing.T) {
	fx := newFixture(t, githubtest.Options{Enterprise: true}, Options{})
	if !strings.HasSuffix(fx.gh.URL(), "/api/v3/") {
		t.Fatalf("URL = %s", fx.gh.URL())
	}
	fx.proposalBranch("shipbot/req-10", "1.4.2")
	p := fx.open("shipbot/req-10")
	if _, err := fx.forge.Status(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Without /api/v3/ the same host answers 404 to the API.
	root := strings.TrimSuffix(fx.gh.URL(), "api/v3/")
	plain, err := New(Options{BaseURL: root + "v2/", Owner: "shipbot", Repo: "env", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.List(ctx); statusOf(err) != http.StatusNotFound {
		t.Errorf("list outside /api/v3/: %v", err)
	}
}

func TestRateLimitShortResetWaitsAndRetriesOnce(t *testing.T) {
	for name, reset := range map[string]time.Duration{"past": -10 * time.Second, "soon": 1500 * time.Millisecond} {
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t, githubtest.Options{}, Options{MaxWait: 5 * time.Second})
			fx.proposalBranch("shipbot/req-11", "1.4.2")
			p := fx.open("shipbot/req-11")
			resetAt := time.Now().Add(reset)
			fx.gh.RateLimit(1, http.StatusForbidden, http.Header{
				"X-Ratelimit-Remaining": {"0"},
				"X-Ratelimit-Reset":     {strconv.FormatInt(resetAt.Unix(), 10)},
			})
			if err := fx.forge.Comment(ctx, p, "hello"); err != nil {
				t.Fatal(err)
			}
			if time.Now().Before(resetAt.Truncate(time.Second)) {
				t.Errorf("retried before the reset")
			}
			if n := count(fx.gh.Requests(), "POST /repos/shipbot/env/issues/1/comments"); n != 2 {
				t.Errorf("%d comment requests, want 2 (refused, retried)", n)
			}
			if diff := cmp.Diff([]string{"hello"}, fx.gh.Comments(p.Number)); diff != "" {
				t.Errorf("comments (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRateLimitFarResetFailsWithoutHammering(t *testing.T) {
	fx := newFixture(t, githubtest.Options{}, Options{})
	fx.proposalBranch("shipbot/req-12", "1.4.2")
	p := fx.open("shipbot/req-12")
	before := len(fx.gh.Requests())
	resetAt := time.Now().Add(time.Hour).Truncate(time.Second)
	fx.gh.RateLimit(1, http.StatusForbidden, http.Header{
		"X-Ratelimit-Remaining": {"0"},
		"X-Ratelimit-Reset":     {strconv.FormatInt(resetAt.Unix(), 10)},
	})
	start := time.Now()
	for i := range 3 {
		_, err := fx.forge.Status(ctx, p)
		if !errors.Is(err, gitops.ErrForgeRateLimited) {
			t.Fatalf("call %d: err = %v, want ErrForgeRateLimited", i, err)
		}
		var rl *RateLimitError
		if !errors.As(err, &rl) || !rl.Until.Equal(resetAt) {
			t.Errorf("call %d: until = %v, want %v", i, rl, resetAt)
		}
		if !strings.Contains(err.Error(), resetAt.UTC().Format(time.RFC3339)) {
			t.Errorf("call %d: %q does not say until when", i, err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v: waited instead of failing", d)
	}
	if n := len(fx.gh.Requests()) - before; n != 1 {
		t.Errorf("%d requests sent, want 1: %v", n, fx.gh.Requests()[before:])
	}
}

func TestTooManyRequestsRetryAfter(t *testing.T) {
	fx := newFixture(t, githubtest.Options{}, Options{})
	fx.proposalBranch("shipbot/req-13", "1.4.2")
	p := fx.open("shipbot/req-13")
	before := len(fx.gh.Requests())
	fx.gh.RateLimit(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	start := time.Now()
	got, err := fx.forge.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, want >= 1s", d)
	}
	if len(got) != 1 || got[0] != p {
		t.Errorf("list = %v", got)
	}
	if n := len(fx.gh.Requests()) - before; n != 2 {
		t.Errorf("%d requests, want 2", n)
	}

	// A Retry-After beyond MaxWait fails at once, and the next call is
	// not sent.
	before = len(fx.gh.Requests())
	fx.gh.RateLimit(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"120"}})
	start = time.Now()
	for range 2 {
		if _, err := fx.forge.List(ctx); !errors.Is(err, gitops.ErrForgeRateLimited) {
			t.Fatalf("err = %v, want ErrForgeRateLimited", err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if n := len(fx.gh.Requests()) - before; n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := map[string]Options{
		"no auth":        {Owner: "o", Repo: "r"},
		"both auths":     {Owner: "o", Repo: "r", Token: "t", App: &AppAuth{AppID: 1, InstallationID: 2, PrivateKeyPEM: []byte("k")}},
		"no repo":        {Owner: "o", Token: "t"},
		"login twice":    {Owner: "o", Repo: "r", Token: "t", Logins: map[string]string{"a": "Bobby", "b": "bobby"}},
		"bad base URL":   {Owner: "o", Repo: "r", Token: "t", BaseURL: "ftp://x"},
		"token newline":  {Owner: "o", Repo: "r", Token: "t\n"},
		"app without id": {Owner: "o", Repo: "r", App: &AppAuth{PrivateKeyPEM: []byte("k")}},
	}
	for name, o := range tests {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	o := Options{Owner: "o", Repo: "r", Token: "t"}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.BaseBranch != "main" || !cmp.Equal(o.Labels, []string{"shipbot"}) || o.MaxWait != 30*time.Second || o.HTTPClient.Timeout != 30*time.Second {
		t.Errorf("defaults: %+v", o)
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name     string
		required []string
		reported map[string]outcome
		want     gitops.CheckState
		names    []string
	}{
		{"nothing", nil, nil, gitops.ChecksNone, nil},
		{"required missing", []string{"a", "b"}, map[string]outcome{"a": passed}, gitops.ChecksPending, []string{"b"}},
		{"failure beats pending", []string{"a", "b", "c"}, map[string]outcome{"a": failed, "b": running, "c": failed}, gitops.ChecksFailure, []string{"a", "c"}},
		{"unrequired failure ignored", []string{"a"}, map[string]outcome{"a": passed, "x": failed}, gitops.ChecksSuccess, nil},
		{"reported only", nil, map[string]outcome{"a": passed, "b": running}, gitops.ChecksPending, []string{"b"}},
	}
	for _, tc := range tests {
		got, names := summarize(tc.required, tc.reported)
		if got != tc.want || !cmp.Equal(names, tc.names) {
			t.Errorf("%s: %s %v, want %s %v", tc.name, got, names, tc.want, tc.names)
		}
	}
}

func TestCheckOutcomes(t *testing.T) {
	for _, c := range []struct {
		status, conclusion string
		want               outcome
	}{
		{"queued", "", running}, {"in_progress", "", running},
		{"completed", "success", passed}, {"completed", "neutral", passed}, {"completed", "skipped", passed},
		{"completed", "failure", failed}, {"completed", "cancelled", failed}, {"completed", "timed_out", failed}, {"completed", "action_required", failed},
	} {
		if got := checkRunOutcome(c.status, c.conclusion); got != c.want {
			t.Errorf("%s/%s = %d, want %d", c.status, c.conclusion, got, c.want)
		}
	}
	for state, want := range map[string]outcome{"success": passed, "pending": running, "failure": failed, "error": failed} {
		if got := statusOutcome(state); got != want {
			t.Errorf("%s = %d, want %d", state, got, want)
		}
	}
}
