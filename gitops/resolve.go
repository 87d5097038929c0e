package gitops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/shipbot/shipbot/gitops/repo"
	"github.com/shipbot/shipbot/templates"
)

// Unknown push outcomes. A push whose report never came back may have
// landed: shipbot says "could not tell yet — do not retry; I will report",
// and finds out in the background. It fetches and looks for the commits
// (by request id, shipbot's own commits only); when the branch still points
// where the push was to go, it sends the very same push again (a
// compare-and-swap: at most one of the two lands, and it is the change the
// requester confirmed); when the branch moved without them, they can never
// land. The outcome reaches the request's thread through the Notifier.

// unsurePush is a push whose outcome is unknown.
type unsurePush struct {
	base    plumbing.Hash  // the branch's tip the push was to replace
	tipSnap *repo.Snapshot // the last commit it sends
	objects []plumbing.Hash
	jobs    []*job
	err     error
}

// maxResolveBackoff bounds the wait between two looks.
const maxResolveBackoff = time.Minute

// bgWork tracks the background looks of a Service.
type bgWork struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	n      int
	idle   chan struct{} // closed when n is 0
}

func (b *bgWork) init() {
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.idle = make(chan struct{})
	close(b.idle)
}

func (b *bgWork) add() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n == 0 {
		b.idle = make(chan struct{})
	}
	b.n++
}

func (b *bgWork) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n--
	if b.n == 0 {
		close(b.idle)
	}
}

func (b *bgWork) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.idle
}

