package gitops_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// FakeChecker answers signature checks with a function.
type FakeChecker struct {
	CheckFunc func(c *object.Commit) (string, string)
}

var _ gitops.SignatureChecker = (*FakeChecker)(nil)

func (f *FakeChecker) CheckCommit(c *object.Commit) (string, string) { return f.CheckFunc(c) }

func TestAuditRecordsAndFlags(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	resp := f.svc.Handle(ctx, rollback("alice", "checkout", "OPS-7"))
	done := f.svc.Confirm(ctx, resp.Plan)
	if done.Outcome != gitops.OutcomeCommitted {
		t.Fatal(done.Text)
	}
	// A commit that claims to be shipbot's but changes another tag than its trailers say.
	liar := gittest.Seed(t, f.bare, map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": overlay("6.6.6")},
		"rollback checkout in prod\n\nShipbot-Request: shp-fake\nShipbot-App: checkout\nShipbot-Env: prod\nShipbot-To: 1.4.0\n")

	checker := &FakeChecker{CheckFunc: func(c *object.Commit) (string, string) {
		if c.Hash.String() == done.Commit {
			return gitops.SignatureGood, "SHA256:key"
		}
		return gitops.SignatureUnsigned, ""
	}}
	recs, err := f.svc.Audit(ctx, gitops.AuditOptions{Checker: checker})
	if err != nil {
		t.Fatal(err)
	}
	byCommit := map[string]gitops.AuditRecord{}
	for _, r := range recs {
		byCommit[r.Commit] = r
	}
	if len(recs) != 7 { // bootstrap (prod and staging), 1.4.1, 1.4.2 (by hand), shipbot's rollback and its pin, the liar
		t.Errorf("%d records, want 7: %+v", len(recs), recs)
	}
	var ours, pin gitops.AuditRecord
	for _, r := range recs {
		switch {
		case r.Commit == done.Commit && r.Action == "pin":
			pin = r
		case r.Commit == done.Commit:
			ours = r
		}
	}
	if pin.App != "checkout" || pin.Env != "prod" || pin.From != "unpinned" || pin.To != "pinned to 1.4.1" || pin.RequestedBy != "alice" ||
		pin.Justification != "OPS-7" || pin.RequestID != resp.Plan.Request.ID || len(pin.Flags) != 0 {
		t.Errorf("the rollback's pin record = %+v", pin)
	}
	if ours.Action != "rollback" || ours.From != "1.4.2" || ours.To != "1.4.1" || ours.RequestedBy != "alice" ||
		ours.Justification != "OPS-7" || ours.RequestID != resp.Plan.Request.ID || ours.Signature != "good" || len(ours.Flags) != 0 || ours.Via != "direct" {
		t.Errorf("shipbot's record = %+v", ours)
	}
	if r := byCommit[liar]; strings.Join(r.Flags, ",") != "not-via-shipbot,signature-unsigned" {
		t.Errorf("a human commit with fake trailers: flags %v", r.Flags)
	}
	for _, r := range recs {
		if r.Commit != done.Commit && !contains(r.Flags, gitops.FlagNotViaShipbot) {
			t.Errorf("hand-made commit %s not flagged: %v", r.Commit, r.Flags)
		}
	}
	if recs[0].Commit != liar || recs[1].Commit != done.Commit || recs[1].Action != "rollback" || recs[2].Action != "pin" {
		t.Errorf("not newest first: %s, %s", recs[0].Commit, recs[1].Commit)
	}

	// --since filters by commit date; shipbot's commit carries the fixture's
	// clock (2026-11-21 10:00), later than the humans' real-time commits.
	recent, err := f.svc.Audit(ctx, gitops.AuditOptions{Checker: checker, Since: time.Date(2026, 11, 21, 9, 59, 0, 0, time.UTC), App: "checkout", Env: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if time.Now().Before(time.Date(2026, 11, 21, 9, 59, 0, 0, time.UTC)) && (len(recent) != 1 || recent[0].Commit != done.Commit) {
		t.Errorf("since 09:59: %+v", recent)
	}
	if _, err := f.svc.Audit(ctx, gitops.AuditOptions{Checker: checker, App: "nope"}); err == nil {
		t.Error("unknown app accepted")
	}
}

// A shipbot-signed commit whose trailers do not match its change is flagged.
func TestAuditTrailersMismatch(t *testing.T) {
	f := newFixture(t, 0)
	work := t.TempDir() + "/w"
	gittest.Git(t, "", "clone", "--quiet", f.bare, work)
	if err := writeFile(work+"/apps/checkout/overlays/prod/kustomization.yaml", overlay("9.9.9")); err != nil {
		t.Fatal(err)
	}
	// Committed as shipbot (the committer identity is not a secret).
	cmd := exec.Command("git", "commit", "--quiet", "-am",
		"rollback checkout in prod: 1.4.2 -> 1.4.1\n\nShipbot-Request: shp-x\nShipbot-Action: rollback\nShipbot-App: checkout\nShipbot-Env: prod\nShipbot-To: 1.4.1")
	cmd.Dir = work
	cmd.Env = append(gittest.Env(t.TempDir()), "GIT_COMMITTER_NAME=shipbot", "GIT_COMMITTER_EMAIL=shipbot@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	gittest.Git(t, work, "push", "--quiet", "origin", "HEAD:main")
	recs, err := f.svc.Audit(context.Background(), gitops.AuditOptions{Checker: &FakeChecker{CheckFunc: func(*object.Commit) (string, string) { return "good", "k" }}})
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].To != "9.9.9" || !contains(recs[0].Flags, gitops.FlagTrailersMismatch) {
		t.Errorf("newest record %+v, want to=9.9.9 flagged trailers-mismatch", recs[0])
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
