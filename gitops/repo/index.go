package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Index is the branch's first-parent history by file: for every path, the
// commits that changed it and the blob it had after each change. It is built
// once by diffing each commit against its first parent, descending only into
// subtrees whose hashes differ, and extended with just the new commits after
// each fetch, so "what did this file look like before" is a map lookup and a
// binary search instead of a walk over the history.
type Index struct {
	repo *Repo

	updateMu sync.Mutex // one Update at a time
	mu       sync.RWMutex
	commits  []plumbing.Hash // first-parent chain, oldest first
	pos      map[plumbing.Hash]int
	changes  map[string][]Change // path -> changes, oldest first
	dirs     map[string][]string // dir -> paths of files ever seen directly in it, sorted

	loaded int // commits read from the persisted index
	diffed int // commits diffed by Update in this process
}

// Change is one commit's change of one path. Blob is zero when the commit
// deleted the path.
type Change struct {
	Pos  int // position of the commit in the first-parent chain (0 = root)
	Blob plumbing.Hash
}

// NewIndex returns an empty index of r; Update fills it.
func NewIndex(r *Repo) *Index {
	return &Index{repo: r, pos: map[plumbing.Hash]int{}, changes: map[string][]Change{}, dirs: map[string][]string{}}
}

// Stats says how the index came about: how many of its commits were read
// from the index persisted in the cache and how many diffed here.
func (ix *Index) Stats() (loaded, diffed int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.loaded, ix.diffed
}

// Len is the number of commits indexed.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.commits)
}

// IndexAt returns the history index updated to tip. The first use loads the
// index persisted in the cache (see indexfile.go). A rewritten history gets
// a new index, which keeps the commits the old and the new history share;
// readers holding the old one keep a consistent view.
func (r *Repo) IndexAt(ctx context.Context, tip plumbing.Hash) (*Index, error) {
	r.loadIndex()
	ix := r.index.Load()
	err := ix.Update(ctx, tip)
	var fork *forkedError
	if errors.As(err, &fork) {
		fresh := NewIndex(r)
		if fork.shared > 0 {
			fresh = ix.truncated(fork.shared)
		}
		if err := fresh.Update(ctx, tip); err != nil {
			return nil, err
		}
		r.index.CompareAndSwap(ix, fresh)
		ix = fresh
	} else if err != nil {
		return nil, err
	}
	r.saveIndex(false)
	return ix, nil
}

// Commit returns the hash of the commit at position pos.
func (ix *Index) Commit(pos int) plumbing.Hash {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.commits[pos]
}

// Pos returns the position of commit h, and whether it is indexed.
func (ix *Index) Pos(h plumbing.Hash) (int, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	p, ok := ix.pos[h]
	return p, ok
}

// forkedError means tip does not extend the indexed history (a force
// push): the two share their first shared commits only.
type forkedError struct{ shared int }

func (e *forkedError) Error() string {
	return fmt.Sprintf("history was rewritten after its first %d commits", e.shared)
}

