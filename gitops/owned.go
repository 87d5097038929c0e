package gitops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"gopkg.in/yaml.v3"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/repo"
)

// Files shipbot owns in the environment repo (.shipbot/freezes.yaml,
// .shipbot/pins.yaml) are one YAML document, written whole by shipbot,
// each change a signed commit with who, why and the request id.

// readOwned reads the owned file at path into a document of type D (an
// absent file is the zero document).
func readOwned[D any](f edit.Files, path string) (D, error) {
	var doc D
	data, err := f.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return doc, err
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return doc, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

// renderOwned writes an owned file: header (comment lines), then doc.
func renderOwned(header string, doc any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// ownedChange is one commit that changed an owned file: its trailers and
// the file's entries before and after it, by key (the first entry of a
// key counts); aerr is why the file after it can't be read.
type ownedChange[K comparable, T any] struct {
	pos           int
	commit        *object.Commit
	trailers      map[string]string
	before, after map[K]*T
	aerr          error
}

// ownedChanges calls fn for every commit up to snap (at or after since,
// when set) that changed the owned file at path: what the audit reads
// freezes and pins from.
func ownedChanges[K comparable, T any](ctx context.Context, r *repo.Repo, snap *repo.Snapshot, path string, since time.Time,
	read func(edit.Files) ([]T, error), key func(T) K, fn func(ownedChange[K, T])) error {
	ix, err := r.IndexAt(ctx, snap.Hash())
	if err != nil {
		return err
	}
	tipPos, ok := ix.Pos(snap.Hash())
	if !ok {
		return fmt.Errorf("history: %s is not indexed", snap.Hash())
	}
	byKey := func(f edit.Files) (map[K]*T, error) {
		list, err := read(f)
		m := map[K]*T{}
		for i := range list {
			if _, dup := m[key(list[i])]; !dup {
				m[key(list[i])] = &list[i]
			}
		}
		return m, err
	}
	for _, pos := range ix.ChangesUnder(path) {
		if pos > tipPos {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := ix.CommitObject(pos)
		if err != nil {
			return err
		}
		if !since.IsZero() && c.Committer.When.Before(since) {
			continue
		}
		ch := ownedChange[K, T]{pos: pos, commit: c, trailers: ParseTrailers(c.Message), before: map[K]*T{}}
		ch.after, ch.aerr = byKey(ix.FilesAt(pos))
		if pos > 0 {
			ch.before, _ = byKey(ix.FilesAt(pos - 1))
		}
		fn(ch)
	}
	return nil
}
