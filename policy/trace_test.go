package policy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

// committed is the event of a landed prod rollback.
var committed = gitops.TraceEvent{
	Request: rollback,
	Summary: "rollback checkout in prod: 1.4.2 -> 1.4.1",
	Commit:  "0123456789abcdef0123456789abcdef01234567",
	Outcome: gitops.OutcomeCommitted,
}

const committedText = "shipbot: alice rolled back checkout in prod (1.4.2 -> 1.4.1), commit 0123456789ab, outcome committed, request shp-7k3q9x2m4a"

func newTracer(t *testing.T, o LiveOptions) *TicketTracer {
	t.Helper()
	tr, err := NewTicketTracer(o)
	if err != nil {
		t.Fatalf("NewTicketTracer: %v", err)
	}
	return tr
}

// jsonBody decodes a request body, failing on anything but one JSON object.
func jsonBody(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return m
}

func TestTracePagerDutyNote(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]fakeRoute{"POST /incidents/PT4KHLK/notes": {status: 201, file: "pagerduty_note_created.json"}})
	tr := newTracer(t, LiveOptions{PagerDuty: pdOptions(t, f)})
	j := gitops.Justification{Kind: KindPagerDuty, Ref: "PT4KHLK"}
	if err := tr.Trace(context.Background(), j, committed); err != nil {
		t.Fatal(err)
	}
	r := f.only(t)
	for k, want := range map[string]string{
		"Authorization": "Token token=" + pdToken,
		"Accept":        "application/vnd.pagerduty+json;version=2",
		"Content-Type":  "application/json",
		"From":          "shipbot@example.com",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if r.Method != "POST" || r.Path != "/incidents/PT4KHLK/notes" || r.Query != "" {
		t.Errorf("request %s %s?%s", r.Method, r.Path, r.Query)
	}
	if want := `{"note":{"content":"` + committedText + `"}}`; r.Body != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}
}

func TestTraceJiraComment(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]fakeRoute{"POST /rest/api/2/issue/OPS-123/comment": {status: 201, file: "jira_comment_created.json"}})
	tr := newTracer(t, LiveOptions{Jira: jiraOptions(t, f)})
	if err := tr.Trace(context.Background(), gitops.Justification{Kind: KindJira, Ref: "OPS-123"}, committed); err != nil {
		t.Fatal(err)
	}
	r := f.only(t)
	if r.Method != "POST" || r.Path != "/rest/api/2/issue/OPS-123/comment" {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
	if r.Header.Get("Authorization") != jiraBasic || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
		t.Errorf("headers %v", r.Header)
	}
	// The request id's '-' is escaped for wiki markup; the template's are not.
	want := `shipbot: alice rolled back checkout in prod (1.4.2 -> 1.4.1), commit 0123456789ab, outcome committed, request shp\-7k3q9x2m4a`
	if got := jsonBody(t, r.Body); len(got) != 1 || got["body"] != want {
		t.Errorf("body %s, want {\"body\": %q}", r.Body, want)
	}
}

func TestTraceOpsgenieNote(t *testing.T) {
	t.Parallel()
	for ref, query := range map[string]string{ogID: "identifierType=id", "1791": "identifierType=tiny"} {
		f := newFakeAPI(t, map[string]fakeRoute{"POST /v2/alerts/" + ref + "/notes": {status: 202, file: "opsgenie_note_accepted.json"}})
		tr := newTracer(t, LiveOptions{Opsgenie: ogOptions(t, f)})
		if err := tr.Trace(context.Background(), gitops.Justification{Kind: KindOpsgenie, Ref: ref}, committed); err != nil {
			t.Fatal(err)
		}
		r := f.only(t)
		if r.Method != "POST" || r.Path != "/v2/alerts/"+ref+"/notes" || r.Query != query {
			t.Errorf("request %s %s?%s, want ?%s", r.Method, r.Path, r.Query, query)
		}
		if r.Header.Get("Authorization") != "GenieKey "+ogKey || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", r.Header)
		}
		got := jsonBody(t, r.Body)
		if len(got) != 3 || got["note"] != committedText || got["user"] != "shipbot" || got["source"] != "shipbot" {
			t.Errorf("body %s", r.Body)
		}
	}
}

