package repo_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

// historyRemote is a remote with a few commits touching a few files.
func historyRemote(t *testing.T) (bare, url string) {
	t.Helper()
	bare = gittest.InitBare(t)
	gittest.Seed(t, bare, map[string]string{"a/x.yaml": "1\n", "a/y.yaml": "1\n", "b/z.yaml": "1\n"}, "c0")
	gittest.Seed(t, bare, map[string]string{"a/x.yaml": "2\n"}, "c1")
	gittest.Seed(t, bare, map[string]string{"b/z.yaml": "2\n", "a/sub/deep.yaml": "1\n"}, "c2")
	gittest.Seed(t, bare, map[string]string{"a/x.yaml": "3\n", "a/y.yaml": "2\n"}, "c3")
	return bare, gittest.Serve(t, filepath.Dir(bare)) + "/env.git"
}

// indexAt opens the cache (a restart), fetches and brings the index to the
// tip, and checks it against git log.
func indexAt(t *testing.T, bare, url, cache string) (loaded, diffed int) {
	t.Helper()
	ctx := context.Background()
	r, err := repo.Open(ctx, repo.Options{URL: url, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	snap, err := r.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := r.IndexAt(ctx, snap.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ix.Len(), gittest.Git(t, bare, "rev-list", "--first-parent", "--count", "main"); want != strconv.Itoa(got) {
		t.Errorf("index of %d commits, want %s", got, want)
	}
	for _, p := range []string{"a", "a/x.yaml", "a/y.yaml", "b", "b/z.yaml", "a/sub"} {
		var got []string
		for _, pos := range ix.ChangesUnder(p) {
			got = append(got, ix.Commit(pos).String())
		}
		args := []string{"log", "--first-parent", "--format=%H", "main", "--", p}
		if !strings.HasSuffix(p, ".yaml") {
			args = append(args[:len(args)-1], p+"/*.yaml", ":(exclude)"+p+"/*/*")
		}
		if want := gittest.Git(t, bare, args...); strings.Join(got, "\n") != want {
			t.Errorf("ChangesUnder(%s):\n got %v\nwant %v", p, got, strings.Fields(want))
		}
	}
	b, err := ix.FilesAt(ix.Len() - 1).ReadFile("a/x.yaml")
	if want := gittest.Git(t, bare, "show", "main:a/x.yaml"); err != nil || strings.TrimSpace(string(b)) != want {
		t.Errorf("a/x.yaml at the tip = %q, %v; want %q", b, err, want)
	}
	return ix.Stats()
}

func indexFile(t *testing.T, cache string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(cache, "*", "shipbot-history-*.idx"))
	if len(files) != 1 {
		t.Fatalf("index files: %v, want one", files)
	}
	return files[0]
}

// The index persists in the cache: a restart reads it and diffs only the
// commits fetched since.
func TestIndexPersistsAcrossRestarts(t *testing.T) {
	bare, url := historyRemote(t)
	cache := t.TempDir()
	if loaded, diffed := indexAt(t, bare, url, cache); loaded != 0 || diffed != 4 {
		t.Errorf("first start: %d commits loaded, %d diffed; want 0 and 4", loaded, diffed)
	}
	indexFile(t, cache)
	if loaded, diffed := indexAt(t, bare, url, cache); loaded != 4 || diffed != 0 {
		t.Errorf("restart: %d loaded, %d diffed; want 4 and 0", loaded, diffed)
	}
	gittest.Seed(t, bare, map[string]string{"a/x.yaml": "4\n"}, "c4")
	if loaded, diffed := indexAt(t, bare, url, cache); loaded != 4 || diffed != 1 {
		t.Errorf("restart after a push: %d loaded, %d diffed; want 4 and 1", loaded, diffed)
	}
	// Close saved the extension.
	if loaded, diffed := indexAt(t, bare, url, cache); loaded != 5 || diffed != 0 {
		t.Errorf("restart: %d loaded, %d diffed; want 5 and 0", loaded, diffed)
	}
}

// A corrupt or truncated file, or one of another branch, is not used: the
// index is built again (and saved again).
func TestIndexFileRebuiltWhenCorrupt(t *testing.T) {
	bare, url := historyRemote(t)
	cache := t.TempDir()
	indexAt(t, bare, url, cache)
	f := indexFile(t, cache)
	good, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"flipped":   append(append([]byte{}, good[:len(good)/2]...), append([]byte{good[len(good)/2] ^ 0x40}, good[len(good)/2+1:]...)...),
		"truncated": good[:len(good)-7],
		"empty":     nil,
		"garbage":   []byte("not an index at all, but long enough to pass the length check of the reader"),
	} {
		if err := os.WriteFile(f, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if loaded, diffed := indexAt(t, bare, url, cache); loaded != 0 || diffed != 4 {
			t.Errorf("%s file: %d loaded, %d diffed; want 0 and 4", name, loaded, diffed)
		}
		if loaded, _ := indexAt(t, bare, url, cache); loaded != 4 {
			t.Errorf("after rebuilding a %s file: %d loaded, want 4", name, loaded)
		}
	}

	// The file of another branch put in this one's place.
	gittest.Git(t, bare, "branch", "other", "main~1")
	other := t.TempDir()
	ctx := context.Background()
	r, err := repo.Open(ctx, repo.Options{URL: url, Branch: "other", CacheDir: other})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.IndexAt(ctx, snap.Hash()); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := os.WriteFile(f, mustRead(t, indexFile(t, other)), 0o644); err != nil {
		t.Fatal(err)
	}
	if loaded, diffed := indexAt(t, bare, url, cache); loaded != 0 || diffed != 4 {
		t.Errorf("another branch's file: %d loaded, %d diffed; want 0 and 4", loaded, diffed)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// History rewritten on the remote (a force push) after a restart: the index
// keeps what the new history shares with the old and diffs the rest; one
// that shares nothing is built again.
func TestIndexFileAfterForcePush(t *testing.T) {
	bare, url := historyRemote(t)
	cache := t.TempDir()
	indexAt(t, bare, url, cache)

	// Rewind main by two commits and push two others.
	work := filepath.Join(t.TempDir(), "w")
	gittest.Git(t, "", "clone", "--quiet", bare, work)
	gittest.Git(t, work, "reset", "--quiet", "--hard", "HEAD~2")
	for i, content := range []string{"rewritten\n", "again\n"} {
		if err := os.WriteFile(filepath.Join(work, "a", "y.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		gittest.Git(t, work, "commit", "--quiet", "-am", "rewrite "+strconv.Itoa(i))
	}
	gittest.Git(t, work, "push", "--quiet", "--force", "origin", "HEAD:main")
	if loaded, diffed := indexAt(t, bare, url, cache); loaded != 2 || diffed != 2 {
		t.Errorf("after a force push: %d loaded, %d diffed; want 2 (shared) and 2", loaded, diffed)
	}

	// An unrelated history.
	orphan := filepath.Join(t.TempDir(), "o")
	gittest.Git(t, "", "init", "--quiet", "--initial-branch=main", orphan)
	for _, p := range []string{"a/x.yaml", "b/z.yaml"} {
		os.MkdirAll(filepath.Join(orphan, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(orphan, p), []byte("new\n"), 0o644)
	}
	gittest.Git(t, orphan, "add", "-A")
	gittest.Git(t, orphan, "commit", "--quiet", "-m", "new root")
	gittest.Git(t, orphan, "push", "--quiet", "--force", bare, "HEAD:main")
	if loaded, diffed := indexAt(t, bare, url, cache); loaded != 0 || diffed != 1 {
		t.Errorf("after replacing the history: %d loaded, %d diffed; want 0 and 1", loaded, diffed)
	}
}
