package repo_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

type fence struct{ held atomic.Bool }

func (f *fence) Held() bool { return f.held.Load() }

// A replica that does not hold the repo's lease sends nothing: the remote
// is untouched and the error says why; holding it again, it pushes.
func TestFencedReplicaPushesNothing(t *testing.T) {
	bare := gittest.InitBare(t)
	gittest.Seed(t, bare, map[string]string{"README.md": "env\n"}, "seed")
	url := gittest.Serve(t, filepath.Dir(bare)) + "/env.git"
	f := &fence{}
	r, err := repo.Open(context.Background(), repo.Options{URL: url, CacheDir: t.TempDir(), Fence: f})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	snap, err := r.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.BuildCommit(snap, []edit.Change{{Path: "README.md", New: []byte("changed\n")}}, repo.CommitOptions{Author: sig("alice"), Committer: sig("shipbot"), Message: "x\n"})
	if err != nil {
		t.Fatal(err)
	}
	before := gittest.Git(t, bare, "rev-parse", "main")
	err = r.Push(ctx, c.Base, c.Hash, c.Objects)
	if !errors.Is(err, repo.ErrFenced) || repo.Describe(err) == "" {
		t.Fatalf("err = %v (%q), want ErrFenced", err, repo.Describe(err))
	}
	if gittest.Git(t, bare, "rev-parse", "main") != before {
		t.Fatal("a fenced replica wrote to the remote")
	}
	f.held.Store(true)
	if err := r.Push(ctx, c.Base, c.Hash, c.Objects); err != nil {
		t.Fatal(err)
	}
	if gittest.Git(t, bare, "rev-parse", "main") != c.Hash.String() {
		t.Fatal("the leader's push did not land")
	}
}
