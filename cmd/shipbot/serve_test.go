package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"

	"github.com/shipbot/shipbot/cmd/shipbot/internal/demo"
)

// These tests run `shipbot serve` itself (runServe, as main wires it)
// against a fake Slack workspace: slack-go's slacktest server (Socket Mode
// websocket, apps.connections.open) plus, through its Binder, the Web API
// methods shipbot calls. The environment repo is the demo's, inspected with
// the real git client.

const (
	serveTeamID   = "T0SHOP"
	serveBotID    = "UBOT"
	serveChannel  = "COPS"
	servePD       = "https://acme.pagerduty.com/incidents/P1X2Y3Z"
	serveSecret   = "8f742231b10e8888abcd99yyyzzz85a5"
	serveDeadline = 60 * time.Second // generous: -race on a loaded machine
	serveCheckout = "apps/checkout/overlays/prod/kustomization.yaml"
)

// serveCall is one chat.postMessage, chat.update or chat.postEphemeral.
type serveCall struct {
	Channel, TS, Thread, User, Text, Blocks string
}

// Shown is what Slack would show: every "text" of the blocks, one per
// line, with Slack's &amp; &lt; &gt; decoded.
func (c serveCall) Shown() string { return serveShown(c.Blocks) }

// PlainText is the notification text with Slack's escapes decoded.
func (c serveCall) PlainText() string { return serveUnescape(c.Text) }

// serveSlack is the fake workspace.
type serveSlack struct {
	t       *testing.T
	srv     *slacktest.Server
	closing chan struct{} // closed when the test ends: held calls go on

	mu         sync.Mutex
	users      map[string]slackgo.User
	channels   map[string]slackgo.Channel
	groups     map[string][]string // user group id -> members
	posts      []serveCall
	updates    []serveCall
	ephemerals []serveCall
	calls      map[string]int
	acks       map[string]bool
	seq        int

	// hold, when set, holds every chat.update whose blocks contain it
	// until release is closed; held is closed when the first one arrives.
	hold    string
	held    chan struct{}
	release chan struct{}
	// appTokenError is what apps.connections.open answers ("" = slacktest's
	// websocket URL).
	appTokenError string
}

func newServeSlack(t *testing.T) *serveSlack {
	t.Helper()
	f := &serveSlack{
		t:        t,
		closing:  make(chan struct{}),
		users:    map[string]slackgo.User{},
		channels: map[string]slackgo.Channel{},
		groups:   map[string][]string{"S0CHECKOUT": {"UALICE", "UERIN"}},
		calls:    map[string]int{},
		acks:     map[string]bool{},
	}
	f.addUser("UALICE", "alice@shop.example.com", "Alice Smith")
	f.addUser("UBOB", "bob@shop.example.com", "Bob Jones")
	f.addUser("UERIN", "erin@shop.example.com", "Erin Ops") // no line in the policy; in @team-checkout in Slack
	var c slackgo.Channel
	c.ID, c.Name = serveChannel, "ops"
	f.channels[c.ID] = c

	f.srv = slacktest.NewTestServer(f.bind)
	f.srv.Start() // httptest: 127.0.0.1 only
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		// SeenFeed (what the client sends: Socket Mode acks) is
		// unbuffered: drain it, or the websocket stalls.
		for {
			select {
			case m := <-f.srv.SeenFeed:
				var ack struct {
					EnvelopeID string `json:"envelope_id"`
				}
				if json.Unmarshal([]byte(m), &ack) == nil && ack.EnvelopeID != "" {
					f.mu.Lock()
					f.acks[ack.EnvelopeID] = true
					f.mu.Unlock()
				}
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(f.closing)
		f.srv.Stop()
		close(stop)
		<-drained
	})
	return f
}

func (f *serveSlack) addUser(id, email, name string) {
	u := slackgo.User{ID: id, TeamID: serveTeamID, Name: strings.ToLower(id[1:]), RealName: name}
	u.Profile.Email = email
	u.Profile.RealName = name
	f.users[id] = u
}

func (f *serveSlack) apiURL() string { return f.srv.GetAPIURL() }

// bind registers the methods shipbot needs; they take precedence over
// slacktest's canned answers.
func (f *serveSlack) bind(c slacktest.Customize) {
	c.Handle("/auth.test", f.wrap("auth.test", func(w http.ResponseWriter, _ *http.Request) {
		serveReply(w, map[string]any{"ok": true, "url": "https://shop.slack.com/", "team": "Shop", "team_id": serveTeamID, "user": "shipbot", "user_id": serveBotID})
	}))
	c.Handle("/chat.postMessage", f.wrap("chat.postMessage", f.postMessage))
	c.Handle("/chat.update", f.wrap("chat.update", f.update))
	c.Handle("/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		code := f.appTokenError
		f.mu.Unlock()
		if code == "" {
			serveReply(w, map[string]any{"ok": true, "url": f.srv.GetWSURL()})
			return
		}
		serveReply(w, map[string]any{"ok": false, "error": code})
	})
	c.Handle("/chat.postEphemeral", f.wrap("chat.postEphemeral", f.postEphemeral))
	c.Handle("/users.info", f.wrap("users.info", f.userInfo))
	c.Handle("/users.lookupByEmail", f.wrap("users.lookupByEmail", f.userByEmail))
	c.Handle("/conversations.info", f.wrap("conversations.info", f.conversationInfo))
	c.Handle("/usergroups.list", f.wrap("usergroups.list", func(w http.ResponseWriter, _ *http.Request) {
		serveReply(w, map[string]any{"ok": true, "usergroups": []map[string]any{{"id": "S0CHECKOUT", "handle": "team-checkout", "is_usergroup": true}}})
	}))
	c.Handle("/usergroups.users.list", f.wrap("usergroups.users.list", f.usergroupUsers))
}

