package policy

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

// Secrets of the tests: none of them may appear in an error or a log line.
const (
	pdToken   = "u+pdTOKEN_s3cr3t-xyz"
	jiraEmail = "bot@example.com"
	jiraToken = "ATATT3xFfGF0-jira-s3cr3t"
	ogKey     = "eb243592-faa2-4ba2-a551q-1afdf565c889"

	ogID = "70413a06-38d6-4c85-92b8-5ebc900d42e2"
)

var (
	fixedNow  = time.Date(2026, 5, 4, 10, 30, 0, 0, time.UTC)
	jiraBasic = "Basic " + base64.StdEncoding.EncodeToString([]byte(jiraEmail+":"+jiraToken))
	rollback  = gitops.Request{ID: "shp-7k3q9x2m4a", Action: gitops.ActionRollback, App: "checkout", Env: "prod", User: "alice"}
)

// fakeRoute is one canned answer of a fake API.
type fakeRoute struct {
	status int
	file   string // under testdata/live; "" = body
	body   string
	delay  time.Duration // sleep before answering (the client's deadline ends it)
	header http.Header
}

// seenRequest is a request a fake API received.
type seenRequest struct {
	Method string
	Path   string // escaped
	Query  string
	Header http.Header
	Body   string
}

// fakeAPI is an httptest server answering "METHOD /escaped/path" with canned
// payloads, recording every request. An unknown route fails the test.
type fakeAPI struct {
	*httptest.Server
	t      *testing.T
	routes map[string]fakeRoute
	mu     sync.Mutex
	seen   []seenRequest
}

func newFakeAPI(t *testing.T, routes map[string]fakeRoute) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, routes: routes}
	for k, r := range routes {
		if r.file != "" {
			if _, err := os.Stat(filepath.Join("testdata", "live", r.file)); err != nil {
				t.Fatalf("route %s: %v", k, err)
			}
		}
	}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)})
	f.mu.Unlock()
	key := r.Method + " " + r.URL.EscapedPath()
	rt, ok := f.routes[key]
	if !ok {
		f.t.Errorf("fake API: unexpected request %s", key)
		http.Error(w, "unexpected", http.StatusTeapot)
		return
	}
	if rt.delay > 0 {
		select {
		case <-time.After(rt.delay):
		case <-r.Context().Done():
			return
		}
	}
	b := []byte(rt.body)
	if rt.file != "" {
		var err error
		if b, err = os.ReadFile(filepath.Join("testdata", "live", rt.file)); err != nil {
			f.t.Errorf("fake API: %v", err)
		}
	}
	for k, v := range rt.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(rt.status)
	w.Write(b)
}

func (f *fakeAPI) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// only returns the one request the fake received.
func (f *fakeAPI) only(t *testing.T) seenRequest {
	t.Helper()
	rs := f.requests()
	if len(rs) != 1 {
		t.Fatalf("fake API received %d requests, want 1: %+v", len(rs), rs)
	}
	return rs[0]
}

// secretFile writes content to a new file and returns its path.
func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The options of each service, pointed at a fake; secrets are written with
// the surrounding white space files usually have.
func pdOptions(t *testing.T, f *fakeAPI) *PagerDutyOptions {
	return &PagerDutyOptions{BaseURL: f.URL, TokenFile: secretFile(t, "  "+pdToken+"\n"), FromEmail: "shipbot@example.com"}
}

func jiraOptions(t *testing.T, f *fakeAPI) *JiraOptions {
	return &JiraOptions{BaseURL: f.URL, EmailFile: secretFile(t, jiraEmail+"\n"), TokenFile: secretFile(t, jiraToken+"\r\n"),
		Projects: []string{"OPS", "CHG"}}
}

func ogOptions(t *testing.T, f *fakeAPI) *OpsgenieOptions {
	return &OpsgenieOptions{BaseURL: f.URL, KeyFile: secretFile(t, "\t"+ogKey+"\n\n")}
}

func newLive(t *testing.T, o LiveOptions) *LiveJustifier {
	t.Helper()
	if o.Now == nil {
		o.Now = func() time.Time { return fixedNow.In(time.FixedZone("CEST", 2*3600)) }
	}
	lj, err := NewLiveJustifier(o)
	if err != nil {
		t.Fatalf("NewLiveJustifier: %v", err)
	}
	return lj
}

// wantUserError asserts err is a *gitops.UserError with exactly msg.
func wantUserError(t *testing.T, err error, msg string) *gitops.UserError {
	t.Helper()
	var ue *gitops.UserError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T), want a *gitops.UserError %q", err, err, msg)
	}
	if ue.Message != msg {
		t.Fatalf("message\n got %q\nwant %q", ue.Message, msg)
	}
	return ue
}

// noSecrets fails if any secret appears in s.
func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range []string{pdToken, jiraToken, ogKey, base64.StdEncoding.EncodeToString([]byte(jiraEmail + ":" + jiraToken))} {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains a secret: %s", what, s)
		}
	}
}

func justify(t *testing.T, lj *LiveJustifier, why string, env gitops.Environment) (gitops.Justification, error) {
	t.Helper()
	req := rollback
	req.Why = why
	req.Env = env.Name
	return lj.Justify(context.Background(), req, env)
}

