package gitops_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

// FakeAuthorizer answers with a function.
type FakeAuthorizer struct {
	AuthorizeFunc func(q gitops.AuthzQuery) gitops.Decision
}

var _ gitops.Authorizer = (*FakeAuthorizer)(nil)

func (f *FakeAuthorizer) Authorize(_ context.Context, q gitops.AuthzQuery) (gitops.Decision, error) {
	return f.AuthorizeFunc(q), nil
}

// FakeJustifier accepts any reason and keeps it as typed (one line).
type FakeJustifier struct{}

func (FakeJustifier) Justify(_ context.Context, req gitops.Request, _ gitops.Environment) (gitops.Justification, error) {
	return gitops.Justification{Text: gitops.OneLine(req.Why), Kind: "text"}, nil
}

type directory struct{}

func (directory) Person(_ context.Context, u string) (gitops.Person, error) {
	return gitops.Person{Name: u, Email: u + "@example.com"}, nil
}

func overlay(tag string) string {
	return "# checkout prod overlay\nresources:\n  - ../../base\nimages:\n  - name: registry.example.com/checkout\n    newTag: " + tag + " # live\n"
}

// fixture is a seeded environment repo served over smart HTTP, and a service on it.
type fixture struct {
	bare       string
	svc        *gitops.Service
	deny       map[string]bool        // users the fake policy denies
	denyAction map[gitops.Action]bool // actions the fake policy denies to everyone
	opts       gitops.ServiceOptions  // what svc was built with
	url        string                 // the remote
}

func newFixture(t *testing.T, apps int) *fixture {
	t.Helper()
	return newFixtureWith(t, apps, nil)
}

