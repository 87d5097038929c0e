package githubtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
)

// Delivery is one webhook delivery the double made.
type Delivery struct {
	ID      string // X-GitHub-Delivery
	Event   string // X-GitHub-Event
	Payload []byte
	Status  int   // the receiver's answer; 0 when none
	Err     error // why it could not be delivered
}

type hookQueue struct {
	client *http.Client

	mu         sync.Mutex
	url        string
	secret     []byte
	auto       bool
	stopped    bool
	deliveries []Delivery
	last       *Delivery

	jobs    chan Delivery
	pending sync.WaitGroup
	done    chan struct{}
}

func (q *hookQueue) start(s *Server) {
	q.client = &http.Client{Timeout: 10 * time.Second}
	q.url, q.secret, q.auto = s.o.WebhookURL, s.o.WebhookSecret, s.o.AutoWebhooks
	q.jobs = make(chan Delivery, 4096)
	q.done = make(chan struct{})
	go func() {
		defer close(q.done)
		for d := range q.jobs {
			resp, _ := q.deliver(d)
			if resp != nil {
				resp.Body.Close()
			}
			q.pending.Done()
		}
	}()
}

func (q *hookQueue) stop() {
	q.mu.Lock()
	q.stopped = true
	q.mu.Unlock()
	close(q.jobs)
	<-q.done
}

// enqueue sends an automatic webhook in the background, in order.
func (q *hookQueue) enqueue(event string, payload any) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.auto || q.url == "" || q.stopped {
		return
	}
	body, err := json.Marshal(payload)
	d := Delivery{ID: deliveryID(), Event: event, Payload: body, Err: err}
	if err != nil {
		q.deliveries = append(q.deliveries, d)
		return
	}
	q.pending.Add(1)
	select {
	case q.jobs <- d:
	default:
		q.pending.Done()
		d.Err = errors.New("githubtest: webhook queue full")
		q.deliveries = append(q.deliveries, d)
	}
}

// deliver posts d as GitHub does and records it.
func (q *hookQueue) deliver(d Delivery) (*http.Response, error) {
	q.mu.Lock()
	target, secret := q.url, q.secret
	q.mu.Unlock()
	resp, err := func() (*http.Response, error) {
		if target == "" {
			return nil, errors.New("githubtest: no webhook URL")
		}
		req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(d.Payload))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "GitHub-Hookshot/githubtest")
		req.Header.Set("X-GitHub-Event", d.Event)
		req.Header.Set("X-GitHub-Delivery", d.ID)
		req.Header.Set("X-GitHub-Hook-ID", "1")
		req.Header.Set("X-Hub-Signature-256", Sign(secret, d.Payload))
		resp, err := q.client.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, err
	}()
	d.Err = err
	if resp != nil {
		d.Status = resp.StatusCode
	}
	q.mu.Lock()
	q.deliveries = append(q.deliveries, d)
	last := d
	q.last = &last
	q.mu.Unlock()
	return resp, err
}

// Sign is the X-Hub-Signature-256 of payload: "sha256=" and the hex
// HMAC-SHA256 of it keyed with secret.
func Sign(secret, payload []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(payload)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func deliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:])
}

// SetWebhook changes where webhooks go and their secret.
func (s *Server) SetWebhook(url string, secret []byte) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.url, s.hooks.secret = url, secret
}

// SendWebhook delivers event with payload (a value marshalled to JSON, or
// []byte sent as is) now, signed, with a fresh delivery id, and returns
// the receiver's response (its body read into memory).
func (s *Server) SendWebhook(event string, payload any) (*http.Response, error) {
	body, ok := payload.([]byte)
	if !ok {
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return nil, err
		}
	}
	return s.hooks.deliver(Delivery{ID: deliveryID(), Event: event, Payload: body})
}

