package slack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

// watchingCore is the real core plus a watch that reports one progress line
// and then Result, as gitops.Service.Watch does with Argo CD configured.
type watchingCore struct {
	*countingCore
	Result  gitops.Response
	watched chan string // the commit watched
}

var _ Watcher = (*watchingCore)(nil)

func (w *watchingCore) Watches() bool { return true }

func (w *watchingCore) Watch(_ context.Context, p *gitops.Plan, commit string, progress func(string)) gitops.Response {
	w.watched <- commit
	progress("[" + p.Request.ID + "] checkout prod: Synced, Progressing (operation Running)")
	return w.Result
}

// After the commit, the same message follows the change through Argo CD:
// progress in place, then the outcome with its icon.
func TestSocketModeWatchUpdatesTheSameMessage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		result gitops.Response
		icon   string
	}{
		{"healthy", gitops.Response{Outcome: gitops.OutcomeHealthy, Text: "checkout prod 1.4.1 is Synced and Healthy (2s after the commit)."}, ":white_check_mark:"},
		{"degraded", gitops.Response{Outcome: gitops.OutcomeDegraded, Text: "checkout prod 1.4.1 is Synced / Degraded: progress deadline exceeded\nTo roll back: `rollback checkout prod to 1.4.2 --why <incident>`",
			Rollback: `rollback checkout prod to 1.4.2 --why "` + pdLink + `"`}, ":rotating_light:"},
		{"argo down", gitops.Response{Outcome: gitops.OutcomeUnwatched, Text: "could not confirm that checkout prod 1.4.1 is live: argo: connection refused. The commit stands."}, ":warning:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, time.Minute)
			core := &watchingCore{countingCore: e.core, Result: tc.result, watched: make(chan string, 1)}
			metrics := newCountingMetrics()
			a := e.adapter(t, func(o *Options) { o.Core = core; o.Metrics = metrics })
			runSocket(t, e, a)
			e.fs.send("slash_commands", "env-1", slashPayload("UALICE", "COPS", "rollback checkout prod --why "+pdLink, "trig-1"), 0)
			plan := planMessageFor(t, e.fs, "COPS")
			id := requestIDOf(t, plan)
			e.fs.send("interactive", "env-2", clickPayload("UALICE", "COPS", plan.TS, actionConfirm, id, "1700000002.000002", "trig-2"), 0)
			var commit string
			select {
			case commit = <-core.watched:
			case <-time.After(30 * time.Second):
				t.Fatal("the landed change was not watched")
			}
			if commit != e.head(t) {
				t.Errorf("watched %s, want the new commit %s", commit, e.head(t))
			}
			firstLine := strings.SplitN(tc.result.Text, "\n", 2)[0]
			waitFor(t, "the watch outcome in the message", func() bool {
				return strings.Contains(messageAt(e.fs, "COPS", plan.TS).Shown(), escape(firstLine))
			})
			m := messageAt(e.fs, "COPS", plan.TS)
			if !strings.Contains(m.Shown(), tc.icon) || !strings.Contains(m.Shown(), "done: rollback checkout in prod") {
				t.Errorf("final message lacks %s or the commit result:\n%s", tc.icon, m.Shown())
			}
			if hasButton := strings.Contains(m.Blocks, actionIncidentRollback); hasButton != (tc.result.Rollback != "") {
				t.Errorf("Rollback button shown: %v, want %v", hasButton, tc.result.Rollback != "")
			}
			if tc.result.Rollback != "" {
				// bob presses it: his own rollback request, planned in the thread.
				e.fs.send("interactive", "env-3", clickPayload("UBOB", "COPS", plan.TS, actionIncidentRollback, tc.result.Rollback, "1700000003.000003", "trig-3"), 0)
				waitFor(t, "bob's rollback plan in the thread", func() bool {
					for _, msg := range e.fs.messages() {
						if msg.Thread == plan.TS && strings.Contains(msg.Shown(), "rollback checkout in prod") && strings.Contains(msg.Blocks, actionConfirm) {
							return true
						}
					}
					return false
				})
			}
			progressed := false
			for _, h := range m.History {
				if strings.Contains(shown(h), "Synced, Progressing") {
					progressed = true
				}
			}
			if !progressed {
				t.Error("no progress update in place")
			}
			waitFor(t, "the watch's metric", func() bool {
				return metrics.get(func(m *countingMetrics) int { return m.watched[string(tc.result.Outcome)] }) == 1
			})
			if n := metrics.get(func(m *countingMetrics) int { return m.retries }); n != 0 {
				t.Errorf("%d push retries counted for a change that landed at once", n)
			}
		})
	}
}
