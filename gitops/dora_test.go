package gitops_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/gitops"
)

func TestComputeDORA(t *testing.T) {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at := func(h float64) time.Time { return day.Add(time.Duration(h * float64(time.Hour))) }
	rec := func(h float64, action, app, env, from, to string) gitops.AuditRecord {
		return gitops.AuditRecord{Time: at(h), Action: action, App: app, Env: env, From: from, To: to}
	}
	records := []gitops.AuditRecord{
		// checkout prod: 4 deploys, 1.1 fails and is rolled back after 30m,
		// 1.3 fails and is rolled back after 2h.
		rec(1, "promote", "checkout", "prod", "1.0", "1.1"),
		rec(1.5, "rollback", "checkout", "prod", "1.1", "1.0"),
		rec(10, "manual", "checkout", "prod", "1.0", "1.2"),
		rec(30, "promote", "checkout", "prod", "1.2", "1.3"),
		rec(32, "rollback", "checkout", "prod", "1.3", "1.2"),
		// Not deploys: a restart, a hand edit that left the tag, a freeze.
		rec(40, "restart", "checkout", "prod", "", ""),
		rec(41, "manual", "checkout", "prod", "1.2", "1.2"),
		rec(42, "freeze", "*", "prod", "", ""),
		// A rollback whose failed change is before the period: counted,
		// no restore time.
		rec(-5, "promote", "cart", "prod", "2.0", "2.1"),
		rec(5, "rollback", "cart", "prod", "2.1", "2.0"),
		// Outside the period.
		rec(100, "promote", "checkout", "prod", "1.2", "1.4"),
	}
	got := gitops.ComputeDORA(records, day, at(48))
	want := []gitops.DORA{
		{App: "cart", Env: "prod", Days: 2, Deploys: 1, PerDay: 0.5, Rollbacks: 1},
		{App: "checkout", Env: "prod", Days: 2, Deploys: 5, PerDay: 2.5, Rollbacks: 2, ChangeFailureRate: 2.0 / 3,
			Restores: 2, MedianRestore: 75 * time.Minute, MeanRestore: 75 * time.Minute},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("DORA (-want +got):\n%s", d)
	}
	if got := gitops.ComputeDORA(nil, day, at(48)); len(got) != 0 {
		t.Errorf("no records: %+v", got)
	}
}
