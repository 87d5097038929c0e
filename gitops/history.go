package gitops

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
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
	// Trailers holds the commit's trailers (empty for commits not made by
	// shipbot: only shipbot's own commits' trailers are believed).
	Trailers map[string]string
	// Untrusted is set when the commit carries Shipbot-* trailers but is
	// not shipbot's own (another committer, or no trusted signature): its
	// trailers were dropped.
	Untrusted bool
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
// index. The index says which commits changed the target's files (it skips
// unchanged subtrees and blobs by their hashes); for each of those the
// reader compares the target's own fields (image tag, restart annotation)
// before and after, read from the blobs the index points at, and keeps the
// commit only if one of them changed: apps that share a file are kept apart
// by field, never lumped together by file. A target's fields in one set of
// file contents are read once.
type historyReader struct {
	repo *repo.Repo
	// trust says whether a commit is shipbot's own: only then are its
	// trailers (action, requester, reason) believed. nil: none is.
	trust func(*object.Commit) bool
	cache map[stateKey]state
	// inputs are, per target, the files beyond its path its fields are read
	// from (edit.Inputs at tip, the tip of the walk).
	inputs map[[2]string][]string
	tip    *repo.Snapshot
}

// inputsOf returns the files t's fields are read from, besides its path.
func (h *historyReader) inputsOf(t Target) []string {
	k := [2]string{t.App, t.Env}
	if in, ok := h.inputs[k]; ok || h.tip == nil {
		return in
	}
	if h.inputs == nil {
		h.inputs = map[[2]string][]string{}
	}
	in, _ := edit.Inputs(h.tip, t.Location)
	h.inputs[k] = in
	return in
}

// stateKey names one target's fields in one set of file contents. The
// target is part of the key: apps that share a file share its blobs, not
// their fields.
type stateKey struct {
	app, env string
	files    string // IndexFiles.Key of the target's path and its inputs
}

type state struct {
	tag, restart string
}

func (h *historyReader) state(f *repo.IndexFiles, t Target) state {
	if h.cache == nil {
		h.cache = map[stateKey]state{}
	}
	k := f.Key(t.Path)
	for _, in := range h.inputsOf(t) {
		k += f.Key(in)
	}
	key := stateKey{t.App, t.Env, k}
	if st, ok := h.cache[key]; ok {
		return st
	}
	var st state
	st.tag, _ = edit.CurrentTag(f, t.Location)
	st.restart, _ = edit.CurrentRestart(f, t.Location)
	h.cache[key] = st
	return st
}

// fields returns t's fields before and after the commit at pos.
func (h *historyReader) fields(ix *repo.Index, pos int, t Target) (before, after state) {
	after = h.state(ix.FilesAt(pos), t)
	if pos > 0 {
		before = h.state(ix.FilesAt(pos-1), t)
	}
	return before, after
}

// walk says which changes deploys returns.
type walk struct {
	limit int               // at most this many (<= 0: all)
	stop  func(Deploy) bool // when it returns true, the walk ends after that deploy
	// all also returns the commits that changed the target's files but none
	// of its fields, unless a field of one of the sharing targets explains
	// the change (the audit must see every change of a managed path, and a
	// change that is another app's is that app's record, not this one's).
	// A commit whose trailers name the target is returned even then, so
	// that the audit can flag a claim the content does not show.
	all bool
	// sharing returns the other targets whose files may be some of the
	// target's files; called with all, once, at the first commit that
	// changed none of the target's fields.
	sharing func() []Target
}

// deploys returns changes of t, newest first, in the history of tip: the
// commits that changed t's image tag or restart annotation (with w.all,
// more: see walk).
func (h *historyReader) deploys(ctx context.Context, tip *repo.Snapshot, t Target, w walk) ([]Deploy, error) {
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
	var sharing []Target // the targets that do share t's files
	sharingRead := false
	var out []Deploy
	for _, pos := range h.watched(ix, tip, t) {
		if pos > tipPos {
			continue
		}
		if w.limit > 0 && len(out) >= w.limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		before, after := h.fields(ix, pos, t)
		own := before != after
		if !own && !w.all {
			continue // the files changed, t's fields did not: not t's change
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
		if len(d.Trailers) > 0 && (h.trust == nil || !h.trust(c)) {
			// A copied trailer makes nobody's commit shipbot's.
			d.Untrusted = shipbotTrailers(d.Trailers)
			d.Trailers = map[string]string{}
		}
		if a := d.Trailers[TrailerAction]; a != "" && d.claims(t) {
			d.Action = a
		}
		if !own && !sharingRead && w.sharing != nil {
			for _, o := range w.sharing() {
				if ix.Shares(t.Path, o.Path) {
					sharing = append(sharing, o)
				}
			}
			sharingRead = true
		}
		if !own && !d.claims(t) && h.explained(ix, pos, sharing) {
			continue // another app's change of a shared file
		}
		d.RestartBefore = before.restart
		out = append(out, d)
		if w.stop != nil && w.stop(d) {
			break
		}
	}
	return out, nil
}

// watched returns, newest first, the positions of the commits that changed
// a file t's fields are read from: under t's path, and the other inputs of
// its layout at tip (a kustomize overlay's in-repo bases, a Helm values
// stack).
func (h *historyReader) watched(ix *repo.Index, tip *repo.Snapshot, t Target) []int {
	if h.tip != tip {
		h.tip, h.inputs = tip, nil
	}
	pos := ix.ChangesUnder(t.Path)
	inputs := h.inputsOf(t)
	if len(inputs) == 0 {
		return pos
	}
	seen := map[int]bool{}
	for _, p := range pos {
		seen[p] = true
	}
	for _, in := range inputs {
		for _, p := range ix.ChangesUnder(in) {
			if !seen[p] {
				seen[p] = true
				pos = append(pos, p)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(pos)))
	return pos
}

// claims reports whether the commit's trailers say it changed t.
func (d Deploy) claims(t Target) bool {
	return d.Trailers[TrailerApp] == t.App && d.Trailers[TrailerEnv] == t.Env
}

// explained reports whether the commit at pos changed a field of one of
// the targets.
func (h *historyReader) explained(ix *repo.Index, pos int, targets []Target) bool {
	for _, o := range targets {
		if before, after := h.fields(ix, pos, o); before != after {
			return true
		}
	}
	return false
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
