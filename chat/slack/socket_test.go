package slack

import (
	"context"
	"io"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack/socketmode"

	"github.com/shipbot/shipbot/gitops/gittest"
)

// runSocket connects an adapter to the fake workspace over Socket Mode.
func runSocket(t *testing.T, e *env, a *Adapter) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sm := socketmode.New(e.fs.client(),
		socketmode.OptionPingInterval(time.Hour), // slacktest sends no websocket pings
		socketmode.OptionLog(log.New(io.Discard, "", 0)))
	done := make(chan error, 1)
	go func() { done <- a.RunSocketMode(ctx, sm) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunSocketMode: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("RunSocketMode did not return after cancel")
		}
	})
	waitFor(t, "socket mode connected", a.Ready)
}

// TestSocketModeRollbackConfirm is the whole flow over Socket Mode: a slash
// command becomes a plan with buttons; a click by someone else is refused
// and writes nothing; the requester's click commits exactly once, in a real
// repo, with the requester's Slack identity as the author.
func TestSocketModeRollbackConfirm(t *testing.T) {
	e := newEnv(t, time.Minute)
	a := e.adapter(t)
	runSocket(t, e, a)
	before := e.head(t)

	e.fs.send("slash_commands", "env-1", slashPayload("UALICE", "COPS", "rollback checkout prod --why "+pdLink, "trig-1"), 0)
	waitFor(t, "ack of the slash command", func() bool { return e.fs.acked("env-1") })
	plan := planMessageFor(t, e.fs, "COPS")
	id := requestIDOf(t, plan)
	for _, want := range []string{
		"*`[" + id + "]` rollback checkout in prod: 1.4.2 -&gt; 1.4.1*", // mrkdwn, escaped
		"-    newTag: 1.4.2 # live", "+    newTag: 1.4.1 # live",
		"requested by <@UALICE>", "why: " + pdLink,
		"Only <@UALICE> can confirm", "Confirm", "Cancel",
	} {
		if !strings.Contains(plan.Shown(), want) {
			t.Errorf("plan message lacks %q:\n%s", want, plan.Shown())
		}
	}
	if !strings.Contains(plan.Blocks, actionCancel) {
		t.Error("no Cancel button")
	}
	if len(plan.History) < 2 || !strings.Contains(shown(plan.History[0]), "working on it") {
		t.Errorf("the plan should replace a 'working on it' message in place; history: %q", plan.History)
	}
	if e.head(t) != before {
		t.Fatal("something was written before Confirm")
	}

	// Bob is an SRE and may roll back checkout himself, but this is
	// alice's plan: his click is refused.
	e.fs.send("interactive", "env-2", clickPayload("UBOB", "COPS", plan.TS, actionConfirm, id, "1700000001.000001", "trig-2"), 0)
	waitFor(t, "refusal shown to bob", func() bool {
		for _, eph := range e.fs.ephemeralsFor("UBOB") {
			if strings.Contains(eph.Shown(), "Only <@UALICE>, who asked, can confirm request "+id) {
				return true
			}
		}
		return false
	})
	if !e.fs.acked("env-2") {
		t.Error("bob's click was not acknowledged")
	}
	if e.head(t) != before || e.core.confirms.Load() != 0 {
		t.Fatal("a click by someone else reached the core or wrote to the repo")
	}
	if m := messageAt(e.fs, "COPS", plan.TS); !strings.Contains(m.Blocks, actionConfirm) {
		t.Fatal("the plan lost its buttons after a refused click")
	}

	// Alice confirms: one commit, and the message is updated in place.
	click := clickPayload("UALICE", "COPS", plan.TS, actionConfirm, id, "1700000002.000002", "trig-3")
	e.fs.send("interactive", "env-3", click, 0)
	waitFor(t, "the done message", func() bool {
		return strings.Contains(messageAt(e.fs, "COPS", plan.TS).Shown(), ":white_check_mark:")
	})
	done := messageAt(e.fs, "COPS", plan.TS)
	if strings.Contains(done.Blocks, actionConfirm) {
		t.Error("the done message still has buttons")
	}
	if !strings.Contains(shown(done.History[len(done.History)-2]), "committing…") {
		t.Error("no 'committing…' progress before the result")
	}
	if n := e.commitsSince(t, before); n != 1 {
		t.Fatalf("%d commits, want 1", n)
	}
	if who := gittest.Git(t, e.bare, "log", "-1", "--format=%an <%ae>"); who != "Alice Smith <alice@acme.example>" {
		t.Errorf("author %q, want alice's Slack identity", who)
	}
	msg := gittest.Git(t, e.bare, "log", "-1", "--format=%B")
	for _, want := range []string{"Shipbot-Request: " + id, "Chat-Channel: #ops", "Requested-by: Alice Smith <alice@acme.example>"} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message lacks %q:\n%s", want, msg)
		}
	}
	if !strings.Contains(done.Shown(), gittest.Git(t, e.bare, "rev-parse", "--short=7", "main")) {
		t.Errorf("done message does not name the commit:\n%s", done.Shown())
	}

	// The same click delivered again is ignored; a second click finds
	// nothing waiting. Still one commit.
	e.fs.send("interactive", "env-4", click, 1)
	e.fs.send("interactive", "env-5", clickPayload("UALICE", "COPS", plan.TS, actionConfirm, id, "1700000003.000003", "trig-5"), 0)
	waitFor(t, "'no longer waiting' for alice", func() bool {
		for _, eph := range e.fs.ephemeralsFor("UALICE") {
			if strings.Contains(eph.Shown(), "is no longer waiting for an answer") {
				return true
			}
		}
		return false
	})
	waitFor(t, "acks", func() bool { return e.fs.acked("env-4") && e.fs.acked("env-5") })
	if n := e.commitsSince(t, before); n != 1 || e.core.confirms.Load() != 1 {
		t.Fatalf("after repeated clicks: %d commits, %d confirms; want 1 and 1", n, e.core.confirms.Load())
	}
}

