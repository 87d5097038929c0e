package slack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
)

// fakeSlack is a Slack workspace for tests: slacktest's server (Socket Mode
// websocket, apps.connections.open, auth.test) plus, through its Binder,
// the methods shipbot needs with per-test state: chat.postMessage (unique
// ts), chat.update, chat.postEphemeral, chat.getPermalink, users.info with
// emails, conversations.info, usergroups.list and usergroups.users.list.
type fakeSlack struct {
	t   *testing.T
	srv *slacktest.Server

	mu         sync.Mutex
	users      map[string]slackgo.User
	channels   map[string]slackgo.Channel
	groups     map[string][]string // user group id -> members
	handles    map[string]string   // user group id -> handle
	msgs       []*fakeMsg
	ephemerals []fakeEphemeral
	calls      map[string]int
	limits     map[string]int // method -> 429s still to answer
	seq        int
	acks       []string // Socket Mode envelope ids acknowledged
	// outside are channels shipbot is not a member of: conversations.info
	// answers (a public channel), posting fails with not_in_channel.
	outside map[string]bool
	// groupsErr, when set, is the error usergroups.list answers (e.g.
	// paid_teams_only on a free workspace).
	groupsErr string
}

type fakeMsg struct {
	Channel, TS, Thread string
	Text, Blocks        string   // current
	History             []string // every version's blocks
}

type fakeEphemeral struct{ Channel, User, Text, Blocks string }

