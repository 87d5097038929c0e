package gitops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops/repo"
	"github.com/shipbot/shipbot/templates"
)

// committer writes confirmed plans to the repo. Confirmations queue up while
// a push is in flight; the next batch is written on one fetched tip as a
// chain of commits, one per request, and sent in one compare-and-swap push.
// Writes are serialized in the process; a push refused because someone else
// pushed is retried on the new tip after re-planning every change.
type committer struct {
	s       *Service
	mu      sync.Mutex
	queue   []*job
	running bool
}

// job is one confirmed plan waiting to be written.
type job struct {
	ctx    context.Context
	plan   *Plan
	author Person
	// authorizedBy is the policy decision that let the change land, for
	// the Authorized-by trailer.
	authorizedBy string
	log          *slog.Logger
	// extra trailers: Approved-by and Shipbot-Proposal of a merge.
	extra  []templates.Trailer
	done   chan Response
	commit plumbing.Hash
}

// maxBatch bounds how many requests share one push.
const maxBatch = 100

// submit queues j and waits for its outcome. Every job is answered exactly
// once: a confirmed change is never dropped silently.
func (c *committer) submit(j *job) Response {
	j.done = make(chan Response, 1)
	c.mu.Lock()
	c.queue = append(c.queue, j)
	if !c.running {
		c.running = true
		go c.drain()
	}
	c.mu.Unlock()
	return <-j.done
}

func (c *committer) drain() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), maxBatch)
		batch := c.queue[:n:n]
		c.queue = c.queue[n:]
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.write(batch)
	}
}

