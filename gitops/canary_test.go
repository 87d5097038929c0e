package gitops_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
)

// canaryWatcher is a watcher that sees an Argo Rollout mid-canary.
type canaryWatcher struct {
	FakeChangeWatcher
	canary   *gitops.Canary
	abortErr error
	aborted  []gitops.Canary
	onAbort  func()
}

var _ gitops.Canaries = (*canaryWatcher)(nil)

func (w *canaryWatcher) Canary(context.Context, gitops.Target) (*gitops.Canary, error) {
	return w.canary, nil
}

func (w *canaryWatcher) AbortCanary(_ context.Context, c gitops.Canary) error {
	w.aborted = append(w.aborted, c)
	if w.onAbort != nil {
		w.onAbort()
	}
	return w.abortErr
}

// A rollback of an app whose Rollout is mid-canary says so in its plan,
// and its confirmation aborts the canary through Argo CD first, then
// reverts the tag in git: one request.
func TestRollbackAbortsACanaryInProgress(t *testing.T) {
	w := &canaryWatcher{canary: &gitops.Canary{ArgoApp: "checkout-prod", Namespace: "shop", Name: "checkout", Health: "Suspended", Message: "CanaryPauseStep"}}
	f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) { o.Watcher = w })
	ctx := context.Background()
	before := f.head(t)
	var headAtAbort string
	w.onAbort = func() { headAtAbort = f.head(t) }

	resp := f.svc.Handle(ctx, rollback("alice", "checkout", "OPS-1"))
	if resp.Plan == nil || !strings.Contains(resp.Text, "CANARY IN PROGRESS: Rollout shop/checkout is Suspended (CanaryPauseStep): confirming aborts it through Argo CD") {
		t.Fatalf("plan: %s", resp.Text)
	}
	if len(w.aborted) != 0 {
		t.Fatal("the plan aborted the canary before the confirmation")
	}
	done := f.svc.Confirm(ctx, resp.Plan)
	if done.Outcome != gitops.OutcomeCommitted || !strings.Contains(done.Text, "Aborted the canary of Rollout shop/checkout") {
		t.Fatalf("%s: %s", done.Outcome, done.Text)
	}
	if len(w.aborted) != 1 || w.aborted[0].Name != "checkout" || headAtAbort != before {
		t.Errorf("aborted %+v with the branch at %s (want before the commit, at %s)", w.aborted, headAtAbort, before)
	}
	if f.head(t) != done.Commit {
		t.Error("the rollback was not written")
	}

	// An abort Argo CD refuses does not stop the rollback in git.
	w2 := &canaryWatcher{canary: w.canary, abortErr: errors.New("permission denied")}
	f2 := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) { o.Watcher = w2 })
	resp = f2.svc.Handle(ctx, rollback("alice", "checkout", "OPS-2"))
	done = f2.svc.Confirm(ctx, resp.Plan)
	if done.Outcome != gitops.OutcomeCommitted || !strings.Contains(done.Text, "could not be aborted") {
		t.Fatalf("%s: %s", done.Outcome, done.Text)
	}
}
