package gitops

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/repo"
)

// Only shipbot's own commits count as shipbot's. A commit's Shipbot-*
// trailers (and the other trailers shipbot writes) are believed only when
// the commit was committed by shipbot and, with a RecordChecker (signing
// on), signed by a trusted key: anyone who can push can copy a trailer, and
// request ids are shown in chat. For the "already landed" check the
// trailers must also name the request's action, app and environment, and
// the commit's content must show the change they describe.

// trustCacheMax bounds the cache of trust decisions; past it, it starts
// over (a decision is cheap to make again).
const trustCacheMax = 1 << 16

// trustCache remembers, per commit, whether it is shipbot's own.
type trustCache struct {
	mu sync.Mutex
	m  map[plumbing.Hash]bool
}

func (c *trustCache) get(h plumbing.Hash) (bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[h]
	return v, ok
}

func (c *trustCache) put(h plumbing.Hash, v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= trustCacheMax {
		c.m = map[plumbing.Hash]bool{}
	}
	c.m[h] = v
}

// ownCommit reports whether c is a commit shipbot wrote: committed by
// shipbot and, with a RecordChecker, signed by a trusted key.
func (s *Service) ownCommit(c *object.Commit) bool {
	if c == nil {
		return false
	}
	if v, ok := s.trusted.get(c.Hash); ok {
		return v
	}
	ok := s.trustRecord(c) == nil
	s.trusted.put(c.Hash, ok)
	return ok
}

// shipbotTrailers reports whether a commit's trailers include one of the
// keys only shipbot writes.
func shipbotTrailers(tr map[string]string) bool {
	for k := range tr {
		if strings.HasPrefix(k, "Shipbot-") {
			return true
		}
	}
	return false
}

// historyReader returns a reader of the repo's history that believes the
// trailers of shipbot's own commits only.
func (s *Service) historyReader() *historyReader {
	return &historyReader{repo: s.o.Repo, trust: s.ownCommit}
}

// landed is the commit a request landed as, and its trailers.
type landed struct {
	Commit   plumbing.Hash
	Trailers map[string]string
}

// recentWindow is how many first-parent commits of the branch are searched
// for a request that landed already.
const recentWindow = 200

// findLanded looks for the commits reqs landed as among the last n
// first-parent commits of tip. Only commits that passed landedAs count.
func (s *Service) findLanded(tip *repo.Snapshot, reqs []Request, n int) map[string]landed {
	out := map[string]landed{}
	want := map[string]Request{}
	for _, r := range reqs {
		if r.ID != "" {
			want[r.ID] = r
		}
	}
	if len(want) == 0 || tip == nil {
		return out
	}
	c := tip.Commit
	for i := 0; i < n && c != nil && len(out) < len(want); i++ {
		if strings.Contains(c.Message, TrailerRequest+":") {
			tr := ParseTrailers(c.Message)
			if req, ok := want[tr[TrailerRequest]]; ok {
				if _, done := out[req.ID]; !done {
					if err := s.landedAs(c, tr, req); err == nil {
						out[req.ID] = landed{Commit: c.Hash, Trailers: tr}
					} else {
						s.o.Logger.Warn("a commit names the request but is not its change; ignored",
							"request", req.ID, "commit", c.Hash.String(), "why", err.Error())
					}
				}
			}
		}
		if len(c.ParentHashes) == 0 {
			break
		}
		next, err := s.o.Repo.CommitObject(c.ParentHashes[0])
		if err != nil {
			break
		}
		c = next
	}
	return out
}