// wrap parses the form and counts the call.
func (f *serveSlack) wrap(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.calls[method]++
		f.mu.Unlock()
		h(w, r)
	}
}

func serveReply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *serveSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	ch := r.Form.Get("channel")
	f.mu.Lock()
	if _, ok := f.channels[ch]; !ok {
		f.mu.Unlock()
		serveReply(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	f.seq++
	ts := fmt.Sprintf("1700000000.%06d", f.seq)
	f.posts = append(f.posts, serveCall{Channel: ch, TS: ts, Thread: r.Form.Get("thread_ts"), Text: r.Form.Get("text"), Blocks: r.Form.Get("blocks")})
	f.mu.Unlock()
	serveReply(w, map[string]any{"ok": true, "channel": ch, "ts": ts})
}

func (f *serveSlack) update(w http.ResponseWriter, r *http.Request) {
	ch, ts := r.Form.Get("channel"), r.Form.Get("ts")
	f.mu.Lock()
	if f.hold != "" && strings.Contains(r.Form.Get("blocks"), f.hold) {
		held, release := f.held, f.release
		f.hold = ""
		f.mu.Unlock()
		close(held)
		select {
		case <-release:
		case <-f.closing:
		case <-r.Context().Done():
			return
		}
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	for _, p := range f.posts {
		if p.Channel == ch && p.TS == ts {
			f.updates = append(f.updates, serveCall{Channel: ch, TS: ts, Text: r.Form.Get("text"), Blocks: r.Form.Get("blocks")})
			serveReply(w, map[string]any{"ok": true, "channel": ch, "ts": ts, "text": r.Form.Get("text")})
			return
		}
	}
	serveReply(w, map[string]any{"ok": false, "error": "message_not_found"})
}

func (f *serveSlack) postEphemeral(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.ephemerals = append(f.ephemerals, serveCall{Channel: r.Form.Get("channel"), User: r.Form.Get("user"), Text: r.Form.Get("text"), Blocks: r.Form.Get("blocks")})
	f.mu.Unlock()
	serveReply(w, map[string]any{"ok": true, "message_ts": "1700000000.999999"})
}

func (f *serveSlack) userInfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	u, ok := f.users[r.Form.Get("user")]
	f.mu.Unlock()
	if !ok {
		serveReply(w, map[string]any{"ok": false, "error": "user_not_found"})
		return
	}
	serveReply(w, map[string]any{"ok": true, "user": u})
}

// userByEmail is users.lookupByEmail: Slack's "users_not_found" for an
// address no user has.
func (f *serveSlack) userByEmail(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if strings.EqualFold(u.Profile.Email, r.Form.Get("email")) {
			serveReply(w, map[string]any{"ok": true, "user": u})
			return
		}
	}
	serveReply(w, map[string]any{"ok": false, "error": "users_not_found"})
}

func (f *serveSlack) conversationInfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	c, ok := f.channels[r.Form.Get("channel")]
	f.mu.Unlock()
	if !ok {
		serveReply(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	serveReply(w, map[string]any{"ok": true, "channel": c})
}

func (f *serveSlack) usergroupUsers(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	members, ok := f.groups[r.Form.Get("usergroup")]
	f.mu.Unlock()
	if !ok {
		serveReply(w, map[string]any{"ok": false, "error": "no_such_subteam"})
		return
	}
	serveReply(w, map[string]any{"ok": true, "users": members})
}

func (f *serveSlack) snapshot() (posts, updates, ephemerals []serveCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]serveCall(nil), f.posts...), append([]serveCall(nil), f.updates...), append([]serveCall(nil), f.ephemerals...)
}

// current is the latest version of a posted message.
func (f *serveSlack) current(channel, ts string) serveCall {
	posts, updates, _ := f.snapshot()
	var m serveCall
	for _, p := range posts {
		if p.Channel == channel && p.TS == ts {
			m = p
		}
	}
	for _, u := range updates {
		if u.Channel == channel && u.TS == ts {
			m.Text, m.Blocks = u.Text, u.Blocks
		}
	}
	return m
}

