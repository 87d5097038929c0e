package repo

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// The history index persists in the clone's directory, so that a restart
// reads it (tens of milliseconds for 10,000 commits) instead of diffing the
// whole history again (4-8 s before the first rollback can be planned). The
// file is keyed by the remote and branch it indexes and names the commit it
// covers (its last); at the first use it is loaded, checked and extended
// from there with the commits fetched since. A file that is corrupt, of
// another remote or branch, or whose commit is not in the clone is ignored
// and the index built again; history rewritten on the remote (a force push)
// keeps the part of the index the new history shares. Writes go to a
// temporary file renamed into place: an index built here at once, one
// extended in the background at most every indexSaveEvery, and at Close.

const (
	indexMagic     = "shipbot history index\n"
	indexVersion   = 1
	indexSaveEvery = 30 * time.Second
)

// indexPath is the file of the index of the branch.
func (r *Repo) indexPath() string {
	sum := sha256.Sum256([]byte(r.opts.URL + "\x00" + r.opts.Branch))
	return filepath.Join(r.dir, "shipbot-history-"+hex.EncodeToString(sum[:6])+".idx")
}

// indexSaver writes the index, one write at a time.
type indexSaver struct {
	wg      sync.WaitGroup // writes in flight
	mu      sync.Mutex
	closed  bool // the repo is closed: no more writes
	saving  bool
	savedAt time.Time
	saved   *Index // the index and length last written
	savedN  int
}

// loadIndex reads the persisted index, once, before the first use.
func (r *Repo) loadIndex() {
	r.indexLoad.Do(func() {
		ix, err := r.readIndexFile()
		switch {
		case err == nil:
			r.index.Store(ix)
			r.indexFile.mu.Lock()
			r.indexFile.saved, r.indexFile.savedN, r.indexFile.savedAt = ix, ix.Len(), time.Now()
			r.indexFile.mu.Unlock()
		case errors.Is(err, os.ErrNotExist):
		default:
			if r.opts.Logger != nil {
				r.opts.Logger.Warn("history index: the saved index is not usable, building it again", "file", r.indexPath(), "err", err)
			}
		}
	})
}

// saveIndex writes the current index if it grew since the last write: now
// (an index built here, or at Close), or in the background when the last
// write is indexSaveEvery old. Nothing is written once the repo is closed.
func (r *Repo) saveIndex(now bool) {
	f := &r.indexFile
	ix := r.index.Load()
	f.mu.Lock()
	if f.closed || ix == nil {
		f.mu.Unlock()
		return
	}
	n := ix.Len()
	if n == 0 || (f.saved == ix && f.savedN == n) || f.saving {
		f.mu.Unlock()
		return
	}
	// An index built here (the first, or after a force push) is written
	// at once: building it took seconds, writing it takes milliseconds.
	// One only extended waits for indexSaveEvery, and goes in the background.
	if f.saved != ix {
		now = true
	} else if !now && time.Since(f.savedAt) < indexSaveEvery {
		f.mu.Unlock()
		return
	}
	f.saving = true
	f.wg.Add(1)
	f.mu.Unlock()
	write := func() {
		defer f.wg.Done()
		data, n := ix.encode(r.opts.URL, r.opts.Branch)
		err := writeFileAtomic(r.indexPath(), data)
		f.mu.Lock()
		f.saving = false
		f.savedAt = time.Now()
		if err == nil {
			f.saved, f.savedN = ix, n
		}
		f.mu.Unlock()
		if err != nil && r.opts.Logger != nil {
			r.opts.Logger.Warn("history index: saving failed", "file", r.indexPath(), "err", err)
		}
	}
	if now {
		write()
		return
	}
	go write()
}

// closeIndex writes the index a last time (waiting for a write in flight)
// and then no more: after Close nothing writes in the cache.
func (r *Repo) closeIndex() {
	f := &r.indexFile
	f.wg.Wait()
	r.saveIndex(true)
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}

// encode serializes the index:
//
//	magic, version, remote URL, branch (length-prefixed)
//	commits: count, then each id (first-parent chain, oldest first)
//	paths: count, then each: path, count of changes, then each change:
//	  position (delta from the previous change of the path), blob id
//	SHA-256 of all the above
//
// and returns it with the number of commits it covers.
func (ix *Index) encode(url, branch string) ([]byte, int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var b bytes.Buffer
	b.Grow(len(ix.commits)*24 + len(ix.changes)*64)
	var tmp [binary.MaxVarintLen64]byte
	uv := func(v int) { b.Write(tmp[:binary.PutUvarint(tmp[:], uint64(v))]) }
	str := func(s string) { uv(len(s)); b.WriteString(s) }
	b.WriteString(indexMagic)
	uv(indexVersion)
	str(url)
	str(branch)
	uv(len(ix.commits))
	for _, c := range ix.commits {
		b.Write(c[:])
	}
	paths := make([]string, 0, len(ix.changes))
	for p := range ix.changes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	uv(len(paths))
	for _, p := range paths {
		str(p)
		list := ix.changes[p]
		uv(len(list))
		prev := 0
		for _, c := range list {
			uv(c.Pos - prev)
			prev = c.Pos
			b.Write(c.Blob[:])
		}
	}
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes(), len(ix.commits)
}

