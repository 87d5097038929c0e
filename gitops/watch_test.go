package gitops_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// FakeWatcher plays a sequence of statuses and ends with Result.
type FakeWatcher struct {
	Steps  []gitops.SyncStatus
	Result gitops.SyncStatus
	Err    error
	Got    struct{ App, Env, Commit string }
}

var _ gitops.SyncWatcher = (*FakeWatcher)(nil)

func (f *FakeWatcher) Watch(_ context.Context, t gitops.Target, commit string, progress func(gitops.SyncStatus)) (gitops.SyncStatus, error) {
	f.Got.App, f.Got.Env, f.Got.Commit = t.App, t.Env, commit
	for _, st := range f.Steps {
		progress(st)
	}
	return f.Result, f.Err
}

func TestWatchOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		w       *FakeWatcher
		outcome gitops.Outcome
		text    []string
	}{
		{"healthy", &FakeWatcher{
			Steps:  []gitops.SyncStatus{{Sync: "OutOfSync", Health: "Healthy"}, {Sync: "Synced", Health: "Progressing", Phase: "Running"}},
			Result: gitops.SyncStatus{Sync: "Synced", Health: "Healthy", Phase: "Succeeded"}},
			gitops.OutcomeHealthy, []string{"checkout prod 1.4.1 is Synced and Healthy ("}},
		{"degraded", &FakeWatcher{
			Result: gitops.SyncStatus{Sync: "Synced", Health: "Degraded", Message: "Deployment/checkout: progress deadline exceeded"}, Err: gitops.ErrDegraded},
			gitops.OutcomeDegraded, []string{"is Synced / Degraded", "progress deadline exceeded", "To roll back: `rollback checkout prod to 1.4.2 --why <incident>`"}},
		{"argo down", &FakeWatcher{Err: errors.New("argocd: connection refused")},
			gitops.OutcomeUnwatched, []string{"could not confirm that checkout prod 1.4.1 is live: argocd: connection refused", "stands; check with `status checkout`"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) { o.Watcher = tc.w })
			ctx := context.Background()
			resp := f.svc.Handle(ctx, rollback("alice", "checkout", "OPS-1"))
			done := f.svc.Confirm(ctx, resp.Plan)
			var progress []string
			got := f.svc.Watch(ctx, resp.Plan, done.Commit, func(s string) { progress = append(progress, s) })
			if got.Outcome != tc.outcome {
				t.Fatalf("outcome %s: %s", got.Outcome, got.Text)
			}
			for _, want := range tc.text {
				if !strings.Contains(got.Text, want) {
					t.Errorf("reply %q lacks %q", got.Text, want)
				}
			}
			if tc.w.Got.Commit != done.Commit || tc.w.Got.App != "checkout" || tc.w.Got.Env != "prod" {
				t.Errorf("watched %+v, want checkout/prod at %s", tc.w.Got, done.Commit)
			}
			if len(progress) != len(tc.w.Steps) {
				t.Errorf("progress %q", progress)
			}
			if f.head(t) != done.Commit {
				t.Error("the commit does not stand")
			}
		})
	}
}

// A watcher's own error for a failed sync still gives the degraded reply,
// with the controller's reason: the outcome follows the status.
func TestWatchFailedSyncWithOwnError(t *testing.T) {
	w := &FakeWatcher{Result: gitops.SyncStatus{Sync: "OutOfSync", Health: "Missing", Phase: "Failed", Message: "one or more objects failed to apply"}, Err: errors.New("argo: sync failed")}
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) { o.Watcher = w })
	ctx := context.Background()
	resp := f.svc.Handle(ctx, rollback("alice", "checkout", "OPS-1"))
	done := f.svc.Confirm(ctx, resp.Plan)
	got := f.svc.Watch(ctx, resp.Plan, done.Commit, nil)
	if got.Outcome != gitops.OutcomeDegraded || !strings.Contains(got.Text, "one or more objects failed to apply") || !strings.Contains(got.Text, "To roll back") {
		t.Fatalf("%s: %s", got.Outcome, got.Text)
	}
}