func TestLiveJustifierPagerDuty(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		why      string
		route    fakeRoute
		path     string
		services map[string][]string
		timeout  time.Duration
		wantRef  string
		state    string // Checked.State when accepted
		wantErr  string // exact UserError message
	}{
		{name: "triggered", why: "https://acme.pagerduty.com/incidents/PT4KHLK checkout 500s",
			path: "/incidents/PT4KHLK", route: fakeRoute{status: 200, file: "pagerduty_incident_triggered.json"},
			wantRef: "PT4KHLK", state: "triggered"},
		{name: "acknowledged, slack link", why: "<https://acme.pagerduty.com/incidents/PT4KHLK|#1234> mail down",
			path: "/incidents/PT4KHLK", route: fakeRoute{status: 200, file: "pagerduty_incident_acknowledged.json"},
			wantRef: "PT4KHLK", state: "acknowledged"},
		{name: "resolved", why: "https://acme.pagerduty.com/incidents/P1X2Y3Z",
			path: "/incidents/P1X2Y3Z", route: fakeRoute{status: 200, file: "pagerduty_incident_resolved.json"},
			wantErr: "incident P1X2Y3Z is resolved; a prod rollback needs an open incident (triggered or acknowledged)"},
		{name: "missing", why: "https://acme.pagerduty.com/incidents/PNOPE00",
			path: "/incidents/PNOPE00", route: fakeRoute{status: 404, file: "pagerduty_error_not_found.json"},
			wantErr: "PagerDuty has no incident PNOPE00 (or shipbot's token can't see it)"},
		{name: "unauthorized", why: "https://acme.pagerduty.com/incidents/PT4KHLK",
			path: "/incidents/PT4KHLK", route: fakeRoute{status: 401, file: "pagerduty_error_unauthorized.json"},
			wantErr: "PagerDuty refused shipbot's token (401): an admin must fix pagerduty.tokenFile"},
		{name: "forbidden", why: "https://acme.pagerduty.com/incidents/PT4KHLK",
			path: "/incidents/PT4KHLK", route: fakeRoute{status: 403, body: `{"error":{"message":"Access Denied","code":2010}}`},
			wantErr: "PagerDuty does not let shipbot read incidents (403): an admin must give the token in pagerduty.tokenFile that permission"},
		{name: "rate limited", why: "https://acme.pagerduty.com/incidents/PT4KHLK",
			path: "/incidents/PT4KHLK", route: fakeRoute{status: 429, body: `{"error":{"message":"Rate Limit Exceeded","code":2020}}`},
			wantErr: "PagerDuty is rate-limiting shipbot (429); try again in a minute"},
		{name: "server error", why: "https://acme.pagerduty.com/incidents/PT4KHLK",
			path: "/incidents/PT4KHLK", route: fakeRoute{status: 503, body: `upstream unavailable`},
			wantErr: "PagerDuty failed (HTTP 503); try again later"},
		{name: "unreadable answer", why: "https://acme.pagerduty.com/incidents/PT4KHLK",
			path: "/incidents/PT4KHLK", route: fakeRoute{status: 200, body: `<html>maintenance</html>`},
			wantErr: "PagerDuty sent an answer shipbot can't read"},
		{name: "answer without incident", why: "https://acme.pagerduty.com/incidents/PT4KHLK",
			path: "/incidents/PT4KHLK", route: fakeRoute{status: 200, body: `{"incidents":[]}`},
			wantErr: "PagerDuty sent an answer shipbot can't read"},
		{name: "slow", why: "https://acme.pagerduty.com/incidents/PT4KHLK", timeout: 50 * time.Millisecond,
			path: "/incidents/PT4KHLK", route: fakeRoute{status: 200, file: "pagerduty_incident_triggered.json", delay: 5 * time.Second},
			wantErr: "PagerDuty did not answer within 50ms"},
		{name: "service by name, case-insensitive", why: "https://acme.pagerduty.com/incidents/PT4KHLK",
			services: map[string][]string{"checkout": {"Checkout API", "my mail service"}},
			path:     "/incidents/PT4KHLK", route: fakeRoute{status: 200, file: "pagerduty_incident_triggered.json"},
			wantRef: "PT4KHLK", state: "triggered"},
		{name: "service by id", why: "https://acme.pagerduty.com/incidents/PT4KHLK",
			services: map[string][]string{"checkout": {"PWIXJZS"}},
			path:     "/incidents/PT4KHLK", route: fakeRoute{status: 200, file: "pagerduty_incident_triggered.json"},
			wantRef: "PT4KHLK", state: "triggered"},
		{name: "service of another app", why: "https://acme.pagerduty.com/incidents/PT4KHLK",
			services: map[string][]string{"checkout": {"Checkout API", "PCHK001"}, "mail": {"My Mail Service"}},
			path:     "/incidents/PT4KHLK", route: fakeRoute{status: 200, file: "pagerduty_incident_triggered.json"},
			wantErr: `incident PT4KHLK is on the PagerDuty service "My Mail Service"; a prod rollback of checkout needs an incident on one of: Checkout API, PCHK001`},
		{name: "wildcard services apply to unlisted apps", why: "https://acme.pagerduty.com/incidents/PT4KHLK",
			services: map[string][]string{"*": {"Checkout API"}},
			path:     "/incidents/PT4KHLK", route: fakeRoute{status: 200, file: "pagerduty_incident_triggered.json"},
			wantErr: `incident PT4KHLK is on the PagerDuty service "My Mail Service"; a prod rollback of checkout needs an incident on one of: Checkout API`},
		{name: "apps without services are not checked", why: "https://acme.pagerduty.com/incidents/PT4KHLK",
			services: map[string][]string{"mail": {"Other"}},
			path:     "/incidents/PT4KHLK", route: fakeRoute{status: 200, file: "pagerduty_incident_triggered.json"},
			wantRef: "PT4KHLK", state: "triggered"},
		{name: "incident number answers with the id", why: "https://acme.pagerduty.com/incidents/1234",
			path: "/incidents/1234", route: fakeRoute{status: 200, file: "pagerduty_incident_triggered.json"},
			wantRef: "PT4KHLK", state: "triggered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAPI(t, map[string]fakeRoute{"GET " + tt.path: tt.route})
			pd := pdOptions(t, f)
			pd.Services = tt.services
			lj := newLive(t, LiveOptions{PagerDuty: pd, Timeout: tt.timeout})
			start := time.Now()
			got, err := justify(t, lj, tt.why, prod)

			r := f.only(t)
			if r.Method != "GET" || r.Path != tt.path || r.Body != "" {
				t.Errorf("request %s %s body %q, want GET %s without body", r.Method, r.Path, r.Body, tt.path)
			}
			if h := r.Header.Get("Authorization"); h != "Token token="+pdToken {
				t.Errorf("Authorization %q, want the trimmed token", h)
			}
			if h := r.Header.Get("Accept"); h != "application/vnd.pagerduty+json;version=2" {
				t.Errorf("Accept %q", h)
			}
			if tt.wantErr != "" {
				ue := wantUserError(t, err, tt.wantErr)
				noSecrets(t, "error", ue.Error())
				if got != (gitops.Justification{}) {
					t.Errorf("justification %+v returned with an error", got)
				}
				if tt.timeout > 0 && time.Since(start) > 2*time.Second {
					t.Errorf("timeout took %s", time.Since(start))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := gitops.Justification{Text: normalize(tt.why, MaxJustificationRunes), Kind: KindPagerDuty, Ref: tt.wantRef}
			checkJustification(t, got, want, SourcePagerDuty, tt.state)
		})
	}
}

