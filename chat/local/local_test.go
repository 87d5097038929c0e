package local

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

// fakeCore plans every write and records what the chat asked.
type fakeCore struct {
	mu        sync.Mutex
	handled   []gitops.Request
	confirmed []*gitops.Plan
	cancelled []string
}

func (f *fakeCore) Handle(_ context.Context, req gitops.Request) gitops.Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handled = append(f.handled, req)
	return gitops.Response{Outcome: gitops.OutcomeConfirm, Text: "[" + req.ID + "] plan", Plan: &gitops.Plan{Request: req}}
}

func (f *fakeCore) Confirm(_ context.Context, p *gitops.Plan) gitops.Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.confirmed = append(f.confirmed, p)
	return gitops.Response{Outcome: gitops.OutcomeCommitted, Text: "[" + p.Request.ID + "] done", Commit: "c0ffee"}
}

func (f *fakeCore) Cancel(p *gitops.Plan, why string) gitops.Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, why)
	return gitops.Response{Outcome: gitops.OutcomeCancelled, Text: "[" + p.Request.ID + "] cancelled: " + why}
}

func (f *fakeCore) ConfirmTimeout() time.Duration { return time.Hour }

// A line over 64 KiB is answered like any message over a command's limit,
// and the session goes on: the plan waiting for yes is not cancelled, the
// next line confirms it, and lines after it are read.
func TestLineOver64KiB(t *testing.T) {
	core := &fakeCore{}
	var out strings.Builder
	c, err := New(core, &out, Options{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("x", 200*1024)
	in := "rollback checkout prod --why OPS-1\n" + huge + "\r\nyes\nstatus checkout\n" + huge // the last line has no newline
	if err := c.Run(context.Background(), strings.NewReader(in)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := out.String()
	for _, want := range []string{
		"alice> (a message of 204800 bytes)\nthat message is 204800 bytes long; a command may be at most 4096 bytes (4 KiB).",
		"is still waiting for `yes` or `no`.",
		"alice> yes\n[",
		"] done",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%.2000s", want, got)
		}
	}
	if strings.Count(got, "that message is 204800 bytes long") != 2 {
		t.Errorf("want both long lines answered:\n%.2000s", got)
	}
	if len(core.confirmed) != 1 || len(core.handled) != 2 {
		t.Errorf("confirmed %d, handled %d; want 1 and 2", len(core.confirmed), len(core.handled))
	}
	// Only the plan of `status checkout` (the fake plans everything) was
	// still waiting at the end of input.
	if len(core.cancelled) != 1 || core.cancelled[0] != "end of input before an answer" {
		t.Errorf("cancelled: %q", core.cancelled)
	}
	if strings.Contains(got, huge[:1024]) {
		t.Error("the long line was echoed")
	}
}

// Late news (a push's outcome found after the reply) are shown in the
// chat, between the replies.
func TestLateNewsAreShown(t *testing.T) {
	core := &fakeCore{}
	var out strings.Builder
	c, err := New(core, &out, Options{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	c.ProposalUpdated(context.Background(), gitops.ProposalUpdate{RequestID: "shp-x", Text: "[shp-x] landed after all: rollback checkout in prod: 1.4.2 -> 1.4.1\ncommit c0ffee is on main.\n"})
	if got := out.String(); got != "[shp-x] landed after all: rollback checkout in prod: 1.4.2 -> 1.4.1\ncommit c0ffee is on main.\n" {
		t.Errorf("got %q", got)
	}
}