// FakeChangeWatcher is a ChangeWatcher: Run plays the watch.
type FakeChangeWatcher struct {
	Run func(c gitops.WatchedChange, progress func(gitops.SyncStatus)) (gitops.SyncStatus, error)
	Got gitops.WatchedChange
}

var _ gitops.ChangeWatcher = (*FakeChangeWatcher)(nil)

func (f *FakeChangeWatcher) Watch(context.Context, gitops.Target, string, func(gitops.SyncStatus)) (gitops.SyncStatus, error) {
	panic("the core must prefer WatchChange")
}

func (f *FakeChangeWatcher) WatchChange(_ context.Context, c gitops.WatchedChange, progress func(gitops.SyncStatus)) (gitops.SyncStatus, error) {
	f.Got = c
	return f.Run(c, progress)
}

// watchWith confirms the rollback of checkout prod (1.4.2 -> 1.4.1) and
// watches it through w; before is the tip before the commit.
func watchWith(t *testing.T, w gitops.SyncWatcher) (f *fixture, got gitops.Response, progress []string, commit, before string) {
	t.Helper()
	f = newFixtureWith(t, 0, func(o *gitops.ServiceOptions) { o.Watcher = w })
	ctx := context.Background()
	resp := f.svc.Handle(ctx, rollback("alice", "checkout", "OPS-1"))
	before = f.head(t)
	done := f.svc.Confirm(ctx, resp.Plan)
	if done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("%s: %s", done.Outcome, done.Text)
	}
	got = f.svc.Watch(ctx, resp.Plan, done.Commit, func(s string) { progress = append(progress, s) })
	return f, got, progress, done.Commit, before
}

func wantText(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%q lacks %q", text, w)
		}
	}
}

// Before Argo CD has our commit it shows the previous revision Synced and
// Healthy: the progress must not read as if that were ours, and says when
// someone has to sync.
func TestWatchProgressLines(t *testing.T) {
	var before string
	w := &FakeChangeWatcher{Run: func(c gitops.WatchedChange, progress func(gitops.SyncStatus)) (gitops.SyncStatus, error) {
		progress(gitops.SyncStatus{Sync: "Synced", Health: "Healthy", Revision: before, Message: "waiting for Argo CD to see " + c.Commit[:7]})
		progress(gitops.SyncStatus{Sync: "OutOfSync", Health: "Healthy", Revision: c.Commit, Message: "no automated sync: waiting for someone to sync it"})
		progress(gitops.SyncStatus{Sync: "Synced", Health: "Progressing", Revision: c.Commit, Phase: "Succeeded", Message: "Deployment shop/checkout: Waiting for rollout to finish"})
		st := gitops.SyncStatus{Sync: "Synced", Health: "Healthy", Revision: c.Commit, Phase: "Succeeded"}
		progress(st)
		return st, nil
	}}
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) { o.Watcher = w })
	ctx := context.Background()
	resp := f.svc.Handle(ctx, rollback("alice", "checkout", "OPS-1"))
	before = f.head(t)
	done := f.svc.Confirm(ctx, resp.Plan)
	var progress []string
	got := f.svc.Watch(ctx, resp.Plan, done.Commit, func(s string) { progress = append(progress, s) })
	if got.Outcome != gitops.OutcomeHealthy {
		t.Fatalf("%s: %s", got.Outcome, got.Text)
	}
	id := resp.Plan.Request.ID
	want := []string{
		"[" + id + "] checkout prod: not synced yet: Argo CD is at " + before[:10] + ", shipbot's commit is " + done.Commit[:10] + ": waiting for Argo CD to see " + done.Commit[:7],
		"[" + id + "] checkout prod: OutOfSync, Healthy: no automated sync: waiting for someone to sync it",
		"[" + id + "] checkout prod: Synced, Progressing (operation Succeeded): Deployment shop/checkout: Waiting for rollout to finish",
		"[" + id + "] checkout prod: Synced, Healthy (operation Succeeded)",
	}
	if d := cmp.Diff(want, progress); d != "" {
		t.Errorf("progress (-want +got):\n%s", d)
	}
	if w.Got.Tag != "1.4.1" || w.Got.Restart != "" || w.Got.Commit != done.Commit || w.Got.Ancestry == nil || w.Got.Target.App != "checkout" {
		t.Errorf("the watcher got %+v", w.Got)
	}
}

