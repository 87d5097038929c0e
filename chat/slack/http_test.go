package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

// signedPost sends body to path signed with key at time at.
func signedPost(t *testing.T, srv *httptest.Server, path, contentType, body, key string, at time.Time, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte("v0:" + ts + ":" + body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func form(v map[string]any) string {
	f := url.Values{}
	for k, x := range v {
		f.Set(k, x.(string))
	}
	return f.Encode()
}

func interactionForm(t *testing.T, payload map[string]any) string {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"payload": {string(b)}}.Encode()
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const formType = "application/x-www-form-urlencoded"

// TestHTTPSignatures: only requests signed with the signing secret within
// the last 5 minutes reach shipbot; the rest get 401 and touch nothing.
func TestHTTPSignatures(t *testing.T) {
	e := newEnv(t, time.Minute)
	a := e.adapter(t)
	srv := httptest.NewServer(a.HTTPHandler(secret))
	defer srv.Close()
	cmd := form(slashPayload("UALICE", "COPS", "status checkout", "trig-h1"))
	now := time.Now()

	for _, tc := range []struct {
		name   string
		key    string
		at     time.Time
		header map[string]string
	}{
		{"bad signature", "not-the-secret", now, nil},
		{"stale timestamp", secret, now.Add(-6 * time.Minute), nil},
		{"future timestamp", secret, now.Add(6 * time.Minute), nil},
		{"no signature", secret, now, map[string]string{"X-Slack-Signature": ""}},
		{"no timestamp", secret, now, map[string]string{"X-Slack-Request-Timestamp": ""}},
		{"malformed signature", secret, now, map[string]string{"X-Slack-Signature": "v0=zz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{PathCommands, PathEvents, PathInteractive} {
				if code, _ := signedPost(t, srv, path, formType, cmd, tc.key, tc.at, tc.header); code != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401", path, code)
				}
			}
		})
	}
	// A body changed after signing fails too.
	{
		ts := strconv.FormatInt(now.Unix(), 10)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte("v0:" + ts + ":" + cmd))
		tampered := strings.Replace(cmd, "UALICE", "UBOB", 1)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+PathCommands, strings.NewReader(tampered))
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
		if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("tampered body: %v %v, want 401", resp.StatusCode, err)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+PathCommands, nil)
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v, want 405", resp.StatusCode, err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := e.core.handles.Load(); n != 0 {
		t.Fatalf("%d refused requests reached the core", n)
	}
	if n := e.fs.callCount("users.info") + e.fs.callCount("chat.postMessage") + e.fs.callCount("chat.postEphemeral"); n != 0 {
		t.Fatalf("refused requests caused %d Slack calls", n)
	}

	// The same request, properly signed, is answered.
	if code, body := signedPost(t, srv, PathCommands, formType, cmd, secret, now, nil); code != http.StatusOK || body != "" {
		t.Fatalf("good request: %d %q, want an empty 200", code, body)
	}
	waitForShown(t, e.fs, "the status reply", "1.4.2")

	// Slack's URL check is answered with the challenge, signed or not at all.
	uv := jsonBody(t, map[string]any{"type": "url_verification", "token": "x", "challenge": "ch4llenge"})
	if code, body := signedPost(t, srv, PathEvents, "application/json", uv, secret, now, nil); code != 200 || body != "ch4llenge" {
		t.Errorf("url_verification: %d %q", code, body)
	}
	if code, _ := signedPost(t, srv, PathEvents, "application/json", uv, "wrong", now, nil); code != http.StatusUnauthorized {
		t.Errorf("unsigned url_verification: %d, want 401", code)
	}
}

