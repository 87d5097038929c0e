package github_test

// The review flow end to end: a real gitops.Service whose environment repo
// is served over smart HTTP by the GitHub double, with the real GitHub
// adapter as its Forge. Approvals come from chat (Service.Handle) and from
// reviews on the double's pull requests; everything is checked in the bare
// repository with the git CLI and on the double.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/forge/github"
	"github.com/shipbot/shipbot/gitops/forge/github/githubtest"
	"github.com/shipbot/shipbot/gitops/gitopstest"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
	"github.com/shipbot/shipbot/gitops/sign"
)

const e2eToken = "ghp_e2e-token"

var hookSecret = []byte("e2e-webhook-secret")

// logins is the explicit identity mapping of the configuration.
var logins = map[string]string{"alice": "alice-gh", "bob": "bobby", "carol": "carol-gh", "dave": "dave-gh", "mallory": "mallory-gh"}

// FakeAuthorizer answers with a function.
type FakeAuthorizer struct {
	AuthorizeFunc func(q gitops.AuthzQuery) gitops.Decision
}

var _ gitops.Authorizer = (*FakeAuthorizer)(nil)

func (f *FakeAuthorizer) Authorize(_ context.Context, q gitops.AuthzQuery) (gitops.Decision, error) {
	return f.AuthorizeFunc(q), nil
}

// FakeJustifier accepts any reason as typed (one line).
type FakeJustifier struct{}

var _ gitops.Justifier = FakeJustifier{}

func (FakeJustifier) Justify(_ context.Context, req gitops.Request, _ gitops.Environment) (gitops.Justification, error) {
	return gitops.Justification{Text: gitops.OneLine(req.Why), Kind: "text"}, nil
}

// FakeDirectory makes user@example.com of every chat user.
type FakeDirectory struct{}

var _ gitops.Directory = FakeDirectory{}

func (FakeDirectory) Person(_ context.Context, u string) (gitops.Person, error) {
	return gitops.Person{Name: u, Email: u + "@example.com"}, nil
}

func overlay(tag string) string {
	return "# checkout prod overlay\nresources:\n  - ../../base\nimages:\n  - name: registry.example.com/checkout\n    newTag: " + tag + " # live\n"
}

const prodOverlay = "apps/checkout/overlays/prod/kustomization.yaml"

// e2e is an environment repo on the GitHub double and a shipbot on it.
type e2e struct {
	tb       testing.TB
	bare     string
	gh       *githubtest.Server
	svc      *gitops.Service
	notifier *gitopstest.FakeNotifier
	signer   sign.Signer
	seeded   string // main after seeding

	hookCalls atomic.Int64 // OnProposal calls of the webhook handler
	inflight  atomic.Int64 // OnProposal calls running
	handler   atomic.Pointer[http.Handler]
}

type e2eOptions struct {
	// GitHub are the double's options; BareRepo and Token are filled in.
	GitHub githubtest.Options
	// Webhook serves github.NewWebhookHandler (OnProposal:
	// Service.ReconcileBranch) on 127.0.0.1 and has the double send its
	// webhooks there, signed with DoubleSecret (default: the handler's).
	Webhook      bool
	DoubleSecret []byte
}

func newE2E(tb testing.TB, o e2eOptions) *e2e {
	tb.Helper()
	e := &e2e{tb: tb, notifier: &gitopstest.FakeNotifier{}}
	e.bare = gittest.InitBare(tb)
	gittest.Seed(tb, e.bare, map[string]string{
		"README.md": "env\n",
		prodOverlay: overlay("1.4.0"),
		"apps/checkout/overlays/staging/kustomization.yaml": overlay("1.5.0"),
	}, "bootstrap")
	gittest.Seed(tb, e.bare, map[string]string{prodOverlay: overlay("1.4.1")}, "deploy 1.4.1")
	e.seeded = gittest.Seed(tb, e.bare, map[string]string{prodOverlay: overlay("1.4.2")}, "deploy 1.4.2")

	o.GitHub.BareRepo, o.GitHub.Token = e.bare, e2eToken
	if o.Webhook {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := e.handler.Load()
			if h == nil {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
			(*h).ServeHTTP(w, r)
		}))
		tb.Cleanup(hs.Close)
		o.GitHub.WebhookURL, o.GitHub.AutoWebhooks = hs.URL, true
		o.GitHub.WebhookSecret = hookSecret
		if o.DoubleSecret != nil {
			o.GitHub.WebhookSecret = o.DoubleSecret
		}
	}
	e.gh = githubtest.New(tb, o.GitHub)

	key := filepath.Join(tb.TempDir(), "id_ed25519")
	if _, err := sign.GenerateSSH(key, "shipbot@example.com"); err != nil {
		tb.Fatal(err)
	}
	var err error
	if e.signer, err = sign.LoadSSH(key, ""); err != nil {
		tb.Fatal(err)
	}
	e.start(tb.TempDir())

	if o.Webhook {
		svc := e.svc
		h, err := github.NewWebhookHandler(github.WebhookOptions{
			Secret: hookSecret,
			OnProposal: func(ctx context.Context, branch string) {
				e.inflight.Add(1)
				defer e.inflight.Add(-1)
				e.hookCalls.Add(1)
				if err := svc.ReconcileBranch(ctx, branch); err != nil {
					tb.Logf("reconcile %s after a webhook: %v", branch, err)
				}
			},
		})
		if err != nil {
			tb.Fatal(err)
		}
		e.handler.Store(&h)
		// Registered last, so it runs first: no reconcile may still write
		// into the temporary directories when they are removed.
		tb.Cleanup(e.quiesce)
	}
	return e
}

