package gitops_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
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