var errIndexFile = errors.New("not a valid index file")

// readIndexFile loads the persisted index and checks it against this clone.
func (r *Repo) readIndexFile() (*Index, error) {
	data, err := os.ReadFile(r.indexPath())
	if err != nil {
		return nil, err
	}
	ix, err := decodeIndex(r, data, r.opts.URL, r.opts.Branch)
	if err != nil {
		return nil, err
	}
	if n := len(ix.commits); n > 0 {
		if err := r.git.Storer.HasEncodedObject(ix.commits[n-1]); err != nil {
			return nil, fmt.Errorf("%w: its commit %s is not in the clone", errIndexFile, ix.commits[n-1])
		}
	}
	return ix, nil
}

func decodeIndex(r *Repo, data []byte, url, branch string) (*Index, error) {
	if len(data) < len(indexMagic)+sha256.Size || string(data[:len(indexMagic)]) != indexMagic {
		return nil, errIndexFile
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", errIndexFile)
	}
	rd := bufio.NewReader(bytes.NewReader(body[len(indexMagic):]))
	bad := func(what string) error { return fmt.Errorf("%w: %s", errIndexFile, what) }
	uv := func() (int, error) {
		v, err := binary.ReadUvarint(rd)
		if err != nil || v > 1<<31 {
			return 0, bad("bad number")
		}
		return int(v), nil
	}
	str := func() (string, error) {
		n, err := uv()
		if err != nil || n > 1<<20 {
			return "", bad("bad string")
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", bad("truncated")
		}
		return string(buf), nil
	}
	hash := func(h *plumbing.Hash) error {
		if _, err := io.ReadFull(rd, h[:]); err != nil {
			return bad("truncated")
		}
		return nil
	}
	v, err := uv()
	if err != nil || v != indexVersion {
		return nil, bad("another version")
	}
	u, err := str()
	if err != nil {
		return nil, err
	}
	br, err := str()
	if err != nil {
		return nil, err
	}
	if u != url || br != branch {
		return nil, fmt.Errorf("%w: it indexes %s branch %s", errIndexFile, u, br)
	}
	n, err := uv()
	if err != nil || n > len(body)/20 {
		return nil, bad("bad commit count")
	}
	ix := NewIndex(r)
	ix.commits = make([]plumbing.Hash, n)
	ix.pos = make(map[plumbing.Hash]int, n)
	for i := range ix.commits {
		if err := hash(&ix.commits[i]); err != nil {
			return nil, err
		}
		if _, dup := ix.pos[ix.commits[i]]; dup {
			return nil, bad("a commit twice")
		}
		ix.pos[ix.commits[i]] = i
	}
	np, err := uv()
	if err != nil {
		return nil, err
	}
	byDir := map[string][]string{}
	for range np {
		p, err := str()
		if err != nil {
			return nil, err
		}
		nc, err := uv()
		if err != nil || nc == 0 || nc > n {
			return nil, bad("bad change count")
		}
		list := make([]Change, nc)
		pos := 0
		for i := range list {
			d, err := uv()
			if err != nil {
				return nil, err
			}
			pos += d
			if pos >= n || (i > 0 && d == 0) {
				return nil, bad("bad position")
			}
			list[i].Pos = pos
			if err := hash(&list[i].Blob); err != nil {
				return nil, err
			}
		}
		if _, dup := ix.changes[p]; dup {
			return nil, bad("a path twice")
		}
		ix.changes[p] = list
		byDir[path.Dir(p)] = append(byDir[path.Dir(p)], p)
	}
	if _, err := rd.ReadByte(); err != io.EOF {
		return nil, bad("trailing data")
	}
	for d, list := range byDir {
		sort.Strings(list)
		ix.dirs[d] = list
	}
	ix.loaded = n
	return ix, nil
}

// truncated returns a new index of the first n commits of ix.
func (ix *Index) truncated(n int) *Index {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := NewIndex(ix.repo)
	out.commits = slices.Clone(ix.commits[:n])
	for i, c := range out.commits {
		out.pos[c] = i
	}
	for p, list := range ix.changes {
		k := sort.Search(len(list), func(i int) bool { return list[i].Pos >= n })
		if k > 0 {
			out.changes[p] = slices.Clone(list[:k])
		}
	}
	for d, list := range ix.dirs {
		var keep []string
		for _, p := range list {
			if len(out.changes[p]) > 0 {
				keep = append(keep, p)
			}
		}
		if len(keep) > 0 {
			out.dirs[d] = keep
		}
	}
	out.loaded = min(ix.loaded, n)
	return out
}