func (f *serveSlack) callCount(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *serveSlack) acked(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.acks[id]
}

// deliver sends a Socket Mode envelope to the connected client and waits
// for its ack, sending it again every few seconds meanwhile, as Slack
// redelivers an envelope that is not acknowledged. (slacktest's websocket
// goroutines outlive their connection: after a reconnect, a frame can be
// taken by a dead connection and lost.) shipbot dedupes the redeliveries.
func (f *serveSlack) deliver(t *testing.T, typ, envelopeID string, payload any) {
	t.Helper()
	deadline := time.Now().Add(serveDeadline)
	for attempt := 0; ; attempt++ {
		b, err := json.Marshal(map[string]any{
			"type": typ, "envelope_id": envelopeID, "payload": payload,
			"accepts_response_payload": typ == "slash_commands", "retry_attempt": attempt,
		})
		if err != nil {
			t.Fatal(err)
		}
		f.srv.SendToWebsocket(string(b))
		for resend := time.Now().Add(5 * time.Second); time.Now().Before(resend); time.Sleep(20 * time.Millisecond) {
			if f.acked(envelopeID) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %s waiting for the ack of %s (%d deliveries)", serveDeadline, envelopeID, attempt+1)
			}
		}
		t.Logf("no ack of %s after 5s; delivering it again", envelopeID)
	}
}

// planMessage waits for a message in channel, posted after the first
// `after` posts, that shows Confirm and Cancel buttons.
func (f *serveSlack) planMessage(t *testing.T, channel string, after int) serveCall {
	t.Helper()
	var plan serveCall
	serveWaitFor(t, "a plan with buttons in "+channel, func() bool {
		posts, _, _ := f.snapshot()
		for _, p := range posts[min(after, len(posts)):] {
			if m := f.current(p.Channel, p.TS); m.Channel == channel && strings.Contains(m.Blocks, `"shipbot_confirm"`) {
				plan = m
				return true
			}
		}
		return false
	})
	return plan
}