// start is a shipbot process: a fresh clone of the double's repository in
// cacheDir, the GitHub adapter, the service.
func (e *e2e) start(cacheDir string) {
	e.tb.Helper()
	forge, err := github.New(github.Options{BaseURL: e.gh.URL(), Owner: "shipbot", Repo: "env", Token: e2eToken, Logins: logins})
	if err != nil {
		e.tb.Fatal(err)
	}
	r, err := repo.Open(context.Background(), repo.Options{URL: e.gh.GitURL(), CacheDir: cacheDir, Auth: forge.GitAuth()})
	if err != nil {
		e.tb.Fatal(err)
	}
	e.tb.Cleanup(func() { r.Close() })
	target := func(env string) gitops.Target {
		return gitops.Target{App: "checkout", Env: env, Location: edit.Location{
			Layout: edit.LayoutKustomize, Path: "apps/checkout/overlays/" + env, Image: "registry.example.com/checkout",
		}}
	}
	e.svc, err = gitops.NewService(gitops.ServiceOptions{
		Catalog: &gitops.Catalog{
			Envs: []gitops.Environment{{Name: "staging"}, {Name: "prod", Protected: true}},
			Apps: map[string]map[string]gitops.Target{"checkout": {"staging": target("staging"), "prod": target("prod")}},
		},
		Repo: r,
		Authorizer: &FakeAuthorizer{AuthorizeFunc: func(q gitops.AuthzQuery) gitops.Decision {
			d := gitops.Decision{Allowed: true, Rule: "p, *"}
			if q.Action == gitops.ActionPromote && q.Env == "prod" {
				d.Review = gitops.Review{Approvals: 2, Group: "sre"}
			}
			return d
		}},
		Justifier: FakeJustifier{},
		Directory: FakeDirectory{},
		Committer: gitops.Person{Name: "shipbot", Email: "shipbot@example.com"},
		Signer:    e.signer,
		Forge:     forge,
		Approvers: &gitopstest.FakeApprovers{Members: []string{"bob", "carol", "dave"}},
		Notifier:  e.notifier,
	})
	if err != nil {
		e.tb.Fatal(err)
	}
}

// restart is a new shipbot process on the same remote: a new cache
// directory, a new adapter, nothing in memory.
func (e *e2e) restart() { e.start(e.tb.TempDir()) }

