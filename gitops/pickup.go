package gitops

import (
	"context"
	"fmt"
	"time"
)

// TrailerThread is where the chat front end reported a change (its
// Request.Thread): after a restart or a failover, the replica that leads
// follows the change again and reports there.
const TrailerThread = "Chat-Thread"

// Unfinished is a change shipbot landed recently whose rollout its
// requester may still be waiting to hear about: the replica that followed
// it through Argo CD may have stopped (a restart, a failover) before it
// reported. Plan is rebuilt from the commit's trailers; Watch follows it.
type Unfinished struct {
	Plan   *Plan
	Commit string
	Thread string
	When   time.Time // the commit's time
}

// maxPickup bounds how many commits Unfinished reads back.
const maxPickup = 500

// Unfinished lists shipbot's own changes of the last within (the watch
// timeout, by default), newest first, that a chat thread waits on:
// trusted shipbot commits of a rollback, restart or promotion with a
// Chat-Thread trailer. The caller follows each again (Watch) and reports
// in its thread; a change whose report had already been given is reported
// again, said as such — at most once per failover, never silently lost.
func (s *Service) Unfinished(ctx context.Context, within time.Duration) ([]Unfinished, error) {
	if s.o.Watcher == nil {
		return nil, nil
	}
	if within <= 0 {
		within = s.o.WatchTimeout
	}
	snap, err := s.o.Repo.Fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("changes in flight: %w", err)
	}
	since := s.o.Now().Add(-within)
	var out []Unfinished
	c := snap.Commit
	for i := 0; c != nil && i < maxPickup && !c.Committer.When.Before(since); i++ {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		tr := ParseTrailers(c.Message)
		switch a := Action(tr[TrailerAction]); {
		case tr[TrailerThread] == "" || (a != ActionRollback && a != ActionRestart && a != ActionPromote):
		case !s.ownCommit(c):
		default:
			if u, ok := s.unfinished(c.Hash.String(), tr, c.Committer.When); ok {
				out = append(out, u)
			}
		}
		if len(c.ParentHashes) == 0 {
			break
		}
		if c, err = s.o.Repo.CommitObject(c.ParentHashes[0]); err != nil {
			return out, fmt.Errorf("changes in flight: %w", err)
		}
	}
	return out, nil
}

// unfinished rebuilds what Watch needs from a commit's trailers.
func (s *Service) unfinished(commit string, tr map[string]string, when time.Time) (Unfinished, bool) {
	req := Request{ID: tr[TrailerRequest], Action: Action(tr[TrailerAction]), App: tr[TrailerApp], Env: tr[TrailerEnv], Thread: tr[TrailerThread], Channel: tr[TrailerChannel]}
	t, env, err := s.o.Catalog.Target(req.App, req.Env)
	if err != nil || req.ID == "" {
		return Unfinished{}, false
	}
	p := &Plan{Request: req, Target: t, Environment: env, From: tr[TrailerFrom], To: tr[TrailerTo], Justification: Justification{Text: tr[TrailerJustification]}}
	if req.Action == ActionRestart {
		p.Restart = p.To
	}
	p.Summary = landedSummary(req, tr)
	return Unfinished{Plan: p, Commit: commit, Thread: req.Thread, When: when}, true
}