// serveRequestID is the request id in a plan's Confirm button.
func serveRequestID(t *testing.T, plan serveCall) string {
	t.Helper()
	i := strings.Index(plan.Blocks, `"value":"shp-`)
	if i < 0 {
		t.Fatalf("no request id in the plan's blocks: %s", plan.Blocks)
	}
	rest := plan.Blocks[i+len(`"value":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

var serveUnescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

func serveUnescape(s string) string { return serveUnescaper.Replace(s) }

// serveShown is the text of Block Kit JSON: every "text" value in order,
// one per line, unescaped.
func serveShown(blocksJSON string) string {
	var v any
	if json.Unmarshal([]byte(blocksJSON), &v) != nil {
		return ""
	}
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["text"].(string); ok {
				b.WriteString(serveUnescape(s))
				b.WriteByte('\n')
			}
			for _, k := range []string{"text", "elements", "fields", "accessory"} {
				if c, ok := x[k]; ok {
					if _, isStr := c.(string); !isStr {
						walk(c)
					}
				}
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return b.String()
}

func serveSlash(user, text, trigger string) map[string]any {
	return map[string]any{
		"team_id": serveTeamID, "channel_id": serveChannel, "user_id": user, "command": "/ship",
		"text": text, "trigger_id": trigger, "response_url": "https://hooks.slack.com/commands/x",
	}
}

func serveClick(user, msgTS, requestID, actionTS, trigger string) map[string]any {
	return map[string]any{
		"type": "block_actions", "trigger_id": trigger,
		"team":      map[string]any{"id": serveTeamID},
		"user":      map[string]any{"id": user, "team_id": serveTeamID},
		"channel":   map[string]any{"id": serveChannel},
		"container": map[string]any{"type": "message", "message_ts": msgTS, "channel_id": serveChannel},
		"message":   map[string]any{"ts": msgTS},
		"actions": []map[string]any{{
			"action_id": "shipbot_confirm", "block_id": "shipbot_answer", "value": requestID, "type": "button", "action_ts": actionTS,
		}},
	}
}

// serveWaitFor polls cond every 20ms until it holds or serveDeadline passed.
func serveWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(serveDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", serveDeadline, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveLog collects runServe's log across goroutines.
type serveLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *serveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveEnv sets the environment of one `shipbot serve`: an empty git
// configuration, and every SHIPBOT_SLACK_* variable (none leaks in from
// the developer's shell). mode is "socket" or "http".
func serveEnv(t *testing.T, mode, apiURL string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	secrets := t.TempDir()
	secret := func(name, value string) string {
		p := filepath.Join(secrets, name)
		if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for k, v := range map[string]string{
		"SHIPBOT_SLACK_BOT_TOKEN": "", "SHIPBOT_SLACK_APP_TOKEN": "", "SHIPBOT_SLACK_SIGNING_SECRET": "",
		"SHIPBOT_SLACK_MODE":                mode,
		"SHIPBOT_SLACK_BOT_TOKEN_FILE":      secret("bot-token", "xoxb-serve-test"),
		"SHIPBOT_SLACK_APP_TOKEN_FILE":      "",
		"SHIPBOT_SLACK_SIGNING_SECRET_FILE": "",
		"SHIPBOT_SLACK_API_URL":             apiURL,
		"SHIPBOT_SLACK_COMMAND":             "",
		"SHIPBOT_SLACK_EMAIL_DOMAINS":       "shop.example.com",
		"SHIPBOT_SLACK_SUBJECTS_FILE":       "",
		"SHIPBOT_SLACK_USERGROUPS":          "S0CHECKOUT=team-checkout",
		"SHIPBOT_SLACK_CACHE_TTL":           "",
		"SHIPBOT_SHUTDOWN_GRACE":            "30s",
	} {
		t.Setenv(k, v)
	}
	switch mode {
	case "socket":
		t.Setenv("SHIPBOT_SLACK_APP_TOKEN_FILE", secret("app-token", "xapp-serve-test"))
	case "http":
		t.Setenv("SHIPBOT_SLACK_SIGNING_SECRET_FILE", secret("signing-secret", serveSecret))
	}
}

// served is one running `shipbot serve`.
type served struct {
	base   string // http://127.0.0.1:PORT
	cancel context.CancelFunc
	exited chan struct{} // closed when runServe returned
	err    error         // what runServe returned, once exited is closed
	log    *serveLog

	stopped atomic.Bool // the test called stop itself
}

// startServe runs `shipbot serve --config cfg` on a free port of 127.0.0.1
// and waits until /readyz says ready. If the port was taken in between, it
// tries another. The server is stopped when the test ends, and its log is
// shown if the test failed.
func startServe(t *testing.T, cfg string) *served {
	t.Helper()
	log := &serveLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shipbot serve log:\n%s", log.String())
		}
	})
	for attempt := 1; ; attempt++ {
		addr := serveFreeAddr(t)
		t.Setenv("SHIPBOT_LISTEN", addr)
		ctx, cancel := context.WithCancel(context.Background())
		s := &served{base: "http://" + addr, cancel: cancel, exited: make(chan struct{}), log: log}
		go func() {
			defer close(s.exited)
			s.err = runServe(ctx, []string{"--config", cfg}, io.Discard, log)
		}()
		began := time.Now()
		if s.waitReady() {
			if took := time.Since(began); took > 10*time.Second {
				// Socket Mode reconnects after 30s without a ping (slacktest
				// sends none): readiness came only with the reconnect.
				var states []string
				for _, l := range strings.Split(log.String(), "\n") {
					if strings.Contains(l, "socket mode") {
						states = append(states, l)
					}
				}
				t.Logf("shipbot serve took %s to get ready; its connection states:\n%s", took.Round(time.Millisecond), strings.Join(states, "\n"))
			}
			t.Cleanup(func() {
				checked := s.stopped.Load() // the test saw the result already
				if err := s.stop(); err != nil && !checked {
					t.Errorf("runServe at the end of the test: %v", err)
				}
			})
			return s
		}
		err := s.stop()
		if s.returned() && err != nil && strings.Contains(err.Error(), "listen on") && attempt < 3 {
			t.Logf("port %s was taken; trying another: %v", addr, err)
			continue
		}
		t.Fatalf("shipbot serve did not get ready within %s (attempt %d); runServe returned %v", serveDeadline, attempt, err)
	}
}

// waitReady polls /readyz until it answers 200 (true), or runServe
// returns or serveDeadline passes (false).
func (s *served) waitReady() bool {
	deadline := time.Now().Add(serveDeadline)
	client := &http.Client{Timeout: 5 * time.Second}
	for time.Now().Before(deadline) && !s.returned() {
		if resp, err := client.Get(s.base + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// returned reports whether runServe has returned.
func (s *served) returned() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// stop cancels runServe's context (SIGTERM in main) and returns what
// runServe returned, or an error if it did not return in time.
func (s *served) stop() error {
	s.stopped.Store(true)
	s.cancel()
	select {
	case <-s.exited:
		return s.err
	case <-time.After(serveDeadline):
		return fmt.Errorf("runServe did not return within %s of the cancel", serveDeadline)
	}
}

// get fetches path and returns the status code and body.
func (s *served) get(t *testing.T, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(s.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// post sends body to path with the given headers.
func (s *served) post(t *testing.T, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// serveSign is Slack's request signing: v0=hex(HMAC-SHA256(secret,
// "v0:" + timestamp + ":" + body)), with the timestamp header.
func serveSign(secret, body string, at time.Time) map[string]string {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	return map[string]string{
		"X-Slack-Request-Timestamp": ts,
		"X-Slack-Signature":         "v0=" + hex.EncodeToString(mac.Sum(nil)),
	}
}

// serveFreeAddr is 127.0.0.1 with a port nothing listened on a moment ago.
func serveFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// serveGit runs the git client on the demo's bare repo.
func serveGit(t *testing.T, repo string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimRight(string(out), "\n")
}

func serveCount(t *testing.T, repo string) int {
	t.Helper()
	n, err := strconv.Atoi(serveGit(t, repo, "rev-list", "--count", "main"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// serveMetric reports whether the Prometheus exposition has a sample with
// exactly this name{labels} and value.
func serveMetric(exposition, sample string, value float64) bool {
	for _, l := range strings.Split(exposition, "\n") {
		name, v, ok := strings.Cut(l, " ")
		if !ok || name != sample {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err == nil && f == value
	}
	return false
}

// serveNoSecrets fails if a token or the signing secret is in the log.
func serveNoSecrets(t *testing.T, log string) {
	t.Helper()
	for _, secret := range []string{"xoxb-serve-test", "xapp-serve-test", serveSecret} {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains the secret %q", secret)
		}
	}
}

// serveDemo creates the demo directory (repo, config, policy, signing key).
func serveDemo(t *testing.T) (cfg, repo string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is needed to inspect the environment repo")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	cfg, created, err := demo.Setup(dir)
	if err != nil || !created {
		t.Fatalf("demo.Setup: created=%v err=%v", created, err)
	}
	return cfg, filepath.Join(dir, demo.RepoDir)
}

// TestServeSlackSocketMode runs `shipbot serve` in Socket Mode against a
// fake Slack: alice's /ship rollback becomes a plan with buttons; bob's
// Confirm click is refused and writes nothing; alice's click lands exactly
// one minimal, signed commit in the demo repo, authored by her Slack
// identity, and updates the plan's message with the result. /healthz,
// /readyz and /metrics answer; on cancel, a plan still waiting is cancelled
// in its message and runServe returns nil.
func TestServeSlackSocketMode(t *testing.T) {
	cfg, repo := serveDemo(t)
	fs := newServeSlack(t)
	serveEnv(t, "socket", fs.apiURL())
	s := startServe(t, cfg)

	if code, body := s.get(t, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q, want 200 \"ok\\n\"", code, body)
	}
	if code, body := s.get(t, "/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz: %d %q, want 200 \"ready\\n\"", code, body)
	}
	// The HTTP endpoints for Slack exist in http mode only.
	if code, _ := s.post(t, "/slack/commands", "command=%2Fship", nil); code != http.StatusNotFound {
		t.Errorf("POST /slack/commands in socket mode: %d, want 404", code)
	}
	before := serveGit(t, repo, "rev-parse", "main")
	count := serveCount(t, repo)

	// alice asks.
	fs.deliver(t, "slash_commands", "env-slash-1", serveSlash("UALICE", "rollback checkout prod --why "+servePD, "trig-1"))
	plan := fs.planMessage(t, serveChannel, 0)
	id := serveRequestID(t, plan)
	for _, want := range []string{
		"[" + id + "]` rollback checkout in prod: 1.4.2 -> 1.4.1",
		"-    newTag: 1.4.2 # the release running in prod", "+    newTag: 1.4.1 # the release running in prod",
		"requested by <@UALICE>", "why: " + servePD, "Only <@UALICE> can confirm",
	} {
		if !strings.Contains(plan.Shown(), want) {
			t.Errorf("the plan lacks %q:\n%s", want, plan.Shown())
		}
	}
	if posts, _, _ := fs.snapshot(); len(posts) != 1 || posts[0].Thread != "" {
		t.Errorf("want one message in the channel for the slash command (updated in place); posts: %+v", posts)
	}
	if got := serveGit(t, repo, "rev-parse", "main"); got != before {
		t.Fatal("main moved before anyone confirmed")
	}

	// bob (an SRE, who could roll back himself) clicks alice's Confirm: refused.
	fs.deliver(t, "interactive", "env-click-bob", serveClick("UBOB", plan.TS, id, "1700000001.000001", "trig-2"))
	serveWaitFor(t, "the refusal shown to bob", func() bool {
		_, _, eph := fs.snapshot()
		for _, e := range eph {
			if e.User == "UBOB" && strings.Contains(e.Shown(), "Only <@UALICE>, who asked, can confirm request "+id) {
				return true
			}
		}
		return false
	})
	if got, n := serveGit(t, repo, "rev-parse", "main"), serveCount(t, repo); got != before || n != count {
		t.Fatalf("bob's click wrote to the repo: main %s (was %s), %d commits (were %d)", got, before, n, count)
	}
	if m := fs.current(serveChannel, plan.TS); !strings.Contains(m.Blocks, `"shipbot_confirm"`) {
		t.Fatalf("the plan lost its buttons after bob's refused click:\n%s", m.Shown())
	}

	// alice confirms: one commit, and the plan's message shows the result.
	fs.deliver(t, "interactive", "env-click-alice", serveClick("UALICE", plan.TS, id, "1700000002.000002", "trig-3"))
	doneText := "[" + id + "] done: rollback checkout in prod: 1.4.2 -> 1.4.1"
	var done serveCall
	serveWaitFor(t, "chat.update with "+doneText, func() bool {
		_, updates, _ := fs.snapshot()
		for _, u := range updates {
			if strings.Contains(u.PlainText(), doneText) {
				done = u
				return true
			}
		}
		return false
	})
	if done.Channel != serveChannel || done.TS != plan.TS {
		t.Errorf("the result updated %s/%s, want the plan's message %s/%s", done.Channel, done.TS, serveChannel, plan.TS)
	}
	if n := serveCount(t, repo); n != count+1 {
		t.Fatalf("%d commits on main after the confirm, want %d (exactly one more)", n, count+1)
	}
	if parent := serveGit(t, repo, "rev-parse", "main~1"); parent != before {
		t.Errorf("the new commit's parent is %s, want the old tip %s", parent, before)
	}
	// One line of the overlay, and the pin the rollback sets.
	if ns := serveGit(t, repo, "diff", "--numstat", "main~1", "main"); ns != "10\t0\t.shipbot/pins.yaml\n1\t1\t"+serveCheckout {
		t.Errorf("numstat %q, want exactly one line changed in %s and the pin", ns, serveCheckout)
	}
	if got := serveGit(t, repo, "show", "main:"+serveCheckout); !strings.HasSuffix(got, "\n    newTag: 1.4.1 # the release running in prod") || strings.Contains(got, "1.4.2") {
		t.Errorf("prod overlay after the rollback:\n%s", got)
	}
	for key, want := range map[string]string{
		"Requested-by":    "Alice Smith <alice@shop.example.com>",
		"Shipbot-Request": id,
		"Justification":   servePD,
		"Chat-Channel":    "#ops",
		"Authorized-by":   "p, team-checkout, *, checkout, rollback, * (alice is in team-checkout in prod)",
	} {
		if got := serveGit(t, repo, "log", "-1", "--format=%(trailers:key="+key+",valueonly)"); got != want {
			t.Errorf("trailer %s: %q, want %q", key, got, want)
		}
	}
	if who := serveGit(t, repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>"); who != "Alice Smith <alice@shop.example.com>|shipbot <shipbot@shipbot.local>" {
		t.Errorf("author|committer %q, want alice's Slack identity and shipbot", who)
	}
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		dir := filepath.Dir(repo)
		serveGit(t, repo, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+filepath.Join(dir, demo.SignersFile), "verify-commit", "main")
	}
	full := serveGit(t, repo, "rev-parse", "main")
	shown := fs.current(serveChannel, plan.TS).Shown()
	for _, want := range []string{":white_check_mark:", "commit " + full[:7], "confirmed by <@UALICE>"} {
		if !strings.Contains(shown, want) {
			t.Errorf("the result message lacks %q:\n%s", want, shown)
		}
	}
	if m := fs.current(serveChannel, plan.TS); strings.Contains(m.Blocks, `"shipbot_confirm"`) {
		t.Error("the result message still has buttons")
	}

	// The metrics count what happened.
	code, metrics := s.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for sample, want := range map[string]float64{
		`shipbot_requests_total{action="rollback",outcome="committed"}`: 1,
		`shipbot_denials_total{reason="not_requester"}`:                 1,
		`shipbot_time_to_commit_seconds_count{since="confirm"}`:         1,
	} {
		if !serveMetric(metrics, sample, want) {
			t.Errorf("/metrics lacks %s %v", sample, want)
		}
	}
	if !strings.Contains(metrics, "\ngo_goroutines ") {
		t.Error("/metrics lacks the Go runtime metrics")
	}

	// A plan still waiting when shipbot stops is cancelled, and its
	// message says so; nothing more is written.
	posted, _, _ := fs.snapshot()
	fs.deliver(t, "slash_commands", "env-slash-2", serveSlash("UALICE", "rollback checkout staging", "trig-4"))
	waiting := fs.planMessage(t, serveChannel, len(posted))
	if err := s.stop(); err != nil {
		t.Fatalf("runServe after cancel: %v, want nil", err)
	}
	m := fs.current(serveChannel, waiting.TS)
	if strings.Contains(m.Blocks, `"shipbot_confirm"`) || !strings.Contains(m.Shown(), ":no_entry_sign:") || !strings.Contains(m.Shown(), "shutting down") {
		t.Errorf("the plan waiting at shutdown was not cancelled in its message:\n%s", m.Shown())
	}
	if n := serveCount(t, repo); n != count+1 {
		t.Errorf("%d commits after shutdown, want %d", n, count+1)
	}
	if _, err := (&http.Client{Timeout: 2 * time.Second}).Get(s.base + "/healthz"); err == nil {
		t.Error("the listener is still open after runServe returned")
	}
	if log := s.log.String(); !strings.Contains(log, `"msg":"shipbot serve stopped"`) {
		t.Errorf("no 'shipbot serve stopped' in the log")
	}
	serveNoSecrets(t, s.log.String())
}

