package gitops

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/repo"
)

// Trailer keys shipbot writes. Only shipbot writes them: chat text is data
// and can never add one.
const (
	TrailerRequest       = "Shipbot-Request"
	TrailerAction        = "Shipbot-Action"
	TrailerApp           = "Shipbot-App"
	TrailerEnv           = "Shipbot-Env"
	TrailerFrom          = "Shipbot-From"
	TrailerTo            = "Shipbot-To"
	TrailerRequestedBy   = "Requested-by"
	TrailerJustification = "Justification"
	TrailerChannel       = "Chat-Channel"
)

// Deploy is one change of an app in an environment, as the repo's history
// records it.
type Deploy struct {
	Commit  plumbing.Hash
	When    time.Time // committer time
	Author  string    // commit author name
	Action  string    // rollback | restart | promote, or "manual" for a commit not made by shipbot
	From    string    // tag before this commit
	Tag     string    // tag after this commit
	Restart string    // restart annotation after this commit
	Message string
	// Trailers holds the commit's trailers (empty for commits not made by shipbot).
	Trailers map[string]string
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// RequestedBy is who asked for the change: the Requested-by trailer, or the
// commit's author for a change made outside shipbot.
func (d Deploy) RequestedBy() string {
	if v := d.Trailers[TrailerRequestedBy]; v != "" {
		if i := strings.Index(v, " <"); i > 0 {
			return v[:i]
		}
		return v
	}
	return d.Author
}

// historyReader reads deploys of one target from first-parent history. It
// compares the tree entry of the target's path between a commit and its
// parent, so it reads no file unless that path changed.
type historyReader struct {
	repo *repo.Repo
	// cache: entry hash of the target path -> state read there
	cache map[plumbing.Hash]state
}

type state struct {
	tag, restart string
}

func (h *historyReader) state(s *repo.Snapshot, loc edit.Location, entry plumbing.Hash) state {
	if st, ok := h.cache[entry]; ok {
		return st
	}
	var st state
	st.tag, _ = edit.CurrentTag(s, loc)
	st.restart, _ = edit.CurrentRestart(s, loc)
	h.cache[entry] = st
	return st
}

// deploys returns up to limit changes of t, newest first, walking back from tip.
// stop, when not nil, ends the walk early once it returns true for a deploy.
func (h *historyReader) deploys(tip *repo.Snapshot, t Target, limit int, stop func(Deploy) bool) ([]Deploy, error) {
	if h.cache == nil {
		h.cache = map[plumbing.Hash]state{}
	}
	var out []Deploy
	cur := tip
	curEntry, ok := cur.EntryHash(t.Path)
	if !ok {
		return nil, fmt.Errorf("%s: %w", t.Path, fs.ErrNotExist)
	}
	for len(out) < limit || limit <= 0 {
		var parent *repo.Snapshot
		parentEntry, parentHas := plumbing.ZeroHash, false
		if len(cur.Commit.ParentHashes) > 0 {
			p, err := h.repo.Snapshot(cur.Commit.ParentHashes[0])
			if err != nil {
				if errors.Is(err, plumbing.ErrObjectNotFound) {
					break // shallow history ends here
				}
				return nil, err
			}
			parent = p
			parentEntry, parentHas = parent.EntryHash(t.Path)
		}
		if !parentHas || parentEntry != curEntry {
			after := h.state(cur, t.Location, curEntry)
			d := Deploy{
				Commit:   cur.Hash(),
				When:     cur.Commit.Committer.When,
				Author:   cur.Commit.Author.Name,
				Tag:      after.tag,
				Restart:  after.restart,
				Message:  cur.Commit.Message,
				Trailers: ParseTrailers(cur.Commit.Message),
				Action:   "manual",
			}
			if a := d.Trailers[TrailerAction]; a != "" {
				d.Action = a
			}
			if parentHas {
				d.From = h.state(parent, t.Location, parentEntry).tag
			}
			if d.From != d.Tag || d.Action != "manual" || d.Restart != "" {
				out = append(out, d)
				if stop != nil && stop(d) {
					break
				}
			}
		}
		if parent == nil || !parentHas {
			break
		}
		cur, curEntry = parent, parentEntry
	}
	return out, nil
}

// previousTag finds the tag to roll back to: the most recent tag deployed
// before the current one that was not itself rolled back from later (rolling
// back twice walks further back instead of returning to the bad release).
func (h *historyReader) previousTag(tip *repo.Snapshot, t Target, current string) (string, error) {
	rolledBackFrom := map[string]bool{current: true}
	var found string
	_, err := h.deploys(tip, t, 0, func(d Deploy) bool {
		if d.Action == string(ActionRollback) && d.From != "" {
			rolledBackFrom[d.From] = true
		}
		if d.From != "" && !rolledBackFrom[d.From] {
			found = d.From
			return true
		}
		return false
	})
	if err != nil {
		return "", err
	}
	if found == "" {
		return "", ErrNoPrevious
	}
	return found, nil
}

// ParseTrailers returns the "Key: value" lines of a commit message's last
// paragraph (git's trailer block). Messages without one give an empty map.
func ParseTrailers(msg string) map[string]string {
	out := map[string]string{}
	paras := strings.Split(strings.TrimSpace(strings.ReplaceAll(msg, "\r\n", "\n")), "\n\n")
	if len(paras) < 2 {
		return out
	}
	for _, line := range strings.Split(paras[len(paras)-1], "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return map[string]string{}
		}
		out[k] = strings.TrimSpace(v)
	}
	return out
}
