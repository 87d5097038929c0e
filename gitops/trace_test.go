package gitops_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/shipbot/shipbot/gitops"
)

// FakeTracer records traces and answers with TraceFunc.
type FakeTracer struct {
	mu        sync.Mutex
	Events    []gitops.TraceEvent
	TraceFunc func(j gitops.Justification, e gitops.TraceEvent) error
}

var _ gitops.Tracer = (*FakeTracer)(nil)

func (f *FakeTracer) Trace(_ context.Context, j gitops.Justification, e gitops.TraceEvent) error {
	f.mu.Lock()
	f.Events = append(f.Events, e)
	f.mu.Unlock()
	return f.TraceFunc(j, e)
}

// ticketJustifier sees a Jira key in every reason.
type ticketJustifier struct{}

func (ticketJustifier) Justify(_ context.Context, r gitops.Request, _ gitops.Environment) (gitops.Justification, error) {
	return gitops.Justification{Text: r.Why, Kind: "jira-issue", Ref: r.Why}, nil
}

func TestTraceOnTicket(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		inReply string
	}{
		{"written", nil, "Noted on OPS-1."},
		{"failed", errors.New("jira answered 503"), "(could not note this on OPS-1: jira answered 503. The change stands.)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tracer := &FakeTracer{TraceFunc: func(gitops.Justification, gitops.TraceEvent) error { return tc.err }}
			f := newFixtureWith(t, 0, func(o *gitops.ServiceOptions) { o.Tracer, o.Justifier = tracer, ticketJustifier{} })
			ctx := context.Background()
			resp := f.svc.Handle(ctx, rollback("alice", "checkout", "OPS-1"))
			done := f.svc.Confirm(ctx, resp.Plan)
			if done.Outcome != gitops.OutcomeCommitted || !strings.Contains(done.Text, tc.inReply) {
				t.Fatalf("%s: %s", done.Outcome, done.Text)
			}
			if f.head(t) != done.Commit {
				t.Fatal("the change does not stand")
			}
			if len(tracer.Events) != 1 || tracer.Events[0].Commit != done.Commit || tracer.Events[0].Summary != "rollback checkout in prod: 1.4.2 -> 1.4.1" || tracer.Events[0].Request.User != "alice" {
				t.Errorf("trace events = %+v", tracer.Events)
			}
		})
	}
}