// TestServeSlackUserGroup: erin has no line in the demo policy, but she is
// in the Slack user group S0CHECKOUT, which SHIPBOT_SLACK_USERGROUPS maps
// to the policy group team-checkout: her prod rollback lands, and the
// commit records the membership it relied on. Taken out of the mapping,
// the same request is denied.
func TestServeSlackUserGroup(t *testing.T) {
	cfg, repo := serveDemo(t)
	fs := newServeSlack(t)
	serveEnv(t, "socket", fs.apiURL())
	s := startServe(t, cfg)
	count := serveCount(t, repo)

	fs.deliver(t, "slash_commands", "env-erin-1", serveSlash("UERIN", "rollback checkout prod --why "+servePD, "trig-e1"))
	plan := fs.planMessage(t, serveChannel, 0)
	id := serveRequestID(t, plan)
	fs.deliver(t, "interactive", "env-erin-2", serveClick("UERIN", plan.TS, id, "1700000002.000002", "trig-e2"))
	serveWaitFor(t, "erin's rollback to land", func() bool {
		return strings.Contains(fs.current(serveChannel, plan.TS).PlainText(), "["+id+"] done: rollback checkout in prod")
	})
	if n := serveCount(t, repo); n != count+1 {
		t.Fatalf("%d commits, want %d", n, count+1)
	}
	for key, want := range map[string]string{
		"Requested-by":  "Erin Ops <erin@shop.example.com>",
		"Authorized-by": "p, team-checkout, *, checkout, rollback, * (erin is in the chat group team-checkout)",
	} {
		if got := serveGit(t, repo, "log", "-1", "--format=%(trailers:key="+key+",valueonly)"); got != want {
			t.Errorf("trailer %s: %q, want %q", key, got, want)
		}
	}
	if !strings.Contains(s.log.String(), `"groups":["team-checkout"]`) {
		t.Error("the log does not show erin's Slack groups")
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	// Without the mapping (user groups off), erin is nobody to the policy.
	t.Setenv("SHIPBOT_SLACK_USERGROUPS", "")
	s = startServe(t, cfg)
	posted, _, _ := fs.snapshot()
	fs.deliver(t, "slash_commands", "env-erin-3", serveSlash("UERIN", "rollback checkout prod --why "+servePD, "trig-e3"))
	serveWaitFor(t, "erin's denial", func() bool {
		posts, _, _ := fs.snapshot()
		for _, p := range posts[len(posted):] {
			if strings.Contains(fs.current(p.Channel, p.TS).PlainText(), "denied: no policy rule lets erin rollback checkout in prod") {
				return true
			}
		}
		return false
	})
	if n := serveCount(t, repo); n != count+1 {
		t.Errorf("%d commits after the denial, want %d", n, count+1)
	}
}

// TestServeSlackHTTPMode runs `shipbot serve` with Slack's HTTP deliveries:
// /slack/commands refuses an unsigned request, a wrongly signed one and a
// correctly signed but stale one (401, nothing reaches shipbot or Slack),
// and answers a correctly signed one with an empty 200 and a reply in
// Slack. /metrics counts both; cancel stops serve cleanly.
func TestServeSlackHTTPMode(t *testing.T) {
	cfg, _ := serveDemo(t)
	fs := newServeSlack(t)
	serveEnv(t, "http", fs.apiURL())
	s := startServe(t, cfg)

	if code, body := s.get(t, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := s.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d, want 200", code)
	}
	body := url.Values{
		"team_id": {serveTeamID}, "channel_id": {serveChannel}, "user_id": {"UALICE"},
		"command": {"/ship"}, "text": {"status checkout"}, "trigger_id": {"trig-h1"},
		"response_url": {"https://hooks.slack.com/commands/x"},
	}.Encode()
	now := time.Now()
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"unsigned", nil},
		{"signed with another secret", serveSign("not-the-secret", body, now)},
		{"stale timestamp (6 minutes old)", serveSign(serveSecret, body, now.Add(-6*time.Minute))},
	} {
		if code, _ := s.post(t, "/slack/commands", body, tc.header); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tc.name, code)
		}
	}
	for _, m := range []string{"users.info", "chat.postMessage", "chat.postEphemeral", "chat.update"} {
		if n := fs.callCount(m); n != 0 {
			t.Fatalf("refused requests caused %d %s calls", n, m)
		}
	}

	if code, resp := s.post(t, "/slack/commands", body, serveSign(serveSecret, body, time.Now())); code != http.StatusOK || resp != "" {
		t.Fatalf("signed request: %d %q, want an empty 200", code, resp)
	}
	var reply serveCall
	serveWaitFor(t, "the status reply", func() bool {
		_, updates, _ := fs.snapshot()
		for _, u := range updates {
			if u.Channel == serveChannel && strings.Contains(u.Shown(), "1.4.2") {
				reply = u
				return true
			}
		}
		return false
	})
	if !strings.Contains(reply.Shown(), "checkout") || !strings.Contains(reply.Shown(), "prod") {
		t.Errorf("status reply:\n%s", reply.Shown())
	}

	code, metrics := s.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for sample, want := range map[string]float64{
		`shipbot_slack_http_rejected_total{reason="headers"}`:        1,
		`shipbot_slack_http_rejected_total{reason="signature"}`:      1,
		`shipbot_slack_http_rejected_total{reason="stale"}`:          1,
		`shipbot_requests_total{action="status",outcome="answered"}`: 1,
	} {
		if !serveMetric(metrics, sample, want) {
			t.Errorf("/metrics lacks %s %v", sample, want)
		}
	}

	if err := s.stop(); err != nil {
		t.Fatalf("runServe after cancel: %v, want nil", err)
	}
	if _, err := (&http.Client{Timeout: 2 * time.Second}).Get(s.base + "/healthz"); err == nil {
		t.Error("the listener is still open after runServe returned")
	}
	serveNoSecrets(t, s.log.String())
}

