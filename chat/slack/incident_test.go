package slack

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/chat/alert"
)

// An alert for checkout in prod: one message in the channel with what
// changed and a Rollback button; pressed, it is the presser's own rollback
// request in the incident's thread (policy, diff, their confirmation); the
// incident resolves in place.
func TestIncidentMessageRollback(t *testing.T) {
	e, _, srv, _ := httpEnv(t, time.Minute)
	e.fs.addChannel("CINC", "ops-incidents", false)
	a := e.adapter(t) // any replica may post it; the click goes through srv
	sink := a.Incidents("CINC", e.svc)
	before := e.head(t)
	inc := alert.Incident{App: "checkout", Env: "prod", Status: alert.StatusFiring, Title: `checkout 5xx > 5% <!channel> "quoted"`, Firing: 2,
		OpenedAt: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC),
		Latest:   alert.Alert{URL: "https://acme.pagerduty.com/incidents/P1X2Y3Z"}}
	ref, err := sink.Open(context.Background(), inc)
	if err != nil {
		t.Fatal(err)
	}
	var msg fakeMsg
	for _, m := range e.fs.messages() {
		if m.Channel == "CINC" {
			msg = m
		}
	}
	shown := msg.Shown()
	for _, want := range []string{"checkout in prod, 2 alert(s) firing, since 10:00 UTC", "What changed:", "1.4.1", "1.4.2", "Rollback checkout in prod"} {
		if !strings.Contains(shown+msg.Blocks, want) {
			t.Errorf("incident message lacks %q:\n%s", want, shown)
		}
	}
	if strings.Contains(msg.Blocks, "<!channel>") {
		t.Error("the alert's text became a mention")
	}

	// bob (an SRE in the example policy) presses Rollback.
	body := interactionForm(t, clickPayload("UBOB", "CINC", msg.TS, actionIncidentRollback, valueOf(t, msg, actionIncidentRollback), "5.1", "trig-5.1"))
	if code, _ := signedPost(t, srv, PathInteractive, formType, body, secret, time.Now(), nil); code != 200 {
		t.Fatalf("click: status %d", code)
	}
	plan := planMessageFor(t, e.fs, "CINC")
	if plan.Thread != msg.TS || !strings.Contains(plan.Shown(), "rollback checkout in prod: 1.4.2 -&gt; 1.4.1") {
		t.Fatalf("plan not in the incident's thread (%q) or not the rollback:\n%s", plan.Thread, plan.Shown())
	}
	if e.head(t) != before {
		t.Fatal("the button wrote before the confirmation")
	}

	inc.Status, inc.Firing = alert.StatusResolved, 0
	if err := sink.Resolve(context.Background(), ref, inc); err != nil {
		t.Fatal(err)
	}
	resolved := messageAt(e.fs, "CINC", msg.TS)
	if !strings.Contains(resolved.Shown(), "resolved") || strings.Contains(resolved.Blocks, actionIncidentRollback) {
		t.Errorf("resolved incident:\n%s", resolved.Shown())
	}
}

func valueOf(t *testing.T, m fakeMsg, action string) string {
	t.Helper()
	var blocks []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal([]byte(m.Blocks), &blocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	for _, b := range blocks {
		for _, el := range b.Elements {
			if el.ActionID == action {
				return el.Value
			}
		}
	}
	t.Fatalf("no %s button in %s", action, m.Blocks)
	return ""
}