// Pods of our revision fail before Argo CD calls the app Degraded: the
// reply has the pod's own message and the rollback as one ready command.
func TestWatchRolloutFailureOffersRollback(t *testing.T) {
	pull := `Failed to pull image "registry.example.com/checkout:1.4.1": rpc error: code = NotFound desc = failed to pull and unpack image: registry.example.com/checkout:1.4.1: not found`
	w := &FakeChangeWatcher{Run: func(c gitops.WatchedChange, progress func(gitops.SyncStatus)) (gitops.SyncStatus, error) {
		f := &gitops.RolloutFailure{App: "checkout-prod", Revision: c.Commit, Pods: []gitops.PodFailure{
			{Pod: "shop/checkout-7d9f8c6b5-x2k4q", Workload: "Deployment shop/checkout", Reason: "ImagePullBackOff", Message: pull, Image: "registry.example.com/checkout:1.4.1"},
			{Pod: "shop/checkout-7d9f8c6b5-z9v1c", Workload: "Deployment shop/checkout", Reason: "ErrImagePull", Message: pull},
		}}
		return gitops.SyncStatus{Sync: "Synced", Health: "Progressing", Revision: c.Commit, Phase: "Succeeded"},
			&gitops.UserError{Message: "checkout-prod: pods fail", Err: fmt.Errorf("argo: app degraded: %w", f)}
	}}
	_, got, _, _, _ := watchWith(t, w)
	if got.Outcome != gitops.OutcomeDegraded {
		t.Fatalf("%s: %s", got.Outcome, got.Text)
	}
	wantText(t, got.Text, "checkout prod 1.4.1 fails to roll out (0.0 s after the commit): Pod shop/checkout-7d9f8c6b5-x2k4q: ImagePullBackOff: "+pull+" (and 1 more pod)",
		"\nTo roll back: `rollback checkout prod to 1.4.2 --why <incident>`")
	// The same, ready to send (a button in Slack), with the change's reason.
	if !strings.HasPrefix(got.Rollback, "rollback checkout prod to 1.4.2 --why \"") || strings.Count(got.Rollback, "\"") != 2 {
		t.Errorf("Rollback = %q", got.Rollback)
	}
}

// A sync window holds the sync beyond the watch: said as that, with until
// when, never as a permission problem; the commit stands.
func TestWatchSyncHeldByWindow(t *testing.T) {
	now := time.Date(2026, 3, 2, 16, 30, 0, 0, time.UTC)
	w := &FakeChangeWatcher{Run: func(c gitops.WatchedChange, progress func(gitops.SyncStatus)) (gitops.SyncStatus, error) {
		held := &gitops.SyncHeldError{At: now, ServerMessage: "cannot sync: blocked by sync window", Hold: gitops.SyncHold{
			Held: true, App: "checkout-prod", Until: time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC), Manual: true,
			Windows: []string{`deny "0 17 * * *" for 2h (Europe/Berlin)`}}}
		return gitops.SyncStatus{Sync: "OutOfSync", Health: "Healthy", Revision: c.Commit}, &gitops.UserError{Message: "held", Err: held}
	}}
	_, got, _, commit, _ := watchWith(t, w)
	if got.Outcome != gitops.OutcomeUnwatched {
		t.Fatalf("%s: %s", got.Outcome, got.Text)
	}
	wantText(t, got.Text, "checkout prod 1.4.1 is not live yet: an Argo CD sync window holds syncs of checkout-prod until 18:00 UTC",
		`(deny "0 17 * * *" for 2h (Europe/Berlin))`, "The commit "+commit[:10]+" stands")
	if strings.Contains(got.Text, "permission") || strings.Contains(got.Text, "To roll back") {
		t.Errorf("reply %q", got.Text)
	}
}