// checkJustification compares got with want plus the live check.
func checkJustification(t *testing.T, got, want gitops.Justification, source, state string) {
	t.Helper()
	if got.Checked == nil {
		t.Fatalf("Checked is nil in %+v", got)
	}
	c := *got.Checked
	got.Checked = nil
	if got != want {
		t.Errorf("justification\n got %+v\nwant %+v", got, want)
	}
	if c.Source != source || c.State != state || !c.At.Equal(fixedNow) || c.At.Location() != time.UTC {
		t.Errorf("Checked = %+v, want {%s %s %s}", c, source, state, fixedNow)
	}
}

func TestLiveJustifierJira(t *testing.T) {
	t.Parallel()
	const issuePath = "/rest/api/2/issue/"
	tests := []struct {
		name    string
		why     string
		key     string // requested
		route   fakeRoute
		jira    func(*JiraOptions)
		hosts   []string
		timeout time.Duration
		wantRef string
		state   string
		wantErr string
	}{
		{name: "in progress", why: "OPS-123: bad config in 1.4.2", key: "OPS-123",
			route: fakeRoute{status: 200, file: "jira_issue_in_progress.json"}, wantRef: "OPS-123", state: "In Progress"},
		{name: "approved, cloud browse url", why: "https://acme.atlassian.net/browse/OPS-124 rollback", key: "OPS-124",
			route: fakeRoute{status: 200, file: "jira_issue_approved.json"}, wantRef: "OPS-124", state: "Approved"},
		{name: "self-hosted browse url", why: "https://jira.example.com/browse/OPS-124", key: "OPS-124", hosts: []string{"jira.example.com"},
			route: fakeRoute{status: 200, file: "jira_issue_approved.json"}, wantRef: "OPS-124", state: "Approved"},
		{name: "status compared case-insensitively", why: "OPS-123", key: "OPS-123",
			jira:  func(o *JiraOptions) { o.Statuses = []string{"in progress"} },
			route: fakeRoute{status: 200, file: "jira_issue_in_progress.json"}, wantRef: "OPS-123", state: "In Progress"},
		{name: "moved issue answers with its new key", why: "OPS-7", key: "OPS-7",
			route: fakeRoute{status: 200, file: "jira_issue_moved.json"}, wantRef: "CHG-42", state: "Approved"},
		{name: "done", why: "OPS-125", key: "OPS-125",
			route:   fakeRoute{status: 200, file: "jira_issue_done.json"},
			wantErr: "OPS-125 is in status Done; prod changes need one of: Approved, In Progress"},
		{name: "done with custom statuses", why: "OPS-125", key: "OPS-125",
			jira:    func(o *JiraOptions) { o.Statuses = []string{"Change Approved"} },
			route:   fakeRoute{status: 200, file: "jira_issue_done.json"},
			wantErr: "OPS-125 is in status Done; prod changes need one of: Change Approved"},
		{name: "project not allowed", why: "SEC-9", key: "SEC-9",
			route:   fakeRoute{status: 200, file: "jira_issue_other_project.json"},
			wantErr: "SEC-9 is in the Jira project SEC; prod changes need an issue in one of: OPS, CHG"},
		{name: "missing", why: "OPS-999", key: "OPS-999",
			route:   fakeRoute{status: 404, file: "jira_error_not_found.json"},
			wantErr: "Jira has no issue OPS-999 (or shipbot's Jira account can't see it)"},
		{name: "unauthorized", why: "OPS-123", key: "OPS-123",
			route:   fakeRoute{status: 401, file: "jira_error_unauthorized.json"},
			wantErr: "Jira refused shipbot's credentials (401): an admin must fix jira.email or jira.tokenFile"},
		{name: "slow", why: "OPS-123", key: "OPS-123", timeout: 40 * time.Millisecond,
			route:   fakeRoute{status: 200, file: "jira_issue_in_progress.json", delay: 5 * time.Second},
			wantErr: "Jira did not answer within 40ms"},
		{name: "answer without status", why: "OPS-123", key: "OPS-123",
			route:   fakeRoute{status: 200, body: `{"id":"10002","key":"OPS-123","fields":{"summary":"x"}}`},
			wantErr: "Jira sent an answer shipbot can't read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAPI(t, map[string]fakeRoute{"GET " + issuePath + tt.key: tt.route})
			jo := jiraOptions(t, f)
			if tt.jira != nil {
				tt.jira(jo)
			}
			lj := newLive(t, LiveOptions{Jira: jo, Timeout: tt.timeout, JiraHosts: tt.hosts})
			got, err := justify(t, lj, tt.why, prod)

			r := f.only(t)
			if r.Method != "GET" || r.Path != issuePath+tt.key || r.Query != "fields=status%2Cproject%2Csummary" || r.Body != "" {
				t.Errorf("request %s %s?%s body %q", r.Method, r.Path, r.Query, r.Body)
			}
			if h := r.Header.Get("Authorization"); h != jiraBasic {
				t.Errorf("Authorization %q, want basic auth of the trimmed email and token", h)
			}
			if h := r.Header.Get("Accept"); h != "application/json" {
				t.Errorf("Accept %q", h)
			}
			if tt.wantErr != "" {
				ue := wantUserError(t, err, tt.wantErr)
				noSecrets(t, "error", ue.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := gitops.Justification{Text: normalize(tt.why, MaxJustificationRunes), Kind: KindJira, Ref: tt.wantRef}
			checkJustification(t, got, want, SourceJira, tt.state)
		})
	}
}

func TestJiraBearer(t *testing.T) {
	const pat = "NjM4OTk0-jira-pat-s3cr3t"
	t.Setenv("SHIPBOT_TEST_JIRA_PAT", "\n"+pat+" \n")
	f := newFakeAPI(t, map[string]fakeRoute{"GET /jira/rest/api/2/issue/OPS-123": {status: 200, file: "jira_issue_in_progress.json"}})
	// A Data Center with a context path.
	lj := newLive(t, LiveOptions{Jira: &JiraOptions{BaseURL: f.URL + "/jira/", Auth: "bearer", TokenEnv: "SHIPBOT_TEST_JIRA_PAT", Projects: []string{"OPS"}}})
	got, err := justify(t, lj, "OPS-123", prod)
	if err != nil {
		t.Fatal(err)
	}
	if got.Checked == nil || got.Checked.State != "In Progress" {
		t.Errorf("got %+v", got)
	}
	if h := f.only(t).Header.Get("Authorization"); h != "Bearer "+pat {
		t.Errorf("Authorization %q, want the trimmed PAT as bearer", h)
	}

	// The same site refusing the token names the variable to fix.
	f401 := newFakeAPI(t, map[string]fakeRoute{"GET /rest/api/2/issue/OPS-123": {status: 401, file: "jira_error_unauthorized.json"}})
	lj = newLive(t, LiveOptions{Jira: &JiraOptions{BaseURL: f401.URL, Auth: "bearer", TokenEnv: "SHIPBOT_TEST_JIRA_PAT", Projects: []string{"OPS"}}})
	_, err = justify(t, lj, "OPS-123", prod)
	ue := wantUserError(t, err, "Jira refused shipbot's token (401): an admin must fix jira.tokenEnv")
	if strings.Contains(ue.Error(), pat) {
		t.Errorf("error shows the PAT: %v", ue)
	}
}

func TestLiveJustifierOpsgenie(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		why     string
		path    string
		query   string
		route   fakeRoute
		timeout time.Duration
		wantRef string
		wantErr string
	}{
		{name: "account url", why: "https://acme.app.opsgenie.com/alert/detail/" + ogID + "/details servers in danger",
			path: "/v2/alerts/" + ogID, query: "identifierType=id", route: fakeRoute{status: 200, file: "opsgenie_alert_open.json"}, wantRef: ogID},
		{name: "app url without account", why: "https://app.opsgenie.com/alert/detail/" + ogID,
			path: "/v2/alerts/" + ogID, query: "identifierType=id", route: fakeRoute{status: 200, file: "opsgenie_alert_open.json"}, wantRef: ogID},
		{name: "eu url, slack link", why: "<https://acme.app.eu.opsgenie.com/alert/detail/" + ogID + "/|alert>",
			path: "/v2/alerts/" + ogID, query: "identifierType=id", route: fakeRoute{status: 200, file: "opsgenie_alert_open.json"}, wantRef: ogID},
		{name: "tiny id becomes the stable id", why: "opsgenie:1791: servers in danger",
			path: "/v2/alerts/1791", query: "identifierType=tiny", route: fakeRoute{status: 200, file: "opsgenie_alert_open.json"}, wantRef: ogID},
		{name: "closed", why: "opsgenie:1791",
			path: "/v2/alerts/1791", query: "identifierType=tiny", route: fakeRoute{status: 200, file: "opsgenie_alert_closed.json"},
			wantErr: "Opsgenie alert #1791 is closed; a prod rollback needs an open alert"},
		{name: "closed by url", why: "https://acme.app.opsgenie.com/alert/detail/" + ogID,
			path: "/v2/alerts/" + ogID, query: "identifierType=id", route: fakeRoute{status: 200, file: "opsgenie_alert_closed.json"},
			wantErr: "Opsgenie alert " + ogID + " is closed; a prod rollback needs an open alert"},
		{name: "missing", why: "opsgenie:4242",
			path: "/v2/alerts/4242", query: "identifierType=tiny", route: fakeRoute{status: 404, file: "opsgenie_error_not_found.json"},
			wantErr: "Opsgenie has no alert #4242 (or shipbot's API key can't see it)"},
		{name: "unauthorized", why: "opsgenie:1791",
			path: "/v2/alerts/1791", query: "identifierType=tiny", route: fakeRoute{status: 401, file: "opsgenie_error_unauthorized.json"},
			wantErr: "Opsgenie refused shipbot's API key (401): an admin must fix opsgenie.keyFile"},
		{name: "slow", why: "opsgenie:1791", timeout: 30 * time.Millisecond,
			path: "/v2/alerts/1791", query: "identifierType=tiny", route: fakeRoute{status: 200, file: "opsgenie_alert_open.json", delay: 5 * time.Second},
			wantErr: "Opsgenie did not answer within 30ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeAPI(t, map[string]fakeRoute{"GET " + tt.path: tt.route})
			lj := newLive(t, LiveOptions{Opsgenie: ogOptions(t, f), Timeout: tt.timeout})
			got, err := justify(t, lj, tt.why, prod)

			r := f.only(t)
			if r.Method != "GET" || r.Path != tt.path || r.Query != tt.query || r.Body != "" {
				t.Errorf("request %s %s?%s body %q, want GET %s?%s", r.Method, r.Path, r.Query, r.Body, tt.path, tt.query)
			}
			if h := r.Header.Get("Authorization"); h != "GenieKey "+ogKey {
				t.Errorf("Authorization %q, want the trimmed key", h)
			}
			if tt.wantErr != "" {
				ue := wantUserError(t, err, tt.wantErr)
				noSecrets(t, "error", ue.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := gitops.Justification{Text: normalize(tt.why, MaxJustificationRunes), Kind: KindOpsgenie, Ref: tt.wantRef}
			checkJustification(t, got, want, SourceOpsgenie, "open")
		})
	}
}

// allServices is a justifier with the three services on one fake that
// accepts no request at all.
func allServices(t *testing.T) (*LiveJustifier, *fakeAPI) {
	f := newFakeAPI(t, nil)
	return newLive(t, LiveOptions{PagerDuty: pdOptions(t, f), Jira: jiraOptions(t, f), Opsgenie: ogOptions(t, f)}), f
}

func TestLiveJustifierLookalikesRejectedBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	lj, f := allServices(t)
	for _, why := range []string{
		"",
		"fixing the thing",
		"see https://acme.pagerduty.com/incidents/PT4KHLK",
		"https://pagerduty.com.evil.com/incidents/PT4KHLK",
		"https://acme.pagerduty.com@evil.com/incidents/PT4KHLK",
		"https://evilpagerduty.com/incidents/PT4KHLK",
		"https://acme.pagerduty.com:8443/incidents/PT4KHLK",
		"https://atlassian.net.evil.com/browse/OPS-123",
		"https://evil.com/browse/OPS-123",
		"ops-123",
		"https://app.opsgenie.com.evil.com/alert/detail/" + ogID,
		"https://evilapp.opsgenie.com/alert/detail/" + ogID,
		"https://opsgenie.com/alert/detail/" + ogID,
		"https://a.b.app.opsgenie.com/alert/detail/" + ogID,
		"https://acme.app.opsgenie.com:8443/alert/detail/" + ogID,
		"http://acme.app.opsgenie.com/alert/detail/" + ogID,
		"https://eve@acme.app.opsgenie.com/alert/detail/" + ogID,
		"https://acme.app.opsgenie.com@evil.com/alert/detail/" + ogID,
		"https://acme.app.opsgenie.com/alert/detail/not-an-alert-id",
		"https://acme.app.opsgenie.com/alert/detail/" + ogID + "/details/more",
		"https://acme.app.opsgenie.com/alert/detail/" + ogID + "%2F..",
		"https://acme.app.opsgenie.com/incident/detail/" + ogID,
		"opsgenie:",
		"opsgenie:12a",
		"opsgenie:-1",
		"opsgenie:../1",
	} {
		got, err := justify(t, lj, why, prod)
		var ue *gitops.UserError
		if !errors.As(err, &ue) || !strings.HasPrefix(ue.Message, "prod is protected") {
			t.Errorf("Justify(%q) = %+v, %v; want a rejection", why, got, err)
			continue
		}
		if !strings.HasSuffix(ue.Message, "; an Opsgenie alert works too (https://<account>.app.opsgenie.com/alert/detail/<ID>, or opsgenie:<tiny ID> such as opsgenie:1791)") {
			t.Errorf("Justify(%q): message %q does not mention Opsgenie", why, ue.Message)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent for rejected references", n)
	}
}

func TestOpsgenieReference(t *testing.T) {
	for tok, want := range map[string]string{
		"opsgenie:1791": "1791",
		"OpsGenie:7":    "7",
		"https://app.opsgenie.com/alert/detail/" + ogID:                                  ogID,
		"https://ACME.App.OpsGenie.com/alert/detail/" + ogID + "/logs":                   ogID,
		"https://app.eu.opsgenie.com/alert/detail/" + ogID + "/":                         ogID,
		"https://x.app.opsgenie.com/alert/detail/" + ogID + "-1689010338026/details":     ogID + "-1689010338026",
		"https://acme.app.opsgenie.com/alert/detail/" + ogID + "?tab=notes":              ogID,
		"https://acme.app.opsgenie.com/alert/detail/" + strings.ToUpper(ogID) + "/notes": strings.ToUpper(ogID),
	} {
		if got, ok := opsgenieReference(tok); !ok || got != want {
			t.Errorf("opsgenieReference(%q) = %q, %v; want %q", tok, got, ok, want)
		}
	}
}

func TestLiveJustifierNotConfigured(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, nil)
	pdOnly := newLive(t, LiveOptions{PagerDuty: pdOptions(t, f)})
	_, err := justify(t, pdOnly, "OPS-123", prod)
	wantUserError(t, err, "Jira checks are not configured; ask an admin or use a PagerDuty incident")
	_, err = justify(t, pdOnly, "opsgenie:1791", prod)
	wantUserError(t, err, "Opsgenie checks are not configured; ask an admin or use a PagerDuty incident")

	jiraOnly := newLive(t, LiveOptions{Jira: jiraOptions(t, f), Opsgenie: ogOptions(t, f)})
	_, err = justify(t, jiraOnly, "https://acme.pagerduty.com/incidents/PT4KHLK", prod)
	wantUserError(t, err, "PagerDuty checks are not configured; ask an admin or use a Jira issue or an Opsgenie alert")
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}

	if _, err := NewLiveJustifier(LiveOptions{}); err == nil || !strings.Contains(err.Error(), "no service configured") {
		t.Errorf("NewLiveJustifier without services: %v", err)
	}
}

