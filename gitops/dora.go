package gitops

import (
	"cmp"
	"slices"
	"time"
)

// DORA is how one app delivers in one environment over a period, read from
// the environment repo's history (the audit's records): the deployment
// frequency, the change failure rate and the time to restore of the DORA
// metrics. Lead time needs the application repo's commits and is not here.
type DORA struct {
	App  string  `json:"app"`
	Env  string  `json:"env"`
	Days float64 `json:"days"` // the period's length
	// Deploys are the changes of the version that runs: promotions, tag
	// changes by hand and rollbacks (restarts and freezes are not).
	Deploys int     `json:"deploys"`
	PerDay  float64 `json:"deploys_per_day"`
	// Rollbacks of them; ChangeFailureRate is rollbacks per deploy that
	// was not itself a rollback (0 when there was none).
	Rollbacks         int     `json:"rollbacks"`
	ChangeFailureRate float64 `json:"change_failure_rate"`
	// Restores are the rollbacks whose failed change is in the period:
	// time to restore runs from the commit that shipped the version rolled
	// back from to the rollback's commit (when the fix landed).
	Restores      int           `json:"restores"`
	MedianRestore time.Duration `json:"median_restore_ns"`
	MeanRestore   time.Duration `json:"mean_restore_ns"`
}

// deploys says whether a record changed the version that runs.
func deploys(r AuditRecord) bool {
	switch r.Action {
	case "promote", "rollback":
		return true
	case "manual":
		return r.To != "" && r.From != r.To
	}
	return false
}

// ComputeDORA reads the figures of every app and environment with a
// deploy in [since, until) from records (any order); since zero: from the
// oldest record.
func ComputeDORA(records []AuditRecord, since, until time.Time) []DORA {
	type key struct{ app, env string }
	byKey := map[key][]AuditRecord{}
	oldest := until
	for _, r := range records {
		if !deploys(r) || r.App == "*" || !r.Time.Before(until) || (!since.IsZero() && r.Time.Before(since)) {
			continue
		}
		k := key{r.App, r.Env}
		byKey[k] = append(byKey[k], r)
		if r.Time.Before(oldest) {
			oldest = r.Time
		}
	}
	if since.IsZero() {
		since = oldest
	}
	days := max(until.Sub(since).Hours()/24, 1.0/24)
	var out []DORA
	for k, rs := range byKey {
		slices.SortFunc(rs, func(a, b AuditRecord) int { return a.Time.Compare(b.Time) })
		d := DORA{App: k.app, Env: k.env, Days: days, Deploys: len(rs), PerDay: float64(len(rs)) / days}
		var restores []time.Duration
		for i, r := range rs {
			if r.Action != "rollback" {
				continue
			}
			d.Rollbacks++
			// The failed change: the last deploy before it that shipped
			// the version it rolls back from.
			for j := i - 1; j >= 0; j-- {
				if f := rs[j]; f.To == r.From && f.Action != "rollback" {
					restores = append(restores, r.Time.Sub(f.Time))
					break
				}
			}
		}
		if n := d.Deploys - d.Rollbacks; n > 0 {
			d.ChangeFailureRate = float64(d.Rollbacks) / float64(n)
		}
		if len(restores) > 0 {
			slices.Sort(restores)
			var sum time.Duration
			for _, t := range restores {
				sum += t
			}
			d.Restores, d.MeanRestore = len(restores), sum/time.Duration(len(restores))
			if m := len(restores); m%2 == 1 {
				d.MedianRestore = restores[m/2]
			} else {
				d.MedianRestore = (restores[m/2-1] + restores[m/2]) / 2
			}
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b DORA) int { return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Env, b.Env)) })
	return out
}
