package argo

import (
	"fmt"
	"strings"

	"github.com/shipbot/shipbot/gitops"
)

// verdict is where a watch stands.
type verdict int

const (
	pending  verdict = iota
	healthy          // the commit is Synced and Healthy
	degraded         // the commit synced, the app is Degraded
	failed           // the sync operation for the commit failed
)

// assess judges app against commit. source is the environment repo's
// source of a multi-source app (-1: single source). isOurs says whether a
// revision is commit or a newer one that contains it. Only an operation for
// such a revision counts: the app's state from before (a Degraded app
// being rolled back, an old failed sync) never decides the watch.
func assess(app *Application, commit string, isOurs func(string) bool, source int) (gitops.SyncStatus, verdict) {
	s := &app.Status
	op := s.OperationState
	st := gitops.SyncStatus{Sync: s.Sync.Status, Health: s.Health.Status, Revision: app.SyncedRevision(source)}
	resultOurs := isOurs(app.resultRevision(source))
	ours := op != nil && (resultOurs || isOurs(app.requestedRevision(source)))
	if ours {
		st.Phase = op.Phase
	}
	live := ours && op.Phase == PhaseSucceeded && resultOurs && isOurs(st.Revision)
	switch {
	case ours && (op.Phase == PhaseFailed || op.Phase == PhaseError):
		st.Message = failureMessage(app)
		return st, failed
	case live && s.Sync.Status == SyncSynced && s.Health.Status == HealthHealthy:
		if !sameRevision(st.Revision, commit) {
			st.Message = "live in " + short(st.Revision) + ", a newer commit that contains " + short(commit)
		}
		return st, healthy
	case live && s.Health.Status == HealthDegraded && reconciledSince(app):
		st.Message = degradedMessage(app)
		return st, degraded
	}
	st.Message = pendingMessage(app, ours, commit, isOurs, source)
	return st, pending
}

// reconciledSince reports whether the health was computed after the sync
// finished, so that a Degraded from before the sync doesn't count.
func reconciledSince(app *Application) bool {
	op := app.Status.OperationState
	at := app.Status.ReconciledAt
	return op.FinishedAt == nil || at == nil || !at.Before(*op.FinishedAt)
}

func pendingMessage(app *Application, ours bool, commit string, isOurs func(string) bool, source int) string {
	s := &app.Status
	var msgs []string
	synced := app.SyncedRevision(source)
	switch op := s.OperationState; {
	case ours:
		if rev := app.requestedRevision(source); rev != "" && !sameRevision(rev, commit) {
			msgs = append(msgs, "Argo CD syncs "+short(rev)+", a newer commit that contains "+short(commit))
		}
		msgs = append(msgs, op.Message)
	case op != nil && op.Phase == PhaseRunning:
		msgs = append(msgs, "another sync is running")
	case !isOurs(synced):
		msgs = append(msgs, "waiting for Argo CD to see "+short(commit))
	}
	if s.Health.Status != HealthHealthy {
		msgs = append(msgs, s.Health.Message)
		var res []string
		for _, r := range s.Resources {
			if r.Health != nil && r.Health.Status != HealthHealthy && r.Health.Message != "" {
				res = append(res, resourceName(r.Kind, r.Namespace, r.Name)+": "+r.Health.Message)
			}
		}
		msgs = append(msgs, limit(res)...)
	}
	msgs = append(msgs, conditionMessages(app)...)
	return joinMessages(msgs)
}

func failureMessage(app *Application) string {
	op := app.Status.OperationState
	msgs := []string{op.Message}
	var res []string
	if op.SyncResult != nil {
		for _, r := range op.SyncResult.Resources {
			hookFailed := r.HookPhase == PhaseFailed || r.HookPhase == PhaseError
			if r.Status != ResultSyncFailed && !hookFailed {
				continue
			}
			name := resourceName(r.Kind, r.Namespace, r.Name)
			if r.HookType != "" {
				name += " (" + r.HookType + " hook)"
			}
			res = append(res, name+": "+orNone(r.Message))
		}
	}
	msgs = append(msgs, limit(res)...)
	msgs = append(msgs, conditionMessages(app)...)
	return joinMessages(msgs)
}

func degradedMessage(app *Application) string {
	s := &app.Status
	msgs := []string{s.Health.Message} // deprecated in v3, kept when a server sends it
	var res []string
	for _, r := range s.Resources {
		if r.Health != nil && r.Health.Status == HealthDegraded {
			res = append(res, resourceName(r.Kind, r.Namespace, r.Name)+": "+orNone(r.Health.Message))
		}
	}
	msgs = append(msgs, limit(res)...)
	msgs = append(msgs, conditionMessages(app)...)
	return joinMessages(msgs)
}

func conditionMessages(app *Application) []string {
	var msgs []string
	for _, c := range app.Status.Conditions {
		msgs = append(msgs, c.Type+": "+c.Message)
	}
	return limit(msgs)
}

// maxItems bounds each list in a message (chat replies stay readable).
const maxItems = 8

func limit(items []string) []string {
	if len(items) <= maxItems {
		return items
	}
	return append(items[:maxItems:maxItems], fmt.Sprintf("and %d more", len(items)-maxItems))
}

// joinMessages joins the non-empty, distinct messages with "; ".
func joinMessages(msgs []string) string {
	var out []string
	seen := map[string]bool{}
	for _, m := range msgs {
		m = strings.Join(strings.Fields(m), " ")
		if m == "" || seen[m] {
			continue
		}
		seen[m] = true
		out = append(out, m)
	}
	return strings.Join(out, "; ")
}

func resourceName(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// sameRevision reports whether rev is commit; commit may be abbreviated
// (7 hex digits at least).
func sameRevision(rev, commit string) bool {
	if rev == "" || len(commit) < 7 {
		return rev != "" && strings.EqualFold(rev, commit)
	}
	return len(rev) >= len(commit) && strings.EqualFold(rev[:len(commit)], commit)
}

func short(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
