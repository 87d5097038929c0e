package gitops_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
)

var confirmKey = []byte("0123456789abcdef0123456789abcdef-test-key")

func withConfirmKey(o *gitops.ServiceOptions) { o.ConfirmKey = confirmKey }

// A plan shown by one replica is confirmed on another (the first is gone):
// the token carries what re-planning needs, and the change lands once.
func TestSealedPlanConfirmedOnAnotherReplica(t *testing.T) {
	f := newFixtureWith(t, 0, withConfirmKey)
	ctx := context.Background()
	before := f.head(t)
	resp := f.svc.Handle(ctx, rollback("alice", "checkout", "https://acme.pagerduty.com/incidents/P1X2Y3Z"))
	if resp.Plan == nil {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	token, err := f.svc.Seal(resp.Plan, "U-alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(token) > 2000 {
		t.Errorf("token is %d bytes; a Slack button value holds 2000", len(token))
	}

	other := f.replica(t)
	p, r := other.Resume(ctx, token, "U-alice")
	if p == nil {
		t.Fatalf("resume: %s: %s", r.Outcome, r.Text)
	}
	if p.From != "1.4.2" || p.To != "1.4.1" || p.Request.ID != resp.Plan.Request.ID {
		t.Errorf("resumed plan %s -> %s (%s)", p.From, p.To, p.Request.ID)
	}
	done := other.Confirm(ctx, p)
	if done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("confirm: %s: %s", done.Outcome, done.Text)
	}
	if gittest.Git(t, f.bare, "rev-parse", "main~1") != before || f.head(t) != done.Commit {
		t.Fatal("want exactly one new commit on main")
	}

	// The same click again (a redelivery, a double click, a third replica)
	// is answered with that commit, never a new plan one step further.
	p2, again := f.replica(t).Resume(ctx, token, "U-alice")
	if p2 != nil || !strings.Contains(again.Text, done.Commit[:7]) {
		t.Errorf("second resume: plan %v, %s: %s", p2 != nil, again.Outcome, again.Text)
	}
	if f.head(t) != done.Commit {
		t.Error("a second commit landed")
	}
}

func TestSealedPlanRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWith(t, 0, withConfirmKey)
	resp := f.svc.Handle(ctx, rollback("alice", "checkout", "x"))
	token, err := f.svc.Seal(resp.Plan, "U-alice")
	if err != nil {
		t.Fatal(err)
	}
	before := f.head(t)

	// Forged: one byte of the payload changed, or another key.
	i := strings.IndexByte(token, '.') + 5
	forged := token[:i] + string(rune(token[i]^1)) + token[i+1:]
	wrongKey := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) { o.ConfirmKey = []byte(strings.Repeat("k", 32)) })
	noKey := newFixture(t, 0)
	for name, c := range map[string]struct {
		svc      *gitops.Service
		token    string
		answerer string
		want     string
	}{
		"forged payload":   {f.svc, forged, "U-alice", "could not be checked"},
		"another key":      {wrongKey.svc, token, "U-alice", "could not be checked"},
		"no key":           {noKey.svc, token, "U-alice", "could not be checked"},
		"not a token":      {f.svc, "yes", "U-alice", "could not be checked"},
		"someone else":     {f.svc, token, "U-mallory", "only the requester"},
		"truncated":        {f.svc, token[:len(token)-3], "U-alice", "could not be checked"},
		"version replaced": {f.svc, "v2" + token[2:], "U-alice", "could not be checked"},
	} {
		p, r := c.svc.Resume(ctx, c.token, c.answerer)
		if p != nil || r.Outcome == gitops.OutcomeCommitted || !strings.Contains(r.Text, c.want) {
			t.Errorf("%s: plan %v, %s: %s", name, p != nil, r.Outcome, r.Text)
		}
	}

	// Expired: the question was open ConfirmTimeout (2m by default).
	late := f.opts
	late.Now = func() time.Time { return f.opts.Now().Add(3 * time.Minute) }
	lateSvc, err := gitops.NewService(late)
	if err != nil {
		t.Fatal(err)
	}
	if p, r := lateSvc.Resume(ctx, token, "U-alice"); p != nil || r.Outcome != gitops.OutcomeCancelled {
		t.Errorf("expired: plan %v, %s: %s", p != nil, r.Outcome, r.Text)
	}
	if f.head(t) != before {
		t.Fatal("a refused confirmation wrote")
	}

	// The branch moved under the plan and the change is another one now:
	// nothing is written and the new diff is shown.
	human := gittest.Seed(t, f.bare, map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": overlay("1.4.3")}, "hotfix 1.4.3 by hand")
	p, r := f.replica(t).Resume(ctx, token, "U-alice")
	if p != nil || r.Outcome != gitops.OutcomeRejected || !strings.Contains(r.Text, "no longer the one you confirmed") || !strings.Contains(r.Text, "-    newTag: 1.4.3") {
		t.Errorf("moved: plan %v, %s: %s", p != nil, r.Outcome, r.Text)
	}
	if f.head(t) != human {
		t.Fatal("a changed plan was written")
	}
}