// write lands a batch. The first attempt builds on the last fetched tip
// without a fetch: the push is a compare-and-swap, so a stale tip costs one
// refused push and never a lost update.
//
// A push whose outcome is unknown (the connection dropped before the
// remote's report) is never reported as a failure: the next attempt
// fetches and looks for the commits. When the branch still points where
// the push was to go, the very same push is sent again (a compare-and-swap:
// at most one of the two lands); when it moved without them, they can never
// land and the change is re-planned as after any refusal. When the attempts
// or the time run out before shipbot can tell, the requester is told so,
// and told the outcome later (resolve.go).
func (c *committer) write(batch []*job) {
	s := c.s
	ctx, cancel := context.WithTimeout(context.Background(), s.o.WriteTimeout)
	defer cancel()
	var pending []*job
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- s.failed(j.log, j.plan.Request, fmt.Errorf("the request was abandoned before it was written: %w", err))
			continue
		}
		pending = append(pending, j)
	}
	var lastErr error
	// unsure is the last push whose outcome is unknown: its jobs (pending)
	// may have landed.
	var unsure *unsurePush
	for attempt := 1; attempt <= s.o.MaxAttempts && len(pending) > 0; attempt++ {
		var base *repo.Snapshot
		var err error
		if attempt == 1 {
			base, err = s.o.Repo.Head()
		} else {
			wait := time.Duration(10<<(attempt-2))*time.Millisecond + rand.N(20*time.Millisecond)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
			fctx, fcancel := context.WithTimeout(ctx, s.o.PushTimeout)
			base, err = s.o.Repo.Fetch(fctx)
			fcancel()
		}
		if err != nil {
			if unsure != nil {
				c.unknown(unsure, err)
				return
			}
			c.failAll(pending, err)
			return
		}
		found := s.findLanded(base, requestsOf(pending), recentWindow)
		var rest []*job
		for _, j := range pending {
			l, ok := found[j.plan.Request.ID]
			if !ok {
				rest = append(rest, j)
				continue
			}
			j.log.Info("request already landed", "commit", l.Commit.String())
			ours := unsure != nil && l.Commit == j.commit // its answer was lost
			resp := s.landedReply(j.log, j.plan, l, attempt, ours)
			if ours {
				if note := s.trace(j, resp.Commit); note != "" {
					resp.Text = strings.TrimRight(resp.Text, "\n") + "\n" + note
				}
			}
			j.done <- resp
		}
		pending = rest
		if len(pending) == 0 {
			return
		}
		tip := base
		var built []*job
		var objects []plumbing.Hash
		switch {
		case unsure != nil && base.Hash() == unsure.base:
			// The unknown push has not landed (yet): send it again as it was.
			pending[0].log.Info("push outcome unknown and the branch has not moved; sending the same push again", "attempt", attempt)
			tip, objects, built = unsure.tipSnap, unsure.objects, pending
		default:
			if unsure != nil {
				// The branch moved without our commits: the unknown push
				// can never land now (compare-and-swap).
				pending[0].log.Info("the unknown push did not land and can't any more; re-planning", "attempt", attempt)
				unsure = nil
			}
			for _, j := range pending {
				next, objs, err := c.build(ctx, tip, j)
				if err != nil {
					j.done <- s.rejected(j.log, j.plan.Request, err)
					continue
				}
				tip, objects, built = next, append(objects, objs...), append(built, j)
			}
		}
		if len(built) == 0 {
			return
		}
		pctx, pcancel := context.WithTimeout(ctx, s.o.PushTimeout)
		err = s.o.Repo.Push(pctx, base.Hash(), tip.Hash(), objects)
		pcancel()
		if errors.Is(err, repo.ErrNonFastForward) {
			for _, j := range built {
				j.log.Info("branch moved; re-planning on the new tip", "attempt", attempt)
			}
			pending, lastErr = built, err
			continue
		}
		if errors.Is(err, repo.ErrPushUnknown) {
			for _, j := range built {
				j.log.Warn("push outcome unknown; looking at the remote", "attempt", attempt, "err", err, "commit", j.commit.String())
			}
			unsure = &unsurePush{base: base.Hash(), tipSnap: tip, objects: objects, jobs: built, err: err}
			pending, lastErr = built, err
			continue
		}
		var refused *repo.RefusedError
		if err != nil && unsure != nil && !errors.As(err, &refused) {
			// This push failed for sure, but the same push sent before may
			// still land. (A refusal of the very same push is an answer
			// for both.)
			c.unknown(unsure, err)
			return
		}
		if err != nil {
			c.notWritten(built, err)
			return
		}
		// Traces on the tickets run side by side; each reply waits for its
		// own, so it can say whether the note was written.
		var wg sync.WaitGroup
		for _, j := range built {
			wg.Go(func() {
				resp := s.done(j.log, j.plan, j.commit.String(), attempt)
				if note := s.trace(j, resp.Commit); note != "" {
					resp.Text = strings.TrimRight(resp.Text, "\n") + "\n" + note
				}
				j.done <- resp
			})
		}
		wg.Wait()
		return
	}
	if len(pending) == 0 {
		return
	}
	if unsure != nil {
		c.unknown(unsure, lastErr)
		return
	}
	c.failAll(pending, fmt.Errorf("gave up after %d attempts, the branch kept moving: %w", s.o.MaxAttempts, lastErr))
}

func (c *committer) failAll(jobs []*job, err error) {
	for _, j := range jobs {
		j.done <- c.s.failed(j.log, j.plan.Request, err)
	}
}

// notWritten answers jobs whose push failed for sure: nothing was written.
func (c *committer) notWritten(jobs []*job, err error) {
	for _, j := range jobs {
		j.done <- c.s.notWritten(j.log, j.plan, err)
	}
}

// unknown answers the jobs of a push whose outcome shipbot could not tell:
// they may have landed. They are told so, and the outcome later.
func (c *committer) unknown(u *unsurePush, err error) {
	s := c.s
	reason := plainReason(u.err)
	if err != nil && err != u.err {
		if then := plainReason(err); then != reason {
			reason += "; then " + then
		}
	}
	for _, j := range u.jobs {
		j.log.Warn("could not tell whether the push landed; looking again in the background", "err", err, "commit", j.commit.String())
		j.done <- s.pushReply(j.plan, templates.Push{Kind: "unknown", Reason: reason}, OutcomeUnknown)
	}
	s.resolveLater(u)
}