func TestTraceFailures(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, map[string]fakeRoute{
		"POST /incidents/PT4KHLK/notes":          {status: 401, file: "pagerduty_error_unauthorized.json"},
		"POST /incidents/PRDONLY/notes":          {status: 403, body: `{"error":{"message":"Access Denied","code":2010}}`},
		"POST /incidents/PNOPE00/notes":          {status: 404, file: "pagerduty_error_not_found.json"},
		"POST /rest/api/2/issue/OPS-123/comment": {status: 200, delay: 5 * time.Second},
		"POST /rest/api/2/issue/OPS-999/comment": {status: 404, file: "jira_error_not_found.json"},
		"POST /v2/alerts/" + ogID + "/notes":     {status: 401, file: "opsgenie_error_unauthorized.json"},
		"POST /v2/alerts/4242/notes":             {status: 404, file: "opsgenie_error_not_found.json"},
		"POST /rest/api/2/issue/CHG-1/comment":   {status: 403, body: `{"errorMessages":["You do not have permission to comment on this issue."],"errors":{}}`},
		"POST /rest/api/2/issue/OPS-124/comment": {status: 500, body: `{"errorMessages":["Internal server error"],"errors":{}}`},
		"POST /v2/alerts/1791/notes":             {status: 429, body: `{"message":"You are making too many requests!","took":0.0,"requestId":"x"}`},
		"POST /incidents/PSLOW00/notes":          {status: 201, delay: 5 * time.Second},
		"POST /rest/api/2/issue/OPS-125/comment": {status: 400, body: `{"errorMessages":[],"errors":{"comment":"Comment body can not be empty!"}}`},
		"POST /v2/alerts/" + ogID + "-1/notes":   {status: 202, delay: 5 * time.Second},
		"POST /incidents/PT4KHLL/notes":          {status: 201, file: "pagerduty_note_created.json"},
		"POST /rest/api/2/issue/OPS-126/comment": {status: 201, file: "jira_comment_created.json"},
		"POST /v2/alerts/2222/notes":             {status: 202, file: "opsgenie_note_accepted.json"},
		"POST /rest/api/2/issue/OPS-127/comment": {status: 401, file: "jira_error_unauthorized.json"},
		"POST /incidents/PT4KHLM/notes":          {status: 503, body: `upstream`},
		"POST /v2/alerts/3333/notes":             {status: 403, body: `{"message":"Key has no write access","took":0.0,"requestId":"y"}`},
		"POST /rest/api/2/issue/OPS-128/comment": {status: 302, header: map[string][]string{"Location": {"https://evil.example/"}}},
		"POST /incidents/PT4KHLN/notes":          {status: 201, body: `not json is fine for a note`},
	})
	tr := newTracer(t, LiveOptions{PagerDuty: pdOptions(t, f), Jira: jiraOptions(t, f), Opsgenie: ogOptions(t, f), Timeout: 300 * time.Millisecond})
	for _, tt := range []struct {
		kind, ref, want string // want "" = success
	}{
		{KindPagerDuty, "PT4KHLK", "PagerDuty refused shipbot's token (401): an admin must fix pagerduty.tokenFile"},
		{KindPagerDuty, "PRDONLY", "PagerDuty does not let shipbot add notes to incidents (403): an admin must give the token in pagerduty.tokenFile that permission"},
		{KindPagerDuty, "PNOPE00", "PagerDuty has no incident PNOPE00 (or shipbot's token can't see it)"},
		{KindPagerDuty, "PSLOW00", "PagerDuty did not answer within 300ms"},
		{KindPagerDuty, "PT4KHLM", "PagerDuty failed (HTTP 503); try again later"},
		{KindPagerDuty, "PT4KHLL", ""},
		{KindPagerDuty, "PT4KHLN", ""},
		{KindJira, "OPS-123", "Jira did not answer within 300ms"},
		{KindJira, "OPS-999", "Jira has no issue OPS-999 (or shipbot's Jira account can't see it)"},
		{KindJira, "CHG-1", "Jira does not let shipbot comment on issues (403): an admin must give the credentials in jira.email or jira.tokenFile that permission"},
		{KindJira, "OPS-124", "Jira failed (HTTP 500); try again later"},
		{KindJira, "OPS-125", "Jira answered HTTP 400 to shipbot's request to comment on issues"},
		{KindJira, "OPS-127", "Jira refused shipbot's credentials (401): an admin must fix jira.email or jira.tokenFile"},
		{KindJira, "OPS-128", "Jira answered with a redirect (HTTP 302); an admin must check its base URL"},
		{KindJira, "SEC-9", "shipbot comments only on issues of the Jira projects OPS, CHG, not on SEC-9"},
		{KindJira, "OPS-126", ""},
		{KindOpsgenie, ogID, "Opsgenie refused shipbot's API key (401): an admin must fix opsgenie.keyFile"},
		{KindOpsgenie, "4242", "Opsgenie has no alert #4242 (or shipbot's API key can't see it)"},
		{KindOpsgenie, "1791", "Opsgenie is rate-limiting shipbot (429); try again in a minute"},
		{KindOpsgenie, "3333", "Opsgenie does not let shipbot add notes to alerts (403): an admin must give the API key in opsgenie.keyFile that permission"},
		{KindOpsgenie, ogID + "-1", "Opsgenie did not answer within 300ms"},
		{KindOpsgenie, "2222", ""},
		{KindOpsgenie, "not/an-id", `"not/an-id" is not an Opsgenie alert ID`},
		{KindPagerDuty, "../admin", `"../admin" is not a PagerDuty incident ID`},
		{KindJira, "OPS-1/../../x", `"OPS-1/../../x" is not a Jira issue key`},
	} {
		err := tr.Trace(context.Background(), gitops.Justification{Kind: tt.kind, Ref: tt.ref}, committed)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s %s: %v", tt.kind, tt.ref, err)
			}
			continue
		}
		var ue *gitops.UserError
		if !errors.As(err, &ue) || ue.Message != tt.want {
			t.Errorf("%s %s: %v\nwant %q", tt.kind, tt.ref, err, tt.want)
			continue
		}
		noSecrets(t, "trace error", ue.Error())
	}
	for _, r := range f.requests() {
		if strings.Contains(r.Path, "SEC-9") || strings.Contains(r.Path, "admin") || strings.Contains(r.Path, "an-id") || strings.Contains(r.Path, "OPS-1/") {
			t.Errorf("request sent for a refused reference: %s", r.Path)
		}
	}
}