// Update extends the index up to tip: only commits not yet indexed are read.
// Updates are serialized; readers see the new commits all at once. If tip
// does not extend the indexed history, Update returns a *forkedError and changes
// nothing (Repo.IndexAt then builds a new index).
func (ix *Index) Update(ctx context.Context, tip plumbing.Hash) error {
	ix.updateMu.Lock()
	defer ix.updateMu.Unlock()
	if _, ok := ix.Pos(tip); ok {
		return nil
	}
	// Walk back from tip along first parents to the newest indexed commit,
	// keeping only ids (not whole commits: their messages add up).
	type link struct{ hash, tree plumbing.Hash }
	var chain []link // newest first
	h := tip
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, ok := ix.Pos(h); ok {
			break
		}
		c, err := ix.repo.git.CommitObject(h)
		if err != nil {
			return fmt.Errorf("index: commit %s: %w", h, err)
		}
		chain = append(chain, link{c.Hash, c.TreeHash})
		if len(c.ParentHashes) == 0 {
			h = plumbing.ZeroHash
			break
		}
		h = c.ParentHashes[0]
	}
	ix.mu.RLock()
	n := len(ix.commits)
	met, ok := ix.pos[h]
	extends := (h.IsZero() && n == 0) || (ok && met == n-1)
	ix.mu.RUnlock()
	if !extends {
		shared := 0
		if ok {
			shared = met + 1
		}
		return &forkedError{shared: shared}
	}
	var baseTree plumbing.Hash
	if !h.IsZero() {
		c, err := ix.repo.git.CommitObject(h)
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
		baseTree = c.TreeHash
	}
	// Diff newest first: git stores recent objects whole and older ones as
	// deltas against them, so this order resolves short delta chains whose
	// bases were just read. Nothing is visible to readers until the merge.
	type fileChange struct {
		path string
		blob plumbing.Hash
	}
	perCommit := make([][]fileChange, len(chain))
	d := &differ{st: ix.repo, trees: map[plumbing.Hash]*object.Tree{}}
	for i, c := range chain {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		parent := baseTree
		if i+1 < len(chain) {
			parent = chain[i+1].tree
		}
		err := d.diff("", parent, c.tree, func(p string, blob plumbing.Hash) {
			perCommit[i] = append(perCommit[i], fileChange{p, blob})
		})
		if err != nil {
			return fmt.Errorf("index: diff %s: %w", c.hash, err)
		}
		d.forget()
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for i := len(chain) - 1; i >= 0; i-- {
		pos := len(ix.commits)
		for _, fc := range perCommit[i] {
			list := ix.changes[fc.path]
			if len(list) == 0 {
				dir := path.Dir(fc.path)
				ix.dirs[dir] = insertSorted(ix.dirs[dir], fc.path)
			}
			ix.changes[fc.path] = append(list, Change{Pos: pos, Blob: fc.blob})
		}
		ix.commits = append(ix.commits, chain[i].hash)
		ix.pos[chain[i].hash] = pos
	}
	ix.diffed += len(chain)
	return nil
}

func insertSorted(list []string, s string) []string {
	i := sort.SearchStrings(list, s)
	list = append(list, "")
	copy(list[i+1:], list[i:])
	list[i] = s
	return list
}

// ChangesUnder returns, newest first, the positions of commits that changed
// p itself or a file directly inside directory p.
func (ix *Index) ChangesUnder(p string) []int {
	p = clean(p)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	seen := map[int]bool{}
	var out []int
	add := func(list []Change) {
		for _, c := range list {
			if !seen[c.Pos] {
				seen[c.Pos] = true
				out = append(out, c.Pos)
			}
		}
	}
	add(ix.changes[p])
	for _, f := range ix.dirs[p] {
		add(ix.changes[f])
	}
	sort.Sort(sort.Reverse(sort.IntSlice(out)))
	return out
}