// TestSocketModeDMAndRedelivery: a DM is answered in its thread with the
// same grammar; an event Slack redelivers (retry_attempt 1, same event_id)
// is answered once; shipbot ignores its own messages.
func TestSocketModeDMAndRedelivery(t *testing.T) {
	e := newEnv(t, time.Minute)
	a := e.adapter(t)
	runSocket(t, e, a)

	dm := eventPayload("Ev-DM-1", map[string]any{
		"type": "message", "channel": "DALICE", "channel_type": "im", "user": "UALICE",
		"text": "status checkout", "ts": "1700000100.000100", "event_ts": "1700000100.000100",
	})
	e.fs.send("events_api", "env-dm-1", dm, 0)
	e.fs.send("events_api", "env-dm-2", dm, 1) // Slack's retry of the same event
	own := eventPayload("Ev-DM-2", map[string]any{
		"type": "message", "channel": "DALICE", "channel_type": "im", "user": "UBOT", "bot_id": "B1",
		"text": "status checkout", "ts": "1700000101.000100",
	})
	e.fs.send("events_api", "env-dm-3", own, 0)
	waitFor(t, "the status reply", func() bool {
		for _, m := range e.fs.messages() {
			if m.Channel == "DALICE" && strings.Contains(m.Shown(), "1.4.2") {
				return true
			}
		}
		return false
	})
	waitFor(t, "acks", func() bool {
		return e.fs.acked("env-dm-1") && e.fs.acked("env-dm-2") && e.fs.acked("env-dm-3")
	})
	time.Sleep(200 * time.Millisecond) // let a wrong second answer show up
	var replies []fakeMsg
	for _, m := range e.fs.messages() {
		if m.Channel == "DALICE" {
			replies = append(replies, m)
		}
	}
	if len(replies) != 1 || e.core.handles.Load() != 1 {
		t.Fatalf("%d replies, %d requests; want 1 and 1 (redelivery and own message ignored)", len(replies), e.core.handles.Load())
	}
	if replies[0].Thread != "1700000100.000100" {
		t.Errorf("reply thread %q, want the DM's ts", replies[0].Thread)
	}
}
