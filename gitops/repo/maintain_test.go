package repo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

// bigRemote serves a repo whose apps tree (500 directories) and one blob are
// over 16 KiB: go-git reads such objects from a pack lazily, by the pack's
// file name, which is what makes deleting a pack under a reader dangerous.
func bigRemote(t *testing.T) (bare, url string) {
	t.Helper()
	bare = gittest.InitBare(t)
	files := map[string]string{"big/data.yaml": bigBlob(0)}
	for i := range 500 {
		files[fmt.Sprintf("apps/app%03d/values.yaml", i)] = fmt.Sprintf("image:\n  tag: \"1.0.%d\"\n", i)
	}
	gittest.Seed(t, bare, files, "seed")
	return bare, gittest.Serve(t, filepath.Dir(bare)) + "/env.git"
}

func bigBlob(v int) string {
	var b strings.Builder
	for i := 0; b.Len() < 20<<10; i++ {
		fmt.Fprintf(&b, "key%05d: value %d\n", i, v)
	}
	return b.String()
}

// age writes n commits the way requests do (a values file, the big blob,
// the trees on their paths, the commit: loose objects), pushing every
// push-th one so that the history grows, and returns their ids.
func age(t *testing.T, r *repo.Repo, n, push, seed int) []plumbing.Hash {
	t.Helper()
	ctx := context.Background()
	snap, err := r.Head()
	if err != nil {
		t.Fatal(err)
	}
	var out []plumbing.Hash
	for i := range n {
		v := seed*1000 + i
		c, err := r.BuildCommit(snap, []edit.Change{
			{Path: fmt.Sprintf("apps/app%03d/values.yaml", v%500), New: []byte(fmt.Sprintf("image:\n  tag: \"2.0.%d\"\n", v))},
			{Path: "big/data.yaml", New: []byte(bigBlob(v))},
		}, repo.CommitOptions{Author: sig("alice"), Committer: sig("shipbot"), Message: fmt.Sprintf("change %d\n", v)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.Hash)
		if push > 0 && i%push == 0 {
			if err := r.Push(ctx, c.Base, c.Hash, c.Objects); err != nil {
				t.Fatal(err)
			}
			if snap, err = r.Snapshot(c.Hash); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// humans keeps one working clone per remote, for foreignFetch.
var humans sync.Map // bare -> work dir

// foreignFetch makes a person push a commit and fetches it: one more pack.
func foreignFetch(t *testing.T, r *repo.Repo, bare string, i int) plumbing.Hash {
	t.Helper()
	w, ok := humans.Load(bare)
	if !ok {
		dir := filepath.Join(t.TempDir(), "human")
		gittest.Git(t, "", "clone", "--quiet", bare, dir)
		t.Cleanup(func() { humans.Delete(bare) })
		w, _ = humans.LoadOrStore(bare, dir)
	}
	work := w.(string)
	gittest.Git(t, work, "pull", "--quiet", "--rebase", "origin", "main")
	if err := os.WriteFile(filepath.Join(work, "NOTES.md"), []byte(fmt.Sprintf("note %d\n", i)), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, work, "add", "NOTES.md")
	gittest.Git(t, work, "commit", "--quiet", "-m", "notes")
	gittest.Git(t, work, "push", "--quiet", "origin", "HEAD:main")
	h := gittest.Git(t, work, "rev-parse", "HEAD")
	snap, err := r.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Hash().String() != h {
		t.Fatalf("fetched %s, want %s", snap.Hash(), h)
	}
	return snap.Hash()
}

// readAll reads commit h the way a request does: the commit, its tree, the
// big blob and one values file.
func readAll(r *repo.Repo, h plumbing.Hash) error {
	snap, err := r.Snapshot(h)
	if err != nil {
		return err
	}
	if _, err := snap.ReadFile("big/data.yaml"); err != nil {
		return err
	}
	names, err := snap.ReadDir("apps/app007")
	if err != nil || len(names) != 1 {
		return fmt.Errorf("ReadDir apps/app007 = %v, %v", names, err)
	}
	if _, err := snap.ReadFile("apps/app007/values.yaml"); err != nil {
		return err
	}
	_, ok := snap.EntryHash("apps")
	if !ok {
		return fmt.Errorf("%s: no apps tree", h)
	}
	return nil
}

func checkCache(t *testing.T, r *repo.Repo) {
	t.Helper()
	gittest.Git(t, r.Dir(), "fsck", "--strict", "--no-dangling")
	packs, _ := filepath.Glob(filepath.Join(r.Dir(), "objects", "pack", "*.idx"))
	for _, p := range packs {
		gittest.Git(t, r.Dir(), "verify-pack", p)
	}
}

// Maintenance runs while requests read and write: no read fails, every
// object stays readable (also after a reopen), loose objects and packs are
// rolled up, the packs maintenance writes pass git's checks, and replaced
// packs are deleted once their grace has passed.
func TestMaintenanceWhileReading(t *testing.T) {
	bare, url := bigRemote(t)
	ctx := context.Background()
	cache := t.TempDir()
	grace := 100 * time.Millisecond
	r, err := repo.Open(ctx, repo.Options{URL: url, CacheDir: cache, Maintenance: repo.Maintenance{Disabled: true, Grace: grace}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	var mu sync.Mutex
	known := age(t, r, 8, 4, 0)
	known = append(known, foreignFetch(t, r, bare, 0))

	// Readers: every known commit, over and over.
	var reads atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 2 {
		wg.Go(func() {
			for i := g; !stop.Load(); i++ {
				mu.Lock()
				h := known[i%len(known)]
				mu.Unlock()
				if err := readAll(r, h); err != nil {
					errs <- fmt.Errorf("reading %s: %w", h, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	// ...while requests write and fetch, and maintenance runs.
	waitReads := func() {
		for from := reads.Load(); reads.Load() < from+30 && len(errs) == 0; {
			time.Sleep(time.Millisecond)
		}
	}
	var packed, rolled int
	for round := range 3 {
		hs := age(t, r, 6, 3, round+1)
		f := foreignFetch(t, r, bare, round+1)
		mu.Lock()
		known = append(known, hs...)
		known = append(known, f)
		mu.Unlock()
		waitReads()
		st, err := r.Maintain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %+v", round, st)
		packed += st.Packed
		rolled += st.RolledPacks
		waitReads()
		time.Sleep(grace) // the next run deletes the packs this one replaced
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if packed == 0 || rolled == 0 {
		t.Fatalf("maintenance packed %d objects and rolled %d packs, want some", packed, rolled)
	}
	st, err := r.Maintain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loose, packs, err := r.ClutterStats()
	if err != nil {
		t.Fatal(err)
	}
	if loose != 0 || packs > 2 {
		t.Errorf("after maintenance: %d loose objects, %d packs; want 0 and at most 2 (%+v)", loose, packs, st)
	}
	if _, err := os.Stat(filepath.Join(r.Dir(), "shipbot-retired-packs")); !os.IsNotExist(err) {
		t.Errorf("replaced packs not all deleted: %v", err)
	}
	if all, _ := filepath.Glob(filepath.Join(r.Dir(), "objects", "pack", "*.pack")); len(all) != packs {
		t.Errorf("%d pack files on disk, %d in use", len(all), packs)
	}
	checkCache(t, r)
	for _, h := range known {
		if err := readAll(r, h); err != nil {
			t.Errorf("after maintenance: %v", err)
		}
	}
	// A new process sees the same.
	r.Close()
	r2, err := repo.Open(ctx, repo.Options{URL: url, CacheDir: cache, Maintenance: repo.Maintenance{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for _, h := range known {
		if err := readAll(r2, h); err != nil {
			t.Errorf("after reopening: %v", err)
		}
	}
	if got := gittest.Git(t, bare, "rev-parse", "main"); got != known[len(known)-1].String() {
		t.Errorf("remote main = %s, want the last fetched %s", got, known[len(known)-1])
	}
}

// Crossing a threshold (loose objects written, packs fetched) starts
// maintenance in the background.
func TestMaintenanceTriggeredByThresholds(t *testing.T) {
	bare, url := bigRemote(t)
	ctx := context.Background()
	runs := make(chan repo.MaintenanceStats, 64)
	r, err := repo.Open(ctx, repo.Options{URL: url, CacheDir: t.TempDir(), Maintenance: repo.Maintenance{
		LooseObjects: 40, Packs: 3, Grace: time.Hour, // (no deletion under the fsck below)
		Observe: func(st repo.MaintenanceStats, err error) {
			if err != nil {
				t.Errorf("maintenance: %v", err)
			}
			runs <- st
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// waitRun waits for a run that did something.
	waitRun := func(what string) repo.MaintenanceStats {
		t.Helper()
		deadline := time.After(2 * time.Minute) // a hang, not a speed limit
		for {
			select {
			case st := <-runs:
				if st.Skipped == "" {
					return st
				}
			case <-deadline:
				t.Fatalf("no maintenance after %s", what)
			}
		}
	}
	if loose, packs, _ := r.ClutterStats(); loose != 0 || packs != 1 {
		t.Fatalf("a fresh clone holds %d loose objects and %d packs, want 0 and 1", loose, packs)
	}

	// 10 commits of 6 objects: over 40 loose objects.
	age(t, r, 10, 0, 0)
	st := waitRun("60 loose objects")
	if st.LooseBefore < 40 || st.Packed == 0 || st.LooseDeleted == 0 {
		t.Errorf("loose threshold: %+v", st)
	}
	if loose, _, _ := r.ClutterStats(); loose >= 40 {
		t.Errorf("%d loose objects after maintenance", loose)
	}

	// Fetches each leave a pack: past 3, maintenance rolls them up (the
	// runs may start while the fetches go on: wait for one after them).
	for i := range 4 {
		foreignFetch(t, r, bare, i)
	}
	for {
		st = waitRun("4 fetched packs")
		if st.PacksBefore <= 3 || st.RolledPacks == 0 {
			t.Errorf("pack threshold: %+v", st)
		}
		if _, packs, _ := r.ClutterStats(); packs <= 3 {
			break
		}
	}
	checkCache(t, r)

	// A restart over a cluttered clone maintains it at start.
	r.Close()
	r2, err := repo.Open(ctx, repo.Options{URL: url, CacheDir: filepath.Dir(r.Dir()), Maintenance: repo.Maintenance{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	age(t, r2, 10, 0, 1)
	r2.Close()
	runs = make(chan repo.MaintenanceStats, 64)
	r3, err := repo.Open(ctx, repo.Options{URL: url, CacheDir: filepath.Dir(r.Dir()), Maintenance: repo.Maintenance{
		LooseObjects: 40, Observe: func(st repo.MaintenanceStats, err error) { runs <- st },
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	if st := <-runs; st.Skipped != "" || st.LooseBefore < 40 {
		t.Errorf("restart over %d loose objects: %+v", 60, st)
	}
}

// While another process has the clone open, maintenance packs but deletes
// nothing (that process's storage may still read the loose objects and the
// old packs); once it is gone, the next run deletes.
func TestMaintenanceDeletesNothingUnderAnotherProcess(t *testing.T) {
	bare, url := bigRemote(t)
	ctx := context.Background()
	cache := t.TempDir()
	o := repo.Options{URL: url, CacheDir: cache, Maintenance: repo.Maintenance{Grace: time.Nanosecond, Interval: time.Hour}}
	r1, err := repo.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	hs := age(t, r1, 10, 2, 0)
	foreignFetch(t, r1, bare, 0)
	foreignFetch(t, r1, bare, 1)
	// The second instance stands for another process (flock locks are per
	// open file, so it is one to the kernel).
	r2, err := repo.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := r2.Maintain(ctx)
	if err != nil || st2.Skipped == "" {
		t.Errorf("the second process maintained a cache the first maintains: %+v, %v", st2, err)
	}
	st, err := r1.Maintain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Packed == 0 || st.LooseDeleted != 0 {
		t.Errorf("with another process reading: %+v, want packed and nothing deleted", st)
	}
	for _, h := range hs {
		if err := readAll(r2, h); err != nil {
			t.Errorf("the other process: %v", err)
		}
	}
	r2.Close()
	st, err = r1.Maintain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.LooseDeleted == 0 || st.PacksDeleted == 0 {
		t.Errorf("after the other process left: %+v, want loose objects and packs deleted", st)
	}
	if loose, packs, _ := r1.ClutterStats(); loose != 0 || packs > 2 {
		t.Errorf("%d loose objects, %d packs left", loose, packs)
	}
	for _, h := range hs {
		if err := readAll(r1, h); err != nil {
			t.Error(err)
		}
	}
	r1.Close() // (no deletion in the background under the fsck)
	checkCache(t, r1)
}

// Without the git binary the clone is fetched by go-git, into the same
// layout.
func TestCloneWithoutGitBinary(t *testing.T) {
	_, url := bigRemote(t) // serves with the git found now
	t.Setenv("PATH", t.TempDir())
	r, err := repo.Open(context.Background(), repo.Options{URL: url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := checkLayout(r); err != nil {
		t.Error(err)
	}
}

// The clone made with `git clone --bare` has our layout: the branch as a
// remote-tracking ref only, the fetch refspec in its config.
func TestCloneLayout(t *testing.T) {
	bare, url := bigRemote(t)
	r, err := repo.Open(context.Background(), repo.Options{URL: url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := checkLayout(r); err != nil {
		t.Error(err)
	}
	if refs := gittest.Git(t, r.Dir(), "for-each-ref", "--format=%(refname)"); refs != "refs/remotes/origin/main" {
		t.Errorf("refs = %q, want refs/remotes/origin/main only", refs)
	}
	if spec := gittest.Git(t, r.Dir(), "config", "remote.origin.fetch"); spec != "+refs/heads/main:refs/remotes/origin/main" {
		t.Errorf("fetch refspec = %q", spec)
	}
	h := foreignFetch(t, r, bare, 0)
	if got := gittest.Git(t, r.Dir(), "rev-parse", "refs/remotes/origin/main"); got != h.String() {
		t.Errorf("after a fetch origin/main = %s, want %s", got, h)
	}
}

func checkLayout(r *repo.Repo) error {
	snap, err := r.Head()
	if err != nil {
		return err
	}
	return readAll(r, snap.Hash())
}

// Background maintenance, started by the thresholds, while requests write
// objects and fetch packs without pause: every read and write succeeds.
// (go-git lists objects/pack with a stat of each file, and a loose object's
// temporary file vanishing in between made a storage opened by maintenance
// miss packs for good: objects "not found" until a restart.)
func TestMaintenanceInBackgroundUnderWrites(t *testing.T) {
	bare, url := bigRemote(t)
	ctx := context.Background()
	r, err := repo.Open(ctx, repo.Options{URL: url, CacheDir: t.TempDir(), Maintenance: repo.Maintenance{
		LooseObjects: 20, Packs: 3, Grace: 10 * time.Millisecond,
		Observe: func(st repo.MaintenanceStats, err error) {
			if err != nil {
				t.Errorf("maintenance: %v", err)
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	snap, err := r.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var built []plumbing.Hash
	for i := range 90 {
		if i%5 == 4 {
			foreignFetch(t, r, bare, i)
			if snap, err = r.Head(); err != nil {
				t.Fatal(err)
			}
		}
		p := fmt.Sprintf("apps/app%03d/values.yaml", (i*7)%500)
		data, err := snap.ReadFile(p)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		c, err := r.BuildCommit(snap, []edit.Change{{Path: p, New: append(data, fmt.Sprintf("# %d\n", i)...)}},
			repo.CommitOptions{Author: sig("alice"), Committer: sig("shipbot"), Message: "m\n"})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		built = append(built, c.Hash)
	}
	for _, h := range built {
		if _, err := r.Snapshot(h); err != nil {
			t.Error(err)
		}
	}
	r.Close() // (the check below must not race with the background)
	checkCache(t, r)
}

// Packs rolled up keep their deltas (as `git repack` reuses them): the
// trees a monorepo rewrites at every commit stay deltas, and the new pack
// is about as small as the packs it replaces.
func TestMaintenanceKeepsDeltas(t *testing.T) {
	bare, url := bigRemote(t)
	ctx := context.Background()
	r, err := repo.Open(ctx, repo.Options{URL: url, CacheDir: t.TempDir(), Maintenance: repo.Maintenance{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// People push 40 commits; one fetch brings them in one pack, with
	// git's deltas.
	work := filepath.Join(t.TempDir(), "w")
	gittest.Git(t, "", "clone", "--quiet", bare, work)
	for i := range 40 {
		p := filepath.Join(work, "apps", fmt.Sprintf("app%03d", (i*37)%500), "values.yaml")
		if err := os.WriteFile(p, []byte(fmt.Sprintf("image:\n  tag: \"3.0.%d\"\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		gittest.Git(t, work, "commit", "--quiet", "-am", fmt.Sprintf("deploy %d", i))
	}
	gittest.Git(t, work, "push", "--quiet", "origin", "HEAD:main")
	before := packBytes(t, r)
	if _, err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	fetched := packBytes(t, r) - before
	// And shipbot writes 20 commits of its own (loose objects).
	age(t, r, 20, 0, 0)
	st, err := r.Maintain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v (the fetched pack: %d bytes)", st, fetched)
	if st.ReusedDeltas < 30 {
		t.Errorf("%d deltas reused, want most of the fetched trees' (40 commits)", st.ReusedDeltas)
	}
	if st.Deltas < 19 {
		t.Errorf("%d new deltas among the 20 commits' apps trees, want 19 or more", st.Deltas)
	}
	// 20 commits' objects whole would be 20 x (17 KB apps tree + 20 KB
	// blob) compressed; with deltas the trees cost ~100 bytes each.
	if max := fetched + 20*12<<10; st.PackBytes > max {
		t.Errorf("new pack of %d bytes, want at most %d", st.PackBytes, max)
	}
	checkCache(t, r)
	snap, err := r.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := readAll(r, snap.Hash()); err != nil {
		t.Error(err)
	}
}

func packBytes(t *testing.T, r *repo.Repo) int64 {
	t.Helper()
	c, err := r.Clutter()
	if err != nil {
		t.Fatal(err)
	}
	return c.Bytes
}
