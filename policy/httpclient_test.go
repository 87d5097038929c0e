package policy

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

func TestAPIServicePaths(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]fakeRoute{
		"GET /base/a%20b/c%3Fd": {status: 200, body: `{}`},
	})
	base, err := checkBaseURL("x.baseURL", f.URL+"/base/")
	if err != nil {
		t.Fatal(err)
	}
	o := &LiveOptions{Timeout: time.Second}
	s := newAPIService("X", base, o, http.Header{"Authorization": {"Key k"}}, "key", "x.keyFile", "k")
	r, err := s.call(context.Background(), http.MethodGet, []string{"a b", "c?d"}, url.Values{"q": {"1 2"}}, nil, nil)
	if err != nil || r.status != 200 {
		t.Fatalf("call: %v %+v", err, r)
	}
	if got := f.only(t); got.Path != "/base/a%20b/c%3Fd" || got.Query != "q=1+2" || got.Header.Get("User-Agent") != "shipbot" {
		t.Errorf("request %+v", got)
	}
	for _, seg := range []string{"", ".", "..", "a/b", `a\b`} {
		if _, err := s.call(context.Background(), http.MethodGet, []string{"ok", seg}, nil, nil, nil); err == nil {
			t.Errorf("segment %q accepted", seg)
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestCheckBaseURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://api.pagerduty.com":           "https://api.pagerduty.com",
		"https://jira.example.com/jira/":      "https://jira.example.com/jira",
		"http://127.0.0.1:8080":               "http://127.0.0.1:8080",
		"http://localhost:9/x":                "http://localhost:9/x",
		"http://[::1]:9":                      "http://[::1]:9",
		" https://api.eu.opsgenie.com/ ":      "https://api.eu.opsgenie.com",
		"https://api.pagerduty.com?x=1":       "",
		"https://api.pagerduty.com#frag":      "",
		"http://10.0.0.1":                     "",
		"ftp://api.pagerduty.com":             "",
		"https://":                            "",
		"https://token@api.pagerduty.com":     "",
		"https://api.pagerduty.com/%zz":       "",
		"http://127.0.0.1.evil.example:80/":   "",
		"http://localhost.evil.example:80/":   "",
		"https://api.pagerduty.com/?":         "",
		"https://api.atlassian.com/ex/jira/1": "https://api.atlassian.com/ex/jira/1",
	} {
		u, err := checkBaseURL("k", raw)
		switch {
		case want == "" && err == nil:
			t.Errorf("checkBaseURL(%q) = %s, want an error", raw, u)
		case want != "" && (err != nil || u.String() != want):
			t.Errorf("checkBaseURL(%q) = %v, %v; want %s", raw, u, err, want)
		}
	}
}

// The host of Jira.BaseURL is accepted in browse URLs (a self-hosted Jira
// needs no JiraHosts entry), and only that host.
func TestJiraBaseHostInBrowseURLs(t *testing.T) {
	t.Parallel()
	lj := newLive(t, LiveOptions{Jira: &JiraOptions{BaseURL: "https://jira.example.com/jira", Email: jiraEmail,
		TokenFile: secretFile(t, jiraToken), Projects: []string{"OPS"}}})
	got, err := justify(t, lj, "https://JIRA.example.com/browse/OPS-5", dev)
	if err != nil || got.Kind != KindJira || got.Ref != "OPS-5" {
		t.Errorf("browse URL on the Jira host: %+v, %v", got, err)
	}
	got, err = justify(t, lj, "https://jira.example.com.evil.com/browse/OPS-5", dev)
	if err != nil || got.Kind != KindText {
		t.Errorf("lookalike of the Jira host: %+v, %v", got, err)
	}
}

// A caller's shorter deadline is the caller's: not reported as the service
// being slow.
func TestCallerDeadlineIsNotAServiceTimeout(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]fakeRoute{"GET /v2/alerts/1791": {status: 200, file: "opsgenie_alert_open.json", delay: 5 * time.Second}})
	lj := newLive(t, LiveOptions{Opsgenie: ogOptions(t, f)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	req := rollback
	req.Why = "opsgenie:1791"
	_, err := lj.Justify(ctx, req, prod)
	var ue *gitops.UserError
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ue) {
		t.Errorf("caller deadline: %v", err)
	}
}