// TestHTTPDuplicateRetry: an @mention Slack delivers twice (the retry
// carries X-Slack-Retry-Num) and a click delivered twice make exactly one
// plan and one commit. After a restart (the dedupe cache is gone) the same
// event maps to the same request id, and confirming it again finds the
// commit already there: still exactly one commit.
func TestHTTPDuplicateRetry(t *testing.T) {
	e := newEnv(t, time.Minute)
	a := e.adapter(t)
	srv := httptest.NewServer(a.HTTPHandler(secret))
	defer srv.Close()
	before := e.head(t)
	now := time.Now()

	// Slack sends URLs in link markup and encodes & < > in message text.
	mention := jsonBody(t, eventPayload("Ev-M-1", map[string]any{
		"type": "app_mention", "channel": "COPS", "user": "UALICE",
		"text": "<@UBOT> rollback checkout prod --why <" + pdLink + "> checkout 5xx &amp; timeouts",
		"ts":   "1700000200.000200", "event_ts": "1700000200.000200",
	}))
	for i, hdr := range []map[string]string{nil, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}} {
		if code, _ := signedPost(t, srv, PathEvents, "application/json", mention, secret, now, hdr); code != http.StatusOK {
			t.Fatalf("delivery %d: status %d", i+1, code)
		}
	}
	plan := planMessageFor(t, e.fs, "COPS")
	if plan.Thread != "1700000200.000200" {
		t.Errorf("plan thread %q, want the mention's ts", plan.Thread)
	}
	if !strings.Contains(plan.Shown(), "why: &lt;"+pdLink+"&gt; checkout 5xx &amp; timeouts") {
		t.Errorf("why not shown as typed:\n%s", plan.Shown())
	}
	id := requestIDOf(t, plan)

	click := interactionForm(t, clickPayload("UALICE", "COPS", plan.TS, actionConfirm, id, "1700000201.000001", "trig-c1"))
	for i := range 2 {
		if code, _ := signedPost(t, srv, PathInteractive, formType, click, secret, now, nil); code != http.StatusOK {
			t.Fatalf("click %d: status %d", i+1, code)
		}
	}
	waitFor(t, "the done message", func() bool {
		return strings.Contains(messageAt(e.fs, "COPS", plan.TS).Shown(), ":white_check_mark:")
	})
	time.Sleep(200 * time.Millisecond)
	if n := e.commitsSince(t, before); n != 1 {
		t.Fatalf("%d commits, want 1", n)
	}
	if h, c := e.core.handles.Load(), e.core.confirms.Load(); h != 1 || c != 1 {
		t.Fatalf("core saw %d requests and %d confirms, want 1 and 1", h, c)
	}
	plans := 0
	for _, m := range e.fs.messages() {
		if strings.Contains(strings.Join(m.History, ""), actionConfirm) {
			plans++
		}
	}
	if plans != 1 {
		t.Fatalf("%d plan messages, want 1", plans)
	}
	commit := e.head(t)

	// shipbot restarts; Slack redelivers the event once more.
	a2 := e.adapter(t)
	srv2 := httptest.NewServer(a2.HTTPHandler(secret))
	defer srv2.Close()
	if code, _ := signedPost(t, srv2, PathEvents, "application/json", mention, secret, now, map[string]string{"X-Slack-Retry-Num": "2"}); code != http.StatusOK {
		t.Fatalf("redelivery after restart: status %d", code)
	}
	// A request id lands once: the redelivery is answered with the commit
	// it landed as, never with a new plan under the same id.
	var again fakeMsg
	waitFor(t, "the answer to the redelivery", func() bool {
		for _, m := range e.fs.messages() {
			if m.TS != plan.TS && strings.Contains(m.Shown(), "already done") {
				again = m
				return true
			}
		}
		return false
	})
	if strings.Contains(strings.Join(again.History, ""), actionConfirm) {
		t.Errorf("the redelivered request was shown a new plan:\n%s", again.Shown())
	}
	if !strings.Contains(again.Shown(), "["+id+"]") || !strings.Contains(again.Shown(), commit[:7]) {
		t.Errorf("the answer should name the request %s and the existing commit %s:\n%s", id, commit[:7], again.Shown())
	}
	if e.head(t) != commit || e.commitsSince(t, before) != 1 {
		t.Fatal("the redelivered request made a second commit")
	}
}

// TestNoEmailDenied: a user whose email can't be read is refused with a
// clear reply and never reaches the core.
func TestNoEmailDenied(t *testing.T) {
	e := newEnv(t, time.Minute)
	a := e.adapter(t)
	srv := httptest.NewServer(a.HTTPHandler(secret))
	defer srv.Close()
	before := e.head(t)

	cmd := form(slashPayload("UNOEMAIL", "COPS", "rollback checkout prod --why "+pdLink, "trig-ne"))
	if code, _ := signedPost(t, srv, PathCommands, formType, cmd, secret, time.Now(), nil); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	waitFor(t, "the denial", func() bool { return len(e.fs.ephemeralsFor("UNOEMAIL")) > 0 })
	got := e.fs.ephemeralsFor("UNOEMAIL")[0].Shown()
	for _, want := range []string{"denied:", "can't read the email of your Slack profile", "users:read.email"} {
		if !strings.Contains(got, want) {
			t.Errorf("denial lacks %q: %s", want, got)
		}
	}
	// A mention from the same user is answered in its thread.
	ev := jsonBody(t, eventPayload("Ev-NE", map[string]any{
		"type": "app_mention", "channel": "COPS", "user": "UNOEMAIL", "text": "<@UBOT> status checkout", "ts": "1700000300.000300",
	}))
	if code, _ := signedPost(t, srv, PathEvents, "application/json", ev, secret, time.Now(), nil); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	waitFor(t, "the denial in the thread", func() bool {
		for _, m := range e.fs.messages() {
			if m.Thread == "1700000300.000300" && strings.Contains(m.Shown(), "denied:") {
				return true
			}
		}
		return false
	})
	if e.core.handles.Load() != 0 || e.head(t) != before {
		t.Fatal("an unidentified user reached the core")
	}
	if !strings.Contains(e.logs.String(), `"reason":"identity"`) {
		t.Error("the denial is not logged with its reason")
	}
}
