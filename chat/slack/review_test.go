package slack

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/chat/command"
	"github.com/shipbot/shipbot/gitops"
)

// FakeCore is a Core (and Watcher) of function fields that records what
// reached it.
type FakeCore struct {
	HandleFunc  func(ctx context.Context, req gitops.Request) gitops.Response
	ConfirmFunc func(ctx context.Context, p *gitops.Plan) gitops.Response
	// WatchFunc nil: the core does not watch.
	WatchFunc func(ctx context.Context, p *gitops.Plan, commit string, progress func(string)) gitops.Response

	mu       sync.Mutex
	requests []gitops.Request
	plans    []*gitops.Plan // confirmed
}

var (
	_ Core    = (*FakeCore)(nil)
	_ Watcher = (*FakeCore)(nil)
)

func (c *FakeCore) Handle(ctx context.Context, req gitops.Request) gitops.Response {
	c.mu.Lock()
	c.requests = append(c.requests, req)
	c.mu.Unlock()
	return c.HandleFunc(ctx, req)
}

func (c *FakeCore) Confirm(ctx context.Context, p *gitops.Plan) gitops.Response {
	c.mu.Lock()
	c.plans = append(c.plans, p)
	c.mu.Unlock()
	return c.ConfirmFunc(ctx, p)
}

func (c *FakeCore) Cancel(_ *gitops.Plan, why string) gitops.Response {
	return gitops.Response{Outcome: gitops.OutcomeCancelled, Text: "cancelled: " + why}
}

func (c *FakeCore) ConfirmTimeout() time.Duration { return time.Minute }

func (c *FakeCore) Watches() bool { return c.WatchFunc != nil }

func (c *FakeCore) Watch(ctx context.Context, p *gitops.Plan, commit string, progress func(string)) gitops.Response {
	return c.WatchFunc(ctx, p, commit, progress)
}

// handled returns the requests of one action that reached the core.
func (c *FakeCore) handled(a gitops.Action) []gitops.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []gitops.Request
	for _, r := range c.requests {
		if r.Action == a {
			out = append(out, r)
		}
	}
	return out
}

func (c *FakeCore) confirmed() *gitops.Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.plans) == 0 {
		return nil
	}
	return c.plans[len(c.plans)-1]
}

const prURL = "https://github.example/acme/env/pull/7"

// review is a workspace with a core whose policy wants two approvals from
// sre for a rollback of checkout in prod: Confirm opens a proposal, and
// approvals are answered by approve (set per test).
type reviewEnv struct {
	fs      *fakeSlack
	core    *FakeCore
	a       *Adapter
	logs    *syncBuffer
	watched chan string

	mu      sync.Mutex
	approve func(req gitops.Request, p *gitops.Plan) gitops.Response
}

