package argo

import (
	"context"
	"fmt"

	"github.com/shipbot/shipbot/gitops"
)

var _ gitops.LiveStatus = (*Watcher)(nil)

// Status reads what Argo CD shows now for the Application that deploys t:
// sync status, health, the synced revision, and the reason when unhealthy.
// It does not ask for a refresh (status is read often; a watch refreshes).
func (w *Watcher) Status(ctx context.Context, t gitops.Target) (gitops.SyncStatus, error) {
	name, source := t.ArgoApp, -1
	if name == "" {
		if w.finder == nil {
			return gitops.SyncStatus{}, fmt.Errorf("%s in %s: no argoApp and no repo to discover it by: %w", t.App, t.Env, ErrNoApp)
		}
		m, err := w.finder.Find(ctx, t)
		if err != nil {
			return gitops.SyncStatus{}, err
		}
		name, source = refOf(&m.App), m.Source
	}
	app, err := w.client.Get(ctx, name, "")
	if err != nil {
		return gitops.SyncStatus{}, err
	}
	if name == t.ArgoApp && w.finder != nil {
		if i, err := w.finder.Source(app, t); err == nil {
			source = i
		}
	}
	st := gitops.SyncStatus{Sync: app.Status.Sync.Status, Health: app.Status.Health.Status, Revision: app.SyncedRevision(source)}
	if op := app.Status.OperationState; op != nil {
		st.Phase = op.Phase
	}
	switch {
	case st.Health == HealthDegraded:
		st.Message = degradedMessage(app)
	case st.Phase == PhaseFailed || st.Phase == PhaseError:
		st.Message = failureMessage(app)
	}
	return st, nil
}
