package slack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops/gittest"
)

// TestSocketModeRightsFromASlackUserGroup: erin has no line of her own in
// the example policy; she is in the Slack user group @sre-oncall, which
// the policy makes SREs in prod ("g, slack:sre-oncall, sre, prod"), so her
// prod rollback lands, with the chat group named in the log. mallory is in
// a Slack user group whose handle is "sre": it is slack:sre to the policy,
// not the policy's own group sre, and she stays denied.
func TestSocketModeRightsFromASlackUserGroup(t *testing.T) {
	e := newEnv(t, time.Minute)
	e.fs.addUser("UERIN", "erin@acme.example", "Erin Ops")
	e.fs.mu.Lock()
	e.fs.handles = map[string]string{"S9ONCALL": "sre-oncall", "S8SRE": "sre"}
	e.fs.groups = map[string][]string{"S9ONCALL": {"UERIN"}, "S8SRE": {"UMALLORY"}}
	e.fs.mu.Unlock()
	a := e.adapter(t)
	runSocket(t, e, a)
	before := e.head(t)

	e.fs.send("slash_commands", "env-m", slashPayload("UMALLORY", "COPS", "rollback checkout prod --why "+pdLink, "trig-m"), 0)
	waitForShown(t, e.fs, "mallory's denial", "no policy rule lets mallory rollback checkout in prod")

	e.fs.send("slash_commands", "env-e", slashPayload("UERIN", "COPS", "rollback checkout prod --why "+pdLink, "trig-e"), 0)
	plan := planMessageFor(t, e.fs, "COPS")
	id := requestIDOf(t, plan)
	e.fs.send("interactive", "env-c", clickPayload("UERIN", "COPS", plan.TS, actionConfirm, id, "1700000002.000002", "trig-c"), 0)
	waitFor(t, "the done message", func() bool {
		return strings.Contains(messageAt(e.fs, "COPS", plan.TS).Shown(), ":white_check_mark:")
	})
	if n := e.commitsSince(t, before); n != 1 {
		t.Fatalf("%d commits, want 1 (erin's)", n)
	}
	if who := gittest.Git(t, e.bare, "log", "-1", "--format=%an <%ae>"); who != "Erin Ops <erin@acme.example>" {
		t.Errorf("author %q, want erin", who)
	}
	logs := e.logs.String()
	for _, want := range []string{`"groups":["slack:sre-oncall"]`, `"groups":["slack:sre"]`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
}

// contractorsPolicy is the example policy plus a deny line for the Slack
// user group @contractors in prod.
func contractorsPolicy(t *testing.T) string {
	t.Helper()
	example, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", "policy.csv"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "policy.csv")
	if err := os.WriteFile(file, append(example, "p, slack:contractors, prod, *, *, *, deny\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestSocketModeConfirmSeesGroupsOfNow: alice is put in @contractors while
// her plan waits; her Confirm is decided on her groups at that moment:
// denied by the contractors' deny line, nothing written.
func TestSocketModeConfirmSeesGroupsOfNow(t *testing.T) {
	e := newEnvWithPolicy(t, time.Minute, contractorsPolicy(t))
	fresh, err := NewDirectory(DirectoryOptions{API: e.fs.client(), TeamID: "T1", TTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	a := e.adapter(t, func(o *Options) { o.Directory = fresh })
	runSocket(t, e, a)
	before := e.head(t)

	e.fs.send("slash_commands", "env-1", slashPayload("UALICE", "COPS", "rollback checkout prod --why "+pdLink, "trig-1"), 0)
	plan := planMessageFor(t, e.fs, "COPS")
	id := requestIDOf(t, plan)
	e.fs.mu.Lock()
	e.fs.handles = map[string]string{"S7": "contractors"}
	e.fs.groups = map[string][]string{"S7": {"UALICE"}}
	e.fs.mu.Unlock()
	e.fs.send("interactive", "env-2", clickPayload("UALICE", "COPS", plan.TS, actionConfirm, id, "1700000002.000002", "trig-2"), 0)
	waitFor(t, "the denial at Confirm", func() bool {
		return strings.Contains(messageAt(e.fs, "COPS", plan.TS).Shown(), "p, slack:contractors, prod, *, *, *, deny")
	})
	if e.head(t) != before {
		t.Fatal("the Confirm of someone now denied wrote to the repo")
	}
}

// TestSocketModeGroupsUnknownFailClosed: Slack can't list user groups
// (paid_teams_only). With a policy that denies a Slack group in prod,
// alice's prod rollback is refused with the reason (her groups can't be
// checked) and nothing is written. (policy's tests show that requests no
// group deny line could match decide as usual.)
func TestSocketModeGroupsUnknownFailClosed(t *testing.T) {
	e := newEnvWithPolicy(t, time.Minute, contractorsPolicy(t))
	e.fs.mu.Lock()
	e.fs.groupsErr = "paid_teams_only"
	e.fs.mu.Unlock()
	a := e.adapter(t)
	runSocket(t, e, a)
	before := e.head(t)

	e.fs.send("slash_commands", "env-1", slashPayload("UALICE", "COPS", "rollback checkout prod --why "+pdLink, "trig-1"), 0)
	waitForShown(t, e.fs, "the refusal", "denied: shipbot could not read alice's groups from the chat platform just now, and a deny rule for a group could apply (p, slack:contractors, prod, *, *, *, deny)")
	if e.head(t) != before {
		t.Fatal("a request refused for unknown groups wrote to the repo")
	}
	if !strings.Contains(e.logs.String(), `"groups_unknown":true`) {
		t.Error("the log does not say the groups were unknown")
	}
}
