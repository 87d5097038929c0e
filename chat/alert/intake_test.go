package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Secrets of the test configuration, as the files hold them.
const (
	amToken    = "am-token-3f9c1e"
	amToken2   = "am-token-rotated-77"
	amPassword = "am-pass-d41d8c"
	pdSecret   = "pd-secret-new-0a1b2c"
	pdSecret2  = "pd-secret-old-9z8y7x"
	ogToken    = "og-token-5e6f7a"
	ogPassword = "og-pass-b0c1d2"
)

var testSecrets = map[string]string{
	"/s/am-token": amToken + "\n", "/s/am-token-2": amToken2, "/s/am-pass": amPassword,
	"/s/pd-new": pdSecret, "/s/pd-old": pdSecret2 + "\n",
	"/s/og-token": ogToken, "/s/og-pass": ogPassword,
}

const testConfig = `
timeout: 2s
alertmanager:
  authorization:
    credentialsFiles: [/s/am-token, /s/am-token-2]
  basicAuth:
    username: alertmanager
    passwordFiles: [/s/am-pass]
pagerduty:
  signingSecretFiles: [/s/pd-new, /s/pd-old]
opsgenie:
  header: {name: X-Shipbot-Token, valueFiles: [/s/og-token]}
  basicAuth: {username: opsgenie, passwordFiles: [/s/og-pass]}
routes:
  - name: checkout-labels
    match:
      sources: [alertmanager]
      labels: {service: checkout}
    app: checkout
    env: ${env}
  - name: pagerduty-api
    match:
      sources: [pagerduty]
      labels: {service: API Service}
    app: api
    env: prod
  - name: host-down
    match:
      textRegex: 'HOST (?P<host>\S+) down'
    app: ${host}
    env: ${env}
`

// recMetrics records what the Intake counts.
type recMetrics struct {
	mu       sync.Mutex
	requests map[string]int
	alerts   map[string]int
	opened   []time.Duration
}

func (m *recMetrics) Request(s Source, outcome string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[string(s)+" "+outcome]++
}

func (m *recMetrics) Alert(s Source, o Outcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alerts[string(s)+" "+string(o)]++
}

func (m *recMetrics) Opened(_ Source, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opened = append(m.opened, d)
}

