package repo

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/shipbot/shipbot/gitops/edit"
)

// CommitOptions describe the commit to build.
type CommitOptions struct {
	Author    object.Signature
	Committer object.Signature
	Message   string
	// Signer signs the commit (OpenPGP or SSH); nil leaves it unsigned.
	Signer git.Signer
}

// Commit is a commit built in the local clone and not yet pushed.
type Commit struct {
	Hash    plumbing.Hash
	Base    plumbing.Hash   // the parent
	Objects []plumbing.Hash // every object this commit introduces, for the push
}

// BuildCommit writes, on top of base, a commit that applies changes: the new
// blobs, the trees on their paths and the commit object, nothing else. It
// touches no worktree and no ref.
func (r *Repo) BuildCommit(base *Snapshot, changes []edit.Change, o CommitOptions) (*Commit, error) {
	if len(changes) == 0 {
		return nil, errors.New("build commit: no changes")
	}
	b := &builder{st: r.git.Storer}
	files := make(map[string]plumbing.Hash, len(changes))
	for _, c := range changes {
		p := clean(c.Path)
		if p == "" {
			return nil, fmt.Errorf("build commit: bad path %q", c.Path)
		}
		h, err := b.blob(c.New)
		if err != nil {
			return nil, fmt.Errorf("build commit: blob %s: %w", p, err)
		}
		files[p] = h
	}
	treeHash, err := b.tree(base.tree, files)
	if err != nil {
		return nil, fmt.Errorf("build commit: %w", err)
	}
	return r.commit(b, treeHash, []plumbing.Hash{base.Hash()}, o)
}

// commit writes the commit object of tree on parents, signed when o says so.
func (r *Repo) commit(b *builder, treeHash plumbing.Hash, parents []plumbing.Hash, o CommitOptions) (*Commit, error) {
	commit := &object.Commit{
		Author:       o.Author,
		Committer:    o.Committer,
		Message:      o.Message,
		TreeHash:     treeHash,
		ParentHashes: parents,
	}
	if o.Signer != nil {
		enc := r.git.Storer.NewEncodedObject()
		if err := commit.EncodeWithoutSignature(enc); err != nil {
			return nil, fmt.Errorf("build commit: %w", err)
		}
		rd, err := enc.Reader()
		if err != nil {
			return nil, fmt.Errorf("build commit: %w", err)
		}
		sig, err := o.Signer.Sign(rd)
		rd.Close()
		if err != nil {
			return nil, fmt.Errorf("sign commit: %w", err)
		}
		commit.PGPSignature = string(sig)
	}
	h, err := b.store(plumbing.CommitObject, commit.Encode)
	if err != nil {
		return nil, fmt.Errorf("build commit: %w", err)
	}
	var base plumbing.Hash
	if len(parents) > 0 {
		base = parents[0]
	}
	return &Commit{Hash: h, Base: base, Objects: b.objects}, nil
}

// blob stores data as a blob.
func (b *builder) blob(data []byte) (plumbing.Hash, error) {
	return b.store(plumbing.BlobObject, func(o plumbing.EncodedObject) error {
		w, err := o.Writer()
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		return w.Close()
	})
}

type builder struct {
	st      storer.EncodedObjectStorer
	objects []plumbing.Hash
	seen    map[plumbing.Hash]bool
}

// store encodes and stores one object and records it for the push. Objects
// that happen to exist locally are recorded too: a failed earlier attempt may
// have left them here without the remote ever receiving them.
func (b *builder) store(t plumbing.ObjectType, encode func(plumbing.EncodedObject) error) (plumbing.Hash, error) {
	o := b.st.NewEncodedObject()
	o.SetType(t)
	if err := encode(o); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := b.st.SetEncodedObject(o)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if b.seen == nil {
		b.seen = map[plumbing.Hash]bool{}
	}
	if !b.seen[h] {
		b.seen[h] = true
		b.objects = append(b.objects, h)
	}
	return h, nil
}

// tree returns the hash of t with files (paths relative to t) replaced or
// added, rewriting only the subtrees on their paths. t may be nil (new dir).
func (b *builder) tree(t *object.Tree, files map[string]plumbing.Hash) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if t != nil {
		entries = append(entries, t.Entries...)
	}
	index := make(map[string]int, len(entries))
	for i, e := range entries {
		index[e.Name] = i
	}
	subs := map[string]map[string]plumbing.Hash{}
	for p, h := range files {
		name, rest, nested := strings.Cut(p, "/")
		if !nested {
			e := object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h}
			if i, ok := index[name]; ok {
				if entries[i].Mode == filemode.Dir {
					return plumbing.ZeroHash, fmt.Errorf("%s is a directory", p)
				}
				if entries[i].Mode == filemode.Executable {
					e.Mode = filemode.Executable
				}
				entries[i] = e
			} else {
				index[name] = len(entries)
				entries = append(entries, e)
			}
			continue
		}
		if subs[name] == nil {
			subs[name] = map[string]plumbing.Hash{}
		}
		subs[name][rest] = h
	}
	for name, sub := range subs {
		var child *object.Tree
		i, ok := index[name]
		if ok {
			if entries[i].Mode != filemode.Dir {
				return plumbing.ZeroHash, fmt.Errorf("%s is a file", name)
			}
			c, err := object.GetTree(b.st, entries[i].Hash)
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("tree %s: %w", name, err)
			}
			child = c
		}
		h, err := b.tree(child, sub)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("%s: %w", name, err)
		}
		e := object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
		if ok {
			entries[i] = e
		} else {
			index[name] = len(entries)
			entries = append(entries, e)
		}
	}
	sortEntries(entries)
	nt := &object.Tree{Entries: entries}
	return b.store(plumbing.TreeObject, nt.Encode)
}

// sortEntries orders tree entries as git does: by name, a directory compared
// as if its name ended in "/".
func sortEntries(es []object.TreeEntry) {
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(es, func(i, j int) bool { return key(es[i]) < key(es[j]) })
}
