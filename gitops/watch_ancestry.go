package gitops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops/edit"
)

var _ Ancestry = (*Service)(nil)

// ancestrySlack bounds the walk of IsAncestor: commits committed this much
// before the ancestor are not searched further (clocks of CI runners and
// people drift; history is not rewritten under shipbot).
const ancestrySlack = 24 * time.Hour

// IsAncestor implements Ancestry from the environment repo's cache: it
// fetches once when descendant is not known yet (CI pushed it after
// shipbot's last fetch). It walks back from descendant only through
// commits not older than ancestor (less a day of slack), so asking about an
// unrelated or older revision costs a day of history at most, not all of it.
func (s *Service) IsAncestor(ctx context.Context, ancestor, descendant string) (bool, error) {
	a, err := s.commitObject(ctx, ancestor)
	if err != nil {
		return false, err
	}
	d, err := s.commitObject(ctx, descendant)
	if err != nil {
		return false, err
	}
	if a.Hash == d.Hash {
		return true, nil
	}
	oldest := a.Committer.When.Add(-ancestrySlack)
	seen := map[plumbing.Hash]bool{d.Hash: true}
	queue := []*object.Commit{d}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		c := queue[0]
		queue = queue[1:]
		if c.Hash == a.Hash {
			return true, nil
		}
		if c.Committer.When.Before(oldest) {
			continue
		}
		for _, p := range c.ParentHashes {
			if seen[p] {
				continue
			}
			seen[p] = true
			pc, err := s.o.Repo.CommitObject(p)
			if err != nil {
				return false, fmt.Errorf("read commit %s: %w", short(p.String()), err)
			}
			queue = append(queue, pc)
		}
	}
	return false, nil
}

// commitObject reads a commit of the cache, fetching once when it is not
// there yet.
func (s *Service) commitObject(ctx context.Context, rev string) (*object.Commit, error) {
	if !plumbing.IsHash(rev) {
		return nil, fmt.Errorf("%q is not a full commit hash", rev)
	}
	h := plumbing.NewHash(rev)
	c, err := s.o.Repo.CommitObject(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		if _, ferr := s.o.Repo.Fetch(ctx); ferr != nil {
			return nil, fmt.Errorf("commit %s is not known here and the fetch failed: %w", short(rev), ferr)
		}
		c, err = s.o.Repo.CommitObject(h)
	}
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", short(rev), err)
	}
	return c, nil
}

// fieldAt reads the target's field the plan changes (the tag, or the restart
// annotation for a restart) at revision rev.
func (s *Service) fieldAt(ctx context.Context, p *Plan, rev string) (string, error) {
	if _, err := s.commitObject(ctx, rev); err != nil {
		return "", err
	}
	snap, err := s.o.Repo.Snapshot(plumbing.NewHash(rev))
	if err != nil {
		return "", err
	}
	if p.Request.Action == ActionRestart {
		return edit.CurrentRestart(snap, p.Target.Location)
	}
	return edit.CurrentTag(snap, p.Target.Location)
}