func newFakeSlack(t *testing.T) *fakeSlack {
	t.Helper()
	f := &fakeSlack{
		t:        t,
		users:    map[string]slackgo.User{},
		channels: map[string]slackgo.Channel{},
		groups:   map[string][]string{},
		handles:  map[string]string{},
		calls:    map[string]int{},
		limits:   map[string]int{},
	}
	f.addUser("UALICE", "alice@acme.example", "Alice Smith")
	f.addUser("UBOB", "bob@acme.example", "Bob Jones")
	f.addUser("UMALLORY", "mallory@acme.example", "Mallory")
	f.addUser("UNOEMAIL", "", "No Email")
	f.addChannel("COPS", "ops", false)
	f.addChannel("DALICE", "", true)
	f.srv = slacktest.NewTestServer(f.bind)
	f.srv.Start()
	done := make(chan struct{})
	go func() {
		// slacktest's feed of what clients send is unbuffered: drain it, or
		// the websocket stalls after the first frame.
		for {
			select {
			case m := <-f.srv.SeenFeed:
				var ack struct {
					EnvelopeID string `json:"envelope_id"`
				}
				if json.Unmarshal([]byte(m), &ack) == nil && ack.EnvelopeID != "" {
					f.mu.Lock()
					f.acks = append(f.acks, ack.EnvelopeID)
					f.mu.Unlock()
				}
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() {
		f.srv.Stop()
		close(done)
	})
	return f
}

func (f *fakeSlack) addUser(id, email, name string) {
	u := slackgo.User{ID: id, TeamID: "T1", Name: strings.ToLower(id[1:]), RealName: name}
	u.Profile.Email = email
	u.Profile.RealName = name
	f.mu.Lock()
	f.users[id] = u
	f.mu.Unlock()
}

func (f *fakeSlack) setUser(u slackgo.User) {
	f.mu.Lock()
	f.users[u.ID] = u
	f.mu.Unlock()
}

func (f *fakeSlack) addChannel(id, name string, im bool) {
	var c slackgo.Channel
	c.ID, c.Name, c.IsIM = id, name, im
	f.mu.Lock()
	f.channels[id] = c
	f.mu.Unlock()
}

func (f *fakeSlack) apiURL() string { return f.srv.GetAPIURL() }

func (f *fakeSlack) client() *slackgo.Client {
	return slackgo.New("xoxb-test", slackgo.OptionAPIURL(f.apiURL()), slackgo.OptionAppLevelToken("xapp-test"))
}

func (f *fakeSlack) bind(c slacktest.Customize) {
	c.Handle("/chat.postMessage", f.wrap("chat.postMessage", f.postMessage))
	c.Handle("/chat.update", f.wrap("chat.update", f.update))
	c.Handle("/chat.postEphemeral", f.wrap("chat.postEphemeral", f.postEphemeral))
	c.Handle("/users.info", f.wrap("users.info", f.userInfo))
	c.Handle("/users.lookupByEmail", f.wrap("users.lookupByEmail", f.userByEmail))
	c.Handle("/conversations.info", f.wrap("conversations.info", f.conversationInfo))
	c.Handle("/usergroups.list", f.wrap("usergroups.list", f.usergroupsList))
	c.Handle("/usergroups.users.list", f.wrap("usergroups.users.list", f.usergroupUsers))
	c.Handle("/chat.getPermalink", f.wrap("chat.getPermalink", f.permalink))
}

// wrap counts calls and answers 429 while the method is rate limited.
func (f *fakeSlack) wrap(method string, h func(w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.calls[method]++
		limited := f.limits[method] > 0
		if limited {
			f.limits[method]--
		}
		f.mu.Unlock()
		if limited {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		h(w, r)
	}
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code string) { reply(w, map[string]any{"ok": false, "error": code}) }

func (f *fakeSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	ch := r.Form.Get("channel")
	f.mu.Lock()
	if f.outside[ch] {
		f.mu.Unlock()
		fail(w, "not_in_channel")
		return
	}
	if _, ok := f.channels[ch]; !ok {
		f.mu.Unlock()
		fail(w, "channel_not_found")
		return
	}
	f.seq++
	ts := fmt.Sprintf("1700000000.%06d", f.seq)
	f.msgs = append(f.msgs, &fakeMsg{Channel: ch, TS: ts, Thread: r.Form.Get("thread_ts"),
		Text: r.Form.Get("text"), Blocks: r.Form.Get("blocks"), History: []string{r.Form.Get("blocks")}})
	f.mu.Unlock()
	reply(w, map[string]any{"ok": true, "channel": ch, "ts": ts})
}

func (f *fakeSlack) update(w http.ResponseWriter, r *http.Request) {
	ch, ts := r.Form.Get("channel"), r.Form.Get("ts")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs {
		if m.Channel == ch && m.TS == ts {
			m.Text, m.Blocks = r.Form.Get("text"), r.Form.Get("blocks")
			m.History = append(m.History, m.Blocks)
			reply(w, map[string]any{"ok": true, "channel": ch, "ts": ts, "text": m.Text})
			return
		}
	}
	fail(w, "message_not_found")
}

// permalink answers chat.getPermalink for a message that exists.
func (f *fakeSlack) permalink(w http.ResponseWriter, r *http.Request) {
	ch, ts := r.Form.Get("channel"), r.Form.Get("message_ts")
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs {
		if m.Channel == ch && m.TS == ts {
			reply(w, map[string]any{"ok": true, "channel": ch, "permalink": "https://acme.slack.com/archives/" + ch + "/p" + strings.Replace(ts, ".", "", 1)})
			return
		}
	}
	fail(w, "message_not_found")
}

func (f *fakeSlack) postEphemeral(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.outside[r.Form.Get("channel")] {
		f.mu.Unlock()
		fail(w, "not_in_channel")
		return
	}
	f.ephemerals = append(f.ephemerals, fakeEphemeral{Channel: r.Form.Get("channel"), User: r.Form.Get("user"), Text: r.Form.Get("text"), Blocks: r.Form.Get("blocks")})
	f.mu.Unlock()
	reply(w, map[string]any{"ok": true, "message_ts": "1700000000.999999"})
}

func (f *fakeSlack) userInfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	u, ok := f.users[r.Form.Get("user")]
	f.mu.Unlock()
	if !ok {
		fail(w, "user_not_found")
		return
	}
	reply(w, map[string]any{"ok": true, "user": u})
}

// userByEmail is users.lookupByEmail: Slack's "users_not_found" for an
// address no user has.
func (f *fakeSlack) userByEmail(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if strings.EqualFold(u.Profile.Email, r.Form.Get("email")) {
			reply(w, map[string]any{"ok": true, "user": u})
			return
		}
	}
	fail(w, "users_not_found")
}

func (f *fakeSlack) conversationInfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	c, ok := f.channels[r.Form.Get("channel")]
	f.mu.Unlock()
	if !ok {
		fail(w, "channel_not_found")
		return
	}
	reply(w, map[string]any{"ok": true, "channel": c})
}