type testIntake struct {
	*Intake
	sink    *FakeSink
	metrics *recMetrics
	logs    *syncBuffer
	srv     *httptest.Server
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestIntake(t *testing.T, config string, sink *FakeSink) *testIntake {
	t.Helper()
	cfg, err := ParseConfig([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	if sink == nil {
		sink = &FakeSink{}
	}
	ti := &testIntake{sink: sink, metrics: &recMetrics{requests: map[string]int{}, alerts: map[string]int{}}, logs: &syncBuffer{}}
	in, err := New(cfg, sink, Options{
		Logger:  slog.New(slog.NewTextHandler(ti.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: ti.metrics,
		ReadFile: func(name string) ([]byte, error) {
			s, ok := testSecrets[name]
			if !ok {
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
			}
			return []byte(s), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ti.Intake = in
	ti.srv = httptest.NewServer(in.Handler())
	t.Cleanup(ti.srv.Close)
	t.Cleanup(func() {
		logs := ti.logs.String()
		for _, s := range testSecrets {
			if strings.Contains(logs, strings.TrimSpace(s)) {
				t.Errorf("a secret is in the log:\n%s", logs)
			}
		}
	})
	return ti
}

// post sends body to path with the headers and returns status and body.
func (ti *testIntake) post(t *testing.T, path string, body []byte, header http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ti.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ti.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func basic(user, pass string) http.Header {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return http.Header{"Authorization": r.Header["Authorization"]}
}

func pdSigned(body []byte, secrets ...string) http.Header {
	var bs [][]byte
	for _, s := range secrets {
		bs = append(bs, []byte(s))
	}
	return http.Header{HeaderPagerDutySignature: {SignPagerDuty(body, bs...)}}
}

func TestAuthentication(t *testing.T) {
	ti := newTestIntake(t, testConfig, nil)
	am := readTestdata(t, "alertmanager_firing.json")
	pd := readTestdata(t, "pagerduty_triggered.json")
	og := readTestdata(t, "opsgenie_create.json")
	tampered := bytes.Replace(pd, []byte("A little bump"), []byte("A large bump"), 1)
	for _, tc := range []struct {
		name   string
		path   string
		body   []byte
		header http.Header
		want   int
	}{
		{"alertmanager bearer", PathAlertmanager, am, bearer(amToken), 202},
		{"alertmanager rotated bearer", PathAlertmanager, am, bearer(amToken2), 202},
		{"alertmanager bearer scheme in lower case", PathAlertmanager, am, http.Header{"Authorization": {"bearer " + amToken}}, 202},
		{"alertmanager basic", PathAlertmanager, am, basic("alertmanager", amPassword), 202},
		{"alertmanager wrong bearer", PathAlertmanager, am, bearer(amToken + "x"), 401},
		{"alertmanager bearer prefix", PathAlertmanager, am, bearer(amToken[:5]), 401},
		{"alertmanager other scheme", PathAlertmanager, am, http.Header{"Authorization": {"Token " + amToken}}, 401},
		{"alertmanager wrong basic password", PathAlertmanager, am, basic("alertmanager", amPassword+"x"), 401},
		{"alertmanager wrong basic user", PathAlertmanager, am, basic("root", amPassword), 401},
		{"alertmanager password as bearer", PathAlertmanager, am, bearer(amPassword), 401},
		{"alertmanager nothing", PathAlertmanager, am, nil, 401},
		{"pagerduty signed", PathPagerDuty, pd, pdSigned(pd, pdSecret), 202},
		{"pagerduty signed with the old secret", PathPagerDuty, pd, pdSigned(pd, pdSecret2), 202},
		{"pagerduty rotation: two signatures, one ours", PathPagerDuty, pd, pdSigned(pd, "someone-else", pdSecret), 202},
		{"pagerduty rotation with spaces", PathPagerDuty, pd, http.Header{HeaderPagerDutySignature: {"v1=" + strings.Repeat("ab", 32) + ", " + SignPagerDuty(pd, []byte(pdSecret))}}, 202},
		{"pagerduty wrong secret", PathPagerDuty, pd, pdSigned(pd, "guess"), 401},
		{"pagerduty tampered body", PathPagerDuty, tampered, pdSigned(pd, pdSecret), 401},
		{"pagerduty unknown version only", PathPagerDuty, pd, http.Header{HeaderPagerDutySignature: {strings.Replace(SignPagerDuty(pd, []byte(pdSecret)), "v1=", "v0=", 1)}}, 401},
		{"pagerduty garbage signature", PathPagerDuty, pd, http.Header{HeaderPagerDutySignature: {"v1=zz"}}, 401},
		{"pagerduty unsigned", PathPagerDuty, pd, nil, 401},
		{"pagerduty with a bearer token", PathPagerDuty, pd, bearer(pdSecret), 401},
		{"opsgenie header", PathOpsgenie, og, http.Header{"X-Shipbot-Token": {ogToken}}, 202},
		{"opsgenie basic", PathOpsgenie, og, basic("opsgenie", ogPassword), 202},
		{"opsgenie wrong header", PathOpsgenie, og, http.Header{"X-Shipbot-Token": {"nope"}}, 401},
		{"opsgenie header twice", PathOpsgenie, og, http.Header{"X-Shipbot-Token": {"nope", ogToken}}, 401},
		{"opsgenie another source's token", PathOpsgenie, og, bearer(amToken), 401},
		{"opsgenie nothing", PathOpsgenie, og, nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := ti.post(t, tc.path, tc.body, tc.header)
			if status != tc.want {
				t.Fatalf("status %d (%s), want %d", status, strings.TrimSpace(body), tc.want)
			}
			if status == 401 && strings.TrimSpace(body) != "unauthorized" {
				t.Errorf("401 body %q tells too much", body)
			}
		})
	}
	if !strings.Contains(ti.logs.String(), "reason=\"signature does not match\"") {
		t.Errorf("the log does not say why a delivery was refused:\n%s", ti.logs)
	}
	if ti.metrics.requests["pagerduty unauthorized"] != 6 {
		t.Errorf("unauthorized pagerduty deliveries counted: %v", ti.metrics.requests)
	}
}

func TestUnconfiguredSourceIsClosed(t *testing.T) {
	ti := newTestIntake(t, "alertmanager: {authorization: {credentialsFiles: [/s/am-token]}}\n", nil)
	pd := readTestdata(t, "pagerduty_triggered.json")
	// Even a correctly signed delivery: no secret is configured to check it.
	for _, h := range []http.Header{nil, pdSigned(pd, pdSecret), pdSigned(pd, "")} {
		if status, _, _ := ti.post(t, PathPagerDuty, pd, h); status != 401 {
			t.Errorf("unconfigured pagerduty answered %d, want 401", status)
		}
	}
	if status, _, _ := ti.post(t, PathOpsgenie, readTestdata(t, "opsgenie_create.json"), http.Header{"X-Shipbot-Token": {""}}); status != 401 {
		t.Errorf("unconfigured opsgenie answered %d, want 401", status)
	}
	if !strings.Contains(ti.logs.String(), "no credentials configured") {
		t.Errorf("log: %s", ti.logs)
	}
}

func TestHandlerRefusals(t *testing.T) {
	ti := newTestIntake(t, testConfig+"maxBodyBytes: 4096\n", nil)
	// GET
	resp, err := ti.srv.Client().Get(ti.srv.URL + PathAlertmanager)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// Content type.
	req, _ := http.NewRequest(http.MethodPost, ti.srv.URL+PathAlertmanager, strings.NewReader(`{"alerts":[]}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", "Bearer "+amToken)
	resp, err = ti.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("text/plain: %d, want 415", resp.StatusCode)
	}
	// A charset parameter is fine.
	if status, body, _ := ti.post(t, PathAlertmanager, []byte(`{"alerts":[]}`), http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Authorization": {"Bearer " + amToken}}); status != 202 {
		t.Errorf("application/json; charset=utf-8: %d %s", status, body)
	}
	// Oversized, before anything else is looked at.
	big := []byte(`{"alerts":[],"pad":"` + strings.Repeat("x", 5000) + `"}`)
	if status, _, _ := ti.post(t, PathAlertmanager, big, bearer(amToken)); status != 413 {
		t.Errorf("oversized: %d, want 413", status)
	}
	// Malformed JSON, authenticated: 400 saying what is wrong.
	status, body, _ := ti.post(t, PathAlertmanager, []byte(`{"alerts": [{"status": "firing"`), bearer(amToken))
	if status != 400 || !strings.Contains(body, "malformed alertmanager payload: unexpected EOF") {
		t.Errorf("malformed: %d %q", status, body)
	}
	status, body, _ = ti.post(t, PathPagerDuty, []byte(`{"event": 5}`), pdSigned([]byte(`{"event": 5}`), pdSecret))
	if status != 400 || !strings.Contains(body, "malformed pagerduty payload: json: cannot unmarshal number") {
		t.Errorf("malformed pagerduty: %d %q", status, body)
	}
	// Malformed and not authenticated: 401, the body is not looked at.
	if status, _, _ := ti.post(t, PathAlertmanager, []byte(`{`), nil); status != 401 {
		t.Errorf("malformed, unauthenticated: %d, want 401", status)
	}
	for _, k := range []string{"alertmanager method", "alertmanager media_type", "alertmanager too_large", "alertmanager malformed", "pagerduty malformed", "alertmanager unauthorized"} {
		if ti.metrics.requests[k] != 1 {
			t.Errorf("metrics: %q = %d, want 1 (%v)", k, ti.metrics.requests[k], ti.metrics.requests)
		}
	}
	if len(ti.sink.Calls()) != 0 {
		t.Errorf("refused deliveries reached the sink: %v", ti.sink.kinds())
	}
}

func TestDefaultBodyLimit(t *testing.T) {
	ti := newTestIntake(t, testConfig, nil)
	big := []byte(`{"alerts":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`)
	if status, _, _ := ti.post(t, PathAlertmanager, big, bearer(amToken)); status != 413 {
		t.Errorf("1 MiB + : %d, want 413", status)
	}
}

func decodeSummary(t *testing.T, body string) summary {
	t.Helper()
	var s summary
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("202 body %q: %v", body, err)
	}
	return s
}

func TestAlertmanagerEndToEnd(t *testing.T) {
	ti := newTestIntake(t, testConfig, nil)
	firing := readTestdata(t, "alertmanager_firing.json")
	resolved := readTestdata(t, "alertmanager_resolved.json")

	status, body, _ := ti.post(t, PathAlertmanager, firing, bearer(amToken))
	if status != 202 {
		t.Fatalf("firing: %d %s", status, body)
	}
	if diff := cmp.Diff(summary{Alerts: 2, Outcomes: map[Outcome]int{OutcomeOpened: 1, OutcomeUpdated: 1}}, decodeSummary(t, body)); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	calls := ti.sink.Calls()
	if len(calls) != 1 || calls[0].Kind != "open" {
		t.Fatalf("calls: %v", ti.sink.kinds())
	}
	inc := calls[0].Inc
	if inc.App != "checkout" || inc.Env != "prod" || inc.Route != "routes[0] (checkout-labels)" || len(inc.Alerts) != 2 || inc.Firing != 2 ||
		inc.Title != "checkout 5xx rate above 5%" || inc.Alerts[0].URL == "" {
		t.Errorf("opened %+v", inc)
	}
	if len(ti.metrics.opened) != 1 || ti.metrics.opened[0] < 0 || ti.metrics.opened[0] > 2*time.Second {
		t.Errorf("time to open recorded: %v", ti.metrics.opened)
	}

	// Alertmanager repeats the notification: nothing changes.
	status, body, _ = ti.post(t, PathAlertmanager, firing, bearer(amToken))
	if status != 202 || len(ti.sink.Calls()) != 1 {
		t.Fatalf("repeat: %d %s, calls %v", status, body, ti.sink.kinds())
	}
	if diff := cmp.Diff(map[Outcome]int{OutcomeDuplicate: 2}, decodeSummary(t, body).Outcomes); diff != "" {
		t.Error(diff)
	}

	status, body, _ = ti.post(t, PathAlertmanager, resolved, bearer(amToken))
	if status != 202 {
		t.Fatalf("resolved: %d %s", status, body)
	}
	if diff := cmp.Diff([]string{"open checkout/prod msg-1", "resolve checkout/prod msg-1"}, ti.sink.kinds()); diff != "" {
		t.Fatal(diff)
	}
	// The old firing notification arriving late does not reopen it.
	if status, body, _ = ti.post(t, PathAlertmanager, firing, bearer(amToken)); status != 202 || len(ti.sink.Calls()) != 2 {
		t.Fatalf("late firing: %d %s, calls %v", status, body, ti.sink.kinds())
	}
	if got := ti.metrics.alerts; got["alertmanager opened"] != 1 || got["alertmanager resolved"] != 2 || got["alertmanager stale"] != 2 || got["alertmanager duplicate"] != 2 {
		t.Errorf("alert metrics: %v", got)
	}
	if len(ti.metrics.opened) != 1 {
		t.Errorf("only opening records the latency: %v", ti.metrics.opened)
	}
}

func TestPagerDutyEndToEnd(t *testing.T) {
	ti := newTestIntake(t, testConfig, nil)
	for _, f := range []string{"pagerduty_triggered.json", "pagerduty_annotated.json", "pagerduty_triggered.json", "pagerduty_resolved.json"} {
		body := readTestdata(t, f)
		if status, b, _ := ti.post(t, PathPagerDuty, body, pdSigned(body, pdSecret)); status != 202 {
			t.Fatalf("%s: %d %s", f, status, b)
		}
	}
	if diff := cmp.Diff([]string{"open api/prod msg-1", "resolve api/prod msg-1"}, ti.sink.kinds()); diff != "" {
		t.Fatal(diff)
	}
	inc := ti.sink.Calls()[0].Inc
	if inc.Title != "A little bump in the road" || inc.Latest.URL != "https://acme.pagerduty.com/incidents/PGR0VU2" {
		t.Errorf("opened %+v", inc)
	}
}

func TestOpsgenieEndToEnd(t *testing.T) {
	ti := newTestIntake(t, testConfig, nil)
	h := http.Header{"X-Shipbot-Token": {ogToken}}
	for _, f := range []string{"opsgenie_create.json", "opsgenie_acknowledge.json", "opsgenie_addnote.json", "opsgenie_close.json"} {
		if status, b, _ := ti.post(t, PathOpsgenie, readTestdata(t, f), h); status != 202 {
			t.Fatalf("%s: %d %s", f, status, b)
		}
	}
	// Create carries details (env: prod) and the text route maps it to
	// 10.0.0.5/prod; Close carries no details, so it could not be routed
	// again: it follows the incident its alert is in.
	if diff := cmp.Diff([]string{"open 10.0.0.5/prod msg-1", "resolve 10.0.0.5/prod msg-1"}, ti.sink.kinds()); diff != "" {
		t.Fatal(diff)
	}
	if got := ti.sink.Calls()[0].Inc.Latest.URL; got != "https://app.opsgenie.com/alert/detail/052652ac-5d1c-464a-812a-7dd18bbfba8c" {
		t.Errorf("URL %q", got)
	}
}

func TestUnmappedAlert(t *testing.T) {
	ti := newTestIntake(t, testConfig, nil)
	body := []byte(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"DiskFull","team":"storage"},` +
		`"annotations":{"summary":"disk /var full"},"startsAt":"2024-05-06T10:00:00Z","fingerprint":"f00d"}]}`)
	status, b, _ := ti.post(t, PathAlertmanager, body, bearer(amToken))
	if status != 202 {
		t.Fatalf("%d %s", status, b)
	}
	if diff := cmp.Diff(summary{Alerts: 1, Outcomes: map[Outcome]int{OutcomeUnmapped: 1}}, decodeSummary(t, b)); diff != "" {
		t.Error(diff)
	}
	if len(ti.sink.Calls()) != 0 {
		t.Errorf("unmapped alert reached the sink: %v", ti.sink.kinds())
	}
	if !strings.Contains(ti.logs.String(), `msg="alert matched no route: no incident" source=alertmanager`) || !strings.Contains(ti.logs.String(), `title="disk /var full"`) {
		t.Errorf("unmapped alert not logged:\n%s", ti.logs)
	}
	if ti.metrics.alerts["alertmanager unmapped"] != 1 {
		t.Errorf("metrics %v", ti.metrics.alerts)
	}
}

func TestSinkFailureAsksForRetry(t *testing.T) {
	var mu sync.Mutex
	fail := true
	sink := &FakeSink{OpenFunc: func(ctx context.Context, _ Incident) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return "", fmt.Errorf("slack: channel_not_found")
		}
		return "", nil
	}}
	ti := newTestIntake(t, testConfig, sink)
	firing := readTestdata(t, "alertmanager_firing.json")
	status, _, h := ti.post(t, PathAlertmanager, firing, bearer(amToken))
	if status != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("sink failure: %d, Retry-After %q", status, h.Get("Retry-After"))
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if status, b, _ := ti.post(t, PathAlertmanager, firing, bearer(amToken)); status != 202 {
		t.Fatalf("retry: %d %s", status, b)
	}
	if diff := cmp.Diff([]string{"open checkout/prod msg-1"}, ti.sink.kinds()); diff != "" {
		t.Fatal(diff)
	}
	if ti.metrics.requests["alertmanager failed"] != 1 || ti.metrics.alerts["alertmanager failed"] != 2 {
		t.Errorf("metrics %v %v", ti.metrics.requests, ti.metrics.alerts)
	}
}

func TestProcessingIsBounded(t *testing.T) {
	sink := &FakeSink{OpenFunc: func(ctx context.Context, _ Incident) (string, error) {
		if _, ok := ctx.Deadline(); !ok {
			return "", fmt.Errorf("no deadline")
		}
		<-ctx.Done() // a Slack that never answers
		return "", ctx.Err()
	}}
	ti := newTestIntake(t, strings.Replace(testConfig, "timeout: 2s", "timeout: 50ms", 1), sink)
	start := time.Now()
	status, _, _ := ti.post(t, PathAlertmanager, readTestdata(t, "alertmanager_firing.json"), bearer(amToken))
	if status != 503 {
		t.Fatalf("hung sink: %d, want 503", status)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("answered after %v", d)
	}
	if !strings.Contains(ti.logs.String(), "context deadline exceeded") {
		t.Errorf("log:\n%s", ti.logs)
	}
}

func TestConcurrentDeliveries(t *testing.T) {
	ti := newTestIntake(t, testConfig, nil)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			env := []string{"prod", "staging"}[i%2]
			body := fmt.Sprintf(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"service":"checkout","env":%q,"instance":"i%d"},`+
				`"annotations":{"summary":"s%d"},"startsAt":"2024-05-06T10:00:00Z","fingerprint":"fp%d"}]}`, env, i, i, i)
			for range 2 {
				req, _ := http.NewRequest(http.MethodPost, ti.srv.URL+PathAlertmanager, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+amToken)
				resp, err := ti.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 202 {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	n := map[string]int{}
	for _, k := range ti.sink.kinds() {
		n[k[:strings.LastIndex(k, " ")]]++
	}
	want := map[string]int{"open checkout/prod": 1, "update checkout/prod": 19, "open checkout/staging": 1, "update checkout/staging": 19}
	if diff := cmp.Diff(want, n); diff != "" {
		t.Errorf("sink calls (-want +got):\n%s", diff)
	}
	if ti.metrics.alerts["alertmanager duplicate"] != 40 {
		t.Errorf("duplicates: %v", ti.metrics.alerts)
	}
}
