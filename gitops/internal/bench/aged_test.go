package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

// Issue 13: the warm clone ages. These parts of BenchmarkMonorepo measure a
// clone after the equivalent of thousands of requests, a restart up to the
// first rollback plan, and the memory of the first clone.

var (
	ageRequests = flag.Int("bench.age.requests", 8000, "synthetic requests that age the clone (each writes a commit's objects, as a request does)")
	ageFetches  = flag.Int("bench.age.fetches", 300, "real fetches of a foreign commit among them (each leaves a pack)")
	ageNoMaint  = flag.Bool("bench.age.nomaint", false, "also measure an aged clone without maintenance (the issue's 'before'; slow)")
)

// benchLog shows maintenance runs and problems on stderr.
var benchLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

// cloneChildEnv makes the test binary a child that clones the URL it names
// into the directory cloneCacheEnv names, with repo.Open, and prints its own
// and its children's peak RSS.
const (
	cloneChildEnv = "SHIPBOT_BENCH_CLONE"
	cloneCacheEnv = "SHIPBOT_BENCH_CLONE_CACHE"
)

type cloneChildResult struct {
	SelfKB, ChildrenKB int64
	Seconds            float64
	Err                string
}

// cloneChild runs in the child process (see TestMain).
func cloneChild(url string) {
	var res cloneChildResult
	cache := os.Getenv(cloneCacheEnv)
	start := time.Now()
	r, err := repo.Open(context.Background(), repo.Options{URL: url, CacheDir: cache, Maintenance: repo.Maintenance{Disabled: true}})
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		res.Err = err.Error()
	} else {
		r.Close()
	}
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	res.SelfKB, res.ChildrenKB = self.Maxrss, children.Maxrss
	_ = json.NewEncoder(os.Stdout).Encode(res)
	if res.Err != "" {
		os.Exit(1)
	}
	os.Exit(0)
}

// coldClonePeakRSS clones url in a child process (a re-exec of this test
// binary running repo.Open, so that nothing this process allocated counts)
// and returns the peak RSS in MiB of the child itself plus the peak of its
// own children (the git it runs): the two overlap in time, so their sum
// bounds what the clone holds at once from above. The kernel's figure for
// the child and its descendants (wait4's ru_maxrss, the larger of the two)
// is returned too.
// With noGit the child finds no git binary and go-git fetches.
func coldClonePeakRSS(tb testing.TB, url string, noGit bool) (sumMB, kernelMB, seconds float64) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), cloneChildEnv+"="+url, cloneCacheEnv+"="+tb.TempDir())
	if noGit {
		cmd.Env = append(cmd.Env, "PATH="+tb.TempDir())
	}
	out, err := cmd.Output()
	var res cloneChildResult
	if jerr := json.Unmarshal(out, &res); jerr != nil || err != nil {
		tb.Fatalf("clone child: %v %v: %s %s", err, jerr, out, res.Err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return float64(res.SelfKB+res.ChildrenKB) / 1024, float64(ru.Maxrss) / 1024, res.Seconds
}

// gitClonePeakRSS is the same figure for `git clone --bare`.
func gitClonePeakRSS(tb testing.TB, url string) float64 {
	tb.Helper()
	cmd := exec.Command("git", "clone", "--quiet", "--bare", "--single-branch", "--no-tags", url, filepath.Join(tb.TempDir(), "c.git"))
	cmd.Env = gittest.Env(os.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("git clone: %v: %s", err, out)
	}
	return float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
}

// restartToFirstPlan stops the service and its clone, lets people push a
// few commits meanwhile (and runs whileDown), then starts again on the same cache and times
// Open + NewService + the first rollback plan (which needs the history
// index: loaded from the cache and extended by the new commits).
func (e *env) restartToFirstPlan(b *testing.B, cache string, a gittest.BigApp, whileDown func()) float64 {
	b.Helper()
	e.svc.Close()
	if err := e.repo.Close(); err != nil {
		b.Fatal(err)
	}
	if whileDown != nil {
		whileDown()
	}
	for range 3 {
		e.foreignPush(b)
	}
	start := time.Now()
	e.openService(b, cache)
	resp := e.svc.Handle(context.Background(), req(gitops.ActionRollback, a.Name, a.Env, 0))
	secs := time.Since(start).Seconds()
	if resp.Plan == nil {
		b.Fatalf("no rollback plan after a restart: %s", resp.Text)
	}
	return secs
}

// age writes, through the running clone, what n requests leave behind (each
// a commit's objects: the edited file, the trees on its path, the commit;
// built like a request's, not pushed), with a real fetch of a foreign
// commit (a pack) every n/fetches of them. Maintenance, when on, runs as
// it would in production.
func (e *env) age(b *testing.B, n, fetches int) {
	b.Helper()
	ctx := context.Background()
	snap, err := e.repo.Fetch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	every := n + 1
	if fetches > 0 {
		every = max(1, n/fetches)
	}
	when := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i := range n {
		if i%every == every-1 {
			e.foreignPush(b)
			if snap, err = e.repo.Fetch(ctx); err != nil {
				b.Fatal(err)
			}
		}
		a := e.apps[(i*7919)%len(e.apps)]
		data, err := snap.ReadFile(a.File())
		if err != nil {
			b.Fatal(err)
		}
		data = append(data, fmt.Sprintf("# aged %d\n", i)...)
		sig := object.Signature{Name: "shipbot", Email: "shipbot@example.com", When: when.Add(time.Duration(i) * time.Second)}
		if _, err := e.repo.BuildCommit(snap, []edit.Change{{Path: a.File(), New: data}}, repo.CommitOptions{Author: sig, Committer: sig, Message: fmt.Sprintf("aging %d\n\nShipbot-Request: shp-aging-%d\n", i, i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// settle waits until background maintenance has brought the clone under
// its thresholds (the defaults: 1,500 loose objects, 12 packs).
func (e *env) settle(b *testing.B) {
	b.Helper()
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		c, err := e.repo.Clutter()
		if err != nil {
			b.Fatal(err)
		}
		if c.Loose < 1500 && c.Packs <= 12 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("maintenance did not catch up in 10 minutes: %+v", c)
		}
	}
}

// agedCommits measures request -> commit pushed on the aged clone, as the
// fresh commit benchmarks do, and records it under prefix.
func (e *env) agedCommits(b *testing.B, prefix string, pick func() gittest.BigApp) {
	ctx := context.Background()
	for _, action := range []gitops.Action{gitops.ActionRollback, gitops.ActionRestart, gitops.ActionPromote} {
		b.Run(prefix+"/"+string(action), func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				a := pick()
				e.foreignPush(b)
				start := time.Now()
				resp := e.svc.Handle(ctx, req(action, a.Name, a.Env, i))
				if resp.Plan == nil {
					i--
					continue
				}
				if got := e.confirm(ctx, resp.Plan); got.Outcome != gitops.OutcomeCommitted {
					b.Fatalf("%s %s: %s", action, a.Name, got.Text)
				}
				total += time.Since(start)
			}
			ms := float64(total.Microseconds()) / 1000 / float64(b.N)
			b.ReportMetric(ms, "ms/commit")
			record("commit_ms/"+string(action)+"/"+prefix, ms)
		})
	}
}

// clutter records what the clone holds.
func (e *env) clutter(b *testing.B, prefix string) {
	c, err := e.repo.Clutter()
	if err != nil {
		b.Fatal(err)
	}
	record(prefix+"_loose_objects", float64(c.Loose))
	record(prefix+"_packs", float64(c.Packs))
	record(prefix+"_objects_mb", float64(c.Bytes)/(1<<20))
}