// quiesce waits until the double has delivered its webhooks and no
// reconcile they started still runs.
func (e *e2e) quiesce() {
	quiet := 0
	for deadline := time.Now().Add(30 * time.Second); quiet < 5 && time.Now().Before(deadline); {
		e.gh.FlushWebhooks()
		if e.inflight.Load() == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *e2e) git(args ...string) string {
	e.tb.Helper()
	return gittest.Git(e.tb, e.bare, args...)
}

func (e *e2e) main() string { return e.git("rev-parse", "main") }

func promote(user, why string) gitops.Request {
	return gitops.Request{ID: gitops.NewRequestID(user, "promote", why), Action: gitops.ActionPromote, App: "checkout",
		FromEnv: "staging", Env: "prod", Why: why, User: user, Channel: "#releases", Thread: "local:1"}
}

func review(action gitops.Action, user, id, why string) gitops.Request {
	return gitops.Request{ID: gitops.NewRequestID(user, string(action), id, why), Action: action, Proposal: id, Why: why, User: user, Channel: "#ops"}
}

// open asks alice's promotion of checkout into prod, confirms it, and
// returns the proposal's id and pull request number.
func (e *e2e) open(why string) (string, int) {
	e.tb.Helper()
	ctx := context.Background()
	resp := e.svc.Handle(ctx, promote("alice", why))
	if resp.Outcome != gitops.OutcomeConfirm || resp.Plan == nil {
		e.tb.Fatalf("plan: %s: %s", resp.Outcome, resp.Text)
	}
	got := e.svc.Confirm(ctx, resp.Plan)
	if got.Outcome != gitops.OutcomeProposed || got.Proposal == nil {
		e.tb.Fatalf("confirm: %s: %s", got.Outcome, got.Text)
	}
	id := resp.Plan.Request.ID
	return id, e.prOf(id)
}

// prOf is the number of the pull request of id's proposal branch.
func (e *e2e) prOf(id string) int {
	e.tb.Helper()
	for _, pr := range e.gh.PRs() {
		if pr.GetHead().GetRef() == gitops.ProposalBranch(id) {
			return pr.GetNumber()
		}
	}
	e.tb.Fatalf("no pull request of %s; the double has %d", gitops.ProposalBranch(id), len(e.gh.PRs()))
	return 0
}

// pr is pull request number as the double's API shows it.
func (e *e2e) pr(number int) *gh.PullRequest {
	p := e.gh.PR(number)
	return &p
}

func (e *e2e) approve(user, id string) gitops.Response {
	return e.svc.Handle(context.Background(), review(gitops.ActionApprove, user, id, ""))
}

// approvedBy is the Approved-by trailers of main's tip, one a line.
func (e *e2e) approvedBy() string {
	return e.git("log", "-1", "--format=%(trailers:key=Approved-by,valueonly)", "main")
}

// wantMerged checks that resp merged id's proposal as main's new tip on
// top of parent, and that the double shows the pull request merged.
func (e *e2e) wantMerged(t *testing.T, resp gitops.Response, id string, number int, parent string) {
	t.Helper()
	if resp.Outcome != gitops.OutcomeCommitted || resp.Commit == "" {
		t.Fatalf("want a merge: %s: %s", resp.Outcome, resp.Text)
	}
	if main := e.main(); main != resp.Commit {
		t.Fatalf("main is %s, want the merge %s", main, resp.Commit)
	}
	if p := e.git("rev-parse", "main~1"); p != parent {
		t.Errorf("the merge's parent is %s, want %s", p, parent)
	}
	if got := e.git("show", "main:"+prodOverlay); !strings.Contains(got, "newTag: 1.5.0 # live") {
		t.Errorf("prod after the merge:\n%s", got)
	}
	pr := e.pr(number)
	if !pr.GetMerged() || pr.GetState() != "closed" || pr.GetMergeCommitSHA() != resp.Commit {
		t.Errorf("pull request #%d: merged %v, state %s, merge commit %s; want merged as %s", number, pr.GetMerged(), pr.GetState(), pr.GetMergeCommitSHA(), resp.Commit)
	}
	if tr := gitops.ParseTrailers(e.git("log", "-1", "--format=%B", "main")); tr["Shipbot-Proposal"] != pr.GetHTMLURL() || tr["Shipbot-Request"] != id {
		t.Errorf("Shipbot-Proposal = %q, Shipbot-Request = %q; want %q, %q", tr["Shipbot-Proposal"], tr["Shipbot-Request"], pr.GetHTMLURL(), id)
	}
	if raw := e.git("cat-file", "commit", "main"); !strings.Contains(raw, "-----BEGIN SSH SIGNATURE-----") {
		t.Errorf("the merge is not signed by shipbot:\n%s", raw)
	}
}

func countExact(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// 1. Confirm opens a pull request: the proposal branch into main, labelled,
// its body the diff and how to approve, review asked of the mapped logins
// of everyone who may approve (not the requester).
func TestE2EConfirmOpensPullRequest(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	resp := e.svc.Handle(ctx, promote("alice", "CHG-1"))
	if resp.Outcome != gitops.OutcomeConfirm || !strings.Contains(resp.Text, "needs review: 2 approvals from sre") {
		t.Fatalf("plan: %s: %s", resp.Outcome, resp.Text)
	}
	if n := len(e.gh.PRs()); n != 0 {
		t.Fatalf("%d pull requests before yes", n)
	}
	got := e.svc.Confirm(ctx, resp.Plan)
	if got.Outcome != gitops.OutcomeProposed || got.Proposal == nil {
		t.Fatalf("confirm: %s: %s", got.Outcome, got.Text)
	}
	id := resp.Plan.Request.ID
	prs := e.gh.PRs()
	if len(prs) != 1 {
		t.Fatalf("%d pull requests, want 1", len(prs))
	}
	pr := prs[0]
	branchHead := e.git("rev-parse", "refs/heads/shipbot/"+id)
	if pr.GetHead().GetRef() != "shipbot/"+id || pr.GetBase().GetRef() != "main" || pr.GetHead().GetSHA() != branchHead || pr.GetState() != "open" {
		t.Errorf("pull request %s (%s) -> %s, state %s; want shipbot/%s (%s) -> main, open",
			pr.GetHead().GetRef(), pr.GetHead().GetSHA(), pr.GetBase().GetRef(), pr.GetState(), id, branchHead)
	}
	if pr.GetTitle() != "promote checkout from staging to prod: 1.4.2 -> 1.5.0" {
		t.Errorf("title = %q", pr.GetTitle())
	}
	if got.Proposal.URL != pr.GetHTMLURL() || !strings.Contains(got.Text, pr.GetHTMLURL()) {
		t.Errorf("the reply does not link the pull request %s (view URL %q):\n%s", pr.GetHTMLURL(), got.Proposal.URL, got.Text)
	}
	if labels := e.gh.Labels(pr.GetNumber()); !slices.Contains(labels, "shipbot") || !slices.Contains(labels, "shipbot/promote") {
		t.Errorf("labels = %q, want shipbot and shipbot/promote", labels)
	}
	body := pr.GetBody()
	for _, want := range []string{"-    newTag: 1.4.2 # live", "+    newTag: 1.5.0 # live", "approve " + id, "2 from sre"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if diff := cmp.Diff([]string{"bobby", "carol-gh", "dave-gh"}, e.gh.RequestedReviewers(pr.GetNumber())); diff != "" {
		t.Errorf("requested reviewers (-want +got):\n%s", diff)
	}
	if e.main() != e.seeded {
		t.Error("opening a proposal wrote to main")
	}
	if p := e.git("rev-parse", branchHead+"~1"); p != e.seeded {
		t.Errorf("the proposal commit's parent is %s, want main %s", p, e.seeded)
	}
	if ev := strings.Fields(e.git("log", "--reverse", "--format=%(trailers:key=Shipbot-Event,valueonly)", "refs/shipbot/proposals/"+id)); !slices.Equal(ev, []string{"opened", "forge"}) {
		t.Errorf("records = %q, want opened, forge", ev)
	}

	// A redelivered yes finds the pull request; no second one.
	again := e.svc.Confirm(ctx, resp.Plan)
	if again.Outcome != gitops.OutcomeProposed || !strings.Contains(again.Text, "already open") {
		t.Errorf("confirm again: %s: %s", again.Outcome, again.Text)
	}
	if n := countExact(e.gh.Requests(), "POST /repos/shipbot/env/pulls"); n != 1 || len(e.gh.PRs()) != 1 {
		t.Errorf("%d pull requests created (%d exist), want 1", n, len(e.gh.PRs()))
	}
}

// 2. A quorum of two distinct humans, one on GitHub and one in chat, merges.
func TestE2EQuorumGitHubAndChatMerges(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	id, number := e.open("CHG-2")
	e.gh.AddReview(number, "bobby", "APPROVED", e.pr(number).GetHead().GetSHA())

	l := e.svc.Handle(ctx, gitops.Request{ID: "shp-list", Action: gitops.ActionProposals, User: "carol"})
	if !strings.Contains(l.Text, "approvals: 1 of 2 from sre") || !strings.Contains(l.Text, "bob (github @bobby)") {
		t.Errorf("proposals after bob's review:\n%s", l.Text)
	}
	if e.main() != e.seeded {
		t.Fatal("one approval merged")
	}
	r := e.approve("carol", id)
	e.wantMerged(t, r, id, number, e.seeded)
	if !strings.Contains(r.Text, "approved by bob and carol: merged") {
		t.Errorf("reply: %s", r.Text)
	}
	if ns := e.git("diff", "--numstat", "main~1", "main"); ns != "1\t1\t"+prodOverlay {
		t.Errorf("merged diff = %q, want the one tag line", ns)
	}
	approved := strings.Split(e.approvedBy(), "\n")
	if len(approved) != 2 || !strings.HasSuffix(approved[0], " (github @bobby)") || approved[1] != "carol <carol@example.com> (chat #ops)" {
		t.Errorf("Approved-by = %q", approved)
	}
	var told bool
	for _, u := range e.notifier.Updates() {
		told = told || (u.Thread == "local:1" && u.Outcome == gitops.OutcomeCommitted && u.Commit == r.Commit)
	}
	if !told {
		t.Errorf("the requester's thread was not told of the merge: %+v", e.notifier.Updates())
	}
}

// An Approved-by trailer names a person as "Name <email> (where)"; an
// approver who approved on GitHub only must be named the same way.
func TestE2EApprovedByOfAGitHubApproverNamesThePerson(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	id, number := e.open("CHG-2b")
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	r := e.approve("carol", id)
	if r.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("carol: %s: %s", r.Outcome, r.Text)
	}
	if got, want := e.approvedBy(), "bob <bob@example.com> (github @bobby)\ncarol <carol@example.com> (chat #ops)"; got != want {
		t.Errorf("Approved-by of a GitHub-only approver = %q, want %q (review.go approvedBy falls back to the bare chat user when no chat record carries a name)", got, want)
	}
}

// 3. The same person in chat and on GitHub counts once, and one
// Approved-by names both places.
func TestE2ESamePersonCountsOnce(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	id, number := e.open("CHG-3")
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	r := e.approve("bob", id)
	if r.Outcome != gitops.OutcomeApproved || !strings.Contains(r.Text, "approvals: 1 of 2") || !strings.Contains(r.Text, "bob (chat #ops, github @bobby)") {
		t.Fatalf("bob in chat after bob on GitHub: %s: %s", r.Outcome, r.Text)
	}
	if err := e.svc.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.main() != e.seeded {
		t.Fatal("one person approving twice merged")
	}
	r = e.approve("carol", id)
	e.wantMerged(t, r, id, number, e.seeded)
	approved := strings.Split(e.approvedBy(), "\n")
	if len(approved) != 2 || !strings.HasPrefix(approved[0], "bob <bob@example.com> (chat #ops, github @bobby)") || !strings.HasPrefix(approved[1], "carol <carol@example.com> (chat #ops)") {
		t.Errorf("Approved-by = %q, want bob once naming chat and GitHub, then carol", approved)
	}
}

// 4, 5. Reviews that never count: the requester's own, one by someone
// outside the review group, one by a login with no chat identity. Each is
// ignored with the reason in the reply, and the merge names only the
// counted approvers.
func TestE2EReviewsThatDoNotCount(t *testing.T) {
	for _, tc := range []struct {
		name, login, note string
	}{
		{"requester", "alice-gh", "alice (github @alice-gh) asked for the change: the requester's approval doesn't count"},
		{"outsider", "mallory-gh", "mallory's review (github @mallory-gh) doesn't count: mallory is not in sre"},
		{"unmapped login", "zed-gh", "@zed-gh reviewed on github but has no chat identity in shipbot's mapping, so it doesn't count"},
		{"unmapped login, other case", "ZED-GH", "@ZED-GH reviewed on github but has no chat identity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, e2eOptions{})
			id, number := e.open("CHG-4")
			e.gh.AddReview(number, tc.login, "APPROVED", "")
			r := e.approve("bob", id)
			if r.Outcome != gitops.OutcomeApproved || !strings.Contains(r.Text, "approvals: 1 of 2 from sre (the requester does not count): bob (chat #ops)") {
				t.Fatalf("bob: %s: %s", r.Outcome, r.Text)
			}
			if !strings.Contains(r.Text, "note: "+tc.note) {
				t.Errorf("the reply does not say why %s's review doesn't count:\n%s", tc.login, r.Text)
			}
			if e.main() != e.seeded {
				t.Fatalf("%s's review counted towards the merge", tc.login)
			}
			r = e.approve("dave", id)
			e.wantMerged(t, r, id, number, e.seeded)
			approved := e.approvedBy()
			if n := strings.Count(approved, "\n") + 1; n != 2 || !strings.Contains(approved, "bob <bob@example.com> (chat #ops)") || !strings.Contains(approved, "dave <dave@example.com> (chat #ops)") {
				t.Errorf("Approved-by = %q, want bob and dave only", approved)
			}
		})
	}
}

// 6. Changes requested by an approver block even with enough approvals;
// the latest review per person wins.
func TestE2EChangesRequestedBlocksUntilApproved(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	id, number := e.open("CHG-6")
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	e.gh.AddReview(number, "carol-gh", "CHANGES_REQUESTED", "")
	r := e.approve("dave", id)
	if r.Outcome == gitops.OutcomeCommitted || !strings.Contains(r.Text, "approvals: 2 of 2") || !strings.Contains(r.Text, "blocked: carol requested changes (github @carol-gh)") {
		t.Fatalf("dave with carol's changes requested: %s: %s", r.Outcome, r.Text)
	}
	if err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if e.main() != e.seeded {
		t.Fatal("merged over changes requested")
	}
	// A comment changes nothing; carol's later approval wins over her
	// request for changes.
	e.gh.AddReview(number, "carol-gh", "COMMENTED", "")
	if err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if e.main() != e.seeded {
		t.Fatal("a comment lifted the request for changes")
	}
	e.gh.AddReview(number, "carol-gh", "APPROVED", "")
	if err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if e.main() == e.seeded {
		t.Fatal("carol's approval did not unblock the merge")
	}
	if !e.pr(number).GetMerged() {
		t.Error("the pull request is not merged")
	}
	if approved := e.approvedBy(); !strings.Contains(approved, "@carol-gh") || strings.Count(approved, "\n") != 2 {
		t.Errorf("Approved-by = %q, want bob, carol and dave", approved)
	}
}

// 6. A dismissed approval no longer counts.
func TestE2EDismissedApprovalNoLongerCounts(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	id, number := e.open("CHG-6d")
	rv := e.gh.AddReview(number, "bobby", "APPROVED", "")
	e.gh.DismissReview(number, rv)
	r := e.approve("dave", id)
	if r.Outcome != gitops.OutcomeApproved || !strings.Contains(r.Text, "approvals: 1 of 2 from sre (the requester does not count): dave (chat #ops)\n") {
		t.Fatalf("dave after bob's dismissed review: %s: %s", r.Outcome, r.Text)
	}
	if e.main() != e.seeded {
		t.Fatal("a dismissed approval counted")
	}
	// bob approves again: it counts.
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	if err := e.svc.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.main() == e.seeded || !e.pr(number).GetMerged() {
		t.Fatal("bob's new approval did not merge")
	}
}

// 7. A commit pushed onto the proposal branch by someone else: nothing
// merges, and the reply says why.
func TestE2EBranchChangedOutsideShipbotNeverMerges(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	id, number := e.open("CHG-7")
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	work := filepath.Join(t.TempDir(), "w")
	gittest.Git(t, "", "clone", "--quiet", "--branch", "shipbot/"+id, e.gh.GitURL(), work)
	gittest.Git(t, work, "commit", "--quiet", "--allow-empty", "-m", "sneak")
	gittest.Git(t, work, "push", "--quiet", "origin", "HEAD:shipbot/"+id)
	sneaked := gittest.Git(t, work, "rev-parse", "HEAD")
	if got := e.pr(number).GetHead().GetSHA(); got != sneaked {
		t.Fatalf("the double shows head %s, want the pushed %s", got, sneaked)
	}

	r := e.approve("carol", id)
	if r.Outcome == gitops.OutcomeCommitted || !strings.Contains(r.Text, "changed outside shipbot") {
		t.Fatalf("carol with a foreign head: %s: %s", r.Outcome, r.Text)
	}
	if err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if e.main() != e.seeded {
		t.Error("main moved")
	}
	if pr := e.pr(number); pr.GetMerged() {
		t.Error("the pull request shows merged")
	}
}

// 8. main moved under the proposal without changing its diff: the
// approvals stand and the change lands on the new tip.
func TestE2EMainMovedSameDiffMergesOnNewTip(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	id, number := e.open("CHG-8")
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	foreign := gittest.Seed(t, e.bare, map[string]string{"README.md": "someone else's change\n"}, "docs")

	r := e.approve("carol", id)
	e.wantMerged(t, r, id, number, foreign)
	if got := e.git("show", "main:README.md"); got != "someone else's change" {
		t.Errorf("the foreign change was lost: %q", got)
	}
	if ns := e.git("diff", "--numstat", "main~1", "main"); ns != "1\t1\t"+prodOverlay {
		t.Errorf("merged diff = %q", ns)
	}
}

// 8. main moved and the proposal's diff changed: approvals reset, a new
// head on the branch, the pull request told; approvals of the new diff
// merge it.
func TestE2EMainMovedDiffChangedResetsApprovals(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	id, number := e.open("CHG-8b")
	oldHead := e.pr(number).GetHead().GetSHA()
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	moved := gittest.Seed(t, e.bare, map[string]string{prodOverlay: strings.Replace(overlay("1.4.2"), "../../base", "../../base-v2", 1)}, "rebase the overlay")

	r := e.approve("carol", id)
	if r.Outcome == gitops.OutcomeCommitted || !strings.Contains(r.Text, "approvals were reset") || !strings.Contains(r.Text, "../../base-v2") {
		t.Fatalf("carol after the diff changed: %s: %s", r.Outcome, r.Text)
	}
	if !strings.Contains(r.Text, "bob approved an earlier version (github @bobby); approve again") {
		t.Errorf("the reply does not say bob's review is of the old diff:\n%s", r.Text)
	}
	if e.main() != moved {
		t.Fatal("main moved beyond the foreign change")
	}
	newHead := e.git("rev-parse", "refs/heads/shipbot/"+id)
	if newHead == oldHead || e.git("rev-parse", newHead+"~1") != moved {
		t.Errorf("proposal branch at %s (was %s), want a new head on the moved main", newHead, oldHead)
	}
	if got := e.pr(number).GetHead().GetSHA(); got != newHead {
		t.Errorf("the pull request shows head %s, want %s", got, newHead)
	}
	if cs := e.gh.Comments(number); len(cs) != 1 || !strings.Contains(cs[0], "approvals were reset") {
		t.Errorf("comments on the pull request = %q", cs)
	}

	// Both approve the new diff.
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	r = e.approve("carol", id)
	e.wantMerged(t, r, id, number, moved)
	if got := e.git("show", "main:"+prodOverlay); !strings.Contains(got, "base-v2") {
		t.Errorf("merged file lost the foreign change:\n%s", got)
	}
}

// 9. shipbot restarts between the two approvals: the second one merges.
func TestE2ERestartBetweenApprovals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		second func(e *e2e, id string, number int) gitops.Response
	}{
		{"second in chat", func(e *e2e, id string, _ int) gitops.Response { return e.approve("carol", id) }},
		{"second on GitHub", func(e *e2e, id string, number int) gitops.Response {
			e.gh.AddReview(number, "carol-gh", "APPROVED", "")
			if err := e.svc.Reconcile(context.Background()); err != nil {
				e.tb.Fatal(err)
			}
			return gitops.Response{Outcome: gitops.OutcomeCommitted, Commit: e.main()}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, e2eOptions{})
			id, number := e.open("CHG-9")
			if r := e.approve("bob", id); r.Outcome != gitops.OutcomeApproved {
				t.Fatalf("bob: %s: %s", r.Outcome, r.Text)
			}
			e.restart()
			l := e.svc.Handle(context.Background(), gitops.Request{ID: "shp-list", Action: gitops.ActionProposals, User: "carol"})
			if !strings.Contains(l.Text, id) || !strings.Contains(l.Text, "1 more approval needed") || !strings.Contains(l.Text, "bob (chat #ops)") {
				t.Errorf("proposals after a restart:\n%s", l.Text)
			}
			r := tc.second(e, id, number)
			e.wantMerged(t, r, id, number, e.seeded)
			if approved := e.approvedBy(); !strings.HasPrefix(approved, "bob <bob@example.com> (chat #ops)\ncarol") {
				t.Errorf("Approved-by = %q", approved)
			}
		})
	}
}