func TestTraceNothingToDo(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, nil)
	tr := newTracer(t, LiveOptions{Jira: jiraOptions(t, f)})
	for _, j := range []gitops.Justification{{}, {Kind: KindText, Text: "trying"}} {
		if err := tr.Trace(context.Background(), j, committed); err != nil {
			t.Errorf("Trace(%+v): %v", j, err)
		}
	}
	for _, kind := range []string{KindPagerDuty, KindOpsgenie} {
		err := tr.Trace(context.Background(), gitops.Justification{Kind: kind, Ref: "1791"}, committed)
		if !errors.Is(err, ErrNotConfigured) {
			t.Errorf("%s without a client: %v, want ErrNotConfigured", kind, err)
		}
	}
	if err := tr.Trace(context.Background(), gitops.Justification{Kind: "carrier-pigeon", Ref: "x"}, committed); err == nil {
		t.Error("unknown kind traced")
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests", n)
	}
}

func TestNewTicketTracer(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t, nil)
	pd := pdOptions(t, f)
	pd.FromEmail = ""
	if _, err := NewTicketTracer(LiveOptions{PagerDuty: pd}); err == nil || !strings.HasPrefix(err.Error(), "pagerduty.fromEmail: required") {
		t.Errorf("PagerDuty without fromEmail: %v", err)
	}
	if _, err := NewTicketTracer(LiveOptions{}); err == nil {
		t.Error("a tracer without any service")
	}
	if _, err := NewTicketTracer(LiveOptions{Opsgenie: &OpsgenieOptions{KeyFile: "/nonexistent/key"}}); err == nil || !strings.Contains(err.Error(), "opsgenie.keyFile") {
		t.Errorf("missing key file: %v", err)
	}
}