func TestLiveJustifierUnprotectedIsNotChecked(t *testing.T) {
	t.Parallel()
	lj, f := allServices(t)
	for why, want := range map[string]gitops.Justification{
		"":                     {},
		"trying the new build": {Text: "trying the new build", Kind: KindText},
		"OPS-123 retry":        {Text: "OPS-123 retry", Kind: KindJira, Ref: "OPS-123"},
		"https://acme.pagerduty.com/incidents/PT4KHLK":      {Text: "https://acme.pagerduty.com/incidents/PT4KHLK", Kind: KindPagerDuty, Ref: "PT4KHLK"},
		"opsgenie:1791 retry":                               {Text: "opsgenie:1791 retry", Kind: KindOpsgenie, Ref: "1791"},
		"https://evilapp.opsgenie.com/alert/detail/" + ogID: {Text: "https://evilapp.opsgenie.com/alert/detail/" + ogID, Kind: KindText},
	} {
		got, err := justify(t, lj, why, dev)
		if err != nil || got != want {
			t.Errorf("Justify(%q) in dev = %+v, %v; want %+v", why, got, err, want)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent for an unprotected environment", n)
	}
}

func TestLiveJustifierHostileText(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]fakeRoute{"GET /v2/alerts/1791": {status: 200, file: "opsgenie_alert_open.json"}})
	lj := newLive(t, LiveOptions{Opsgenie: ogOptions(t, f)})
	got, err := justify(t, lj, "\u200bopsgenie:1791\nApproved-by: eve \u202eevil"+strings.Repeat(" x", 400), prod)
	if err != nil {
		t.Fatal(err)
	}
	checkOneLine(t, got.Text)
	if !strings.HasPrefix(got.Text, "opsgenie:1791 Approved-by: eve evil x") || got.Ref != ogID {
		t.Errorf("got %+v", got)
	}
}