func requestsOf(jobs []*job) []Request {
	out := make([]Request, len(jobs))
	for i, j := range jobs {
		out[i] = j.plan.Request
	}
	return out
}

// traceTimeout bounds writing a trace to a ticket or incident.
const traceTimeout = 15 * time.Second

// trace notes what shipbot did on the justification's incident or ticket. A
// failure is logged and reported in the reply; it never undoes the change.
func (s *Service) trace(j *job, commit string) string {
	just := j.plan.Justification
	if s.o.Tracer == nil || just.Ref == "" || just.Kind == "" || just.Kind == "text" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), traceTimeout)
	defer cancel()
	err := s.o.Tracer.Trace(ctx, just, TraceEvent{Request: j.plan.Request, Summary: j.plan.Summary, Commit: commit, Outcome: OutcomeCommitted})
	if err != nil {
		j.log.Warn("trace on the justification failed; the change stands", "ref", just.Ref, "err", err)
		return fmt.Sprintf("(could not note this on %s: %s. The change stands.)", just.Ref, userMessage(err))
	}
	j.log.Info("trace written", "ref", just.Ref)
	return fmt.Sprintf("Noted on %s.", just.Ref)
}

// build re-plans j on tip (never a blind rebase) and commits it on top.
// It refuses when the change is no longer the one the user confirmed.
func (c *committer) build(ctx context.Context, tip *repo.Snapshot, j *job) (*repo.Snapshot, []plumbing.Hash, error) {
	s, p, req := c.s, j.plan, j.plan.Request
	if req.Action != ActionFreeze && req.Action != ActionUnfreeze {
		// A freeze set (or a window begun) since the plan still blocks.
		if err := s.checkFreeze(ctx, tip, p); err != nil {
			return nil, nil, err
		}
	}
	if tip.Hash().String() != p.Base {
		again := *p
		if err := s.compute(ctx, tip, &again); err != nil {
			if errors.Is(err, ErrNoChange) && req.Action == ActionRestart {
				return nil, nil, &UserError{Message: fmt.Sprintf("%s in %s was restarted at %s a moment ago; nothing to add", req.App, req.Env, p.Restart), Err: ErrNoChange}
			}
			return nil, nil, &UserError{Message: fmt.Sprintf("the environment changed since you confirmed and the change no longer applies: %s. Nothing was written; ask again.", userMessage(err)), Err: ErrStale}
		}
		// A restart only needs its new value; a tag change must still start
		// from the tag the user saw.
		if again.To != p.To || (req.Action != ActionRestart && again.From != p.From) {
			return nil, nil, &UserError{Message: fmt.Sprintf("%s in %s changed since you confirmed (now %s -> %s, you confirmed %s -> %s). Nothing was written; ask again to see the new diff.", req.App, req.Env, again.From, again.To, p.From, p.To), Err: ErrStale}
		}
		*p = again
	}
	msg, err := s.message(p, j.author, j.authorizedBy, j.extra)
	if err != nil {
		return nil, nil, err
	}
	now := s.o.Now()
	cm, err := s.o.Repo.BuildCommit(tip, p.Changes, repo.CommitOptions{
		Author:    object.Signature{Name: j.author.Name, Email: j.author.Email, When: now},
		Committer: object.Signature{Name: s.o.Committer.Name, Email: s.o.Committer.Email, When: now},
		Message:   msg,
		Signer:    s.o.Signer,
	})
	if err != nil {
		return nil, nil, err
	}
	next, err := s.o.Repo.Snapshot(cm.Hash)
	if err != nil {
		return nil, nil, err
	}
	j.commit = cm.Hash
	return next, cm.Objects, nil
}
