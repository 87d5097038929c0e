package slack

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// responses is a slash command's response_url: it records what shipbot
// posts there, as Slack would show it to the requester.
type responses struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []map[string]any
	path []string
}

func newResponses(t *testing.T) *responses {
	r := &responses{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var m map[string]any
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &m) != nil {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.got, r.path = append(r.got, m), append(r.path, req.URL.Path)
		r.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *responses) all() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.got...)
}

// allowTest lets the adapter answer the test's response_url (the default
// accepts https://hooks.slack.com only).
func (r *responses) allowTest(o *Options) {
	host := strings.TrimPrefix(r.srv.URL, "http://")
	o.ResponseURLAllowed = func(u *url.URL) bool { return u.Host == host }
}

func slashWithResponseURL(user, channel, text, trigger, responseURL string) map[string]any {
	p := slashPayload(user, channel, text, trigger)
	p["response_url"] = responseURL
	return p
}

// TestSlashOutsideShipbotsChannels: /ship in a channel shipbot is not a
// member of can't get a thread of its own; nothing is done, and the
// requester is told so through the command's response_url, instead of
// the request vanishing into the log. The same for a denial that can't be
// posted ephemerally.
func TestSlashOutsideShipbotsChannels(t *testing.T) {
	e := newEnv(t, time.Minute)
	e.fs.addChannel("CGENERAL", "general", false)
	e.fs.mu.Lock()
	e.fs.outside = map[string]bool{"CGENERAL": true, "CSECRET": true}
	e.fs.mu.Unlock()
	resp := newResponses(t)
	a := e.adapter(t, resp.allowTest)
	runSocket(t, e, a)
	before := e.head(t)

	e.fs.send("slash_commands", "env-1", slashWithResponseURL("UALICE", "CGENERAL", "rollback checkout prod --why "+pdLink, "trig-1", resp.srv.URL+"/commands/T1/1/secret1"), 0)
	waitFor(t, "the answer through response_url", func() bool { return len(resp.all()) == 1 })
	got := resp.all()[0]
	if got["response_type"] != "ephemeral" {
		t.Errorf("response_type %v, want ephemeral", got["response_type"])
	}
	if text, _ := got["text"].(string); !strings.Contains(text, "shipbot can't post in this channel (not_in_channel), so it did nothing. /invite @shipbot here") {
		t.Errorf("text %q", text)
	}
	if e.core.handles.Load() != 0 || e.head(t) != before {
		t.Fatal("a request that could not be shown reached the core or the repo")
	}

	// A private channel shipbot can't read: the denial goes the same way.
	e.fs.send("slash_commands", "env-2", slashWithResponseURL("UALICE", "CSECRET", "status checkout", "trig-2", resp.srv.URL+"/commands/T1/2/secret2"), 0)
	waitFor(t, "the denial through response_url", func() bool { return len(resp.all()) == 2 })
	if text, _ := resp.all()[1]["text"].(string); !strings.Contains(text, "denied: shipbot can't read the name of this channel") {
		t.Errorf("text %q", text)
	}
	if strings.Contains(e.logs.String(), "secret1") || strings.Contains(e.logs.String(), "secret2") {
		t.Error("a response_url reached the log")
	}
}

// TestResponseURLOnlySlacks: the adapter posts only to Slack's
// response_urls unless told otherwise; a foreign one is never called.
func TestResponseURLOnlySlacks(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://hooks.slack.com/commands/T1/1/x":      true,
		"http://hooks.slack.com/commands/T1/1/x":       false,
		"https://hooks.slack.com.evil.example/c":       false,
		"https://user@hooks.slack.com/commands/T1/1/x": false,
		"https://127.0.0.1/commands":                   false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := slackResponseURL(u); got != want {
			t.Errorf("slackResponseURL(%s) = %v, want %v", raw, got, want)
		}
	}

	e := newEnv(t, time.Minute)
	e.fs.addChannel("CGENERAL", "general", false)
	e.fs.mu.Lock()
	e.fs.outside = map[string]bool{"CGENERAL": true}
	e.fs.mu.Unlock()
	resp := newResponses(t)
	a := e.adapter(t) // the default: Slack's response_urls only
	runSocket(t, e, a)
	e.fs.send("slash_commands", "env-1", slashWithResponseURL("UALICE", "CGENERAL", "status checkout", "trig-1", resp.srv.URL+"/commands/T1/1/x"), 0)
	waitFor(t, "the failure in the log", func() bool {
		return strings.Contains(e.logs.String(), "the requester could not be told")
	})
	if n := len(resp.all()); n != 0 {
		t.Fatalf("%d posts to a response_url that is not Slack's", n)
	}
}
