package gitops_test

import (
	"context"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// After a restart or a failover, the changes landed within the watch
// timeout whose thread waits are listed, rebuilt from their trailers, so
// that the new leader follows them again: shipbot's own commits with a
// Chat-Thread only.
func TestUnfinishedChangesAreFollowedAgain(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) {
		o.Watcher = &FakeChangeWatcher{}
		o.Now = func() time.Time { return now }
	})
	ctx := context.Background()
	ship := func(req gitops.Request) string {
		t.Helper()
		resp := f.svc.Handle(ctx, req)
		if resp.Plan == nil {
			t.Fatalf("%s: %s", resp.Outcome, resp.Text)
		}
		done := f.svc.Confirm(ctx, resp.Plan)
		if done.Outcome != gitops.OutcomeCommitted {
			t.Fatalf("%s: %s", done.Outcome, done.Text)
		}
		return done.Commit
	}
	inSlack := rollback("alice", "checkout", "OPS-1")
	inSlack.Thread = "slack:C0OPS:1700000000.000100"
	first := ship(inSlack)
	if tr := gitops.ParseTrailers(gittest.Git(t, f.bare, "log", "-1", "--format=%B")); tr[gitops.TrailerThread] != inSlack.Thread {
		t.Fatalf("trailers %v", tr)
	}
	// A change from a chat without threads, and a human's commit.
	ship(gitops.Request{ID: "shp-local", Action: gitops.ActionRollback, App: "checkout", Env: "prod", Why: "OPS-2", User: "bob"})
	gittest.Seed(t, f.bare, map[string]string{"README.md": "by hand\n"}, "docs")

	got, err := f.svc.Unfinished(ctx, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d unfinished changes, want the one with a thread: %+v", len(got), got)
	}
	u := got[0]
	if u.Commit != first || u.Thread != inSlack.Thread || u.Plan.Request.ID != inSlack.ID || u.Plan.From != "1.4.2" || u.Plan.To != "1.4.1" ||
		u.Plan.Summary != "rollback checkout in prod: 1.4.2 -> 1.4.1" || u.Plan.Target.Path != "apps/checkout/overlays/prod" {
		t.Errorf("unfinished = %+v, plan %+v", u, u.Plan)
	}

	// Later than the watch timeout: nothing is waited on any more.
	now = now.Add(6 * time.Minute)
	if got, err := f.svc.Unfinished(ctx, 5*time.Minute); err != nil || len(got) != 0 {
		t.Errorf("after the timeout: %+v, %v", got, err)
	}
}