// CI pushed on top of shipbot's commit and Argo CD synced that: live when
// the newer commit contains ours and still sets our tag; superseded when it
// changed the tag.
func TestWatchLiveInNewerCommit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		outcome gitops.Outcome
		text    string
	}{
		{"field kept", map[string]string{"README.md": "CI was here\n"}, gitops.OutcomeHealthy, "is Synced and Healthy (0.0 s after the commit), in %s, a newer commit on top of ours."},
		{"field changed", map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": overlay("1.4.9")}, gitops.OutcomeUnwatched,
			"checkout prod 1.4.1 was superseded: Argo CD synced %s, a newer commit on top of ours that sets 1.4.9 instead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fx *fixture
			var newer string
			var lines []string
			w := &FakeChangeWatcher{Run: func(c gitops.WatchedChange, progress func(gitops.SyncStatus)) (gitops.SyncStatus, error) {
				newer = gittest.Seed(t, fx.bare, tc.files, "ci: bump")
				ok, err := c.Ancestry.IsAncestor(context.Background(), c.Commit, newer)
				if err != nil || !ok {
					t.Errorf("IsAncestor(ours, newer) = %v, %v", ok, err)
				}
				if ok, err := c.Ancestry.IsAncestor(context.Background(), newer, c.Commit); err != nil || ok {
					t.Errorf("IsAncestor(newer, ours) = %v, %v", ok, err)
				}
				progress(gitops.SyncStatus{Sync: "Synced", Health: "Progressing", Revision: newer, Phase: "Running"})
				return gitops.SyncStatus{Sync: "Synced", Health: "Healthy", Revision: newer, Phase: "Succeeded"}, nil
			}}
			fx = newFixtureWith(t, 0, func(o *gitops.ServiceOptions) { o.Watcher = w })
			ctx := context.Background()
			resp := fx.svc.Handle(ctx, rollback("alice", "checkout", "OPS-1"))
			done := fx.svc.Confirm(ctx, resp.Plan)
			got := fx.svc.Watch(ctx, resp.Plan, done.Commit, func(s string) { lines = append(lines, s) })
			if got.Outcome != tc.outcome {
				t.Fatalf("%s: %s", got.Outcome, got.Text)
			}
			wantText(t, got.Text, fmt.Sprintf(tc.text, newer[:10]))
			if len(lines) != 1 || !strings.Contains(lines[0], "Synced, Progressing (operation Running) at "+newer[:10]+" (contains "+done.Commit[:10]+")") {
				t.Errorf("progress %q", lines)
			}
		})
	}
}

func TestIsAncestorUnknownCommit(t *testing.T) {
	f := newFixture(t, 0)
	head := f.head(t)
	if _, err := f.svc.IsAncestor(context.Background(), head, "0badc0de0badc0de0badc0de0badc0de0badc0de"); err == nil {
		t.Error("no error for a commit the remote does not have")
	}
	if ok, err := f.svc.IsAncestor(context.Background(), head, head); err != nil || !ok {
		t.Errorf("a commit contains itself: %v, %v", ok, err)
	}
}