// landedAs says why c, whose trailers are tr, is not the change req asked
// for (nil: it is).
func (s *Service) landedAs(c *object.Commit, tr map[string]string, req Request) error {
	if !s.ownCommit(c) {
		return errors.New("not committed by shipbot with a trusted signature")
	}
	app := req.App
	if req.Action == ActionFreeze || req.Action == ActionUnfreeze {
		app = "" // a freeze covers every app: no Shipbot-App
	}
	if tr[TrailerAction] != string(req.Action) || tr[TrailerEnv] != req.Env || tr[TrailerApp] != app {
		return fmt.Errorf("its trailers say %s of %q in %q", tr[TrailerAction], tr[TrailerApp], tr[TrailerEnv])
	}
	if len(c.ParentHashes) == 0 {
		return errors.New("a root commit")
	}
	after, err := s.o.Repo.Snapshot(c.Hash)
	if err != nil {
		return err
	}
	before, err := s.o.Repo.Snapshot(c.ParentHashes[0])
	if err != nil {
		return err
	}
	to := tr[TrailerTo]
	switch req.Action {
	case ActionFreeze, ActionUnfreeze:
		was, err := readFreezes(before)
		if err != nil {
			return err
		}
		now, err := readFreezes(after)
		if err != nil {
			return err
		}
		mine := func(f Freeze) bool { return f.Env == req.Env && f.Request == req.ID }
		env := func(f Freeze) bool { return f.Env == req.Env }
		if req.Action == ActionFreeze && (!slices.ContainsFunc(now, mine) || slices.ContainsFunc(was, mine)) {
			return errors.New("its content sets no freeze of this request")
		}
		if req.Action == ActionUnfreeze && (!slices.ContainsFunc(was, env) || slices.ContainsFunc(now, env)) {
			return errors.New("its content lifts no freeze")
		}
		return nil
	case ActionUnpin:
		was, err := readPins(before)
		if err != nil {
			return err
		}
		now, err := readPins(after)
		if err != nil {
			return err
		}
		pinned := func(p Pin) bool { return p.App == req.App && p.Env == req.Env }
		if !slices.ContainsFunc(was, pinned) || slices.ContainsFunc(now, pinned) {
			return errors.New("its content lifts no pin")
		}
		return nil
	}
	t, _, err := s.o.Catalog.Target(req.App, req.Env)
	if err != nil {
		return err
	}
	read := edit.CurrentTag
	if req.Action == ActionRestart {
		read = edit.CurrentRestart
	}
	now, err := read(after, t.Location)
	if err != nil {
		return fmt.Errorf("its content: %w", err)
	}
	was, _ := read(before, t.Location)
	if now != to || was == now {
		return fmt.Errorf("its content changes %s in %s from %q to %q, its trailers say %q", req.App, req.Env, was, now, to)
	}
	return nil
}

// landedSummary says what a landed commit did, from its trailers.
func landedSummary(req Request, tr map[string]string) string {
	app, env, from, to := tr[TrailerApp], tr[TrailerEnv], tr[TrailerFrom], tr[TrailerTo]
	switch Action(tr[TrailerAction]) {
	case ActionRollback:
		return fmt.Sprintf("rollback %s in %s: %s -> %s", app, env, fromText(from), to)
	case ActionPromote:
		if req.FromEnv != "" {
			return fmt.Sprintf("promote %s from %s to %s: %s -> %s", app, req.FromEnv, env, fromText(from), to)
		}
		return fmt.Sprintf("promote %s to %s: %s -> %s", app, env, fromText(from), to)
	case ActionRestart:
		return fmt.Sprintf("restart %s in %s (restartedAt %s)", app, env, to)
	case ActionFreeze:
		return fmt.Sprintf("freeze %s (%s)", env, to)
	case ActionUnfreeze:
		return fmt.Sprintf("unfreeze %s", env)
	case ActionUnpin:
		return fmt.Sprintf("unpin %s in %s", app, env)
	}
	return fmt.Sprintf("%s %s in %s", tr[TrailerAction], app, env)
}

// asLanded is p as the commit l shows it: From, To and Summary from its
// trailers (a redelivered request may have been re-planned since).
func asLanded(p *Plan, l landed) *Plan {
	q := *p
	q.From, q.To = l.Trailers[TrailerFrom], l.Trailers[TrailerTo]
	if p.Request.Action == ActionRestart {
		q.Restart = q.To
	}
	q.BreakGlass = l.Trailers[TrailerBreakGlass]
	q.Summary = landedSummary(p.Request, l.Trailers)
	return &q
}
