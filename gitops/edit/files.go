package edit

import (
	"bytes"
	"errors"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// MapFiles is an in-memory Files keyed by clean slash-separated paths
// relative to the repo root ("apps/checkout/values.yaml"). Directories are
// implied by the keys.
type MapFiles map[string][]byte

// ReadFile returns a copy of the content of the file at name.
func (m MapFiles) ReadFile(name string) ([]byte, error) {
	b, ok := m[cleanPath(name)]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return bytes.Clone(b), nil
}

// ReadDir returns the sorted names of the files directly inside dir.
func (m MapFiles) ReadDir(dir string) ([]string, error) {
	d := cleanPath(dir)
	prefix := d + "/"
	if d == "." {
		prefix = ""
	}
	found := d == "."
	var names []string
	for k := range m {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		found = true
		if rest := k[len(prefix):]; rest != "" && !strings.Contains(rest, "/") {
			names = append(names, rest)
		}
	}
	if !found {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	sort.Strings(names)
	return names, nil
}

func cleanPath(p string) string {
	return path.Clean(strings.TrimPrefix(p, "/"))
}

// overlay is a Files with changes applied on top, used to read an edit's
// result back.
type overlay struct {
	base  Files
	files map[string][]byte
}

// WithChanges returns base with changes applied on top: the tree a change
// would leave.
func WithChanges(base Files, changes []Change) Files { return withChanges(base, changes) }

func withChanges(base Files, changes []Change) Files {
	o := overlay{base: base, files: map[string][]byte{}}
	for _, c := range changes {
		o.files[cleanPath(c.Path)] = c.New
	}
	return o
}

func (o overlay) ReadFile(name string) ([]byte, error) {
	if b, ok := o.files[cleanPath(name)]; ok {
		if b == nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return bytes.Clone(b), nil
	}
	return o.base.ReadFile(name)
}

func (o overlay) ReadDir(dir string) ([]string, error) {
	names, err := o.base.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	d := cleanPath(dir)
	added := false
	for p := range o.files {
		if path.Dir(p) == d {
			names = append(names, path.Base(p))
			added = true
		}
	}
	if err != nil && !added {
		return nil, err
	}
	sort.Strings(names)
	out := names[:0]
	for i, n := range names {
		if i > 0 && n == names[i-1] {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}