func newReviewEnv(t *testing.T, mod ...func(*Options)) *reviewEnv {
	t.Helper()
	r := &reviewEnv{fs: newFakeSlack(t), logs: &syncBuffer{}, watched: make(chan string, 4)}
	r.fs.addUser("UCAROL", "carol@acme.example", "Carol White")
	r.fs.addChannel("CREVIEW", "reviews", false)
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(r.logs, testWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir, err := NewDirectory(DirectoryOptions{API: r.fs.client(), TeamID: "T1", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r.core = &FakeCore{
		HandleFunc: func(_ context.Context, req gitops.Request) gitops.Response {
			switch req.Action {
			case gitops.ActionRollback:
				return gitops.Response{Outcome: gitops.OutcomeConfirm, Text: "plan", Plan: &gitops.Plan{
					Request: req, Environment: gitops.Environment{Name: "prod", Protected: true},
					Justification: gitops.Justification{Text: pdLink},
					Summary:       "rollback checkout in prod: 1.4.2 -> 1.4.1",
					Diff:          "-    newTag: 1.4.2 # live\n+    newTag: 1.4.1 # live\n",
				}}
			case gitops.ActionApprove:
				r.mu.Lock()
				f := r.approve
				r.mu.Unlock()
				return f(req, r.core.confirmed())
			}
			return gitops.Response{Outcome: gitops.OutcomeAnswered, Text: "ok"}
		},
		ConfirmFunc: func(_ context.Context, p *gitops.Plan) gitops.Response {
			return gitops.Response{
				Outcome:  gitops.OutcomeProposed,
				Text:     "[" + p.Request.ID + "] rollback checkout in prod needs 2 approvals from sre; proposal opened: " + prURL,
				Proposal: viewOf(p),
			}
		},
		WatchFunc: func(_ context.Context, p *gitops.Plan, commit string, progress func(string)) gitops.Response {
			r.watched <- commit
			progress("[" + p.Request.ID + "] checkout prod: Synced, Progressing")
			return gitops.Response{Outcome: gitops.OutcomeHealthy, Text: "checkout prod 1.4.1 is Synced and Healthy."}
		},
	}
	o := Options{API: r.fs.client(), Core: r.core, Directory: dir, BotUserID: "UBOT", Logger: log}
	for _, m := range mod {
		m(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	r.a = a
	runSocket(t, &env{fs: r.fs}, a)
	return r
}

func (r *reviewEnv) setApprove(f func(req gitops.Request, p *gitops.Plan) gitops.Response) {
	r.mu.Lock()
	r.approve = f
	r.mu.Unlock()
}

// viewOf is the proposal of p with the given approvals.
func viewOf(p *gitops.Plan, approvals ...gitops.ApprovalView) *gitops.ProposalView {
	return &gitops.ProposalView{
		RequestID: p.Request.ID, Summary: p.Summary, App: "checkout", Env: "prod",
		Requester: "alice", Channel: "#ops", Thread: p.Request.Thread, URL: prURL, Via: prURL,
		Needed: 2, Group: "sre", Approvals: approvals, Approvers: []string{"bob", "carol"},
	}
}

// propose has alice ask for a rollback and confirm it; the core opens a
// proposal. It returns the request's message, its id and the message with
// the review buttons in its thread.
func (r *reviewEnv) propose(t *testing.T) (fakeMsg, string, fakeMsg) {
	t.Helper()
	r.fs.send("slash_commands", "env-1", slashPayload("UALICE", "COPS", "rollback checkout prod --why "+pdLink, "trig-1"), 0)
	plan := planMessageFor(t, r.fs, "COPS")
	id := requestIDOf(t, plan)
	r.fs.send("interactive", "env-2", clickPayload("UALICE", "COPS", plan.TS, actionConfirm, id, "1700000002.000002", "trig-2"), 0)
	waitFor(t, "the proposal to be shown", func() bool { return strings.Contains(r.logs.String(), "proposal open; review requested") })
	buttons := reviewButtonsIn(t, r.fs, "COPS")
	return messageAt(r.fs, "COPS", plan.TS), id, buttons
}

// reviewButtonsIn returns the message in channel with an Approve button.
func reviewButtonsIn(t *testing.T, fs *fakeSlack, channel string) fakeMsg {
	t.Helper()
	var found fakeMsg
	waitFor(t, "review buttons in "+channel, func() bool {
		for _, m := range fs.messages() {
			if m.Channel == channel && strings.Contains(m.History[0], actionApprove) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// buttonValues returns the action ids and values of a message's buttons.
func buttonValues(t *testing.T, blocks string) map[string]string {
	t.Helper()
	var bs []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal([]byte(blocks), &bs); err != nil {
		t.Fatalf("blocks %s: %v", blocks, err)
	}
	out := map[string]string{}
	for _, b := range bs {
		for _, e := range b.Elements {
			if e.ActionID != "" {
				out[e.ActionID] = e.Value
			}
		}
	}
	return out
}

func TestReviewProposalPostsButtons(t *testing.T) {
	for _, tc := range []struct {
		name   string
		review string
	}{{"thread only", ""}, {"and the reviewers' channel", "CREVIEW"}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReviewEnv(t, func(o *Options) { o.ReviewChannel = tc.review })
			plan, id, buttons := r.propose(t)

			// The request carried its thread, which reads back to its message.
			rb := r.core.handled(gitops.ActionRollback)
			if len(rb) != 1 || rb[0].Thread != "slack:COPS:"+plan.TS {
				t.Fatalf("the request's Thread: %+v, want slack:COPS:%s", rb, plan.TS)
			}
			if ref, err := parseThread(rb[0].Thread); err != nil || ref.channel != "COPS" || ref.ts != plan.TS {
				t.Fatalf("Thread %q reads back as %+v, %v", rb[0].Thread, ref, err)
			}

			// The request's message, in place: the proposal, no Confirm.
			got := plan.Shown()
			for _, want := range []string{
				"<" + prURL + "|the pull request>", "approvals: 0 of 2 from group sre", "*2 missing*; may approve: bob, carol",
				":eyes: [" + id + "] rollback checkout in prod needs 2 approvals", "requested by <@UALICE>", "confirmed by <@UALICE>",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("request's message lacks %q:\n%s", want, got)
				}
			}
			if strings.Contains(plan.Blocks, actionConfirm) {
				t.Error("the request's message kept its Confirm button")
			}

			// The buttons, in the request's thread, carry the request id.
			if buttons.Thread != plan.TS {
				t.Errorf("review buttons in thread %q, want the request's %s", buttons.Thread, plan.TS)
			}
			if v := buttonValues(t, buttons.Blocks); v[actionApprove] != id || v[actionReject] != id {
				t.Errorf("buttons %v, want approve and reject with %s", v, id)
			}
			if !strings.Contains(buttons.Shown(), "reject "+id+" --why REASON") || !strings.Contains(buttons.Shown(), "needs 2 approval(s) from group sre; may approve: bob, carol") {
				t.Errorf("buttons message does not say how to reject:\n%s", buttons.Shown())
			}

			var inReview []fakeMsg
			for _, m := range r.fs.messages() {
				if m.Channel == "CREVIEW" {
					inReview = append(inReview, m)
				}
			}
			if tc.review == "" {
				if len(inReview) != 0 {
					t.Fatalf("posted in the reviewers' channel without the option: %+v", inReview)
				}
				return
			}
			if len(inReview) != 1 {
				t.Fatalf("%d messages in the reviewers' channel, want 1", len(inReview))
			}
			rm := inReview[0]
			if v := buttonValues(t, rm.Blocks); v[actionApprove] != id || v[actionReject] != id || rm.Thread != "" {
				t.Errorf("reviewers' channel: buttons %v, thread %q", v, rm.Thread)
			}
			link := "<https://acme.slack.com/archives/COPS/p" + strings.Replace(plan.TS, ".", "", 1) + "|the request's thread>"
			if !strings.Contains(rm.Shown(), link) {
				t.Errorf("reviewers' channel message lacks %q:\n%s", link, rm.Shown())
			}
		})
	}
}

func TestReviewApproveClick(t *testing.T) {
	r := newReviewEnv(t)
	r.setApprove(func(req gitops.Request, p *gitops.Plan) gitops.Response {
		return gitops.Response{Outcome: gitops.OutcomeApproved, Text: "[" + req.Proposal + "] bob approved: 1 of 2, 1 missing",
			Proposal: viewOf(p, gitops.ApprovalView{User: "bob", Where: []string{"chat #ops"}})}
	})
	plan, id, buttons := r.propose(t)
	before := len(messageAt(r.fs, "COPS", plan.TS).History)

	click := clickPayload("UBOB", "COPS", buttons.TS, actionApprove, id, "1700000003.000003", "trig-3")
	r.fs.send("interactive", "env-3", click, 0)
	waitFor(t, "the approval in the request's message", func() bool {
		return strings.Contains(messageAt(r.fs, "COPS", plan.TS).Shown(), "approvals: 1 of 2 from group sre: bob (chat #ops)")
	})
	waitEphemeral(t, r.fs, "UBOB", "bob approved: 1 of 2")

	// Slack delivers the same click again: it runs once.
	r.fs.send("interactive", "env-4", click, 1)
	waitFor(t, "ack of the redelivery", func() bool { return r.fs.acked("env-4") })
	time.Sleep(200 * time.Millisecond) // let a wrong second approval show up

	got := r.core.handled(gitops.ActionApprove)
	if len(got) != 1 {
		t.Fatalf("%d approve requests, want 1 (the redelivered click runs once)", len(got))
	}
	req := got[0]
	if req.Proposal != id || req.User != "bob" || req.Channel != "#ops" || req.ID == id || req.ID == "" {
		t.Errorf("approve request %+v: want bob's, from #ops, about %s, with an id of its own", req, id)
	}
	if want := gitops.NewRequestID("slack", "T1", "COPS", buttons.TS, "UBOB", actionApprove, "1700000003.000003"); req.ID != want {
		t.Errorf("approval id %s, want %s derived from the click", req.ID, want)
	}
	m := messageAt(r.fs, "COPS", plan.TS)
	if n := len(m.History); n != before+1 {
		t.Errorf("request's message updated %d times, want once", n-before)
	}
	if !strings.Contains(m.Shown(), "*1 missing*") || strings.Contains(m.Shown(), "2 missing") {
		t.Errorf("request's message does not say what is missing:\n%s", m.Shown())
	}
	if !strings.Contains(messageAt(r.fs, "COPS", buttons.TS).Blocks, actionApprove) {
		t.Error("the buttons went away while approvals are missing")
	}
}

func TestReviewClickRefused(t *testing.T) {
	r := newReviewEnv(t)
	r.setApprove(func(req gitops.Request, _ *gitops.Plan) gitops.Response {
		if req.User == "alice" {
			return gitops.Response{Outcome: gitops.OutcomeRejected, Text: "[" + req.Proposal + "] you asked for this change; your approval doesn't count"}
		}
		return gitops.Response{Outcome: gitops.OutcomeDenied, Text: "[" + req.Proposal + "] denied: " + req.User + " may not approve changes of checkout in prod"}
	})
	plan, id, buttons := r.propose(t)
	before := len(messageAt(r.fs, "COPS", plan.TS).History)

	r.fs.send("interactive", "env-3", clickPayload("UMALLORY", "COPS", buttons.TS, actionApprove, id, "1700000003.000003", "trig-3"), 0)
	waitEphemeral(t, r.fs, "UMALLORY", "denied: mallory may not approve changes of checkout in prod")
	r.fs.send("interactive", "env-4", clickPayload("UALICE", "COPS", buttons.TS, actionApprove, id, "1700000004.000004", "trig-4"), 0)
	waitEphemeral(t, r.fs, "UALICE", "your approval doesn't count")
	// Someone shipbot can't identify never reaches the core.
	r.fs.send("interactive", "env-5", clickPayload("UNOEMAIL", "COPS", buttons.TS, actionApprove, id, "1700000005.000005", "trig-5"), 0)
	waitEphemeral(t, r.fs, "UNOEMAIL", "denied:")
	// Reject asks for the reason as a command; nothing reaches the core.
	r.fs.send("interactive", "env-6", clickPayload("UBOB", "COPS", buttons.TS, actionReject, id, "1700000006.000006", "trig-6"), 0)
	waitEphemeral(t, r.fs, "UBOB", "`/ship reject "+id+" --why REASON`")

	got := r.core.handled(gitops.ActionApprove)
	if len(got) != 2 || got[0].User != "mallory" || got[1].User != "alice" {
		t.Fatalf("approve requests %+v: want mallory's and alice's only", got)
	}
	if len(r.core.handled(gitops.ActionReject)) != 0 {
		t.Error("the Reject button reached the core without a reason")
	}
	for _, who := range []string{"UMALLORY", "UALICE"} {
		for _, e := range r.fs.ephemeralsFor(who) {
			if e.Channel != "COPS" {
				t.Errorf("ephemeral to %s in %s", who, e.Channel)
			}
		}
	}
	if !strings.Contains(messageAt(r.fs, "COPS", buttons.TS).Blocks, actionApprove) {
		t.Error("a refused click removed the buttons")
	}
	if n := len(messageAt(r.fs, "COPS", plan.TS).History); n != before {
		t.Errorf("refused clicks changed the request's message (%d updates)", n-before)
	}
}

func TestReviewLastApprovalMergesAndWatches(t *testing.T) {
	r := newReviewEnv(t, func(o *Options) { o.ReviewChannel = "CREVIEW" })
	r.setApprove(func(req gitops.Request, p *gitops.Plan) gitops.Response {
		return gitops.Response{Outcome: gitops.OutcomeCommitted, Text: "[" + req.Proposal + "] approved by bob and carol; merged as abc1234",
			Plan: p, Commit: "abc1234def", Proposal: viewOf(p, gitops.ApprovalView{User: "bob"}, gitops.ApprovalView{User: "carol"})}
	})
	plan, id, buttons := r.propose(t)
	inReview := reviewButtonsIn(t, r.fs, "CREVIEW")

	// Carol approves from the reviewers' channel.
	r.fs.send("interactive", "env-3", clickPayload("UCAROL", "CREVIEW", inReview.TS, actionApprove, id, "1700000003.000003", "trig-3"), 0)
	select {
	case commit := <-r.watched:
		if commit != "abc1234def" {
			t.Errorf("watched %s, want the merge commit", commit)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the merged change was not watched")
	}
	waitFor(t, "the watch outcome in the request's message", func() bool {
		return strings.Contains(messageAt(r.fs, "COPS", plan.TS).Shown(), "is Synced and Healthy")
	})
	m := messageAt(r.fs, "COPS", plan.TS)
	if !strings.Contains(m.Shown(), ":white_check_mark: ["+id+"] approved by bob and carol; merged as abc1234") {
		t.Errorf("request's message does not show the merge:\n%s", m.Shown())
	}
	progressed := false
	for _, h := range m.History {
		progressed = progressed || strings.Contains(shown(h), "Synced, Progressing")
	}
	if !progressed {
		t.Error("no watch progress in the request's message")
	}
	for _, b := range []fakeMsg{buttons, inReview} {
		got := messageAt(r.fs, b.Channel, b.TS)
		if strings.Contains(got.Blocks, actionApprove) || !strings.Contains(got.Shown(), "merged; the review is closed") {
			t.Errorf("buttons in %s not removed:\n%s", b.Channel, got.Shown())
		}
	}
	if req := r.core.handled(gitops.ActionApprove); len(req) != 1 || req[0].User != "carol" || req[0].Channel != "#reviews" {
		t.Errorf("approve requests %+v: want carol's, from #reviews", req)
	}
	// The core reports the same merge through the Notifier: no second watch.
	r.a.ProposalUpdated(context.Background(), gitops.ProposalUpdate{RequestID: id, Thread: "slack:COPS:" + plan.TS,
		Text: "merged", Outcome: gitops.OutcomeCommitted, Plan: r.core.confirmed(), Commit: "abc1234def"})
	select {
	case c := <-r.watched:
		t.Fatalf("merge %s watched twice", c)
	case <-time.After(300 * time.Millisecond):
	}
	if !strings.Contains(messageAt(r.fs, "COPS", plan.TS).Shown(), "is Synced and Healthy") {
		t.Error("the merge reported again overwrote the watch's outcome")
	}
}

func TestProposalUpdated(t *testing.T) {
	r := newReviewEnv(t)
	plan, id, buttons := r.propose(t)
	thread := r.core.confirmed().Request.Thread
	posts := r.fs.callCount("chat.postMessage")

	r.a.ProposalUpdated(context.Background(), gitops.ProposalUpdate{RequestID: id, Thread: thread, Channel: "#ops",
		Text: "[" + id + "] bobby approved on GitHub: 1 of 2 <!channel>", Outcome: gitops.OutcomeProposed})
	m := messageAt(r.fs, "COPS", plan.TS)
	if !strings.Contains(m.Shown(), ":eyes: ["+id+"] bobby approved on GitHub: 1 of 2 &lt;!channel&gt;") || !strings.Contains(m.Shown(), "rollback checkout in prod: 1.4.2 -&gt; 1.4.1") ||
		!strings.Contains(m.Shown(), "<"+prURL+"|the pull request>") {
		t.Errorf("request's message not updated with the news:\n%s", m.Shown())
	}
	var inThread []fakeMsg
	for _, msg := range r.fs.messages() {
		if msg.Thread == plan.TS && strings.Contains(msg.Shown(), "bobby approved on GitHub") {
			inThread = append(inThread, msg)
		}
	}
	if len(inThread) != 1 || inThread[0].Channel != "COPS" || r.fs.callCount("chat.postMessage") != posts+1 {
		t.Fatalf("news posted %d times in the thread, %d posts in all; want one, in COPS", len(inThread), r.fs.callCount("chat.postMessage")-posts)
	}

	// Merged on GitHub: buttons gone, the change followed through Argo CD.
	r.a.ProposalUpdated(context.Background(), gitops.ProposalUpdate{RequestID: id, Thread: thread,
		Text: "[" + id + "] merged after carol's approval", Outcome: gitops.OutcomeCommitted, Plan: r.core.confirmed(), Commit: "fedcba987"})
	select {
	case c := <-r.watched:
		if c != "fedcba987" {
			t.Errorf("watched %s", c)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the merge was not watched")
	}
	waitFor(t, "the watch outcome", func() bool {
		return strings.Contains(messageAt(r.fs, "COPS", plan.TS).Shown(), "is Synced and Healthy")
	})
	if strings.Contains(messageAt(r.fs, "COPS", buttons.TS).Blocks, actionApprove) {
		t.Error("the buttons stayed after the merge")
	}

	// After a restart nothing is remembered; the Thread still finds the
	// request's message and its thread.
	dir, err := NewDirectory(DirectoryOptions{API: r.fs.client(), TeamID: "T1"})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := New(Options{API: r.fs.client(), Core: r.core, Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	fresh.ProposalUpdated(context.Background(), gitops.ProposalUpdate{RequestID: id, Thread: thread,
		Text: "[" + id + "] approvals reset: the proposal changed", Outcome: gitops.OutcomeProposed})
	if got := messageAt(r.fs, "COPS", plan.TS).Shown(); !strings.Contains(got, "`["+id+"]`") || !strings.Contains(got, "approvals reset") {
		t.Errorf("after a restart the request's message was not updated:\n%s", got)
	}
}

func TestProposalUpdatedHostileThread(t *testing.T) {
	r := newReviewEnv(t)
	plan, id, _ := r.propose(t)
	other := "slack:COPS:1700000000.999999" // well formed, no such message of shipbot's
	if _, err := parseThread(other); err != nil {
		t.Fatal(err)
	}
	updates, posts := r.fs.callCount("chat.update"), r.fs.callCount("chat.postMessage")
	for _, thread := range []string{
		"", "web:COPS:" + plan.TS, "slack:COPS", "slack:COPS:" + plan.TS + ":", "slack:COPS:" + plan.TS + ":x",
		"slack:<!channel>:" + plan.TS, "slack:cops:" + plan.TS, "slack:COPS:" + plan.TS + "\n", " slack:COPS:" + plan.TS,
		"slack:COPS:../../x", "slack:COPS:" + plan.TS + ":" + plan.TS, "slack:C" + strings.Repeat("A", 200) + ":" + plan.TS,
		"slack:CREVIEW:" + plan.TS, // well formed, not where the request is
	} {
		r.a.ProposalUpdated(context.Background(), gitops.ProposalUpdate{RequestID: id, Thread: thread, Text: "<!channel> pwned", Outcome: gitops.OutcomeProposed})
	}
	if u, p := r.fs.callCount("chat.update"), r.fs.callCount("chat.postMessage"); u != updates || p != posts {
		t.Fatalf("hostile threads reached Slack: %d updates, %d posts", u-updates, p-posts)
	}
	// A Thread that parses but is no message shipbot can update: the
	// update fails, and nothing is posted in its thread.
	r.a.ProposalUpdated(context.Background(), gitops.ProposalUpdate{RequestID: "shp-unknown", Thread: other, Text: "<!channel> pwned", Outcome: gitops.OutcomeProposed})
	if p := r.fs.callCount("chat.postMessage"); p != posts {
		t.Fatalf("posted in the thread of a message shipbot could not update")
	}
	for _, m := range r.fs.messages() {
		if strings.Contains(m.Blocks, "pwned") {
			t.Fatalf("hostile update shown in %s/%s", m.Channel, m.TS)
		}
	}
	if !strings.Contains(r.logs.String(), "proposal's thread ignored") {
		t.Error("ignored threads were not logged")
	}
}

// TestReviewTypedApprove: `/ship approve ID` goes through the usual path
// and moves the proposal's own message like a click.
func TestReviewTypedApprove(t *testing.T) {
	if _, err := command.Parse("approve shp-abc"); err != nil {
		t.Skipf("chat/command does not parse approve yet: %v", err)
	}
	r := newReviewEnv(t)
	r.setApprove(func(req gitops.Request, p *gitops.Plan) gitops.Response {
		return gitops.Response{Outcome: gitops.OutcomeApproved, Text: "[" + req.Proposal + "] bob approved: 1 of 2, 1 missing",
			Proposal: viewOf(p, gitops.ApprovalView{User: "bob", Where: []string{"chat #ops"}})}
	})
	plan, id, _ := r.propose(t)
	r.fs.send("slash_commands", "env-9", slashPayload("UBOB", "COPS", "approve "+id, "trig-9"), 0)
	waitForShown(t, r.fs, "the approve reply", "bob approved: 1 of 2, 1 missing")
	waitFor(t, "the request's message", func() bool {
		return strings.Contains(messageAt(r.fs, "COPS", plan.TS).Shown(), "approvals: 1 of 2 from group sre: bob")
	})
	if got := r.core.handled(gitops.ActionApprove); len(got) != 1 || got[0].User != "bob" || got[0].Proposal != id || got[0].Thread == "" {
		t.Errorf("approve requests %+v", got)
	}
}

func TestParseThread(t *testing.T) {
	for _, ref := range []msgRef{{channel: "C0123ABC", ts: "1700000000.000100"}, {channel: "D0AB", ts: "1700000000.000200", thread: "1700000000.000100"}} {
		got, err := parseThread(threadLocator(ref))
		if err != nil || got != ref {
			t.Errorf("%+v -> %q -> %+v, %v", ref, threadLocator(ref), got, err)
		}
	}
}

// FuzzParseThread: whatever comes back from git, parsing never panics and
// accepts only what threadLocator writes.
func FuzzParseThread(f *testing.F) {
	for _, s := range []string{"slack:COPS:1700000000.000100", "slack:COPS:1700000000.000200:1700000000.000100", "slack:", "web:x", "slack:C1:1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := parseThread(s)
		if err != nil {
			return
		}
		if threadLocator(ref) != s || !channelIDRe.MatchString(ref.channel) || !tsRe.MatchString(ref.ts) {
			t.Fatalf("%q accepted as %+v", s, ref)
		}
	})
}

func TestProposalStatusEscapes(t *testing.T) {
	v := &gitops.ProposalView{RequestID: "shp-abc", Needed: 2, Group: "<!here>",
		Approvals: []gitops.ApprovalView{{User: "<@U1>", Where: []string{"github @x"}}},
		Approvers: []string{"<!channel>"}, Blocked: "check <https://evil.example|ci> failing"}
	for _, u := range []string{"javascript:alert(1)", "https://x.example/a|<!channel>", "https://u:p@x.example/", "ftp://x.example/"} {
		v.URL, v.Via = u, ""
		got := proposalStatus(v, "/ship")
		for _, bad := range []string{"<!here>", "<@U1>", "<!channel>", "<https://evil"} {
			if strings.Contains(got, bad) {
				t.Errorf("status shows %q unescaped:\n%s", bad, got)
			}
		}
		if strings.Contains(got, "review: ") {
			t.Errorf("URL %q was linked:\n%s", u, got)
		}
	}
}
