package repo_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

// The index agrees with `git log --first-parent -- PATH` for files, dirs,
// deletions and a merge, and is extended incrementally after a fetch.
func TestIndexMatchesGitLog(t *testing.T) {
	bare := gittest.InitBare(t)
	gittest.Seed(t, bare, map[string]string{"a/x.yaml": "1\n", "a/y.yaml": "1\n", "b/z.yaml": "1\n"}, "c0")
	gittest.Seed(t, bare, map[string]string{"a/x.yaml": "2\n"}, "c1")
	gittest.Seed(t, bare, map[string]string{"b/z.yaml": "2\n", "a/sub/deep.yaml": "1\n"}, "c2")
	// A merge from a side branch, and a deletion.
	work := filepath.Join(t.TempDir(), "w")
	gittest.Git(t, "", "clone", "--quiet", bare, work)
	gittest.Git(t, work, "checkout", "--quiet", "-b", "side", "HEAD~1")
	gittest.Git(t, work, "rm", "--quiet", "a/y.yaml")
	gittest.Git(t, work, "commit", "--quiet", "-m", "side: delete y")
	gittest.Git(t, work, "checkout", "--quiet", "main")
	gittest.Git(t, work, "merge", "--quiet", "--no-ff", "-m", "merge side", "side")
	gittest.Git(t, work, "push", "--quiet", "origin", "main")

	r, err := repo.Open(context.Background(), repo.Options{URL: bare, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		snap, err := r.Fetch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ix := r.Index()
		if err := ix.Update(context.Background(), snap.Hash()); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"a", "a/x.yaml", "a/y.yaml", "b", "b/z.yaml", "a/sub"} {
			var got []string
			for _, pos := range ix.ChangesUnder(p) {
				got = append(got, ix.Commit(pos).String())
			}
			// git's notion: commits on the first-parent chain touching p (a dir: only files directly in it).
			args := []string{"log", "--first-parent", "-m", "--format=%H", "main", "--", p}
			if !strings.HasSuffix(p, ".yaml") {
				args = append(args[:len(args)-1], p+"/*.yaml", ":(exclude)"+p+"/*/*")
			}
			want := gittest.Git(t, bare, args...)
			if strings.Join(got, "\n") != want {
				t.Errorf("ChangesUnder(%s):\n got %v\nwant %v", p, got, strings.Fields(want))
			}
		}
		// Files as they were after the first commit.
		f := ix.FilesAt(0)
		if b, err := f.ReadFile("a/x.yaml"); err != nil || string(b) != "1\n" {
			t.Errorf("FilesAt(0) a/x.yaml = %q, %v", b, err)
		}
		names, err := f.ReadDir("a")
		if err != nil || fmt.Sprint(names) != "[x.yaml y.yaml]" {
			t.Errorf("FilesAt(0).ReadDir(a) = %v, %v", names, err)
		}
		last := ix.FilesAt(ix.Len() - 1)
		if _, err := last.ReadFile("a/y.yaml"); err == nil {
			t.Error("a/y.yaml was deleted but still reads")
		}
	}
	check()
	n := r.Index().Len()
	gittest.Seed(t, bare, map[string]string{"a/x.yaml": "3\n"}, "c5")
	check()
	if r.Index().Len() != n+1 {
		t.Errorf("index has %d commits after one more, want %d", r.Index().Len(), n+1)
	}
	if _, ok := r.Index().Pos(plumbing.ZeroHash); ok {
		t.Error("zero hash indexed")
	}
}

// Shares says which paths watch a common file: apps whose paths share one
// are told apart by their fields.
func TestIndexShares(t *testing.T) {
	bare := gittest.InitBare(t)
	gittest.Seed(t, bare, map[string]string{"a/x.yaml": "1\n", "a/y.yaml": "1\n", "a/sub/deep.yaml": "1\n", "b/z.yaml": "1\n"}, "c0")
	r, err := repo.Open(context.Background(), repo.Options{URL: bare, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ix, err := r.IndexAt(context.Background(), snap.Hash())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p, q string
		want bool
	}{
		{"a", "a", true},
		{"a/x.yaml", "/a/x.yaml", true},
		{"a", "a/x.yaml", true},
		{"a/x.yaml", "a/", true},
		{"a/sub", "a/sub/deep.yaml", true},
		{"a", "a/sub", false}, // a watches only the files directly in it
		{"a", "a/sub/deep.yaml", false},
		{"a/x.yaml", "a/y.yaml", false},
		{"a", "b", false},
		{"a", "a/new.yaml", false}, // never a file
	} {
		if got := ix.Shares(c.p, c.q); got != c.want {
			t.Errorf("Shares(%q, %q) = %v, want %v", c.p, c.q, got, c.want)
		}
	}
}