// Shares reports whether ChangesUnder(p) and ChangesUnder(q) watch a common
// file: p and q are the same path, or one is a file (now or ever) directly
// inside the other. Apps whose paths share a file are told apart by their
// fields, not by the index.
func (ix *Index) Shares(p, q string) bool {
	p, q = clean(p), clean(q)
	if p == q {
		return true
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	in := func(f, dir string) bool { return path.Dir(f) == dir && len(ix.changes[f]) > 0 }
	return in(p, q) || in(q, p)
}

// CommitObject reads the commit at position pos.
func (ix *Index) CommitObject(pos int) (*object.Commit, error) {
	return ix.repo.git.CommitObject(ix.Commit(pos))
}

// FilesAt returns the tree at position pos as edit.Files, read through the index.
func (ix *Index) FilesAt(pos int) *IndexFiles { return &IndexFiles{ix: ix, pos: pos} }

// IndexFiles reads files as they were after the commit at one position.
type IndexFiles struct {
	ix  *Index
	pos int
}

// blob returns the blob of p at the position, or zero if absent.
func (f *IndexFiles) blob(p string) plumbing.Hash {
	f.ix.mu.RLock()
	defer f.ix.mu.RUnlock()
	list := f.ix.changes[p]
	i := sort.Search(len(list), func(i int) bool { return list[i].Pos > f.pos })
	if i == 0 {
		return plumbing.ZeroHash
	}
	return list[i-1].Blob
}

// Key identifies the content of the files under p at this position: equal
// keys mean equal content, so derived values can be cached by key.
func (f *IndexFiles) Key(p string) string {
	p = clean(p)
	var b strings.Builder
	b.WriteString(f.blob(p).String())
	f.ix.mu.RLock()
	files := f.ix.dirs[p]
	f.ix.mu.RUnlock()
	for _, q := range files {
		b.WriteString(f.blob(q).String())
	}
	return b.String()
}

// ReadFile returns a file's content at the position.
func (f *IndexFiles) ReadFile(p string) ([]byte, error) {
	h := f.blob(clean(p))
	if h.IsZero() {
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	return f.ix.repo.readBlob(p, h)
}

// ReadDir returns the files directly in dir at the position.
func (f *IndexFiles) ReadDir(dir string) ([]string, error) {
	dir = clean(dir)
	if dir == "" {
		dir = "."
	}
	f.ix.mu.RLock()
	files := append([]string(nil), f.ix.dirs[dir]...)
	f.ix.mu.RUnlock()
	var names []string
	for _, p := range files {
		if !f.blob(p).IsZero() {
			names = append(names, path.Base(p))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: %w", dir, fs.ErrNotExist)
	}
	return names, nil
}

// differ lists the files that differ between two trees, reading only
// subtrees whose hashes differ.
type differ struct {
	st    *Repo
	trees map[plumbing.Hash]*object.Tree
	prev  map[plumbing.Hash]*object.Tree
}

// forget keeps the trees of the last commit (the next commit's parent) only.
func (d *differ) forget() {
	d.prev, d.trees = d.trees, map[plumbing.Hash]*object.Tree{}
}

func (d *differ) tree(h plumbing.Hash) (*object.Tree, error) {
	if h.IsZero() {
		return &object.Tree{}, nil
	}
	if t, ok := d.trees[h]; ok {
		return t, nil
	}
	t, ok := d.prev[h]
	if !ok {
		var err error
		t, err = d.st.git.TreeObject(h)
		if err != nil {
			return nil, err
		}
	}
	d.trees[h] = t
	return t, nil
}

// diff calls fn for every file path whose blob differs between trees a and b
// (zero blob: deleted in b).
func (d *differ) diff(prefix string, a, b plumbing.Hash, fn func(p string, blob plumbing.Hash)) error {
	if a == b {
		return nil
	}
	ta, err := d.tree(a)
	if err != nil {
		return err
	}
	tb, err := d.tree(b)
	if err != nil {
		return err
	}
	ea := make(map[string]object.TreeEntry, len(ta.Entries))
	for _, e := range ta.Entries {
		ea[e.Name] = e
	}
	join := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "/" + name
	}
	for _, e := range tb.Entries {
		old, had := ea[e.Name]
		delete(ea, e.Name)
		if had && old.Hash == e.Hash && old.Mode == e.Mode {
			continue
		}
		p := join(e.Name)
		switch {
		case e.Mode == filemode.Dir:
			var oldTree plumbing.Hash
			if had && old.Mode == filemode.Dir {
				oldTree = old.Hash
			} else if had {
				fn(p, plumbing.ZeroHash)
			}
			if err := d.diff(p, oldTree, e.Hash, fn); err != nil {
				return err
			}
		case e.Mode == filemode.Submodule:
		default:
			if had && old.Mode == filemode.Dir {
				if err := d.diff(p, old.Hash, plumbing.ZeroHash, fn); err != nil {
					return err
				}
			}
			fn(p, e.Hash)
		}
	}
	for _, old := range ea { // deleted in b
		p := join(old.Name)
		if old.Mode == filemode.Dir {
			if err := d.diff(p, old.Hash, plumbing.ZeroHash, fn); err != nil {
				return err
			}
		} else if old.Mode != filemode.Submodule {
			fn(p, plumbing.ZeroHash)
		}
	}
	return nil
}