// Settle waits until shipbot knows, and has reported, the outcome of every
// push it could not tell, or until ctx ends.
func (s *Service) Settle(ctx context.Context) error {
	select {
	case <-s.bg.wait():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the background looks (an outcome not known yet is logged,
// not reported) and waits for them to end.
func (s *Service) Close() {
	s.bg.cancel()
	<-s.bg.wait()
}

// resolveLater finds out, in the background, what became of u.
func (s *Service) resolveLater(u *unsurePush) {
	s.bg.add()
	go func() {
		defer s.bg.done()
		s.resolve(u)
	}()
}

func (s *Service) resolve(u *unsurePush) {
	start := time.Now()
	wait := s.o.ResolveBackoff
	jobs := u.jobs
	log := jobs[0].log
	for {
		select {
		case <-s.bg.ctx.Done():
			for _, j := range jobs {
				j.log.Error("shutting down before knowing whether the push landed", "commit", j.commit.String())
			}
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxResolveBackoff)
		ctx, cancel := context.WithTimeout(s.bg.ctx, s.o.PushTimeout)
		jobs = s.look(ctx, log, u, jobs)
		cancel()
		if len(jobs) == 0 {
			return
		}
		if time.Since(start) >= s.o.ResolveTimeout {
			for _, j := range jobs {
				j.log.Error("gave up looking for the outcome of the push", "after", time.Since(start).Round(time.Second).String(), "commit", j.commit.String())
				t := s.o.Catalog.checkCommand(j.plan.Request)
				s.report(j, s.pushReply(j.plan, templates.Push{
					Kind: "still-unknown", After: s.o.ResolveTimeout.Round(time.Second), Check: t,
					Reason: "the git remote never confirmed the push and " + s.o.Repo.Branch() + " has not moved since",
				}, OutcomeUnknown), "", nil)
			}
			return
		}
	}
}

// look fetches once and settles what it can; it returns the jobs whose
// outcome is still unknown.
func (s *Service) look(ctx context.Context, log *slog.Logger, u *unsurePush, jobs []*job) []*job {
	tip, err := s.o.Repo.Fetch(ctx)
	if err != nil {
		log.Info("still can't tell whether the push landed: the fetch failed", "err", err)
		return jobs
	}
	found := s.findLanded(tip, requestsOf(jobs), recentWindow)
	var rest []*job
	for _, j := range jobs {
		if l, ok := found[j.plan.Request.ID]; ok {
			j.log.Info("the push landed after all", "commit", l.Commit.String())
			s.reportLanded(j, l)
			continue
		}
		rest = append(rest, j)
	}
	if len(rest) == 0 {
		return nil
	}
	if tip.Hash() != u.base {
		// The branch moved without our commits: a compare-and-swap from
		// u.base can never land now.
		for _, j := range rest {
			j.log.Info("the push did not land, and can't any more: the branch moved", "tip", tip.Hash().String())
			s.report(j, s.pushReply(j.plan, templates.Push{Kind: "late-not-written",
				Reason: "the push never landed, and " + s.o.Repo.Branch() + " has moved on since, so it can't"}, OutcomeFailed), "", nil)
		}
		return nil
	}
	// Still where the push was to go: finish the write the requester
	// confirmed, as it was.
	err = s.o.Repo.Push(ctx, u.base, u.tipSnap.Hash(), u.objects)
	var refused *repo.RefusedError
	switch {
	case err == nil:
		for _, j := range rest {
			j.log.Info("the push landed on a second try", "commit", j.commit.String())
			s.reportLanded(j, landed{Commit: j.commit})
		}
		return nil
	case errors.Is(err, repo.ErrNonFastForward), errors.Is(err, repo.ErrPushUnknown):
		log.Info("still can't tell whether the push landed", "err", err)
		return rest
	case errors.As(err, &refused):
		// The remote refused the very same push: the first one fares no
		// better.
		for _, j := range rest {
			j.log.Warn("the push was sent again and the remote refused it", "status", refused.Status, "err", err)
			s.report(j, s.pushReply(j.plan, templates.Push{Kind: "late-not-written", Reason: refusedReason(refused) + " when shipbot sent it again"}, OutcomeFailed), "", nil)
		}
		return nil
	default:
		log.Info("still can't tell whether the push landed", "err", err)
		return rest
	}
}

// reportLanded tells j's thread that its change landed as l.
func (s *Service) reportLanded(j *job, l landed) {
	p := j.plan
	if l.Trailers != nil {
		p = asLanded(j.plan, l)
	}
	resp := s.pushReply(p, templates.Push{Kind: "late", Commit: l.Commit.String(), BreakGlass: p.BreakGlass}, OutcomeCommitted)
	resp.Commit = l.Commit.String()
	if l.Commit == j.commit {
		if note := s.trace(j, resp.Commit); note != "" {
			resp.Text = strings.TrimRight(resp.Text, "\n") + "\n" + note
		}
	}
	s.report(j, resp, l.Commit.String(), p)
}

// refusedReason says, for chat, that the remote refused a push and in
// its own words (normalised: hostile text).
func refusedReason(r *repo.RefusedError) string {
	msg := "the git remote refused the push"
	if remote := Normalize(strings.Join(r.Messages, " "), MaxReasonRunes); remote != "" {
		msg += ": \"" + remote + "\""
	}
	return msg + " (" + Normalize(r.Status, 200) + ")"
}

// report delivers a late outcome to the request's thread.
func (s *Service) report(j *job, resp Response, commit string, plan *Plan) {
	req := j.plan.Request
	j.log.Info("late outcome", "outcome", string(resp.Outcome), "commit", commit)
	if s.o.Notifier == nil {
		j.log.Warn("no notifier: the requester can't be told the outcome", "text", resp.Text)
		return
	}
	u := ProposalUpdate{RequestID: req.ID, Thread: req.Thread, Channel: req.Channel, Text: resp.Text, Outcome: resp.Outcome, Commit: commit, Plan: plan}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.o.Notifier.ProposalUpdated(ctx, u)
}

// checkCommand is the chat command that shows whether req landed.
func (c *Catalog) checkCommand(req Request) string {
	if req.Action == ActionFreeze || req.Action == ActionUnfreeze || req.App == "" || req.App == "*" {
		return "status"
	}
	return fmt.Sprintf("history %s %s", req.App, req.Env)
}

// pushReply renders a reply about a push's outcome for p.
func (s *Service) pushReply(p *Plan, d templates.Push, outcome Outcome) Response {
	d.RequestID, d.Branch = p.Request.ID, s.o.Repo.Branch()
	if d.Summary == "" {
		d.Summary = p.Summary
	}
	text, err := templates.PushReply(d)
	if err != nil {
		s.o.Logger.Error("render reply", "request", p.Request.ID, "err", err)
		text = fmt.Sprintf("[%s] %s: %s (reply template failed: see log)", p.Request.ID, d.Kind, d.Summary)
	}
	return Response{Outcome: outcome, Text: text, Commit: d.Commit}
}

// landedReply answers a confirmation whose request landed as l: with that
// commit and its own from and to, whatever was planned this time. lost: the
// push this process made lost its answer.
func (s *Service) landedReply(log *slog.Logger, p *Plan, l landed, attempts int, lost bool) Response {
	q := asLanded(p, l)
	if q.From != p.From || q.To != p.To {
		log.Warn("the request landed earlier as another change than this plan; answering with what landed",
			"planned", p.Summary, "landed", q.Summary, "commit", l.Commit.String())
	}
	// The front end follows the plan it holds (through Argo CD): make it
	// the change that landed.
	p.From, p.To, p.Summary, p.BreakGlass = q.From, q.To, q.Summary, q.BreakGlass
	resp := s.pushReply(q, templates.Push{Kind: "landed", Commit: l.Commit.String(), Earlier: !lost, Lost: lost, BreakGlass: q.BreakGlass}, OutcomeCommitted)
	resp.Attempts = attempts
	return resp
}

// alreadyLanded answers, at plan time, a request that landed before (a
// redelivered message): with its commit, never a new plan.
func (s *Service) alreadyLanded(log *slog.Logger, req Request, l landed) Response {
	log.Info("request already landed; no new plan", "commit", l.Commit.String())
	p := &Plan{Request: req}
	p.Summary = landedSummary(req, l.Trailers)
	resp := s.pushReply(p, templates.Push{Kind: "earlier", Commit: l.Commit.String()}, OutcomeAnswered)
	return resp
}

// notWritten answers a write whose push failed for sure.
func (s *Service) notWritten(log *slog.Logger, p *Plan, err error) Response {
	var refused *repo.RefusedError
	if errors.As(err, &refused) {
		remote := Normalize(strings.Join(refused.Messages, " "), MaxReasonRunes)
		log.Warn("the remote refused the push", "status", refused.Status, "remote", remote, "err", err)
		return s.pushReply(p, templates.Push{Kind: "refused", Remote: remote, Reason: Normalize(refused.Status, 200)}, OutcomeRejected)
	}
	log.Error("push failed; nothing was written", "err", err)
	return s.pushReply(p, templates.Push{Kind: "not-written", Reason: plainReason(err) + fmt.Sprintf(" (details in the log under request %s)", p.Request.ID)}, OutcomeFailed)
}

// plainReason is what went wrong, for chat: a plain sentence, never a URL,
// an address or a dial error (those go to the log).
func plainReason(err error) string {
	if d := repo.Describe(err); d != "" {
		return d
	}
	return userSafe(err)
}

var (
	urlish  = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)
	address = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\[[0-9a-fA-F:]+\](:\d+)?`)
)

// scrub removes URLs and network addresses from an error text for chat.
func scrub(msg string) string {
	msg = urlish.ReplaceAllString(msg, "<url>")
	return address.ReplaceAllString(msg, "<address>")
}
