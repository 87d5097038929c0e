package repo_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

func sig(name string) object.Signature {
	return object.Signature{Name: name, Email: name + "@example.com", When: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
}

// remote serves a seeded bare repo over smart HTTP and opens a warm clone of it.
func remote(t *testing.T) (bare string, r *repo.Repo) {
	t.Helper()
	bare = gittest.InitBare(t)
	gittest.Seed(t, bare, map[string]string{
		"apps/a/values.yaml":        "image:\n  tag: \"1.0.0\" # pinned\n",
		"apps/b/kustomization.yaml": "resources:\n- ../base\n",
		"README.md":                 "env repo\n",
	}, "seed")
	url := gittest.Serve(t, filepath.Dir(bare)) + "/env.git"
	r, err := repo.Open(context.Background(), repo.Options{URL: url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return bare, r
}

func TestCommitAndPushOverSmartHTTP(t *testing.T) {
	bare, r := remote(t)
	ctx := context.Background()
	snap, err := r.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := snap.ReadFile("apps/a/values.yaml")
	if err != nil || !strings.Contains(string(got), `"1.0.0"`) {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
	if _, err := snap.ReadFile("apps/missing.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	names, err := snap.ReadDir("apps/b")
	if err != nil || len(names) != 1 || names[0] != "kustomization.yaml" {
		t.Fatalf("ReadDir = %v, %v", names, err)
	}

	c, err := r.BuildCommit(snap, []edit.Change{
		{Path: "apps/a/values.yaml", New: []byte("image:\n  tag: \"0.9.0\" # pinned\n")},
		{Path: "apps/c/new/file.yaml", New: []byte("x: 1\n")},
	}, repo.CommitOptions{Author: sig("alice"), Committer: sig("shipbot"), Message: "rollback a\n\nShipbot-Request: shp-1\n"})
	if err != nil {
		t.Fatal(err)
	}
	// blob x2, trees: root, apps, apps/a, apps/c, apps/c/new, commit = 8
	if len(c.Objects) != 8 {
		t.Errorf("objects to push = %d, want 8", len(c.Objects))
	}
	if err := r.Push(ctx, c.Base, c.Hash, c.Objects); err != nil {
		t.Fatal(err)
	}
	if head := gittest.Git(t, bare, "rev-parse", "main"); head != c.Hash.String() {
		t.Fatalf("remote main = %s, want %s", head, c.Hash)
	}
	gittest.Git(t, bare, "fsck", "--strict")
	if diff := gittest.Git(t, bare, "diff", "--stat", "main~1", "main"); !strings.Contains(diff, "2 files changed, 2 insertions(+), 1 deletion(-)") {
		t.Errorf("diff --stat = %q", diff)
	}
	if a := gittest.Git(t, bare, "log", "-1", "--format=%an <%ae>|%cn"); a != "alice <alice@example.com>|shipbot" {
		t.Errorf("author|committer = %q", a)
	}
	if v := gittest.Git(t, bare, "show", "main:apps/a/values.yaml"); v != "image:\n  tag: \"0.9.0\" # pinned" {
		t.Errorf("content = %q", v)
	}
}

func TestPushRefusedWhenRemoteMoved(t *testing.T) {
	bare, r := remote(t)
	ctx := context.Background()
	snap, err := r.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.BuildCommit(snap, []edit.Change{{Path: "README.md", New: []byte("shipbot\n")}},
		repo.CommitOptions{Author: sig("alice"), Committer: sig("shipbot"), Message: "m\n"})
	if err != nil {
		t.Fatal(err)
	}
	human := gittest.Seed(t, bare, map[string]string{"README.md": "human\n"}, "human edit")

	err = r.Push(ctx, c.Base, c.Hash, c.Objects)
	if !errors.Is(err, repo.ErrNonFastForward) {
		t.Fatalf("push after a foreign push: err = %v, want ErrNonFastForward", err)
	}
	if head := gittest.Git(t, bare, "rev-parse", "main"); head != human {
		t.Fatalf("remote main = %s, want the human's %s untouched", head, human)
	}
	// After a fetch the retry lands on top of the human's commit.
	snap, err = r.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Hash().String() != human {
		t.Fatalf("fetched %s, want %s", snap.Hash(), human)
	}
	c, err = r.BuildCommit(snap, []edit.Change{{Path: "apps/a/values.yaml", New: []byte("image:\n  tag: \"2.0.0\"\n")}},
		repo.CommitOptions{Author: sig("alice"), Committer: sig("shipbot"), Message: "m\n"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Push(ctx, c.Base, c.Hash, c.Objects); err != nil {
		t.Fatal(err)
	}
	if parent := gittest.Git(t, bare, "rev-parse", "main~1"); parent != human {
		t.Errorf("parent = %s, want %s", parent, human)
	}
	if v := gittest.Git(t, bare, "show", "main:README.md"); v != "human" {
		t.Errorf("the human's change was lost: README = %q", v)
	}
}

func TestReopenUsesWarmClone(t *testing.T) {
	_, r := remote(t)
	r2, err := repo.Open(context.Background(), repo.Options{URL: "unused-if-cached", CacheDir: filepath.Dir(r.Dir())})
	if err == nil && r2.Dir() == r.Dir() {
		t.Fatal("different URLs must not share a cache directory")
	}
}

// ReadTree lists every file under a directory at any depth (a Helm chart's
// templates may sit in subdirectories), the whole tree for ".".
func TestSnapshotReadTree(t *testing.T) {
	_, r := remote(t)
	snap, err := r.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{
		"apps":   "apps/a/values.yaml apps/b/kustomization.yaml",
		"apps/b": "apps/b/kustomization.yaml",
		".":      "README.md apps/a/values.yaml apps/b/kustomization.yaml",
	} {
		got, err := snap.ReadTree(dir)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("ReadTree(%q) = %v, %v; want %s", dir, got, err, want)
		}
	}
	if _, err := snap.ReadTree("apps/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadTree of a missing directory: %v", err)
	}
}
