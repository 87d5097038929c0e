package gitops_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// withWindows adds two freeze windows (UTC): the weekend in prod, in effect
// at the fixture's clock (Saturday 2026-11-21 10:00), and a night in
// staging, not.
func withWindows(o *gitops.ServiceOptions) {
	week := func(s string) gitops.WeekTime {
		w, err := gitops.ParseWeekTime(s)
		if err != nil {
			panic(err)
		}
		return w
	}
	o.FreezeWindows = []gitops.FreezeWindow{
		{Name: "weekend", Envs: []string{"prod"}, Location: time.UTC, From: week("Fri 16:00"), To: week("Mon 08:00")},
		{Name: "nightly", Envs: []string{"staging"}, Location: time.UTC, From: week("Mon 22:00"), To: week("Tue 06:00")},
	}
}

func (f *fixture) confirm(t *testing.T, req gitops.Request) gitops.Response {
	t.Helper()
	resp := f.svc.Handle(context.Background(), req)
	if resp.Plan == nil {
		return resp
	}
	return f.svc.Confirm(context.Background(), resp.Plan)
}

func ask(f *fixture, req gitops.Request) gitops.Response {
	return f.svc.Handle(context.Background(), req)
}

// Freezes are visible: `freezes` lists them and the windows, status and
// health show them, and a second freeze says who froze and why instead of
// replacing the first.
func TestFreezesAreVisible(t *testing.T) {
	f := newFixtureWith(t, 0, withWindows)
	if r := f.confirm(t, gitops.Request{ID: "shp-freeze", Action: gitops.ActionFreeze, Env: "prod", Why: "release week", Until: "2d", User: "carol"}); r.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("freeze: %s", r.Text)
	}
	before := f.head(t)

	second := ask(f, gitops.Request{ID: "shp-freeze2", Action: gitops.ActionFreeze, Env: "prod", Why: "my own reason", User: "bob"})
	want := "prod is already frozen: frozen by carol since 2026-11-21 10:00 UTC until 2026-11-23 10:00 UTC (release week) [shp-freeze]. A second freeze would replace it, so nothing was written; to change it, `unfreeze prod` first, then `freeze prod` again"
	if second.Outcome != gitops.OutcomeRejected || second.Plan != nil || !strings.Contains(second.Text, want) {
		t.Fatalf("second freeze: %s: %s", second.Outcome, second.Text)
	}
	if f.head(t) != before {
		t.Fatal("the second freeze wrote")
	}

	list := ask(f, gitops.Request{ID: "shp-list", Action: gitops.ActionFreezes, User: "alice"})
	wantList := "Freezes in effect (2026-11-21 10:00 UTC):\n" +
		"  prod     FROZEN by carol since 2026-11-21 10:00 UTC until 2026-11-23 10:00 UTC (in 2d): release week [shp-freeze]; blocks promote\n" +
		"  prod     FROZEN by the \"weekend\" freeze window (Fri 16:00 to Mon 08:00, UTC) until 2026-11-23 08:00 UTC (in 46h); blocks promote\n" +
		"Freeze windows of the configuration:\n" +
		"  weekend (prod): Fri 16:00 to Mon 08:00, UTC, blocks promote; IN EFFECT NOW, until 2026-11-23 08:00 UTC (in 46h)\n" +
		"  nightly (staging): Mon 22:00 to Tue 06:00, UTC, blocks promote; next from 2026-11-23 22:00 UTC (in 2d)\n" +
		"`freeze ENV [until WHEN] --why TEXT` sets a freeze, `unfreeze ENV` lifts it; --break-glass overrides one for those the policy allows.\n"
	if list.Outcome != gitops.OutcomeAnswered || list.Text != wantList {
		t.Errorf("freezes: %s:\n%s\nwant:\n%s", list.Outcome, list.Text, wantList)
	}
	if r := ask(f, gitops.Request{ID: "shp-list2", Action: gitops.ActionFreezes, User: "mallory"}); r.Outcome != gitops.OutcomeDenied {
		t.Errorf("freezes for mallory: %s: %s", r.Outcome, r.Text)
	}

	status := ask(f, gitops.Request{ID: "shp-st", Action: gitops.ActionStatus, App: "checkout", User: "alice"})
	if !strings.Contains(status.Text, "\n  prod     1.4.2") ||
		!strings.Contains(status.Text, "\n           FROZEN by carol since 2026-11-21 10:00 UTC until 2026-11-23 10:00 UTC (in 2d): release week [shp-freeze]; blocks promote\n           FROZEN by the \"weekend\" freeze window") ||
		strings.Count(status.Text, "FROZEN") != 2 {
		t.Errorf("status does not show prod's freezes (and only those):\n%s", status.Text)
	}
	health := ask(f, gitops.Request{ID: "shp-h", Action: gitops.ActionHealth, Env: "prod", User: "alice"})
	if !strings.HasPrefix(health.Text, "prod is FROZEN by carol since 2026-11-21 10:00 UTC until 2026-11-23 10:00 UTC (in 2d): release week [shp-freeze]; blocks promote\nprod is FROZEN by the \"weekend\" freeze window") {
		t.Errorf("health does not start with prod's freezes:\n%s", health.Text)
	}
	if h := ask(f, gitops.Request{ID: "shp-h2", Action: gitops.ActionHealth, Env: "staging", User: "alice"}); strings.Contains(h.Text, "FROZEN") {
		t.Errorf("staging is not frozen:\n%s", h.Text)
	}
}