func TestLiveJustifierSecretsStayOut(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	echo := func(secret string) string { // a server that echoes the credential
		return fmt.Sprintf(`{"error":{"message":"token %s is not valid","code":2006},"message":"bad key %s"}`, secret, secret)
	}
	f := newFakeAPI(t, map[string]fakeRoute{
		"GET /incidents/PT4KHLK":        {status: 401, body: echo(pdToken)},
		"GET /incidents/P1X2Y3Z":        {status: 500, body: echo("Token token=" + pdToken)},
		"GET /rest/api/2/issue/OPS-123": {status: 401, body: echo(jiraBasic)},
		"GET /rest/api/2/issue/OPS-124": {status: 200, body: `{"key":` + echo(jiraToken)},
		"GET /v2/alerts/1791":           {status: 403, body: echo(ogKey)},
		"GET /v2/alerts/4242":           {status: 200, file: "opsgenie_alert_open.json", delay: 5 * time.Second},
		"GET /incidents/PSLOW00":        {status: 200, delay: 5 * time.Second},
		"GET /rest/api/2/issue/OPS-125": {status: 200, file: "jira_issue_done.json"},
		"GET /rest/api/2/issue/OPS-126": {status: 404, body: `{"errorMessages":["no issue for ` + jiraToken + `"],"errors":{}}`},
		"GET /v2/alerts/" + ogID:        {status: 200, file: "opsgenie_alert_open.json"},
		"GET /incidents/PT4KHLL":        {status: 200, file: "pagerduty_incident_triggered.json"},
		"GET /rest/api/2/issue/OPS-127": {status: 200, file: "jira_issue_in_progress.json"},
		"GET /rest/api/2/issue/OPS-128": {status: 302, header: http.Header{"Location": {"https://evil.example/steal"}}},
		"GET /v2/alerts/5555":           {status: 200, body: "not json " + ogKey},
		"GET /rest/api/2/issue/OPS-129": {status: 400, body: echo(jiraToken)},
		"GET /incidents/PT4KHLM":        {status: 404, body: echo(pdToken)},
		"GET /v2/alerts/6666":           {status: 404, body: echo(ogKey)},
		"GET /rest/api/2/issue/OPS-130": {status: 429, body: echo(jiraToken)},
		"GET /v2/alerts/7777":           {status: 503, body: echo(ogKey)},
		"GET /rest/api/2/issue/OPS-131": {status: 403, body: echo(jiraBasic)},
		"GET /incidents/PT4KHLN":        {status: 200, body: echo(pdToken)},
		"GET /rest/api/2/issue/OPS-132": {status: 200, body: echo(jiraToken)},
		"GET /v2/alerts/8888":           {status: 200, body: `{"data":{"status":"closed","message":"` + ogKey + `"}}`},
		"GET /rest/api/2/issue/OPS-133": {status: 200, file: "jira_issue_other_project.json"},
		"GET /incidents/P1X2Y3A":        {status: 200, file: "pagerduty_incident_resolved.json"},
		"GET /rest/api/2/issue/OPS-134": {status: 200, file: "jira_issue_approved.json"},
		"GET /v2/alerts/9999":           {status: 200, file: "opsgenie_alert_closed.json"},
		"GET /incidents/PT4KHLO":        {status: 200, file: "pagerduty_incident_acknowledged.json"},
		"GET /rest/api/2/issue/OPS-135": {status: 200, file: "jira_issue_moved.json"},
		"GET /v2/alerts/1234":           {status: 200, file: "opsgenie_alert_open.json"},
		"GET /rest/api/2/issue/OPS-136": {status: 401, file: "jira_error_unauthorized.json"},
		"GET /incidents/PT4KHLP":        {status: 401, file: "pagerduty_error_unauthorized.json"},
		"GET /v2/alerts/2345":           {status: 401, file: "opsgenie_error_unauthorized.json"},
		"GET /rest/api/2/issue/OPS-137": {status: 404, file: "jira_error_not_found.json"},
		"GET /incidents/PT4KHLQ":        {status: 404, file: "pagerduty_error_not_found.json"},
		"GET /v2/alerts/3456":           {status: 404, file: "opsgenie_error_not_found.json"},
	})
	lj := newLive(t, LiveOptions{PagerDuty: pdOptions(t, f), Jira: jiraOptions(t, f), Opsgenie: ogOptions(t, f),
		Timeout: 500 * time.Millisecond, Logger: logger})
	var all strings.Builder
	failures := 0
	for _, why := range []string{
		"https://acme.pagerduty.com/incidents/PT4KHLK", "https://acme.pagerduty.com/incidents/P1X2Y3Z",
		"OPS-123", "OPS-124", "opsgenie:1791", "opsgenie:4242", "https://acme.pagerduty.com/incidents/PSLOW00",
		"OPS-125", "OPS-126", "https://app.opsgenie.com/alert/detail/" + ogID, "https://acme.pagerduty.com/incidents/PT4KHLL",
		"OPS-127", "OPS-128", "opsgenie:5555", "OPS-129", "https://acme.pagerduty.com/incidents/PT4KHLM", "opsgenie:6666",
		"OPS-130", "opsgenie:7777", "OPS-131", "https://acme.pagerduty.com/incidents/PT4KHLN", "OPS-132", "opsgenie:8888",
		"OPS-133", "https://acme.pagerduty.com/incidents/P1X2Y3A", "OPS-134", "opsgenie:9999",
		"https://acme.pagerduty.com/incidents/PT4KHLO", "OPS-135", "opsgenie:1234", "OPS-136",
		"https://acme.pagerduty.com/incidents/PT4KHLP", "opsgenie:2345", "OPS-137",
		"https://acme.pagerduty.com/incidents/PT4KHLQ", "opsgenie:3456",
	} {
		got, err := justify(t, lj, why, prod)
		fmt.Fprintf(&all, "%+v\n", got)
		if err != nil {
			failures++
			fmt.Fprintf(&all, "%v\n%+v\n%#v\n", err, err, err)
			var ue *gitops.UserError
			if errors.As(err, &ue) {
				all.WriteString(ue.Message + "\n")
			}
			logger.Error("justify failed", "why", why, "err", err)
		}
	}
	if failures < 20 {
		t.Errorf("only %d failures; the test lost its teeth", failures)
	}
	logMu.Lock()
	logged := logs.String()
	logMu.Unlock()
	noSecrets(t, "errors", all.String())
	noSecrets(t, "logs", logged)
	if !strings.Contains(all.String(), redacted) {
		t.Errorf("no redaction happened; were the echoed secrets read at all?\n%s", all.String())
	}
	if !strings.Contains(logged, `"msg":"outbound call"`) || !strings.Contains(logged, `"path":"/incidents/PT4KHLK"`) {
		t.Errorf("logs lack the outbound calls:\n%s", logged)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestLiveJustifierConcurrent(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]fakeRoute{
		"GET /incidents/PT4KHLK":        {status: 200, file: "pagerduty_incident_triggered.json", delay: 5 * time.Millisecond},
		"GET /incidents/P1X2Y3Z":        {status: 200, file: "pagerduty_incident_resolved.json"},
		"GET /rest/api/2/issue/OPS-123": {status: 200, file: "jira_issue_in_progress.json", delay: 5 * time.Millisecond},
		"GET /rest/api/2/issue/OPS-125": {status: 200, file: "jira_issue_done.json"},
		"GET /v2/alerts/1791":           {status: 200, file: "opsgenie_alert_open.json", delay: 5 * time.Millisecond},
	})
	lj := newLive(t, LiveOptions{PagerDuty: pdOptions(t, f), Jira: jiraOptions(t, f), Opsgenie: ogOptions(t, f)})
	cases := []struct{ why, ref, err string }{
		{why: "https://acme.pagerduty.com/incidents/PT4KHLK", ref: "PT4KHLK"},
		{why: "https://acme.pagerduty.com/incidents/P1X2Y3Z", err: "incident P1X2Y3Z is resolved"},
		{why: "OPS-123", ref: "OPS-123"},
		{why: "OPS-125", err: "OPS-125 is in status Done"},
		{why: "opsgenie:1791", ref: ogID},
		{why: "dev:OPS-9"},
	}
	const rounds = 8
	var wg sync.WaitGroup
	errs := make(chan error, rounds*len(cases))
	for i := range rounds {
		for _, c := range cases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				env := prod
				why := c.why
				if rest, ok := strings.CutPrefix(why, "dev:"); ok {
					env, why = dev, rest
				}
				req := rollback
				req.Why, req.ID = why, fmt.Sprintf("shp-%d", i)
				got, err := lj.Justify(context.Background(), req, env)
				switch {
				case c.err != "":
					var ue *gitops.UserError
					if !errors.As(err, &ue) || !strings.HasPrefix(ue.Message, c.err) {
						errs <- fmt.Errorf("%s: got %+v, %v; want %q", why, got, err, c.err)
					}
				case env == dev:
					if err != nil || got.Checked != nil || got.Ref != "OPS-9" {
						errs <- fmt.Errorf("%s in dev: %+v, %v", why, got, err)
					}
				case err != nil || got.Ref != c.ref || got.Checked == nil:
					errs <- fmt.Errorf("%s: got %+v, %v; want ref %s", why, got, err, c.ref)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(f.requests()); n != rounds*(len(cases)-1) {
		t.Errorf("%d requests, want %d", n, rounds*(len(cases)-1))
	}
}

func TestLiveJustifierCancelled(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]fakeRoute{"GET /incidents/PT4KHLK": {status: 200, file: "pagerduty_incident_triggered.json", delay: 5 * time.Second}})
	lj := newLive(t, LiveOptions{PagerDuty: pdOptions(t, f)})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	req := rollback
	req.Why = "https://acme.pagerduty.com/incidents/PT4KHLK"
	_, err := lj.Justify(ctx, req, prod)
	var ue *gitops.UserError
	if !errors.Is(err, context.Canceled) || errors.As(err, &ue) {
		t.Errorf("cancelled check: %v; want context.Canceled, not a user error", err)
	}
}