// TestServeSlackShutdownFinishesConfirmedWork: a Confirm that is in flight
// when serve is told to stop still lands its commit and updates its
// message; meanwhile /readyz says not ready; then runServe returns nil.
func TestServeSlackShutdownFinishesConfirmedWork(t *testing.T) {
	cfg, repo := serveDemo(t)
	fs := newServeSlack(t)
	serveEnv(t, "socket", fs.apiURL())
	s := startServe(t, cfg)
	count := serveCount(t, repo)

	fs.deliver(t, "slash_commands", "env-slash-1", serveSlash("UALICE", "rollback checkout prod --why "+servePD, "trig-1"))
	plan := fs.planMessage(t, serveChannel, 0)
	id := serveRequestID(t, plan)

	// Hold the "committing…" update: the click is taken, its work is in
	// flight, the commit not yet made.
	fs.mu.Lock()
	fs.hold, fs.held, fs.release = "committing", make(chan struct{}), make(chan struct{})
	held, release := fs.held, sync.OnceFunc(func() { close(fs.release) })
	fs.mu.Unlock()
	t.Cleanup(release) // before serve's and the fake's cleanups, should the test stop early
	fs.deliver(t, "interactive", "env-click-alice", serveClick("UALICE", plan.TS, id, "1700000002.000002", "trig-2"))
	select {
	case <-held:
	case <-time.After(serveDeadline):
		t.Fatal("timed out waiting for the 'committing…' update")
	}

	s.cancel() // SIGTERM
	serveWaitFor(t, "shutdown to begin", func() bool {
		return strings.Contains(s.log.String(), `"msg":"shutting down: finishing the work in flight"`)
	})
	if s.returned() {
		t.Fatalf("runServe returned (%v) with a confirmed change still in flight", s.err)
	}
	// The log line comes just before serve stops taking requests.
	serveWaitFor(t, "/readyz to say 503 while draining", func() bool {
		code, _ := s.get(t, "/readyz")
		return code == http.StatusServiceUnavailable
	})
	if n := serveCount(t, repo); n != count {
		t.Fatalf("%d commits before the held work went on, want %d", n, count)
	}
	release()

	if err := s.stop(); err != nil {
		t.Fatalf("runServe after cancel: %v, want nil", err)
	}
	if n := serveCount(t, repo); n != count+1 {
		t.Fatalf("%d commits after shutdown, want %d: the confirmed change must land", n, count+1)
	}
	if got := serveGit(t, repo, "log", "-1", "--format=%(trailers:key=Shipbot-Request,valueonly)"); got != id {
		t.Errorf("last commit is request %q, want %q", got, id)
	}
	if m := fs.current(serveChannel, plan.TS); !strings.Contains(m.PlainText(), "["+id+"] done: rollback checkout in prod: 1.4.2 -> 1.4.1") {
		t.Errorf("the message was not updated with the result before exit: %q\n%s", m.PlainText(), m.Shown())
	}
}

// TestServeSlackRefusedAppToken: when Slack refuses the app-level token
// (apps.connections.open: invalid_auth), serve does not sit there
// unready: runServe returns an error that names the token's variable.
func TestServeSlackRefusedAppToken(t *testing.T) {
	cfg, _ := serveDemo(t)
	fs := newServeSlack(t)
	fs.appTokenError = "invalid_auth"
	serveEnv(t, "socket", fs.apiURL())
	t.Setenv("SHIPBOT_LISTEN", serveFreeAddr(t))
	log := &serveLog{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, []string{"--config", cfg}, io.Discard, log) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "invalid_auth") || !strings.Contains(err.Error(), "SHIPBOT_SLACK_APP_TOKEN_FILE") {
			t.Errorf("runServe: %v, want an invalid_auth error naming SHIPBOT_SLACK_APP_TOKEN_FILE", err)
		}
	case <-time.After(serveDeadline):
		cancel()
		<-done
		t.Fatalf("runServe kept running with a refused app token\nlog:\n%s", log.String())
	}
	serveNoSecrets(t, log.String())
}