// An unrelated push does not change the diff: the resumed plan lands on top.
func TestSealedPlanSurvivesUnrelatedPush(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) {
		withConfirmKey(o)
		o.Catalog.Apps["web"] = map[string]gitops.Target{"prod": {App: "web", Env: "prod", Location: edit.Location{
			Layout: edit.LayoutKustomize, Path: "web/prod", Image: "ghcr.io/acme/web",
		}}}
	})
	gittest.Seed(t, f.bare, map[string]string{
		"web/base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
		"web/base/deployment.yaml":    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: ghcr.io/acme/web:1.0.0\n",
		"web/prod/kustomization.yaml": "resources:\n  - ../base\n",
	}, "web")
	resp := f.svc.Handle(ctx, gitops.Request{ID: gitops.NewRequestID("restart"), Action: gitops.ActionRestart, App: "web", Env: "prod", Why: "OPS-1", User: "alice"})
	if resp.Plan == nil {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	token, err := f.svc.Seal(resp.Plan, "U-alice")
	if err != nil {
		t.Fatal(err)
	}
	human := gittest.Seed(t, f.bare, map[string]string{"README.md": "edited by a human\n"}, "docs")
	// A replica whose clock is a minute later re-plans the restart with
	// the timestamp that was shown.
	other := f.replica(t, func(o *gitops.ServiceOptions) {
		o.Now = func() time.Time { return f.opts.Now().Add(time.Minute) }
	})
	p, r := other.Resume(ctx, token, "U-alice")
	if p == nil {
		t.Fatalf("resume: %s: %s", r.Outcome, r.Text)
	}
	if p.Restart != resp.Plan.Restart || p.Diff != resp.Plan.Diff {
		t.Errorf("restart re-planned as %q:\n%s\nwant %q:\n%s", p.Restart, p.Diff, resp.Plan.Restart, resp.Plan.Diff)
	}
	done := other.Confirm(ctx, p)
	if done.Outcome != gitops.OutcomeCommitted || gittest.Git(t, f.bare, "rev-parse", "main~1") != human {
		t.Fatalf("%s: %s", done.Outcome, done.Text)
	}
}

func TestConfirmKeyTooShort(t *testing.T) {
	f := newFixture(t, 0)
	o := f.opts
	o.ConfirmKey = []byte("short")
	if _, err := gitops.NewService(o); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("err = %v", err)
	}
	if _, err := f.svc.Seal(&gitops.Plan{}, "U"); err != gitops.ErrNoConfirmKey {
		t.Errorf("seal without a key: %v", err)
	}
}

// A freeze (and a rollback's pin) record when they were asked: re-planned
// later on another replica, the diff is the one shown.
func TestSealedFreezeResumesLater(t *testing.T) {
	ctx := context.Background()
	f := newFixtureWith(t, 0, withConfirmKey)
	at := f.opts.Now()
	for _, req := range []gitops.Request{
		{ID: "shp-freeze", Action: gitops.ActionFreeze, Env: "prod", Until: "4h", Why: "release train", User: "alice", At: at},
		{ID: "shp-pinning", Action: gitops.ActionRollback, App: "checkout", Env: "prod", Why: "OPS-1", User: "alice", At: at},
	} {
		resp := f.svc.Handle(ctx, req)
		if resp.Plan == nil {
			t.Fatalf("%s: %s: %s", req.ID, resp.Outcome, resp.Text)
		}
		token, err := f.svc.Seal(resp.Plan, "U-alice")
		if err != nil {
			t.Fatal(err)
		}
		later := f.replica(t, func(o *gitops.ServiceOptions) {
			o.Now = func() time.Time { return at.Add(90 * time.Second) }
		})
		p, r := later.Resume(ctx, token, "U-alice")
		if p == nil || p.Diff != resp.Plan.Diff {
			t.Errorf("%s re-planned 90 s later: %s: %s", req.ID, r.Outcome, r.Text)
		}
	}
}