// 10. The webhook was lost: approvals on GitHub only, nobody in chat.
// The periodic Reconcile merges.
func TestE2EReconcileMergesWhenTheWebhookIsLost(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	id, number := e.open("CHG-10")
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	e.gh.AddReview(number, "carol-gh", "APPROVED", "")
	if e.main() != e.seeded {
		t.Fatal("merged without anyone asking")
	}
	if err := e.svc.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.main() == e.seeded {
		t.Fatal("Reconcile did not merge")
	}
	e.wantMerged(t, gitops.Response{Outcome: gitops.OutcomeCommitted, Commit: e.main()}, id, number, e.seeded)
	if approved := strings.Split(e.approvedBy(), "\n"); len(approved) != 2 || !strings.HasSuffix(approved[0], "(github @bobby)") || !strings.HasSuffix(approved[1], "(github @carol-gh)") {
		t.Errorf("Approved-by = %q", approved)
	}
	var told bool
	for _, u := range e.notifier.Updates() {
		told = told || (u.Thread == "local:1" && u.Outcome == gitops.OutcomeCommitted && u.Commit == e.main() && u.Plan != nil)
	}
	if !told {
		t.Errorf("the requester's thread was not told of the merge: %+v", e.notifier.Updates())
	}
	// Nothing left to do: a second pass changes nothing.
	before := e.main()
	if err := e.svc.Reconcile(context.Background()); err != nil || e.main() != before {
		t.Errorf("second Reconcile: %v, main %s -> %s", err, before, e.main())
	}
}

