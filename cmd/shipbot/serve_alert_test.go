package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeAlertIncident: an Alertmanager webhook (its v4 payload) for
// checkout in prod reaches `shipbot serve`, authenticated by a bearer
// token: one message in the incidents channel with what changed and a
// Rollback button; the redelivery adds nothing; no token gets 401.
func TestServeAlertIncident(t *testing.T) {
	cfg, _ := serveDemo(t)
	token := filepath.Join(filepath.Dir(cfg), "am-token")
	if err := os.WriteFile(token, []byte("am-secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(`
alerts:
  channel: ` + serveChannel + `
  alertmanager:
    authorization: {credentialsFiles: [am-token]}
  routes:
    - name: by-service
      match: {labels: {service: checkout}}
      app: ${service}
      env: ${env}
`)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	payload, err := os.ReadFile(filepath.Join("..", "..", "chat", "alert", "testdata", "alertmanager_firing.json"))
	if err != nil {
		t.Fatal(err)
	}
	fs := newServeSlack(t)
	serveEnv(t, "socket", fs.apiURL())
	s := startServe(t, cfg)

	json := map[string]string{"Content-Type": "application/json"}
	if code, _ := s.post(t, "/alerts/alertmanager", string(payload), json); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	auth := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer am-secret-token"}
	sent := time.Now()
	if code, body := s.post(t, "/alerts/alertmanager", string(payload), auth); code != http.StatusAccepted {
		t.Fatalf("alert: %d %s", code, body)
	}
	var msg serveCall
	serveWaitFor(t, "the incident message", func() bool {
		posts, _, _ := fs.snapshot()
		for _, p := range posts {
			if p.Channel == serveChannel && strings.Contains(p.Blocks, "shipbot_incident_rollback") {
				msg = p
				return true
			}
		}
		return false
	})
	t.Logf("alert -> incident message: %s", time.Since(sent).Round(time.Millisecond))
	for _, want := range []string{"checkout in prod", "What changed:", "1.4.2", "Rollback checkout in prod"} {
		if !strings.Contains(msg.Shown(), want) {
			t.Errorf("incident message lacks %q:\n%s", want, msg.Shown())
		}
	}
	if code, _ := s.post(t, "/alerts/alertmanager", string(payload), auth); code != http.StatusAccepted {
		t.Errorf("redelivery: %d", code)
	}
	time.Sleep(300 * time.Millisecond)
	posts, _, _ := fs.snapshot()
	n := 0
	for _, p := range posts {
		if strings.Contains(p.Blocks, "shipbot_incident_rollback") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d incident messages, want 1", n)
	}
}

// TestServeAlertToHealthy is the path from alert to recovery against a real
// Argo CD with real pods (make e2e sets SHIPBOT_TEST_SERVE_CONFIG to its
// demo's config, whose argo: section names the stack's Argo CD, and
// SHIPBOT_TEST_SERVE_REPO to the env repo): an Alertmanager alert for
// checkout in prod, whose annotation names the PagerDuty incident, becomes
// one message with what changed and a Rollback with that incident as its
// reason; bob presses it and confirms; the rollback lands, pins checkout
// in prod and is reported Synced and Healthy; a promotion into prod is
// refused until bob unpins it.
func TestServeAlertToHealthy(t *testing.T) {
	base := os.Getenv("SHIPBOT_TEST_SERVE_CONFIG")
	repo := os.Getenv("SHIPBOT_TEST_SERVE_REPO")
	if base == "" || repo == "" {
		t.Skip("needs a real Argo CD: make e2e runs it")
	}
	dir := filepath.Dir(base)
	if err := os.WriteFile(filepath.Join(dir, "am-token"), []byte("am-secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "shipbot-alerts.yaml")
	data = append(data, []byte(`
alerts:
  channel: `+serveChannel+`
  alertmanager:
    authorization: {credentialsFiles: [am-token]}
  routes:
    - name: by-service
      match: {labels: {service: checkout}, textRegex: 'incident: (?P<incident>https://\S+)'}
      app: ${service}
      env: ${env}
      why: ${incident}
`)...)
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	payload, err := os.ReadFile(filepath.Join("..", "..", "chat", "alert", "testdata", "alertmanager_firing.json"))
	if err != nil {
		t.Fatal(err)
	}
	const incident = "https://acme.pagerduty.com/incidents/PGR0VU2"
	payload = bytes.ReplaceAll(payload, []byte(`"summary": "checkout 5xx rate above 5%"`), []byte(`"summary": "checkout 5xx rate above 5%", "incident": "`+incident+`"`))
	fs := newServeSlack(t)
	serveEnv(t, "socket", fs.apiURL())
	s := startServe(t, cfg)
	count := serveCount(t, repo)

	sent := time.Now()
	header := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer am-secret-token"}
	if code, body := s.post(t, "/alerts/alertmanager", string(payload), header); code != http.StatusAccepted {
		t.Fatalf("Alertmanager webhook: %d %s", code, body)
	}
	var inc serveCall
	serveWaitFor(t, "the incident message", func() bool {
		posts, _, _ := fs.snapshot()
		for _, p := range posts {
			if strings.Contains(p.Blocks, "shipbot_incident_rollback") {
				inc = p
				return true
			}
		}
		return false
	})
	t.Logf("alert -> incident message: %s", time.Since(sent).Round(time.Millisecond))
	if !strings.Contains(inc.Shown(), "checkout in prod") || !strings.Contains(inc.Shown(), "What changed:") {
		t.Fatalf("incident message:\n%s", inc.Shown())
	}

	// bob presses Rollback: his own request, planned in the thread, with
	// the incident the alert names as its reason.
	value := incidentButtonValue(t, inc)
	if value != "rollback checkout prod --why \""+incident+"\"" {
		t.Fatalf("Rollback button value %q", value)
	}
	click := serveClick("UBOB", inc.TS, "", "1700000300.000001", "trig-al-1")
	act := click["actions"].([]map[string]any)[0]
	act["action_id"], act["value"] = "shipbot_incident_rollback", value
	fs.deliver(t, "interactive", "env-al-1", click)
	var plan serveCall
	serveWaitFor(t, "bob's rollback plan in the incident's thread", func() bool {
		posts, _, _ := fs.snapshot()
		for _, p := range posts {
			if p.Thread == inc.TS {
				if c := fs.current(p.Channel, p.TS); strings.Contains(c.Blocks, "shipbot_confirm") {
					plan = c
					return true
				}
			}
		}
		return false
	})
	confirmed := time.Now()
	fs.deliver(t, "interactive", "env-al-2", serveClick("UBOB", plan.TS, serveRequestID(t, plan), "1700000300.000002", "trig-al-2"))
	serveWaitFor(t, "Synced and Healthy in the plan's message", func() bool {
		return strings.Contains(fs.current(serveChannel, plan.TS).Shown(), "is Synced and Healthy")
	})
	t.Logf("Rollback confirmed from the incident -> Synced and Healthy: %s", time.Since(confirmed).Round(time.Millisecond))
	if n := serveCount(t, repo); n != count+1 {
		t.Fatalf("%d commits, want one more than %d", n, count)
	}
	if pins := serveGit(t, repo, "show", "main:.shipbot/pins.yaml"); !checkoutProdPinned.MatchString(pins) {
		t.Fatalf("the rollback did not pin checkout in prod:\n%s", pins)
	}

	// A promotion into the pinned env is refused, until unpin.
	fs.deliver(t, "slash_commands", "env-al-3", serveSlash("UBOB", "promote checkout staging to prod --why "+incident, "trig-al-3"))
	serveWaitFor(t, "the promotion refused", func() bool {
		posts, _, eph := fs.snapshot()
		for _, p := range append(posts, eph...) {
			if strings.Contains(fs.current(p.Channel, p.TS).Shown()+p.Shown(), "is pinned to") {
				return true
			}
		}
		return false
	})
	posted, _, _ := fs.snapshot()
	fs.deliver(t, "slash_commands", "env-al-4", serveSlash("UBOB", "unpin checkout prod --why incident PGR0VU2 resolved", "trig-al-4"))
	unpin := fs.planMessage(t, serveChannel, len(posted))
	fs.deliver(t, "interactive", "env-al-5", serveClick("UBOB", unpin.TS, serveRequestID(t, unpin), "1700000300.000005", "trig-al-5"))
	serveWaitFor(t, "the unpin landed", func() bool {
		return strings.Contains(fs.current(serveChannel, unpin.TS).Shown(), "done: unpin checkout in prod")
	})
	if pins := serveGit(t, repo, "show", "main:.shipbot/pins.yaml"); checkoutProdPinned.MatchString(pins) {
		t.Fatalf("checkout is still pinned in prod:\n%s", pins)
	}
}

// checkoutProdPinned finds checkout's pin in prod in .shipbot/pins.yaml
// (other apps and environments may be pinned too).
var checkoutProdPinned = regexp.MustCompile(`(?m)^\s*- app: checkout\n\s+env: prod\n`)

func incidentButtonValue(t *testing.T, m serveCall) string {
	t.Helper()
	var blocks []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal([]byte(m.Blocks), &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.ActionID == "shipbot_incident_rollback" {
				return e.Value
			}
		}
	}
	t.Fatalf("no Rollback button in %s", m.Blocks)
	return ""
}