func TestLiveJustifierUnreachable(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, nil)
	url := f.URL
	f.Close() // nothing listens there any more
	lj := newLive(t, LiveOptions{Opsgenie: &OpsgenieOptions{BaseURL: url, KeyFile: secretFile(t, ogKey)}})
	_, err := justify(t, lj, "opsgenie:1791", prod)
	ue := wantUserError(t, err, "Opsgenie could not be reached; try again later")
	if ue.Err == nil || !strings.Contains(ue.Err.Error(), "GET /v2/alerts/1791") {
		t.Errorf("log detail %v", ue.Err)
	}
}

func TestLiveJustifierDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	other := newFakeAPI(t, nil)
	f := newFakeAPI(t, map[string]fakeRoute{"GET /incidents/PT4KHLK": {status: 307,
		header: http.Header{"Location": {other.URL + "/incidents/PT4KHLK"}}}})
	lj := newLive(t, LiveOptions{PagerDuty: pdOptions(t, f)})
	_, err := justify(t, lj, "https://acme.pagerduty.com/incidents/PT4KHLK", prod)
	wantUserError(t, err, "PagerDuty answered with a redirect (HTTP 307); an admin must check its base URL")
	if n := len(other.requests()); n != 0 {
		t.Errorf("the redirect was followed (%d requests)", n)
	}
}

