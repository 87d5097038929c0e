package repo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Snapshot is one commit of the environment repo, read from its objects.
// It implements edit.Files.
type Snapshot struct {
	repo   *Repo
	Commit *object.Commit
	tree   *object.Tree
}

// Snapshot returns the commit h of the local clone.
func (r *Repo) Snapshot(h plumbing.Hash) (*Snapshot, error) {
	c, err := r.git.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", h, err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("tree of %s: %w", h, err)
	}
	return &Snapshot{repo: r, Commit: c, tree: t}, nil
}

// Hash is the commit's id.
func (s *Snapshot) Hash() plumbing.Hash { return s.Commit.Hash }

// ReadFile returns a file's content; an error wrapping fs.ErrNotExist if absent.
func (s *Snapshot) ReadFile(p string) ([]byte, error) {
	e, err := s.tree.FindEntry(clean(p))
	if err != nil || !e.Mode.IsFile() {
		if err == nil || errors.Is(err, object.ErrFileNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return s.repo.readBlob(p, e.Hash)
}

// readBlob reads the content of blob h (the file p, for errors).
func (r *Repo) readBlob(p string, h plumbing.Hash) ([]byte, error) {
	b, err := r.git.BlobObject(h)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	rd, err := b.Reader()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// ReadDir returns the sorted names of the regular files directly in dir.
func (s *Snapshot) ReadDir(dir string) ([]string, error) {
	t := s.tree
	if d := clean(dir); d != "" {
		sub, err := s.tree.Tree(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dir, fs.ErrNotExist)
		}
		t = sub
	}
	var names []string
	for _, e := range t.Entries {
		if e.Mode.IsFile() {
			names = append(names, e.Name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// ReadTree returns the sorted repo paths of every regular file under dir,
// at any depth; an error wrapping fs.ErrNotExist if there is none.
func (s *Snapshot) ReadTree(dir string) ([]string, error) {
	t := s.tree
	d := clean(dir)
	if d != "" && d != "." {
		sub, err := s.tree.Tree(d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dir, fs.ErrNotExist)
		}
		t = sub
	} else {
		d = ""
	}
	var out []string
	w := object.NewTreeWalker(t, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		if e.Mode.IsFile() {
			out = append(out, path.Join(d, name))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", dir, fs.ErrNotExist)
	}
	sort.Strings(out)
	return out, nil
}

// EntryHash returns the object id of the blob or tree at p, and whether it exists.
// Comparing entry hashes between commits tells whether p changed without
// reading any file.
func (s *Snapshot) EntryHash(p string) (plumbing.Hash, bool) {
	p = clean(p)
	if p == "" {
		return s.tree.Hash, true
	}
	e, err := s.tree.FindEntry(p)
	if err != nil {
		return plumbing.ZeroHash, false
	}
	return e.Hash, true
}

func clean(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

// CommitObject reads one commit of the local clone.
func (r *Repo) CommitObject(h plumbing.Hash) (*object.Commit, error) {
	return r.git.CommitObject(h)
}