// 10. The webhook path: the double's review webhooks reach the handler,
// which reconciles the proposal; nobody calls Reconcile.
func TestE2EWebhookMerges(t *testing.T) {
	e := newE2E(t, e2eOptions{Webhook: true})
	id, number := e.open("CHG-10w")
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	e.gh.AddReview(number, "carol-gh", "APPROVED", "")
	if !waitFor(10*time.Second, func() bool { return e.main() != e.seeded }) {
		t.Fatalf("not merged 10 s after the approvals; deliveries: %s", deliveries(e.gh))
	}
	e.wantMerged(t, gitops.Response{Outcome: gitops.OutcomeCommitted, Commit: e.main()}, id, number, e.seeded)
	if e.hookCalls.Load() == 0 {
		t.Error("merged, but no webhook reached the handler")
	}
	var reviews int
	for _, d := range e.gh.Deliveries() {
		if d.Event == "pull_request_review" && d.Status == http.StatusAccepted {
			reviews++
		}
	}
	if reviews != 2 {
		t.Errorf("%d review webhooks accepted, want 2; deliveries: %s", reviews, deliveries(e.gh))
	}
}

// 10. Forged webhooks (signed with another secret) are refused with 401
// and reconcile nothing.
func TestE2EForgedWebhookMergesNothing(t *testing.T) {
	e := newE2E(t, e2eOptions{Webhook: true, DoubleSecret: []byte("not-the-secret")})
	_, number := e.open("CHG-10f")
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	e.gh.AddReview(number, "carol-gh", "APPROVED", "")
	ds := e.gh.Deliveries()
	if len(ds) < 3 {
		t.Fatalf("%d deliveries, want the opened and two review events", len(ds))
	}
	for _, d := range ds {
		if d.Status != http.StatusUnauthorized {
			t.Errorf("forged %s delivery answered %d, want 401", d.Event, d.Status)
		}
	}
	// A forged delivery by hand, too.
	resp, err := e.gh.SendWebhook("pull_request_review", []byte(`{"action":"submitted","pull_request":{"head":{"ref":"shipbot/x"}}}`))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged delivery: %v, %v", resp, err)
	}
	time.Sleep(200 * time.Millisecond) // what a wrongly accepted delivery would have started
	if n := e.hookCalls.Load(); n != 0 {
		t.Errorf("OnProposal called %d times for forged deliveries", n)
	}
	if e.main() != e.seeded {
		t.Error("a forged webhook merged")
	}
	// The proposal was mergeable all along: the reconcile loop merges it.
	if err := e.svc.Reconcile(context.Background()); err != nil || e.main() == e.seeded {
		t.Errorf("Reconcile: %v; merged: %v", err, e.main() != e.seeded)
	}
}