// A break-glass plan says, before yes, which freezes it overrides and that
// it will be recorded; the audit lists the freeze, the unfreeze and the
// break-glass change with its field and flag.
func TestBreakGlassPlanIsLoudAndAudited(t *testing.T) {
	f := newFixtureWith(t, 0, withWindows)
	ctx := context.Background()
	if r := f.confirm(t, gitops.Request{ID: "shp-freeze", Action: gitops.ActionFreeze, Env: "prod", Why: "release week", Until: "2d", User: "carol"}); r.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("freeze: %s", r.Text)
	}
	bg := gitops.Request{ID: "shp-bg", Action: gitops.ActionPromote, App: "checkout", FromEnv: "staging", Env: "prod", Why: "OPS-1", User: "bob", BreakGlass: true}
	plan := ask(f, bg)
	if plan.Outcome != gitops.OutcomeConfirm {
		t.Fatalf("break-glass plan: %s: %s", plan.Outcome, plan.Text)
	}
	overrides := "prod is in the \"weekend\" freeze window (Fri 16:00 to Mon 08:00, UTC); and prod was frozen by carol until 2026-11-23 10:00 UTC (release week)"
	wantHead := "[shp-bg] promote checkout from staging to prod: 1.4.2 -> 1.5.0 [BREAK-GLASS: overrides a freeze of prod]\n" +
		"BREAK-GLASS: this promote overrides a freeze: " + overrides + ". On yes it lands anyway and is recorded as a break-glass change: the commit's Break-glass trailer, a BREAK-GLASS line in the commit and in the reply, and the break-glass flag of `shipbot audit`.\n" +
		"why: OPS-1\n```\n"
	if !strings.HasPrefix(plan.Text, wantHead) {
		t.Errorf("plan:\n%s\nwant it to start with:\n%s", plan.Text, wantHead)
	}
	done := f.svc.Confirm(ctx, plan.Plan)
	if done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("confirm: %s", done.Text)
	}
	// Without a freeze to override, --break-glass is said to change nothing.
	// (A freeze blocks promotions only: a rollback is not frozen.)
	ord := ask(f, gitops.Request{ID: "shp-bg2", Action: gitops.ActionRollback, App: "checkout", Env: "prod", Tag: "1.4.1", Why: "OPS-2", User: "bob", BreakGlass: true})
	if !strings.Contains(ord.Text, "\n--break-glass: nothing to override, prod is not frozen for rollback now; this is an ordinary change and is not recorded as break-glass.\n") || strings.Contains(ord.Text, "[BREAK-GLASS") {
		t.Errorf("break-glass without a freeze:\n%s", ord.Text)
	}

	if r := f.confirm(t, gitops.Request{ID: "shp-unfreeze", Action: gitops.ActionUnfreeze, Env: "prod", User: "carol"}); r.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("unfreeze: %s", r.Text)
	}
	// A freeze written by hand into the file.
	stored := gittest.Git(t, f.bare, "show", "main:"+gitops.FreezesPath)
	gittest.Seed(t, f.bare, map[string]string{gitops.FreezesPath: strings.Replace(stored, "freezes: []", "freezes:\n  - env: staging\n    by: mallory\n    why: by hand\n    since: 2026-11-21T09:00:00Z\n    request: none", 1)}, "freeze staging by hand")

	good := &FakeChecker{CheckFunc: func(c *object.Commit) (string, string) {
		if c.Committer.Email == "shipbot@example.com" {
			return gitops.SignatureGood, "k"
		}
		return gitops.SignatureUnsigned, ""
	}}
	recs, err := f.svc.Audit(ctx, gitops.AuditOptions{Checker: good})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ action, app, env, from, to, by, req, flags, breakGlass string }
	var got []row
	for _, r := range recs[:4] {
		got = append(got, row{r.Action, r.App, r.Env, r.From, r.To, r.RequestedBy, r.RequestID, strings.Join(r.Flags, ","), r.BreakGlass})
	}
	want := []row{
		{"freeze", "*", "staging", "open", "frozen", "Test Human", "", "not-via-shipbot,signature-unsigned", ""},
		{"unfreeze", "*", "prod", "frozen until 2026-11-23T10:00:00Z", "open", "carol", "shp-unfreeze", "", ""},
		{"promote", "checkout", "prod", "1.4.2", "1.5.0", "bob", "shp-bg", "break-glass", overrides},
		{"freeze", "*", "prod", "open", "frozen until 2026-11-23T10:00:00Z", "carol", "shp-freeze", "", ""},
	}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("record %d = %+v\nwant        %+v", i, got[i], want[i])
		}
	}
	if recs[3].Justification != "release week" {
		t.Errorf("the freeze's justification = %q", recs[3].Justification)
	}
	// --app leaves the environment-wide records out; --env keeps them.
	byApp, _ := f.svc.Audit(ctx, gitops.AuditOptions{Checker: good, App: "checkout"})
	for _, r := range byApp {
		if r.App == "*" {
			t.Errorf("--app checkout lists %+v", r)
		}
	}
	byEnv, _ := f.svc.Audit(ctx, gitops.AuditOptions{Checker: good, Env: "staging"})
	if len(byEnv) == 0 || byEnv[0].Action != "freeze" || byEnv[0].Env != "staging" {
		t.Errorf("--env staging: %+v", byEnv)
	}
}
