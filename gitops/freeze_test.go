package gitops_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/gittest"
)

func TestWeekWindow(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata")
	}
	from, _ := gitops.ParseWeekTime("Fri 16:00")
	to, _ := gitops.ParseWeekTime("Mon 08:00")
	w := gitops.FreezeWindow{Name: "weekend", Envs: []string{"prod"}, Location: berlin, From: from, To: to}
	for when, want := range map[string]bool{
		"2026-11-20T15:59:00+01:00": false, // Friday before
		"2026-11-20T16:00:00+01:00": true,  // Friday 16:00 Berlin
		"2026-11-22T12:00:00+01:00": true,  // Sunday
		"2026-11-23T07:59:00+01:00": true,  // Monday morning
		"2026-11-23T08:00:00+01:00": false, // Monday 08:00
		"2026-11-20T15:30:00Z":      true,  // 16:30 in Berlin
		"2026-11-25T12:00:00+01:00": false, // Wednesday
	} {
		at, _ := time.Parse(time.RFC3339, when)
		if got := w.Active(at); got != want {
			t.Errorf("Active(%s) = %v, want %v", when, got, want)
		}
	}
	if _, err := gitops.ParseWeekTime("Funday 25:00"); err == nil {
		t.Error("bad week time accepted")
	}
}

// A freeze stored in the repo blocks promotions, not rollbacks; break-glass
// needs the right and a reason, and is recorded; unfreeze lifts it.
func TestFreezeBlocksPromoteNotRollback(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	confirm := func(req gitops.Request) gitops.Response {
		t.Helper()
		resp := f.svc.Handle(ctx, req)
		if resp.Plan == nil {
			return resp
		}
		return f.svc.Confirm(ctx, resp.Plan)
	}
	frz := confirm(gitops.Request{ID: "shp-freeze", Action: gitops.ActionFreeze, Env: "prod", Why: "release week", Until: "2d", User: "carol"})
	if frz.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("freeze: %s", frz.Text)
	}
	stored := gittest.Git(t, f.bare, "show", "main:"+gitops.FreezesPath)
	for _, want := range []string{"env: prod", "by: carol", "why: release week", "request: shp-freeze", "until: 2026-11-23T10:00:00Z"} {
		if !strings.Contains(stored, want) {
			t.Errorf("freezes file lacks %q:\n%s", want, stored)
		}
	}
	if subj := gittest.Git(t, f.bare, "log", "-1", "--format=%s"); subj != "freeze prod: frozen until 2026-11-23T10:00:00Z" {
		t.Errorf("subject %q", subj)
	}
	before := f.head(t)

	promote := gitops.Request{ID: "shp-p1", Action: gitops.ActionPromote, App: "checkout", FromEnv: "staging", Env: "prod", Why: "OPS-1", User: "alice"}
	resp := f.svc.Handle(ctx, promote)
	if resp.Outcome != gitops.OutcomeRejected || !strings.Contains(resp.Text, "prod was frozen by carol until 2026-11-23 10:00 UTC (release week): promote is blocked; rollback and restart still work") {
		t.Fatalf("promote during a freeze: %s: %s", resp.Outcome, resp.Text)
	}
	if f.head(t) != before {
		t.Fatal("a refused promote wrote")
	}
	if rb := confirm(rollback("alice", "checkout", "OPS-2")); rb.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("rollback during a freeze: %s", rb.Text)
	}

	// Break glass: refused without the right, allowed with it and a reason,
	// and said loudly in the commit and the reply.
	bg := promote
	bg.ID, bg.BreakGlass, bg.User = "shp-bg", true, "bob"
	f.denyAction = map[gitops.Action]bool{gitops.ActionBreakGlass: true}
	if r := f.svc.Handle(ctx, bg); r.Outcome != gitops.OutcomeRejected || !strings.Contains(r.Text, "bob may not break glass") {
		t.Fatalf("break glass without the right: %s", r.Text)
	}
	f.denyAction = nil
	noReason := bg
	noReason.Why = ""
	if r := f.svc.Handle(ctx, noReason); !strings.Contains(r.Text, "breaking glass needs a justification") {
		t.Fatalf("break glass without a reason: %s", r.Text)
	}
	done := confirm(bg)
	// The rollback above pinned checkout in prod: the promotion overrides
	// the freeze and the pin.
	if done.Outcome != gitops.OutcomeCommitted || !strings.Contains(done.Text, "BREAK-GLASS: this change overrode a freeze and a pin (prod was frozen by carol") ||
		!strings.Contains(done.Text, "; and checkout in prod is pinned to 1.4.1 by alice since 2026-11-21 10:00 UTC (OPS-2)") {
		t.Fatalf("break glass: %s: %s", done.Outcome, done.Text)
	}
	if tr := parseTrailersWithGit(t, gittest.Git(t, f.bare, "log", "-1", "--format=%B")); !strings.HasPrefix(tr["Break-glass"], "prod was frozen by carol") {
		t.Errorf("Break-glass trailer = %q", tr["Break-glass"])
	}

	// unfreeze lifts it; a second unfreeze says it is not frozen.
	if u := confirm(gitops.Request{ID: "shp-unfreeze", Action: gitops.ActionUnfreeze, Env: "prod", User: "carol"}); u.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("unfreeze: %s", u.Text)
	}
	if u := f.svc.Handle(ctx, gitops.Request{ID: "shp-unfreeze2", Action: gitops.ActionUnfreeze, Env: "prod", User: "carol"}); !strings.Contains(u.Text, "prod is not frozen") {
		t.Fatalf("second unfreeze: %s", u.Text)
	}
}