func deliveries(s *githubtest.Server) string {
	var out []string
	for _, d := range s.Deliveries() {
		out = append(out, fmt.Sprintf("%s:%d", d.Event, d.Status))
	}
	return strings.Join(out, " ")
}

// 11. GitHub's primary rate limit, reset an hour away: the approval is
// answered without a merge, saying reviews could not be read, and shipbot
// stops calling GitHub instead of hammering it.
func TestE2ERateLimitedForAnHour(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	id, number := e.open("CHG-11")
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	reset := time.Now().Add(time.Hour).Unix()
	e.gh.RateLimit(100, http.StatusForbidden, http.Header{
		"X-Ratelimit-Limit": {"5000"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {strconv.FormatInt(reset, 10)}, "X-Ratelimit-Resource": {"core"},
	})
	n0 := e.gh.CountRequests("")

	r := e.approve("carol", id)
	if r.Outcome == gitops.OutcomeCommitted || !strings.Contains(r.Text, "could not read its reviews and checks") || !strings.Contains(r.Text, "rate limiting") {
		t.Fatalf("carol while rate limited: %s: %s", r.Outcome, r.Text)
	}
	r = e.approve("dave", id)
	if r.Outcome == gitops.OutcomeCommitted || !strings.Contains(r.Text, "could not read its reviews and checks") {
		t.Fatalf("dave while rate limited: %s: %s", r.Outcome, r.Text)
	}
	for range 3 {
		if err := e.svc.Reconcile(ctx); !errors.Is(err, gitops.ErrForgeRateLimited) {
			t.Errorf("Reconcile while rate limited = %v, want ErrForgeRateLimited", err)
		}
	}
	if e.main() != e.seeded {
		t.Error("merged without reading the reviews")
	}
	n := e.gh.CountRequests("") - n0
	t.Logf("%d API request(s) for two approvals and three reconciles while rate limited", n)
	if n > 3 {
		t.Errorf("%d API requests while rate limited, want a handful at most:\n%s", n, strings.Join(e.gh.Requests()[n0:], "\n"))
	}
	// The chat approvals were recorded all the same.
	if ev := e.git("log", "--format=%s", "refs/shipbot/proposals/"+id); !strings.Contains(ev, "approved "+id+" by carol") || !strings.Contains(ev, "approved "+id+" by dave") {
		t.Errorf("records:\n%s", ev)
	}
}

// 11. A 429 with Retry-After: 1 is waited out and retried once; the merge
// goes through.
func TestE2ERetryAfterIsHonoured(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	id, number := e.open("CHG-11b")
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	e.gh.RateLimit(1, http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}})
	n0 := e.gh.CountRequests("")
	start := time.Now()
	r := e.approve("carol", id)
	elapsed := time.Since(start)
	e.wantMerged(t, r, id, number, e.seeded)
	if elapsed < 900*time.Millisecond {
		t.Errorf("merged %v after a 429 with Retry-After: 1; the wait was not honoured", elapsed)
	}
	reqs := e.gh.Requests()[n0:]
	if len(reqs) < 2 || reqs[0] != reqs[1] {
		t.Errorf("want the refused request retried once, got:\n%s", strings.Join(reqs, "\n"))
	}
}

