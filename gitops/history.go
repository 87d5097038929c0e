package gitops

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

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
	TrailerAuthorizedBy  = "Authorized-by"
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
	// RestartBefore is the restart annotation before this commit.
	RestartBefore string
	// Object is the commit itself (signature, committer, parents).
	Object *object.Commit
	// Pos is the commit's position in the branch's first-parent history
	// (0 = root): the order that counts, since commit dates can be forged.
	Pos     int
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

// historyReader reads the deploys of one target from the repo's history
// index: the commits that changed the target's files, and the tag before and
// after each, read from the blobs the index points at. A value derived from
// one set of file contents is read once.
type historyReader struct {
	repo  *repo.Repo
	cache map[string]state // IndexFiles.Key -> state read there
}

type state struct {
	tag, restart string
}

func (h *historyReader) state(f *repo.IndexFiles, loc edit.Location) state {
	key := f.Key(loc.Path)
	if st, ok := h.cache[key]; ok {
		return st
	}
	var st state
	st.tag, _ = edit.CurrentTag(f, loc)
	st.restart, _ = edit.CurrentRestart(f, loc)
	h.cache[key] = st
	return st
}

// walk says which changes deploys returns.
type walk struct {
	limit int               // at most this many (<= 0: all)
	stop  func(Deploy) bool // when it returns true, the walk ends after that deploy
	// all includes every commit that touched the target's files, also those
	// that changed neither tag nor restart (the audit needs them).
	all bool
}

// deploys returns changes of t, newest first, in the history of tip.
func (h *historyReader) deploys(ctx context.Context, tip *repo.Snapshot, t Target, w walk) ([]Deploy, error) {
	if h.cache == nil {
		h.cache = map[string]state{}
	}
	if _, ok := tip.EntryHash(t.Path); !ok {
		return nil, fmt.Errorf("%s: %w", t.Path, fs.ErrNotExist)
	}
	ix, err := h.repo.IndexAt(ctx, tip.Hash())
	if err != nil {
		return nil, err
	}
	tipPos, ok := ix.Pos(tip.Hash())
	if !ok {
		return nil, fmt.Errorf("history: %s is not indexed", tip.Hash())
	}
	var out []Deploy
	for _, pos := range ix.ChangesUnder(t.Path) {
		if pos > tipPos {
			continue
		}
		if w.limit > 0 && len(out) >= w.limit {
			break
		}
		after := h.state(ix.FilesAt(pos), t.Location)
		var before state
		if pos > 0 {
			before = h.state(ix.FilesAt(pos-1), t.Location)
		}
		c, err := ix.CommitObject(pos)
		if err != nil {
			return nil, fmt.Errorf("history: %w", err)
		}
		d := Deploy{
			Pos:      pos,
			Object:   c,
			Commit:   c.Hash,
			When:     c.Committer.When,
			Author:   c.Author.Name,
			From:     before.tag,
			Tag:      after.tag,
			Restart:  after.restart,
			Message:  c.Message,
			Trailers: ParseTrailers(c.Message),
			Action:   "manual",
		}
		if a := d.Trailers[TrailerAction]; a != "" {
			d.Action = a
		}
		if !w.all && d.From == d.Tag && d.Action == "manual" && before.restart == after.restart {
			continue // a change of these files that changed neither tag nor restart
		}
		d.RestartBefore = before.restart
		out = append(out, d)
		if w.stop != nil && w.stop(d) {
			break
		}
	}
	return out, nil
}

// previousTag finds the tag to roll back to: the most recent tag deployed
// before the current one that was not itself rolled back from later (rolling
// back twice walks further back instead of returning to the bad release).
func (h *historyReader) previousTag(ctx context.Context, tip *repo.Snapshot, t Target, current string) (string, error) {
	rolledBackFrom := map[string]bool{current: true}
	var found string
	_, err := h.deploys(ctx, tip, t, walk{stop: func(d Deploy) bool {
		if d.Action == string(ActionRollback) && d.From != "" {
			rolledBackFrom[d.From] = true
		}
		if d.From != "" && !rolledBackFrom[d.From] {
			found = d.From
			return true
		}
		return false
	}})
	if err != nil {
		return "", err
	}
	if found == "" {
		return "", ErrNoPrevious
	}
	return found, nil
}

// TrailerValues returns every value of one trailer key, in order (a key
// such as Approved-by may appear several times).
func TrailerValues(msg, key string) []string {
	var out []string
	for _, kv := range trailerLines(msg) {
		if kv[0] == key {
			out = append(out, kv[1])
		}
	}
	return out
}

// ParseTrailers returns the "Key: value" lines of a commit message's last
// paragraph (git's trailer block). Messages without one give an empty map.
func ParseTrailers(msg string) map[string]string {
	out := map[string]string{}
	for _, kv := range trailerLines(msg) {
		if _, dup := out[kv[0]]; !dup {
			out[kv[0]] = kv[1]
		}
	}
	return out
}

// trailerLines splits the last paragraph into key/value pairs, or returns
// nil if any of its lines is not a trailer.
func trailerLines(msg string) [][2]string {
	paras := strings.Split(strings.TrimSpace(strings.ReplaceAll(msg, "\r\n", "\n")), "\n\n")
	if len(paras) < 2 {
		return nil
	}
	var out [][2]string
	for _, line := range strings.Split(paras[len(paras)-1], "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil
		}
		out = append(out, [2]string{k, strings.TrimSpace(v)})
	}
	return out
}