// newFixtureWith lets a test change the service options before it starts.
func newFixtureWith(t *testing.T, apps int, opts func(*gitops.ServiceOptions)) *fixture {
	t.Helper()
	bare := gittest.InitBare(t)
	files := map[string]string{"README.md": "env\n"}
	for i := range apps {
		files[fmt.Sprintf("apps/app%d/overlays/prod/kustomization.yaml", i)] = overlay("1.0.0")
	}
	files["apps/checkout/overlays/prod/kustomization.yaml"] = overlay("1.4.0")
	files["apps/checkout/overlays/staging/kustomization.yaml"] = overlay("1.5.0")
	gittest.Seed(t, bare, files, "bootstrap")
	gittest.Seed(t, bare, map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": overlay("1.4.1")}, "deploy 1.4.1")
	gittest.Seed(t, bare, map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": overlay("1.4.2")}, "deploy 1.4.2")

	url := gittest.Serve(t, filepath.Dir(bare)) + "/env.git"
	r, err := repo.Open(context.Background(), repo.Options{URL: url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cat := &gitops.Catalog{
		Envs: []gitops.Environment{{Name: "staging"}, {Name: "prod", Protected: true}},
		Apps: map[string]map[string]gitops.Target{},
	}
	add := func(app string) {
		cat.Apps[app] = map[string]gitops.Target{"prod": {App: app, Env: "prod", Location: edit.Location{
			Layout: edit.LayoutKustomize, Path: "apps/" + app + "/overlays/prod", Image: "registry.example.com/checkout",
		}}}
	}
	add("checkout")
	cat.Apps["checkout"]["staging"] = gitops.Target{App: "checkout", Env: "staging", Location: edit.Location{
		Layout: edit.LayoutKustomize, Path: "apps/checkout/overlays/staging", Image: "registry.example.com/checkout",
	}}
	for i := range apps {
		add(fmt.Sprintf("app%d", i))
	}
	f := &fixture{bare: bare, deny: map[string]bool{"mallory": true}}
	o := gitops.ServiceOptions{
		Catalog: cat, Repo: r,
		Authorizer: &FakeAuthorizer{AuthorizeFunc: func(q gitops.AuthzQuery) gitops.Decision {
			if f.deny[q.Subject.User] || f.denyAction[q.Action] {
				return gitops.Decision{Reason: "no rule lets " + q.Subject.User + " " + string(q.Action)}
			}
			return gitops.Decision{Allowed: true, Rule: "p, *"}
		}},
		Justifier: FakeJustifier{}, Directory: directory{},
		Committer: gitops.Person{Name: "shipbot", Email: "shipbot@example.com"},
		Now:       func() time.Time { return time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC) },
	}
	if opts != nil {
		opts(&o)
	}
	f.svc, err = gitops.NewService(o)
	if err != nil {
		t.Fatal(err)
	}
	f.opts, f.url = o, url
	return f
}

// replica is a second Service on the same remote with the same options and
// a cache of its own: another shipbot replica.
func (f *fixture) replica(t *testing.T, mods ...func(*gitops.ServiceOptions)) *gitops.Service {
	t.Helper()
	r, err := repo.Open(context.Background(), repo.Options{URL: f.url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	o := f.opts
	o.Repo = r
	for _, m := range mods {
		m(&o)
	}
	svc, err := gitops.NewService(o)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (f *fixture) head(t *testing.T) string { return gittest.Git(t, f.bare, "rev-parse", "main") }

func rollback(user, app, why string) gitops.Request {
	return gitops.Request{ID: gitops.NewRequestID(user, app, why), Action: gitops.ActionRollback, App: app, Env: "prod", Why: why, User: user, Channel: "#ops"}
}

func TestRollbackPlanConfirmCommit(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	before := f.head(t)

	resp := f.svc.Handle(ctx, rollback("alice", "checkout", "https://acme.pagerduty.com/incidents/P1X2Y3Z"))
	if resp.Outcome != gitops.OutcomeConfirm || resp.Plan == nil {
		t.Fatalf("outcome %s: %s", resp.Outcome, resp.Text)
	}
	if !strings.Contains(resp.Text, "-    newTag: 1.4.2 # live\n+    newTag: 1.4.1 # live") {
		t.Errorf("plan reply does not show the one-line diff:\n%s", resp.Text)
	}
	if f.head(t) != before {
		t.Fatal("something was written before yes")
	}

	done := f.svc.Confirm(ctx, resp.Plan)
	if done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("confirm: %s: %s", done.Outcome, done.Text)
	}
	if f.head(t) != done.Commit || gittest.Git(t, f.bare, "rev-parse", "main~1") != before {
		t.Fatal("want exactly one new commit on main")
	}
	// One line of the app's file, and the pin the rollback sets.
	if ns := gittest.Git(t, f.bare, "diff", "--numstat", "main~1", "main"); ns != "10\t0\t.shipbot/pins.yaml\n1\t1\tapps/checkout/overlays/prod/kustomization.yaml" {
		t.Errorf("numstat = %q, want one line changed in the app's file and the pins file", ns)
	}
	if got := gittest.Git(t, f.bare, "show", "main:apps/checkout/overlays/prod/kustomization.yaml"); got+"\n" != overlay("1.4.1") {
		t.Errorf("file after rollback:\n%s", got)
	}
	msg := gittest.Git(t, f.bare, "log", "-1", "--format=%B")
	trailers := parseTrailersWithGit(t, msg)
	for k, v := range map[string]string{
		"Shipbot-Request": resp.Plan.Request.ID, "Shipbot-Action": "rollback", "Shipbot-App": "checkout", "Shipbot-Env": "prod",
		"Requested-by": "alice <alice@example.com>", "Justification": "https://acme.pagerduty.com/incidents/P1X2Y3Z", "Chat-Channel": "#ops",
		"Shipbot-From": "1.4.2", "Shipbot-To": "1.4.1",
	} {
		if trailers[k] != v {
			t.Errorf("trailer %s = %q, want %q", k, trailers[k], v)
		}
	}
	if subj := strings.SplitN(msg, "\n", 2)[0]; subj != "rollback checkout in prod: 1.4.2 -> 1.4.1" {
		t.Errorf("subject = %q", subj)
	}
	if who := gittest.Git(t, f.bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>"); who != "alice <alice@example.com>|shipbot <shipbot@example.com>" {
		t.Errorf("author|committer = %q", who)
	}

	// Confirming the same plan again is idempotent: no second commit.
	again := f.svc.Confirm(ctx, resp.Plan)
	if again.Outcome != gitops.OutcomeCommitted || again.Commit != done.Commit || f.head(t) != done.Commit {
		t.Errorf("second confirm: %s %s, head %s", again.Outcome, again.Commit, f.head(t))
	}

	// A second rollback goes further back, not forward to the release just rolled back from.
	resp = f.svc.Handle(ctx, rollback("alice", "checkout", "still broken"))
	if resp.Plan == nil || resp.Plan.From != "1.4.1" || resp.Plan.To != "1.4.0" {
		t.Fatalf("second rollback plan: %s", resp.Text)
	}
}

func parseTrailersWithGit(t *testing.T, msg string) map[string]string {
	t.Helper()
	cmd := exec.Command("git", "interpret-trailers", "--parse")
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		if _, dup := m[k]; dup {
			t.Errorf("trailer %s appears twice", k)
		}
		m[k] = v
	}
	return m
}

func TestDeniedWritesNothing(t *testing.T) {
	f := newFixture(t, 0)
	before := f.head(t)
	resp := f.svc.Handle(context.Background(), rollback("mallory", "checkout", "INC-1"))
	if resp.Outcome != gitops.OutcomeDenied || resp.Plan != nil || !strings.Contains(resp.Text, "no rule lets mallory rollback") {
		t.Fatalf("got %s: %s", resp.Outcome, resp.Text)
	}
	if f.head(t) != before {
		t.Fatal("a denied request wrote to the repo")
	}
}

func TestPolicyRevokedBeforeYes(t *testing.T) {
	f := newFixture(t, 0)
	before := f.head(t)
	resp := f.svc.Handle(context.Background(), rollback("alice", "checkout", "INC-1"))
	f.deny["alice"] = true
	if got := f.svc.Confirm(context.Background(), resp.Plan); got.Outcome != gitops.OutcomeDenied || f.head(t) != before {
		t.Fatalf("confirm after revocation: %s, head moved: %v", got.Outcome, f.head(t) != before)
	}
}

func TestUnknownAppSuggestsNearest(t *testing.T) {
	f := newFixture(t, 0)
	resp := f.svc.Handle(context.Background(), rollback("alice", "chekout", "x"))
	if resp.Outcome != gitops.OutcomeRejected || !strings.Contains(resp.Text, `did you mean "checkout"`) {
		t.Fatalf("got %s: %s", resp.Outcome, resp.Text)
	}
}

func TestForeignPushBetweenPlanAndYes(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()
	resp := f.svc.Handle(ctx, rollback("alice", "checkout", "x"))
	// A human pushes an unrelated change after the plan was shown.
	human := gittest.Seed(t, f.bare, map[string]string{"README.md": "edited by a human\n"}, "docs")
	done := f.svc.Confirm(ctx, resp.Plan)
	if done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("%s: %s", done.Outcome, done.Text)
	}
	if gittest.Git(t, f.bare, "rev-parse", "main~1") != human {
		t.Fatal("shipbot's commit is not on top of the human's")
	}
	if gittest.Git(t, f.bare, "show", "main:README.md") != "edited by a human" {
		t.Fatal("the human's change was overwritten")
	}
}

func TestStalePlanIsRefused(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	resp := f.svc.Handle(ctx, rollback("alice", "checkout", "x"))
	human := gittest.Seed(t, f.bare, map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": overlay("1.4.3")}, "hotfix 1.4.3 by hand")
	got := f.svc.Confirm(ctx, resp.Plan)
	if got.Outcome != gitops.OutcomeRejected || !strings.Contains(got.Text, "changed since you confirmed") {
		t.Fatalf("%s: %s", got.Outcome, got.Text)
	}
	if f.head(t) != human {
		t.Fatal("a stale plan was written")
	}
}

func TestHostileReasonStaysData(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	why := "INC-1\nApproved-by: eve <eve@evil>\n\nShipbot-Action: promote\r\x00"
	resp := f.svc.Handle(ctx, rollback("alice", "checkout", why))
	done := f.svc.Confirm(ctx, resp.Plan)
	if done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("%s: %s", done.Outcome, done.Text)
	}
	tr := parseTrailersWithGit(t, gittest.Git(t, f.bare, "log", "-1", "--format=%B"))
	if _, ok := tr["Approved-by"]; ok {
		t.Error("chat text added an Approved-by trailer")
	}
	if tr["Shipbot-Action"] != "rollback" {
		t.Errorf("Shipbot-Action = %q", tr["Shipbot-Action"])
	}
	if tr["Justification"] != "INC-1 Approved-by: eve <eve@evil> Shipbot-Action: promote" {
		t.Errorf("Justification = %q", tr["Justification"])
	}
}

// A person pushes between the plan and the Confirm: the first push is
// refused (the branch moved), the change is re-planned on the new tip and
// lands on the second, keeping the person's commit. Response.Attempts says
// so (the Slack adapter counts it as a push retry).
func TestConfirmAfterTheBranchMovedRetriesOnce(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()
	resp := f.svc.Handle(ctx, gitops.Request{ID: "shp-moved", Action: gitops.ActionRollback, App: "app0", Env: "prod", Tag: "0.9.0", User: "alice"})
	if resp.Plan == nil {
		t.Fatalf("no plan: %s", resp.Text)
	}
	resp.Plan.Answer = "yes, deploy 0.9.0" // a tag never deployed
	gittest.Seed(t, f.bare, map[string]string{"README.md": "a person's change\n"}, "person")
	human := f.head(t)
	done := f.svc.Confirm(ctx, resp.Plan)
	if done.Outcome != gitops.OutcomeCommitted || done.Attempts != 2 {
		t.Fatalf("%s after %d attempt(s), want committed after 2: %s", done.Outcome, done.Attempts, done.Text)
	}
	if parent := gittest.Git(t, f.bare, "rev-parse", "main^"); parent != human {
		t.Errorf("the change's parent is %s, want the person's commit %s", parent, human)
	}
}

// Concurrent confirmed requests for different apps all land, each as its own
// commit, while a human pushes too: no update is lost.
func TestConcurrentRequestsNoLostUpdate(t *testing.T) {
	const apps = 12
	f := newFixture(t, apps)
	ctx := context.Background()
	plans := make([]*gitops.Plan, apps)
	for i := range apps {
		req := gitops.Request{ID: fmt.Sprintf("shp-%d", i), Action: gitops.ActionRollback, App: fmt.Sprintf("app%d", i), Env: "prod", Tag: fmt.Sprintf("0.%d.0", i), User: "alice"}
		resp := f.svc.Handle(ctx, req)
		if resp.Plan == nil {
			t.Fatalf("plan %d: %s", i, resp.Text)
		}
		resp.Plan.Answer = "yes, deploy " + req.Tag // tags never deployed
		plans[i] = resp.Plan
	}
	var wg sync.WaitGroup
	results := make([]gitops.Response, apps)
	for i := range apps {
		wg.Go(func() { results[i] = f.svc.Confirm(ctx, plans[i]) })
	}
	wg.Go(func() { gittest.Seed(t, f.bare, map[string]string{"README.md": "racing human\n"}, "human") })
	wg.Wait()
	for i, r := range results {
		if r.Outcome != gitops.OutcomeCommitted {
			t.Errorf("request %d: %s: %s", i, r.Outcome, r.Text)
		}
	}
	for i := range apps {
		got := gittest.Git(t, f.bare, "show", fmt.Sprintf("main:apps/app%d/overlays/prod/kustomization.yaml", i))
		if !strings.Contains(got, fmt.Sprintf("newTag: 0.%d.0", i)) {
			t.Errorf("app%d lost its update:\n%s", i, got)
		}
	}
	if gittest.Git(t, f.bare, "show", "main:README.md") != "racing human" {
		t.Error("the human's push was overwritten")
	}
	if n := gittest.Git(t, f.bare, "rev-list", "--count", "--grep=Shipbot-Request", "main"); n != fmt.Sprint(apps) {
		t.Errorf("%s shipbot commits, want %d", n, apps)
	}
}

// Ten people confirm rollbacks of the same app at once: each either lands as
// its own commit or is told the app changed under it; nothing is lost and the
// remote ends as a serial run would leave it.
func TestConcurrentSameAppEachLandsOrIsTold(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	const n = 10
	plans := make([]*gitops.Plan, n)
	for i := range n {
		req := gitops.Request{ID: fmt.Sprintf("shp-same-%d", i), Action: gitops.ActionRollback, App: "checkout", Env: "prod", Tag: fmt.Sprintf("1.3.%d", i), User: "alice"}
		resp := f.svc.Handle(ctx, req)
		if resp.Plan == nil {
			t.Fatalf("plan %d: %s", i, resp.Text)
		}
		resp.Plan.Answer = "yes, deploy " + req.Tag // tags never deployed
		plans[i] = resp.Plan
	}
	before := gittest.Git(t, f.bare, "rev-list", "--count", "main")
	results := make([]gitops.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = f.svc.Confirm(ctx, plans[i]) })
	}
	wg.Wait()
	landed := 0
	var winner string
	for i, r := range results {
		switch r.Outcome {
		case gitops.OutcomeCommitted:
			landed++
			winner = fmt.Sprintf("1.3.%d", i)
		case gitops.OutcomeRejected:
			if !strings.Contains(r.Text, "changed since you confirmed") {
				t.Errorf("request %d rejected without saying why: %s", i, r.Text)
			}
		default:
			t.Errorf("request %d: %s: %s", i, r.Outcome, r.Text)
		}
	}
	// All planned from 1.4.2: only the first to be written still starts there.
	if landed != 1 {
		t.Fatalf("%d landed, want exactly 1", landed)
	}
	after := gittest.Git(t, f.bare, "rev-list", "--count", "main")
	if fmt.Sprint(mustAtoi(t, before)+1) != after {
		t.Errorf("commits %s -> %s, want one more", before, after)
	}
	if got := gittest.Git(t, f.bare, "show", "main:apps/checkout/overlays/prod/kustomization.yaml"); !strings.Contains(got, "newTag: "+winner+" # live") {
		t.Errorf("remote has\n%s\nwant the landed request's tag %s", got, winner)
	}
}

func mustAtoi(t *testing.T, s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Many requests read the repo at once (plans, status, history) while
// confirmed changes are written: under -race this proves the storage is
// guarded.
func TestConcurrentReadsAndWrites(t *testing.T) {
	const apps = 8
	f := newFixture(t, apps)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range apps {
		wg.Go(func() {
			req := gitops.Request{ID: fmt.Sprintf("shp-rw-%d", i), Action: gitops.ActionRollback, App: fmt.Sprintf("app%d", i), Env: "prod", Tag: fmt.Sprintf("0.%d.1", i), User: "alice"}
			resp := f.svc.Handle(ctx, req)
			if resp.Plan == nil {
				t.Errorf("plan %d: %s", i, resp.Text)
				return
			}
			resp.Plan.Answer = "yes, deploy " + req.Tag // tags never deployed
			if got := f.svc.Confirm(ctx, resp.Plan); got.Outcome != gitops.OutcomeCommitted {
				t.Errorf("confirm %d: %s", i, got.Text)
			}
		})
		wg.Go(func() {
			for j := range 5 {
				got := f.svc.Handle(ctx, gitops.Request{ID: fmt.Sprintf("shp-h-%d-%d", i, j), Action: gitops.ActionHistory, App: "checkout", Env: "prod", User: "alice"})
				if got.Outcome != gitops.OutcomeAnswered || !strings.Contains(got.Text, "1.4.1 -> 1.4.2") {
					t.Errorf("history %d: %s", i, got.Text)
				}
				if _, err := f.svc.PreviousTag(ctx, fmt.Sprintf("app%d", i), "prod"); err != nil && !errors.Is(err, gitops.ErrNoPrevious) {
					t.Errorf("previous tag: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if n := gittest.Git(t, f.bare, "rev-list", "--count", "--grep=Shipbot-Request", "main"); n != fmt.Sprint(apps) {
		t.Errorf("%s shipbot commits, want %d", n, apps)
	}
}

func writeFile(p, content string) error { return os.WriteFile(p, []byte(content), 0o644) }

// A change the policy says needs approvals is never merged directly: without
// a forge to review it on, it is refused at plan time.
func TestReviewRequiredIsNotMergedDirectly(t *testing.T) {
	g := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) {
		o.Authorizer = &FakeAuthorizer{AuthorizeFunc: func(q gitops.AuthzQuery) gitops.Decision {
			return gitops.Decision{Allowed: true, Review: gitops.Review{Approvals: 2, Group: "sre"}}
		}}
	})
	resp := g.svc.Handle(context.Background(), gitops.Request{ID: "shp-rv", Action: gitops.ActionPromote, App: "checkout", FromEnv: "staging", Env: "prod", Why: "OPS-1", User: "bob"})
	if resp.Outcome != gitops.OutcomeRejected || resp.Plan != nil || !strings.Contains(resp.Text, "needs 2 approvals from sre") || !strings.Contains(resp.Text, "no forge configured") {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	if n := gittest.Git(t, g.bare, "rev-list", "--count", "main"); n != "3" {
		t.Errorf("%s commits, want the 3 seeded", n)
	}
}