// 12. A required check that fails (or has not reported) blocks the merge,
// named in the reply; once it passes the proposal merges.
func TestE2ERequiredCheckBlocks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		set   func(s *githubtest.Server, sha string)
		block string
	}{
		{"status failure", func(s *githubtest.Server, sha string) { s.SetStatus(sha, "ci/validate", "failure") }, "blocked: failing check: ci/validate"},
		{"status error", func(s *githubtest.Server, sha string) { s.SetStatus(sha, "ci/validate", "error") }, "blocked: failing check: ci/validate"},
		{"status pending", func(s *githubtest.Server, sha string) { s.SetStatus(sha, "ci/validate", "pending") }, "blocked: waiting for check: ci/validate"},
		{"not reported", func(*githubtest.Server, string) {}, "blocked: waiting for check: ci/validate"},
		{"check run failure", func(s *githubtest.Server, sha string) { s.SetCheckRun(sha, "ci/validate", "completed", "failure") }, "blocked: failing check: ci/validate"},
		{"check run in progress", func(s *githubtest.Server, sha string) { s.SetCheckRun(sha, "ci/validate", "in_progress", "") }, "blocked: waiting for check: ci/validate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, e2eOptions{})
			e.gh.SetRequiredChecks("main", "ci/validate")
			id, number := e.open("CHG-12")
			head := e.pr(number).GetHead().GetSHA()
			tc.set(e.gh, head)
			e.gh.SetStatus(head, "lint", "success") // not required: no effect
			e.gh.AddReview(number, "bobby", "APPROVED", "")
			r := e.approve("carol", id)
			if r.Outcome == gitops.OutcomeCommitted || !strings.Contains(r.Text, tc.block) {
				t.Fatalf("carol with the check blocking: %s: %s", r.Outcome, r.Text)
			}
			var told bool
			for _, u := range e.notifier.Updates() {
				told = told || (u.Thread == "local:1" && strings.Contains(u.Text, tc.block))
			}
			if !told {
				t.Errorf("the requester's thread was not told of the check: %+v", e.notifier.Updates())
			}
			if err := e.svc.Reconcile(context.Background()); err != nil {
				t.Fatal(err)
			}
			if e.main() != e.seeded {
				t.Fatal("merged with the required check not passed")
			}
			e.gh.SetStatus(head, "ci/validate", "success")
			if tc.name == "check run failure" || tc.name == "check run in progress" {
				e.gh.SetCheckRun(head, "ci/validate", "completed", "success")
			}
			if err := e.svc.Reconcile(context.Background()); err != nil {
				t.Fatal(err)
			}
			e.wantMerged(t, gitops.Response{Outcome: gitops.OutcomeCommitted, Commit: e.main()}, id, number, e.seeded)
		})
	}
}

