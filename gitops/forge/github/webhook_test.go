package github

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/gitops/forge/github/githubtest"
	"github.com/shipbot/shipbot/gitops/gittest"
)

var secret = []byte("webhook-secret")

// hookReceiver is the webhook handler behind a server, recording the
// branches OnProposal was called with.
type hookReceiver struct {
	url   string
	calls chan string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	r := &hookReceiver{calls: make(chan string, 100)}
	h, err := NewWebhookHandler(WebhookOptions{
		Secret: secret,
		OnProposal: func(ctx context.Context, branch string) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("OnProposal got a context without a deadline")
			}
			r.calls <- branch
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// next waits for the next OnProposal call.
func (r *hookReceiver) next(t *testing.T) string {
	t.Helper()
	select {
	case b := <-r.calls:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("OnProposal was not called")
		return ""
	}
}

// none checks that OnProposal is not called (for a while).
func (r *hookReceiver) none(t *testing.T) {
	t.Helper()
	select {
	case b := <-r.calls:
		t.Fatalf("OnProposal called with %q", b)
	case <-time.After(300 * time.Millisecond):
	}
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func prEvent(branch string) gh.PullRequestEvent {
	return gh.PullRequestEvent{
		Action: gh.String("synchronize"),
		Number: gh.Int(7),
		PullRequest: &gh.PullRequest{
			Number: gh.Int(7),
			Head:   &gh.PullRequestBranch{Ref: gh.String(branch), SHA: gh.String("0123456789abcdef0123456789abcdef01234567")},
		},
	}
}

func TestWebhookSignedDeliveryAndRedelivery(t *testing.T) {
	rcv := newHookReceiver(t)
	srv := githubtest.New(t, githubtest.Options{BareRepo: gittest.InitBare(t), WebhookURL: rcv.url, WebhookSecret: secret})

	resp, err := srv.SendWebhook("pull_request", prEvent("shipbot/req-1"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d %s", resp.StatusCode, body(t, resp))
	}
	if b := rcv.next(t); b != "shipbot/req-1" {
		t.Errorf("OnProposal(%q)", b)
	}
	rcv.none(t)

	resp, err = srv.Redeliver()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body(t, resp), "duplicate delivery") {
		t.Errorf("redelivery: %d", resp.StatusCode)
	}
	rcv.none(t)

	// A new delivery of the same event is handled again.
	if resp, err = srv.SendWebhook("pull_request", prEvent("shipbot/req-1")); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("second delivery: %v %v", resp, err)
	}
	rcv.next(t)
}

func TestWebhookForgedSignature(t *testing.T) {
	rcv := newHookReceiver(t)
	srv := githubtest.New(t, githubtest.Options{BareRepo: gittest.InitBare(t), WebhookURL: rcv.url, WebhookSecret: []byte("not-the-secret")})
	resp, err := srv.SendWebhook("pull_request", prEvent("shipbot/req-1"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged: status %d", resp.StatusCode)
	}
	rcv.none(t)

	// No signature at all.
	req, _ := http.NewRequest(http.MethodPost, rcv.url, strings.NewReader(`{"pull_request":{"head":{"ref":"shipbot/req-1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", "d-1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned: status %d", resp.StatusCode)
	}
	rcv.none(t)
}

func TestWebhookEvents(t *testing.T) {
	rcv := newHookReceiver(t)
	srv := githubtest.New(t, githubtest.Options{BareRepo: gittest.InitBare(t), WebhookURL: rcv.url, WebhookSecret: secret})
	send := func(event string, payload any) int {
		t.Helper()
		resp, err := srv.SendWebhook(event, payload)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	if s := send("ping", map[string]any{"zen": "Keep it logically awesome."}); s != http.StatusOK {
		t.Errorf("ping: %d", s)
	}
	if s := send("pull_request", prEvent("feature/human")); s != http.StatusNoContent {
		t.Errorf("human branch: %d", s)
	}
	if s := send("push", map[string]any{"ref": "refs/heads/shipbot/req-1"}); s != http.StatusNoContent {
		t.Errorf("push: %d", s)
	}
	rcv.none(t)

	cases := map[string]any{
		"pull_request_review": gh.PullRequestReviewEvent{Action: gh.String("submitted"), PullRequest: &gh.PullRequest{Head: &gh.PullRequestBranch{Ref: gh.String("shipbot/review")}}},
		"check_suite":         gh.CheckSuiteEvent{Action: gh.String("completed"), CheckSuite: &gh.CheckSuite{HeadBranch: gh.String("shipbot/suite")}},
		"check_run": gh.CheckRunEvent{Action: gh.String("completed"), CheckRun: &gh.CheckRun{
			CheckSuite:   &gh.CheckSuite{HeadBranch: gh.String("main")},
			PullRequests: []*gh.PullRequest{{Head: &gh.PullRequestBranch{Ref: gh.String("shipbot/run")}}},
		}},
		"status": gh.StatusEvent{State: gh.String("failure"), Branches: []*gh.Branch{{Name: gh.String("main")}, {Name: gh.String("shipbot/status")}}},
	}
	for event, payload := range cases {
		if s := send(event, payload); s != http.StatusAccepted {
			t.Errorf("%s: %d", event, s)
		}
		want := "shipbot/" + map[string]string{"pull_request_review": "review", "check_suite": "suite", "check_run": "run", "status": "status"}[event]
		if b := rcv.next(t); b != want {
			t.Errorf("%s: OnProposal(%q), want %q", event, b, want)
		}
	}
	rcv.none(t)
}

// The double sends webhooks by itself as things happen; the handler calls
// OnProposal for each.
func TestAutoWebhooks(t *testing.T) {
	rcv := newHookReceiver(t)
	fx := newFixture(t, githubtest.Options{WebhookURL: rcv.url, WebhookSecret: secret, AutoWebhooks: true}, Options{})
	head := fx.proposalBranch("shipbot/req-20", "1.4.2")
	p := fx.open("shipbot/req-20") // pull_request opened
	if b := rcv.next(t); b != "shipbot/req-20" {
		t.Errorf("opened: OnProposal(%q)", b)
	}
	fx.gh.AddReview(p.Number, "bobby", "APPROVED", "")
	rcv.next(t)
	fx.gh.SetStatus(head, "ci/build", "success")
	rcv.next(t)
	fx.gh.SetCheckRun(head, "policy", "completed", "success")
	rcv.next(t)
	// shipbot pushes the head onto main: synchronize-free merge, closed.
	gittest.Git(t, fx.work, "push", "--quiet", "origin", head+":refs/heads/main")
	if b := rcv.next(t); b != "shipbot/req-20" {
		t.Errorf("merged: OnProposal(%q)", b)
	}
	var events []string
	for _, d := range fx.gh.Deliveries() {
		if d.Status != http.StatusAccepted {
			t.Errorf("delivery %s %s: %d %v", d.Event, d.ID, d.Status, d.Err)
		}
		events = append(events, d.Event)
	}
	want := "pull_request pull_request_review status check_run pull_request"
	if got := strings.Join(events, " "); got != want {
		t.Errorf("events %q, want %q", got, want)
	}
}
