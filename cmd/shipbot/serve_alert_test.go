package main

import (
	"net/http"
	"os"
	"path/filepath"
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