func TestElapsed(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                     "0.0 s",
		940 * time.Millisecond:                "0.9 s",
		1460 * time.Millisecond:               "1.5 s",
		9940 * time.Millisecond:               "9.9 s",
		9960 * time.Millisecond:               "10 s",
		42*time.Second + 400*time.Millisecond: "42 s",
		4*time.Minute + 5*time.Second:         "4 min 05 s",
		2*time.Hour + 3*time.Minute:           "2 h 03 min",
		-time.Second:                          "0.0 s",
	} {
		if got := gitops.Elapsed(d); got != want {
			t.Errorf("Elapsed(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestSyncHoldDescribe(t *testing.T) {
	now := time.Date(2026, 3, 2, 16, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    gitops.SyncHold
		want string
	}{
		{gitops.SyncHold{}, ""},
		{gitops.SyncHold{Held: true, App: "checkout-prod", Until: now.Add(90 * time.Minute)}, "an Argo CD sync window holds syncs of checkout-prod until 18:00 UTC"},
		{gitops.SyncHold{Held: true, App: "checkout-prod", Until: now.Add(3 * 24 * time.Hour)}, "an Argo CD sync window holds syncs of checkout-prod until Thu 5 Mar 16:30 UTC"},
		{gitops.SyncHold{Held: true, App: "checkout-prod", Beyond: true}, "an Argo CD sync window holds syncs of checkout-prod for more than a month"},
		{gitops.SyncHold{Held: true, App: "checkout-prod", Until: now.Add(time.Hour), ManualOverride: true}, "an Argo CD sync window holds syncs of checkout-prod until 17:30 UTC; a manual sync may pass"},
	} {
		if got := tc.h.Describe(now); got != tc.want {
			t.Errorf("Describe = %q, want %q", got, tc.want)
		}
	}
}

// A rollback started from a Degraded app: the watch times out before Argo
// CD has our commit. The Degraded is the previous revision's: not reported
// as ours, and no rollback of our change is offered.
func TestWatchTimeoutWithPreviousRevisionDegraded(t *testing.T) {
	var before string
	w := &FakeChangeWatcher{Run: func(c gitops.WatchedChange, progress func(gitops.SyncStatus)) (gitops.SyncStatus, error) {
		return gitops.SyncStatus{Sync: "OutOfSync", Health: "Degraded", Revision: before},
			&gitops.UserError{Message: "checkout-prod was not Synced and Healthy after 5 min 00 s", Err: errors.New("timed out")}
	}}
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) { o.Watcher = w })
	ctx := context.Background()
	resp := f.svc.Handle(ctx, rollback("alice", "checkout", "OPS-1"))
	before = f.head(t)
	done := f.svc.Confirm(ctx, resp.Plan)
	got := f.svc.Watch(ctx, resp.Plan, done.Commit, nil)
	if got.Outcome != gitops.OutcomeUnwatched || strings.Contains(got.Text, "To roll back") {
		t.Fatalf("%s: %s", got.Outcome, got.Text)
	}
	wantText(t, got.Text, "could not confirm that checkout prod 1.4.1 is live: checkout-prod was not Synced and Healthy after 5 min 00 s")
}

// heldWatcher is a watcher whose app a sync window holds.
type heldWatcher struct {
	FakeWatcher
	hold gitops.SyncHold
	err  error
}

func (h *heldWatcher) SyncHold(context.Context, gitops.Target, time.Time) (gitops.SyncHold, error) {
	return h.hold, h.err
}

// A plan says, before yes, when an Argo CD sync window holds the app's
// syncs; a window that can't be read changes nothing.
func TestPlanSaysWhenASyncWindowHolds(t *testing.T) {
	until := time.Date(2026, 11, 21, 18, 0, 0, 0, time.UTC)
	w := &heldWatcher{hold: gitops.SyncHold{Held: true, App: "checkout-prod", Until: until}}
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) { o.Watcher = w })
	req := gitops.Request{ID: gitops.NewRequestID("w1"), Action: gitops.ActionRollback, App: "checkout", Env: "prod", Why: "OPS-1", User: "alice"}
	resp := f.svc.Handle(context.Background(), req)
	if resp.Outcome != gitops.OutcomeConfirm || !strings.Contains(resp.Text, "an Argo CD sync window holds syncs of checkout-prod until") ||
		!strings.Contains(resp.Text, "the rollout waits for the window") {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	w.hold, w.err = gitops.SyncHold{}, errors.New("argocd: connection refused")
	req.ID = gitops.NewRequestID("w2")
	if resp := f.svc.Handle(context.Background(), req); resp.Outcome != gitops.OutcomeConfirm || strings.Contains(resp.Text, "sync window") {
		t.Fatalf("unreadable windows: %s: %s", resp.Outcome, resp.Text)
	}
}