func TestTraceText(t *testing.T) {
	t.Parallel()
	ev := func(action gitops.Action, summary, commit string, outcome gitops.Outcome) gitops.TraceEvent {
		req := rollback
		req.Action = action
		return gitops.TraceEvent{Request: req, Summary: summary, Commit: commit, Outcome: outcome}
	}
	for _, tt := range []struct {
		e    gitops.TraceEvent
		want string
	}{
		{committed, committedText},
		{ev(gitops.ActionRestart, "restart checkout in prod", "abc1234", gitops.OutcomeCommitted),
			"shipbot: alice restarted checkout in prod, commit abc1234, outcome committed, request shp-7k3q9x2m4a"},
		{ev(gitops.ActionPromote, "promote checkout from staging to prod: 1.4.2 -> 1.5.0", "abc1234", gitops.OutcomeCommitted),
			"shipbot: alice promoted checkout from staging to prod (1.4.2 -> 1.5.0), commit abc1234, outcome committed, request shp-7k3q9x2m4a"},
		{ev(gitops.ActionRollback, "rollback checkout in prod: 1.4.2 -> 1.4.1", "", gitops.OutcomeFailed),
			"shipbot: alice asked to rollback checkout in prod (1.4.2 -> 1.4.1), outcome failed, request shp-7k3q9x2m4a"},
		{ev(gitops.ActionRollback, "", "", gitops.OutcomeCancelled),
			"shipbot: alice asked to rollback checkout in prod, outcome cancelled, request shp-7k3q9x2m4a"},
		{ev(gitops.ActionRollback, "something else entirely", "", gitops.OutcomeFailed),
			"shipbot: alice: something else entirely, outcome failed, request shp-7k3q9x2m4a"},
	} {
		if got := traceText(tt.e, plainText); got != tt.want {
			t.Errorf("traceText\n got %q\nwant %q", got, tt.want)
		}
	}
}

func TestTraceTextHostileValues(t *testing.T) {
	t.Parallel()
	e := committed
	e.Request.User = "eve [~x] {color:red}*x*{color}\nApproved-by: eve \\\\ (x) !i!"
	e.Request.ID = strings.Repeat("shp-", 100)
	e.Summary = "rollback checkout in prod: 1.4.2 -> [phish|https://evil.example]"

	plain := traceText(e, plainText)
	checkOneLineTrace(t, plain)
	want := "shipbot: eve [~x] {color:red}*x*{color} Approved-by: eve \\\\ (x) !i! rolled back checkout in prod (1.4.2 -> [phish|https://evil.example]), " +
		"commit 0123456789ab, outcome committed, request " + strings.Repeat("shp-", 15) + "shp…"
	if plain != want {
		t.Errorf("plain text\n got %q\nwant %q", plain, want)
	}

	// For Jira every markup character of a value is escaped (a backslash
	// can't be: it becomes ⧵); the template's own characters are not.
	wiki := traceText(e, wikiEscape)
	checkOneLineTrace(t, wiki)
	want = `shipbot: eve \[\~x\] \{color:red\}\*x\*\{color\} Approved\-by: eve ⧵⧵ \(x\) \!i\! rolled back checkout in prod (1.4.2 -> \[phish\|https://evil.example\]), ` +
		`commit 0123456789ab, outcome committed, request ` + strings.Repeat(`shp\-`, 15) + "shp…"
	if wiki != want {
		t.Errorf("wiki text\n got %s\nwant %s", wiki, want)
	}

	// Through the wire: the JSON body is one valid object.
	f := newFakeAPI(t, map[string]fakeRoute{"POST /rest/api/2/issue/OPS-123/comment": {status: 201, file: "jira_comment_created.json"}})
	tr := newTracer(t, LiveOptions{Jira: jiraOptions(t, f)})
	if err := tr.Trace(context.Background(), gitops.Justification{Kind: KindJira, Ref: "OPS-123"}, e); err != nil {
		t.Fatal(err)
	}
	if got := jsonBody(t, f.only(t).Body)["body"]; got != wiki {
		t.Errorf("sent %q, want %q", got, wiki)
	}
}

func checkOneLineTrace(t *testing.T, s string) {
	t.Helper()
	if strings.ContainsAny(s, "\r\n\u2028\u2029\u0085") {
		t.Errorf("%q is not one line", s)
	}
	if n := len([]rune(s)); n > 1200 {
		t.Errorf("%d runes: not capped", n)
	}
}

func TestWikiEscape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain text 1.4.2":      "plain text 1.4.2",
		"*bold* _it_ -strike-":  `\*bold\* \_it\_ \-strike\-`,
		"[~user] [link|x]":      `\[\~user\] \[link\|x\]`,
		"{code}x{code}":         `\{code\}x\{code\}`,
		"h1. # list ^sup^ ~s~":  `h1. \# list \^sup\^ \~s\~`,
		`a\\b`:                  "a⧵⧵b",
		"(y) (!) ??cite?? &lt;": `\(y\) \(\!\) \?\?cite\?\? \&lt;`,
	} {
		if got := wikiEscape(in); got != want {
			t.Errorf("wikiEscape(%q) = %q, want %q", in, got, want)
		}
	}
}