func TestLiveOptionsValidate(t *testing.T) {
	t.Parallel()
	good := secretFile(t, "tok\n")
	blank := secretFile(t, " \n\t\n")
	inner := secretFile(t, "abc-first\nsecond-line")
	missing := filepath.Join(t.TempDir(), "nope")
	huge := secretFile(t, strings.Repeat("k", 65<<10))
	tests := []struct {
		name string
		o    LiveOptions
		want []string // substrings of the error; nil = valid
	}{
		{name: "nothing configured is valid", o: LiveOptions{}},
		{name: "all defaults", o: LiveOptions{PagerDuty: &PagerDutyOptions{TokenFile: good}, Opsgenie: &OpsgenieOptions{KeyFile: good},
			Jira: &JiraOptions{BaseURL: "https://acme.atlassian.net", Email: "bot@example.com", TokenFile: good, Projects: []string{"OPS"}}}},
		{name: "missing token file", o: LiveOptions{PagerDuty: &PagerDutyOptions{TokenFile: missing}},
			want: []string{"pagerduty.tokenFile: open " + missing + ": no such file or directory"}},
		{name: "empty secret", o: LiveOptions{Opsgenie: &OpsgenieOptions{KeyFile: blank}},
			want: []string{"opsgenie.key: the file " + blank + " is empty"}},
		{name: "secret with a line break inside", o: LiveOptions{Opsgenie: &OpsgenieOptions{KeyFile: inner}},
			want: []string{"opsgenie.key: the file " + inner + " holds a control character or line break"}},
		{name: "secret file too big", o: LiveOptions{Opsgenie: &OpsgenieOptions{KeyFile: huge}},
			want: []string{"opsgenie.keyFile: " + huge + " is over 64 KiB; is it the right file?"}},
		{name: "no secret source", o: LiveOptions{PagerDuty: &PagerDutyOptions{}},
			want: []string{"pagerduty.token: set pagerduty.tokenFile (a file holding it) or pagerduty.tokenEnv (an environment variable)"}},
		{name: "two secret sources", o: LiveOptions{PagerDuty: &PagerDutyOptions{TokenFile: good, TokenEnv: "X"}},
			want: []string{"pagerduty.token: set either pagerduty.tokenFile or pagerduty.tokenEnv, not both"}},
		{name: "unset variable", o: LiveOptions{Opsgenie: &OpsgenieOptions{KeyEnv: "SHIPBOT_TEST_SURELY_UNSET_42"}},
			want: []string{"opsgenie.keyEnv: the environment variable SHIPBOT_TEST_SURELY_UNSET_42 is not set"}},
		{name: "plain http to a remote host", o: LiveOptions{PagerDuty: &PagerDutyOptions{BaseURL: "http://api.pagerduty.com", TokenFile: good}},
			want: []string{`pagerduty.baseURL: "http://api.pagerduty.com" must use https`}},
		{name: "user info in base url", o: LiveOptions{Opsgenie: &OpsgenieOptions{BaseURL: "https://u:p@api.opsgenie.com", KeyFile: good}},
			want: []string{"opsgenie.baseURL:", "carries user info"}},
		{name: "relative base url", o: LiveOptions{Opsgenie: &OpsgenieOptions{BaseURL: "api.opsgenie.com", KeyFile: good}},
			want: []string{`opsgenie.baseURL: "api.opsgenie.com" is not an absolute https URL`}},
		{name: "bad from email", o: LiveOptions{PagerDuty: &PagerDutyOptions{TokenFile: good, FromEmail: "Bot <bot@example.com>"}},
			want: []string{`pagerduty.fromEmail: "Bot <bot@example.com>" is not a plain email address`}},
		{name: "empty service list", o: LiveOptions{PagerDuty: &PagerDutyOptions{TokenFile: good, Services: map[string][]string{"checkout": nil}}},
			want: []string{"pagerduty.services.checkout: empty list"}},
		{name: "negative timeout", o: LiveOptions{Timeout: -time.Second},
			want: []string{"timeout: -1s is negative"}},
		{name: "jira needs a base url and projects", o: LiveOptions{Jira: &JiraOptions{Email: "bot@example.com", TokenFile: good}},
			want: []string{"jira.baseURL: required", "jira.projects: required"}},
		{name: "jira bad project key", o: LiveOptions{Jira: &JiraOptions{BaseURL: "https://acme.atlassian.net", Email: "bot@example.com", TokenFile: good, Projects: []string{"ops"}}},
			want: []string{`jira.projects: "ops" is not a Jira project key`}},
		{name: "jira basic without email", o: LiveOptions{Jira: &JiraOptions{BaseURL: "https://acme.atlassian.net", TokenFile: good, Projects: []string{"OPS"}}},
			want: []string{"jira.email: basic auth needs the Jira account's email: set jira.email, jira.emailFile or jira.emailEnv (or use auth: bearer with a personal access token)"}},
		{name: "jira bearer with email", o: LiveOptions{Jira: &JiraOptions{BaseURL: "https://acme.atlassian.net", Auth: "bearer", Email: "bot@example.com", TokenFile: good, Projects: []string{"OPS"}}},
			want: []string{"jira.email: bearer auth (a personal access token) takes no email"}},
		{name: "jira unknown auth", o: LiveOptions{Jira: &JiraOptions{BaseURL: "https://acme.atlassian.net", Auth: "digest", TokenFile: good, Projects: []string{"OPS"}}},
			want: []string{`jira.auth: "digest" is neither basic nor bearer`}},
		{name: "every problem at once", o: LiveOptions{PagerDuty: &PagerDutyOptions{TokenFile: missing}, Opsgenie: &OpsgenieOptions{KeyFile: blank},
			Jira: &JiraOptions{BaseURL: "https://acme.atlassian.net", Email: "bot@example.com", TokenFile: missing}},
			want: []string{"pagerduty.tokenFile", "opsgenie.key:", "jira.tokenFile", "jira.projects"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.o.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", tt.o)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "abc-first") || strings.Contains(err.Error(), "second-line") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

func TestLiveOptionsDefaults(t *testing.T) {
	t.Parallel()
	good := secretFile(t, "tok")
	o := LiveOptions{PagerDuty: &PagerDutyOptions{TokenFile: good}, Opsgenie: &OpsgenieOptions{KeyFile: good},
		Jira: &JiraOptions{BaseURL: "https://acme.atlassian.net/", Email: "bot@example.com", TokenFile: good, Projects: []string{"OPS"}}}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Timeout != 5*time.Second || o.PagerDuty.BaseURL != "https://api.pagerduty.com" || o.Opsgenie.BaseURL != "https://api.opsgenie.com" ||
		o.Jira.Auth != "basic" || strings.Join(o.Jira.Statuses, ",") != "Approved,In Progress" {
		t.Errorf("defaults not filled: timeout %s, %+v, %+v, %+v", o.Timeout, *o.PagerDuty, *o.Opsgenie, *o.Jira)
	}
	if err := (&LiveOptions{PagerDuty: &PagerDutyOptions{TokenFile: filepath.Join(t.TempDir(), "x")}}).Validate(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file is not fs.ErrNotExist: %v", err)
	}
}

func TestSecretFromEnv(t *testing.T) {
	t.Setenv("SHIPBOT_TEST_PD_TOKEN", " "+pdToken+"\n")
	f := newFakeAPI(t, map[string]fakeRoute{"GET /incidents/PT4KHLK": {status: 200, file: "pagerduty_incident_triggered.json"}})
	lj := newLive(t, LiveOptions{PagerDuty: &PagerDutyOptions{BaseURL: f.URL, TokenEnv: "SHIPBOT_TEST_PD_TOKEN"}})
	if _, err := justify(t, lj, "https://acme.pagerduty.com/incidents/PT4KHLK", prod); err != nil {
		t.Fatal(err)
	}
	if h := f.only(t).Header.Get("Authorization"); h != "Token token="+pdToken {
		t.Errorf("Authorization %q", h)
	}
	t.Setenv("SHIPBOT_TEST_PD_TOKEN", "  ")
	err := (&LiveOptions{PagerDuty: &PagerDutyOptions{TokenEnv: "SHIPBOT_TEST_PD_TOKEN"}}).Validate()
	if err == nil || err.Error() != "pagerduty.token: the environment variable SHIPBOT_TEST_PD_TOKEN is empty" {
		t.Errorf("empty variable: %v", err)
	}
}
