package gitops_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
)

// FakeLive answers live status with a function.
type FakeLive struct {
	StatusFunc func(t gitops.Target) (gitops.SyncStatus, error)
}

var _ gitops.LiveStatus = (*FakeLive)(nil)

func (f *FakeLive) Status(_ context.Context, t gitops.Target) (gitops.SyncStatus, error) {
	return f.StatusFunc(t)
}

func TestStatusShowsLiveNextToGit(t *testing.T) {
	f := newFixtureWith(t, 2, func(o *gitops.ServiceOptions) {
		o.Live = &FakeLive{StatusFunc: func(tg gitops.Target) (gitops.SyncStatus, error) {
			switch {
			case tg.Env == "staging":
				return gitops.SyncStatus{}, errors.New("argo: connection refused")
			case tg.App == "app1":
				return gitops.SyncStatus{Sync: "Synced", Health: "Degraded", Revision: "0123456789abcdef", Message: "Deployment/app1: progress deadline exceeded"}, nil
			case tg.App == "app0":
				return gitops.SyncStatus{Sync: "OutOfSync", Health: "Progressing"}, nil
			}
			return gitops.SyncStatus{Sync: "Synced", Health: "Healthy", Revision: "fedcba9876543210"}, nil
		}}
	})
	ctx := context.Background()
	st := f.svc.Handle(ctx, gitops.Request{ID: "shp-st", Action: gitops.ActionStatus, App: "checkout", User: "alice"})
	for _, want := range []string{"prod     1.4.2", "live: Synced, Healthy at fedcba9876", "live: Argo CD can't tell: argo: connection refused"} {
		if !strings.Contains(st.Text, want) {
			t.Errorf("status lacks %q:\n%s", want, st.Text)
		}
	}
	h := f.svc.Handle(ctx, gitops.Request{ID: "shp-h", Action: gitops.ActionHealth, Env: "prod", User: "alice"})
	lines := strings.Split(strings.TrimSpace(h.Text), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "prod, unhealthy first:") ||
		!strings.Contains(lines[1], "app1") || !strings.Contains(lines[1], "Degraded") || !strings.Contains(lines[1], "progress deadline exceeded") ||
		!strings.Contains(lines[2], "app0") || !strings.Contains(lines[2], "OutOfSync, Progressing") ||
		!strings.Contains(lines[3], "checkout") || !strings.Contains(lines[3], "Synced, Healthy") {
		t.Errorf("health not ordered unhealthy first:\n%s", h.Text)
	}
}

func TestHealthWithoutArgo(t *testing.T) {
	f := newFixture(t, 0)
	h := f.svc.Handle(context.Background(), gitops.Request{ID: "shp-h", Action: gitops.ActionHealth, Env: "prod", User: "alice"})
	if h.Outcome != gitops.OutcomeAnswered || !strings.Contains(h.Text, "checkout") || !strings.Contains(h.Text, "Argo CD is not configured") {
		t.Fatalf("%s: %s", h.Outcome, h.Text)
	}
	if d := f.svc.Handle(context.Background(), gitops.Request{ID: "shp-h2", Action: gitops.ActionHealth, Env: "prod", User: "mallory"}); d.Outcome != gitops.OutcomeDenied {
		t.Errorf("mallory's health: %s: %s", d.Outcome, d.Text)
	}
}