// 12. With both approvals on GitHub, Reconcile finds the failing check:
// the requester's thread must hear of it (ProposalUpdate: "a check failed").
func TestE2EReconcileTellsTheThreadOfAFailingCheck(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	e.gh.SetRequiredChecks("main", "ci/validate")
	_, number := e.open("CHG-12r")
	head := e.pr(number).GetHead().GetSHA()
	e.gh.SetStatus(head, "ci/validate", "failure")
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	e.gh.AddReview(number, "carol-gh", "APPROVED", "")
	if err := e.svc.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.main() != e.seeded {
		t.Fatal("merged over a failing check")
	}
	var told bool
	for _, u := range e.notifier.Updates() {
		told = told || (u.Thread == "local:1" && strings.Contains(u.Text, "ci/validate"))
	}
	if !told {
		t.Errorf("Reconcile found the failing required check ci/validate with the approvals complete, but the requester's thread was not told (%d notifier updates: %+v); review.go advance notifies only when req.User != \"\"", len(e.notifier.Updates()), e.notifier.Updates())
	}
}

// 13. reject in chat closes the pull request with the reason.
func TestE2ERejectClosesThePullRequest(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	id, number := e.open("CHG-13")
	if r := e.svc.Handle(context.Background(), review(gitops.ActionReject, "mallory", id, "no")); r.Outcome != gitops.OutcomeDenied {
		t.Errorf("mallory rejects: %s: %s", r.Outcome, r.Text)
	}
	if pr := e.pr(number); pr.GetState() != "open" {
		t.Fatalf("mallory's refused reject closed the pull request")
	}
	r := e.svc.Handle(context.Background(), review(gitops.ActionReject, "carol", id, "wrong tag"))
	if r.Outcome != gitops.OutcomeCancelled || !strings.Contains(r.Text, "rejected: wrong tag") {
		t.Fatalf("carol rejects: %s: %s", r.Outcome, r.Text)
	}
	pr := e.pr(number)
	if pr.GetState() != "closed" || pr.GetMerged() {
		t.Errorf("pull request state %s, merged %v; want closed, not merged", pr.GetState(), pr.GetMerged())
	}
	if cs := e.gh.Comments(number); len(cs) != 1 || !strings.Contains(cs[0], "carol rejected it: wrong tag") {
		t.Errorf("comments = %q, want the reason", cs)
	}
	if _, err := gittest.Run(e.bare, "rev-parse", "--verify", "refs/heads/shipbot/"+id); err == nil {
		t.Error("the rejected proposal's branch still exists")
	}
	if e.main() != e.seeded {
		t.Error("a rejected proposal wrote to main")
	}
	var told bool
	for _, u := range e.notifier.Updates() {
		told = told || (u.Thread == "local:1" && u.Outcome == gitops.OutcomeCancelled && strings.Contains(u.Text, "wrong tag"))
	}
	if !told {
		t.Errorf("the requester's thread was not told: %+v", e.notifier.Updates())
	}
	// Approvals after the rejection change nothing.
	e.gh.AddReview(number, "bobby", "APPROVED", "")
	if r := e.approve("dave", id); !strings.Contains(r.Text, "rejected") || r.Outcome == gitops.OutcomeCommitted {
		t.Errorf("approve after reject: %s: %s", r.Outcome, r.Text)
	}
	if err := e.svc.Reconcile(context.Background()); err != nil || e.main() != e.seeded {
		t.Errorf("Reconcile after reject: %v, main moved: %v", err, e.main() != e.seeded)
	}
}

// Someone merges the pull request with GitHub's merge button, with no
// approval at all, instead of letting shipbot land it. The change is on
// main; shipbot must close the proposal saying it was merged by hand, not
// tell the requester that nothing was merged.
func TestE2EMergedByHandOnGitHub(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	ctx := context.Background()
	id, number := e.open("CHG-hand")
	client := gh.NewClient(nil).WithAuthToken(e2eToken)
	u, err := url.Parse(e.gh.URL())
	if err != nil {
		t.Fatal(err)
	}
	client.BaseURL = u
	if _, _, err := client.PullRequests.Merge(ctx, "shipbot", "env", number, "", &gh.PullRequestOptions{MergeMethod: "merge"}); err != nil {
		t.Fatal(err)
	}
	byHand := e.main()
	if byHand == e.seeded || !strings.Contains(e.git("show", "main:"+prodOverlay), "newTag: 1.5.0") {
		t.Fatal("the merge button did not land the change")
	}
	if err := e.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if e.main() != byHand {
		t.Errorf("shipbot wrote to main after a merge by hand")
	}
	if ev := e.git("log", "-1", "--format=%(trailers:key=Shipbot-Event,valueonly)", "refs/shipbot/proposals/"+id); ev != "closed" {
		t.Fatalf("last record = %q, want closed", ev)
	}
	r := e.approve("bob", id)
	if r.Outcome == gitops.OutcomeCommitted {
		t.Fatalf("approve after a merge by hand merged again: %s", r.Text)
	}
	reason := e.git("log", "-1", "--format=%b", "refs/shipbot/proposals/"+id)
	var updates []string
	for _, u := range e.notifier.Updates() {
		updates = append(updates, u.Text)
	}
	if !strings.Contains(reason, "by hand") || slices.ContainsFunc(updates, func(s string) bool { return strings.Contains(s, "Nothing was merged") }) {
		t.Errorf("pull request #%d was merged by hand on GitHub (main %s carries the unapproved change), but the proposal was closed with %q and the requester's thread told %q; reconcile's ForgeMerged case only says \"merged on github by hand\" when the proposal branch moved",
			number, byHand[:12], strings.TrimSpace(reason), updates)
	}
}
