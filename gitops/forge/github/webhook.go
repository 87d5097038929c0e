package github

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/gitops"
)

// WebhookOptions configure the webhook handler. Validate fills defaults.
type WebhookOptions struct {
	// Secret is the webhook's secret (required): deliveries whose
	// X-Hub-Signature-256 does not verify are refused with 401.
	Secret []byte
	// OnProposal is called, in a goroutine of its own with a background
	// context bounded by Timeout, for each proposal branch an event is
	// about: the core reconciles that proposal (re-reads its Status).
	OnProposal func(ctx context.Context, branch string)
	Logger     *slog.Logger
	// Timeout bounds each OnProposal call (default 2 minutes).
	Timeout time.Duration
	// Deliveries is how many X-GitHub-Delivery ids are remembered to drop
	// redeliveries (default 10,000).
	Deliveries int
}

// Validate checks o and fills its defaults.
func (o *WebhookOptions) Validate() error {
	if len(o.Secret) == 0 {
		return errors.New("github webhook: a secret is required")
	}
	if o.OnProposal == nil {
		return errors.New("github webhook: OnProposal is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Deliveries <= 0 {
		o.Deliveries = 10000
	}
	return nil
}

// maxWebhookBody is GitHub's cap on a webhook payload.
const maxWebhookBody = 25 << 20

// NewWebhookHandler returns the handler of GitHub's webhook deliveries. It
// verifies the signature, answers ping, drops redeliveries, and for
// pull_request, pull_request_review, check_suite, check_run and status
// events about a proposal branch answers 202 and calls OnProposal in the
// background. Other events get 204.
func NewWebhookHandler(o WebhookOptions) (http.Handler, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &webhook{o: o, seen: newDeliveries(o.Deliveries)}, nil
}

type webhook struct {
	o    WebhookOptions
	seen *deliveries
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	event, id := gh.WebHookType(r), gh.DeliveryID(r)
	log := h.o.Logger.With("event", event, "delivery", id)
	r.Body = http.MaxBytesReader(w, r.Body, maxWebhookBody)
	payload, err := gh.ValidatePayload(r, h.o.Secret)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		log.WarnContext(r.Context(), "webhook refused: bad signature", "err", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if id != "" && !h.seen.add(id) {
		log.DebugContext(r.Context(), "duplicate webhook delivery")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "duplicate delivery\n")
		return
	}
	if event == "ping" {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "pong\n")
		return
	}
	switch event {
	case "pull_request", "pull_request_review", "check_suite", "check_run", "status":
	default:
		w.WriteHeader(http.StatusNoContent)
		return
	}
	parsed, err := gh.ParseWebHook(event, payload)
	if err != nil {
		log.WarnContext(r.Context(), "webhook payload unreadable", "err", err)
		http.Error(w, "unreadable payload", http.StatusBadRequest)
		return
	}
	var branches []string
	for _, b := range branchesOf(parsed) {
		if strings.HasPrefix(b, gitops.ProposalBranchPrefix) && !slices.Contains(branches, b) {
			branches = append(branches, b)
		}
	}
	if len(branches) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	for _, b := range branches {
		log.InfoContext(r.Context(), "webhook: reconcile proposal", "branch", b)
		go func(branch string) {
			ctx, cancel := context.WithTimeout(context.Background(), h.o.Timeout)
			defer cancel()
			h.o.OnProposal(ctx, branch)
		}(b)
	}
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, "accepted\n")
}

// branchesOf lists the head branches an event is about.
func branchesOf(event any) []string {
	var out []string
	prs := func(list []*gh.PullRequest) {
		for _, pr := range list {
			out = append(out, pr.GetHead().GetRef())
		}
	}
	switch e := event.(type) {
	case *gh.PullRequestEvent:
		out = append(out, e.GetPullRequest().GetHead().GetRef())
	case *gh.PullRequestReviewEvent:
		out = append(out, e.GetPullRequest().GetHead().GetRef())
	case *gh.CheckSuiteEvent:
		out = append(out, e.GetCheckSuite().GetHeadBranch())
		prs(e.GetCheckSuite().PullRequests)
	case *gh.CheckRunEvent:
		out = append(out, e.GetCheckRun().GetCheckSuite().GetHeadBranch())
		prs(e.GetCheckRun().PullRequests)
		prs(e.GetCheckRun().GetCheckSuite().PullRequests)
	case *gh.StatusEvent:
		for _, b := range e.Branches {
			out = append(out, b.GetName())
		}
	}
	return out
}

// deliveries remembers the last n delivery ids.
type deliveries struct {
	mu   sync.Mutex
	ids  map[string]bool
	ring []string
	next int
}

func newDeliveries(n int) *deliveries {
	return &deliveries{ids: make(map[string]bool, n), ring: make([]string, n)}
}

// add records id and reports whether it is new.
func (d *deliveries) add(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ids[id] {
		return false
	}
	if old := d.ring[d.next]; old != "" {
		delete(d.ids, old)
	}
	d.ring[d.next] = id
	d.next = (d.next + 1) % len(d.ring)
	d.ids[id] = true
	return true
}