func (f *fakeSlack) usergroupsList(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	if code := f.groupsErr; code != "" {
		f.mu.Unlock()
		fail(w, code)
		return
	}
	var gs []map[string]any
	for id, h := range f.handles {
		gs = append(gs, map[string]any{"id": id, "handle": h, "is_usergroup": true})
	}
	f.mu.Unlock()
	reply(w, map[string]any{"ok": true, "usergroups": gs})
}

func (f *fakeSlack) usergroupUsers(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	members, ok := f.groups[r.Form.Get("usergroup")]
	f.mu.Unlock()
	if !ok {
		fail(w, "no_such_subteam")
		return
	}
	reply(w, map[string]any{"ok": true, "users": members})
}

// messages returns copies of the messages posted so far.
func (f *fakeSlack) messages() []fakeMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]fakeMsg, len(f.msgs))
	for i, m := range f.msgs {
		out[i] = *m
		out[i].History = append([]string(nil), m.History...)
	}
	return out
}

func (f *fakeSlack) ephemeralsFor(user string) []fakeEphemeral {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeEphemeral
	for _, e := range f.ephemerals {
		if e.User == user {
			out = append(out, e)
		}
	}
	return out
}

func (f *fakeSlack) callCount(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeSlack) acked(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.acks {
		if a == id {
			return true
		}
	}
	return false
}

// send delivers a Socket Mode envelope to the connected client.
func (f *fakeSlack) send(typ, envelopeID string, payload any, retry int) {
	b, err := json.Marshal(map[string]any{
		"type": typ, "envelope_id": envelopeID, "payload": payload,
		"accepts_response_payload": typ == "slash_commands", "retry_attempt": retry,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.srv.SendToWebsocket(string(b))
}

// waitFor polls cond until it holds or 20s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitForShown waits until some message in the channel shows text.
func waitForShown(t *testing.T, fs *fakeSlack, what, text string) {
	t.Helper()
	waitFor(t, what, func() bool {
		for _, m := range fs.messages() {
			if strings.Contains(m.Shown(), text) {
				return true
			}
		}
		return false
	})
}

// slashPayload is a /ship slash command as Slack sends it.
func slashPayload(user, channel, text, trigger string) map[string]any {
	return map[string]any{
		"team_id": "T1", "channel_id": channel, "user_id": user, "command": "/ship",
		"text": text, "trigger_id": trigger, "response_url": "https://hooks.slack.com/commands/x",
	}
}

// clickPayload is a press on one of a plan's buttons.
func clickPayload(user, channel, msgTS, actionID, requestID, actionTS, trigger string) map[string]any {
	return map[string]any{
		"type": "block_actions", "trigger_id": trigger,
		"team":      map[string]any{"id": "T1"},
		"user":      map[string]any{"id": user, "team_id": "T1"},
		"channel":   map[string]any{"id": channel},
		"container": map[string]any{"type": "message", "message_ts": msgTS, "channel_id": channel},
		"message":   map[string]any{"ts": msgTS},
		"actions": []map[string]any{{
			"action_id": actionID, "block_id": blockActions, "value": requestID, "type": "button", "action_ts": actionTS,
		}},
	}
}

// eventPayload is an Events API event_callback.
func eventPayload(eventID string, inner map[string]any) map[string]any {
	return map[string]any{"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": eventID, "event_time": 1700000000, "event": inner}
}

// shown is the mrkdwn text of a message's blocks (every "text" value, in
// order, one per line), as Slack would render it before formatting.
func shown(blocksJSON string) string {
	var v any
	if json.Unmarshal([]byte(blocksJSON), &v) != nil {
		return ""
	}
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if t, ok := x["text"].(string); ok {
				b.WriteString(t)
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

// Shown is the text of the message's current blocks.
func (m fakeMsg) Shown() string { return shown(m.Blocks) }

// Shown is the text of the ephemeral message's blocks.
func (e fakeEphemeral) Shown() string { return shown(e.Blocks) }