// Redeliver sends the last delivery again with the same id, as GitHub's
// "Redeliver" button does.
func (s *Server) Redeliver() (*http.Response, error) {
	s.hooks.mu.Lock()
	last := s.hooks.last
	s.hooks.mu.Unlock()
	if last == nil {
		return nil, errors.New("githubtest: nothing delivered yet")
	}
	d := *last
	d.Status, d.Err = 0, nil
	return s.hooks.deliver(d)
}

// Deliveries lists the webhook deliveries made, in order.
func (s *Server) Deliveries() []Delivery {
	s.FlushWebhooks()
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	return append([]Delivery(nil), s.hooks.deliveries...)
}

// FlushWebhooks waits until the automatic webhooks queued so far are
// delivered.
func (s *Server) FlushWebhooks() { s.hooks.pending.Wait() }

// ---- automatic events (called with s.mu held) ----

func (s *Server) sender() *github.User { return s.user(s.o.Login) }

func (s *Server) hookPull(p *pull, action, before string) {
	e := github.PullRequestEvent{
		Action:      github.String(action),
		Number:      github.Int(p.number),
		PullRequest: s.pullJSON(p),
		Repo:        s.repoJSON(),
		Sender:      s.sender(),
	}
	if action == "synchronize" {
		e.Before, e.After = github.String(before), github.String(p.headSHA)
	}
	s.hooks.enqueue("pull_request", e)
}

func (s *Server) hookReview(p *pull, r *github.PullRequestReview, action string) {
	s.hooks.enqueue("pull_request_review", github.PullRequestReviewEvent{
		Action:      github.String(action),
		Review:      r,
		PullRequest: s.pullJSON(p),
		Repo:        s.repoJSON(),
		Sender:      r.GetUser(),
	})
}

// tips lists the branches whose tip is sha.
func (s *Server) tips(sha string) []string {
	var out []string
	for name, tip := range s.branches() {
		if tip == sha {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Server) hookStatus(sha string, st *github.RepoStatus) {
	if !s.hooks.auto {
		return
	}
	e := github.StatusEvent{
		ID:          st.ID,
		SHA:         github.String(sha),
		Name:        github.String(s.o.Owner + "/" + s.o.Repo),
		State:       st.State,
		Context:     st.Context,
		Description: st.Description,
		TargetURL:   st.TargetURL,
		CreatedAt:   st.CreatedAt,
		UpdatedAt:   st.UpdatedAt,
		Commit:      &github.RepositoryCommit{SHA: github.String(sha)},
		Repo:        s.repoJSON(),
		Sender:      s.user("ci-bot"),
	}
	for _, b := range s.tips(sha) {
		e.Branches = append(e.Branches, &github.Branch{Name: github.String(b), Commit: &github.RepositoryCommit{SHA: github.String(sha)}})
	}
	s.hooks.enqueue("status", e)
}

func (s *Server) hookCheckRun(run *github.CheckRun, action string) {
	if !s.hooks.auto {
		return
	}
	sha := run.GetHeadSHA()
	c := *run
	suite := &github.CheckSuite{ID: github.Int64(run.GetID() + 1<<20), HeadSHA: github.String(sha)}
	if tips := s.tips(sha); len(tips) > 0 {
		suite.HeadBranch = github.String(tips[0])
	}
	for _, n := range s.numbers() {
		p := s.pulls[n]
		if p.state == "open" && p.headSHA == sha {
			pr := &github.PullRequest{
				Number: github.Int(p.number),
				Head:   &github.PullRequestBranch{Ref: github.String(p.head), SHA: github.String(p.headSHA)},
				Base:   &github.PullRequestBranch{Ref: github.String(p.base), SHA: github.String(p.baseSHA)},
			}
			c.PullRequests = append(c.PullRequests, pr)
			suite.PullRequests = append(suite.PullRequests, pr)
		}
	}
	c.CheckSuite = suite
	s.hooks.enqueue("check_run", github.CheckRunEvent{
		Action:   github.String(action),
		CheckRun: &c,
		Repo:     s.repoJSON(),
		Sender:   s.user("github-actions[bot]"),
	})
}
