package slack

import (
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

// After a restart or a failover, a change in flight is followed again in
// its own thread, up to the watch's outcome; one that names no thread
// shipbot can post in is skipped.
func TestFollowUnfinishedReportsInTheThread(t *testing.T) {
	e := newEnv(t, time.Minute)
	core := &watchingCore{countingCore: e.core, watched: make(chan string, 2),
		Result: gitops.Response{Outcome: gitops.OutcomeHealthy, Text: "checkout prod 1.4.1 is Synced and Healthy (3.1 s after the commit)."}}
	a := e.adapter(t, func(o *Options) { o.Core = core })
	plan := &gitops.Plan{Request: gitops.Request{ID: "shp-inflight1", Action: gitops.ActionRollback, App: "checkout", Env: "prod"},
		From: "1.4.2", To: "1.4.1", Summary: "rollback checkout in prod: 1.4.2 -> 1.4.1"}
	n := a.FollowUnfinished([]gitops.Unfinished{
		{Plan: plan, Commit: "0123456789abcdef0123456789abcdef01234567", Thread: threadLocator(msgRef{channel: "COPS", ts: "1700000000.000100"}), When: time.Now().Add(-time.Minute)},
		{Plan: plan, Commit: "0123456789abcdef0123456789abcdef01234567", Thread: "<https://evil.example|click>"},
	})
	if n != 1 {
		t.Fatalf("followed %d changes, want 1", n)
	}
	select {
	case c := <-core.watched:
		if c != "0123456789abcdef0123456789abcdef01234567" {
			t.Errorf("watched %s", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the change was not followed")
	}
	waitFor(t, "the outcome in the thread", func() bool {
		for _, m := range e.fs.messages() {
			if m.Thread == "1700000000.000100" && strings.Contains(m.Shown(), "Synced and Healthy") {
				return strings.Contains(m.Shown(), "shipbot restarted while following it") && strings.Contains(m.Shown(), ":white_check_mark:")
			}
		}
		return false
	})
}
