package local

import (
	"context"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
)

// readOnlyCore answers read-only requests and plans writes.
type readOnlyCore struct{ fakeCore }

func (f *readOnlyCore) Handle(ctx context.Context, req gitops.Request) gitops.Response {
	if !req.Action.Writes() {
		f.mu.Lock()
		f.handled = append(f.handled, req)
		f.mu.Unlock()
		return gitops.Response{Outcome: gitops.OutcomeAnswered, Text: string(req.Action) + " answered"}
	}
	return f.fakeCore.Handle(ctx, req)
}

// While a plan waits for yes or no, read-only commands are answered and the
// plan keeps waiting; a command that would plan is told to answer first;
// yes then confirms the plan that waited (issue 14 item 7).
func TestReadOnlyWhileAPlanWaits(t *testing.T) {
	core := &readOnlyCore{}
	var out strings.Builder
	c, err := New(core, &out, Options{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Join([]string{
		"rollback checkout prod --why OPS-1",
		"history checkout prod",
		"status checkout",
		"help history",
		"proposals",
		"restart checkout prod --why OPS-2",
		"statsu checkout",
		"yes",
	}, "\n") + "\n"
	if err := c.Run(context.Background(), strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"alice> history checkout prod\nhistory answered\nyour request shp-",
		" is still waiting for `yes` or `no`.\nalice> status checkout\nstatus answered\n",
		"alice> help history\nhistory APP ENV [N]\nyour request shp-",
		"alice> proposals\nproposals answered\n",
		"alice> restart checkout prod --why OPS-2\nyour request shp-",
		" is waiting for `yes` or `no` first.\nAnswer it before asking for another change; read-only commands (status, history, health, ",
		"alice> statsu checkout\nunknown command \"statsu\"; did you mean status?",
		"alice> yes\n[shp-",
		"] done\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if len(core.confirmed) != 1 || core.confirmed[0].Request.Action != gitops.ActionRollback {
		t.Fatalf("confirmed %+v, want the rollback", core.confirmed)
	}
	var actions []string
	for _, r := range core.handled {
		actions = append(actions, string(r.Action))
	}
	if strings.Join(actions, " ") != "rollback history status proposals" {
		t.Errorf("handled %v; want the rollback and the read-only commands only", actions)
	}
	if len(core.cancelled) != 0 {
		t.Errorf("cancelled %q", core.cancelled)
	}
}
