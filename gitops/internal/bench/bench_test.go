package bench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

var (
	benchApps    = flag.Int("bench.apps", 1000, "apps in the generated environment repo")
	benchCommits = flag.Int("bench.commits", 10000, "commits of deploy history in the generated repo")
	summaryFile  = flag.String("bench.summary", "", "also write the summary to this file")
)

// results collects the figures of one run for the summary.
var results = struct {
	sync.Mutex
	m map[string]float64
}{m: map[string]float64{}}

func record(k string, v float64) {
	results.Lock()
	results.m[k] = v
	results.Unlock()
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(cloneChildEnv); spec != "" {
		cloneChild(spec) // a child of coldClonePeakRSS: clone and exit
	}
	code := m.Run()
	results.Lock()
	defer results.Unlock()
	if len(results.m) > 0 {
		fmt.Print(details(results.m))
		summary := summarize(results.m)
		fmt.Print(summary)
		if *summaryFile != "" {
			if err := os.WriteFile(*summaryFile, []byte(summary), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// summarize prints one figure a line, `name: value`, comparable run to run.
func summarize(m map[string]float64) string {
	ratio := 0.0
	for _, a := range []string{"rollback", "restart", "promote"} {
		s, g := m["commit_ms/"+a+"/shipbot"], m["commit_ms/"+a+"/git_cli"]
		if s > 0 && g > 0 {
			ratio = max(ratio, s/g)
		}
	}
	var b strings.Builder
	line := func(k string, v float64, prec int) {
		fmt.Fprintf(&b, "%s: %s\n", k, strconv.FormatFloat(v, 'f', prec, 64))
	}
	line("commit_latency_ratio_vs_git_cli", ratio, 2)
	aged := 0.0
	for _, a := range []string{"rollback", "restart", "promote"} {
		s, g := m["commit_ms/"+a+"/aged"], m["commit_ms/"+a+"/git_cli"]
		if s > 0 && g > 0 {
			aged = max(aged, s/g)
		}
	}
	line("commit_latency_ratio_vs_git_cli_aged", aged, 2)
	line("restart_to_first_plan_s", m["restart_to_first_plan_s"], 2)
	line("cold_clone_peak_rss_mb", m["cold_clone_peak_rss_mb"], 0)
	line("prev_tag_lookup_ms", m["prev_tag_lookup_ms"], 3)
	line("history_index_build_s", m["history_index_build_s"], 2)
	line("concurrent_100_landed", m["concurrent_100_landed"], 0)
	line("concurrent_100_seconds", m["concurrent_100_seconds"], 2)
	line("peak_rss_mb", m["peak_rss_mb"], 0)
	line("cold_clone_ratio_vs_git_cli", m["cold_clone_s/shipbot"]/m["cold_clone_s/git_cli"], 2)
	return b.String()
}

// details lists every measured figure behind the summary.
func details(m map[string]float64) string {
	var b strings.Builder
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("# details\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "#   %s = %.3f\n", k, m[k])
	}
	return b.String()
}

// peakRSSMB reads the process's peak resident set (VmHWM).
func peakRSSMB(tb testing.TB) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	tb.Fatal("VmHWM not found")
	return 0
}

// env is one served copy of the generated repo and a shipbot service on it.
type env struct {
	bare, url string
	apps      []gittest.BigApp
	byKey     map[string]gittest.BigApp
	svc       *gitops.Service
	repo      *repo.Repo
	human     string // a git CLI clone that pushes foreign commits
	humanN    int
	cleanup   bool // closing the last service is registered
	round     int  // makes tags unique across iterations
}

func newEnv(b *testing.B) *env {
	b.Helper()
	src, apps := gittest.BigRepoCached(b, gittest.BigRepoOptions{Apps: *benchApps, Commits: *benchCommits, Seed: 1})
	bare := gittest.CopyBare(b, src)
	e := &env{bare: bare, apps: apps, byKey: map[string]gittest.BigApp{}}
	e.url = gittest.Serve(b, filepath.Dir(bare)) + "/" + filepath.Base(bare)
	for _, a := range apps {
		e.byKey[a.Name+"/"+a.Env] = a
	}
	e.human = filepath.Join(b.TempDir(), "human")
	gittest.Git(b, "", "clone", "--quiet", "--depth", "1", e.url, e.human)
	return e
}

func (e *env) catalog() *gitops.Catalog {
	c := &gitops.Catalog{
		Envs: []gitops.Environment{{Name: "dev"}, {Name: "staging"}, {Name: "prod"}},
		Apps: map[string]map[string]gitops.Target{},
	}
	for _, a := range e.apps {
		if c.Apps[a.Name] == nil {
			c.Apps[a.Name] = map[string]gitops.Target{}
		}
		c.Apps[a.Name][a.Env] = gitops.Target{App: a.Name, Env: a.Env, Location: edit.Location{
			Layout: edit.Layout(a.Layout), Path: a.Path, Image: a.Image,
		}}
	}
	return c
}

type allow struct{}

func (allow) Authorize(context.Context, gitops.AuthzQuery) (gitops.Decision, error) {
	return gitops.Decision{Allowed: true}, nil
}

type anyReason struct{}

func (anyReason) Justify(_ context.Context, r gitops.Request, _ gitops.Environment) (gitops.Justification, error) {
	return gitops.Justification{Text: gitops.OneLine(r.Why), Kind: "text"}, nil
}

type people struct{}

func (people) Person(_ context.Context, u string) (gitops.Person, error) {
	return gitops.Person{Name: u, Email: u + "@example.com"}, nil
}

// openService opens a warm clone (cloned once, outside any timer) and a service on it.
func (e *env) openService(b *testing.B, cache string) {
	b.Helper()
	e.openServiceWith(b, cache, repo.Maintenance{})
}

func (e *env) openServiceWith(b *testing.B, cache string, maint repo.Maintenance) {
	b.Helper()
	if !e.cleanup {
		// The last service and clone close before the temporary
		// directories go (maintenance may be at work in them).
		e.cleanup = true
		b.Cleanup(func() {
			e.svc.Close()
			e.repo.Close()
		})
	}
	r, err := repo.Open(context.Background(), repo.Options{URL: e.url, CacheDir: cache, Maintenance: maint, Logger: benchLog})
	if err != nil {
		b.Fatal(err)
	}
	e.repo = r
	e.svc, err = gitops.NewService(gitops.ServiceOptions{
		Catalog: e.catalog(), Repo: r, Authorizer: allow{}, Justifier: anyReason{}, Directory: people{},
		Committer: gitops.Person{Name: "shipbot", Email: "shipbot@example.com"},
	})
	if err != nil {
		b.Fatal(err)
	}
}

// foreignPush makes someone else push a commit, so that the next write has
// to fetch it first, as in real life.
func (e *env) foreignPush(tb testing.TB) {
	e.humanN++
	p := filepath.Join(e.human, "NOTES.md")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("note %d\n", e.humanN)), 0o644); err != nil {
		tb.Fatal(err)
	}
	gittest.Git(tb, e.human, "add", "NOTES.md")
	gittest.Git(tb, e.human, "commit", "--quiet", "-m", "notes")
	for {
		if _, err := gittest.Run(e.human, "push", "--quiet", "origin", "HEAD:main"); err == nil {
			return
		}
		gittest.Git(tb, e.human, "pull", "--quiet", "--rebase", "origin", "main")
	}
}

func req(action gitops.Action, app, env string, i int) gitops.Request {
	r := gitops.Request{ID: fmt.Sprintf("shp-bench-%s-%s-%d-%d", action, app, i, time.Now().UnixNano()), Action: action, App: app, Env: env, User: "alice", Why: "bench"}
	if action == gitops.ActionPromote {
		r.FromEnv, r.Env = "staging", "prod"
	}
	return r
}

func BenchmarkMonorepo(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()

	b.Run("cold_clone/shipbot", func(b *testing.B) {
		for b.Loop() {
			if _, err := repo.Open(ctx, repo.Options{URL: e.url, CacheDir: b.TempDir()}); err != nil {
				b.Fatal(err)
			}
		}
		record("cold_clone_s/shipbot", b.Elapsed().Seconds()/float64(b.N))
	})
	b.Run("cold_clone/git_cli", func(b *testing.B) {
		for b.Loop() {
			gittest.Git(b, "", "clone", "--quiet", "--bare", "--single-branch", "--no-tags", e.url, filepath.Join(b.TempDir(), "c.git"))
		}
		record("cold_clone_s/git_cli", b.Elapsed().Seconds()/float64(b.N))
	})
	b.Run("cold_clone/peak_rss", func(b *testing.B) {
		for b.Loop() {
			sum, kernel, secs := coldClonePeakRSS(b, e.url, false)
			record("cold_clone_peak_rss_mb", sum)
			record("cold_clone_peak_rss_mb/kernel_max", kernel)
			record("cold_clone_s/shipbot_child", secs)
			record("cold_clone_peak_rss_mb/git_cli", gitClonePeakRSS(b, e.url))
		}
	})
	b.Run("cold_clone/peak_rss_without_git", func(b *testing.B) {
		for b.Loop() {
			sum, _, secs := coldClonePeakRSS(b, e.url, true)
			record("cold_clone_peak_rss_mb/gogit_fallback", sum)
			record("cold_clone_s/gogit_fallback", secs)
		}
	})

	cache := b.TempDir()
	e.openService(b, cache)
	tip, err := e.repo.Fetch(ctx)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("history_index_build", func(b *testing.B) {
		for b.Loop() {
			if err := repo.NewIndex(e.repo).Update(ctx, tip.Hash()); err != nil {
				b.Fatal(err)
			}
		}
		record("history_index_build_s", b.Elapsed().Seconds()/float64(b.N))
	})
	if err := e.repo.Index().Update(ctx, tip.Hash()); err != nil {
		b.Fatal(err)
	}
	b.Run("prev_tag_lookup", func(b *testing.B) {
		i := 0
		for b.Loop() {
			a := e.apps[(i*7919)%len(e.apps)]
			i++
			if _, err := e.svc.PreviousTag(ctx, a.Name, a.Env); err != nil && !errors.Is(err, gitops.ErrNoPrevious) {
				b.Fatal(err)
			}
		}
		record("prev_tag_lookup_ms", float64(b.Elapsed().Microseconds())/1000/float64(b.N))
	})

	// request -> commit pushed, each after a foreign push, against the git CLI.
	next := 0
	pick := func() gittest.BigApp {
		for {
			a := e.apps[(next*104729)%len(e.apps)]
			next++
			if a.Env == "prod" {
				return a
			}
		}
	}
	for _, action := range []gitops.Action{gitops.ActionRollback, gitops.ActionRestart, gitops.ActionPromote} {
		b.Run("commit/"+string(action)+"/shipbot", func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				a := pick()
				e.foreignPush(b)
				start := time.Now()
				resp := e.svc.Handle(ctx, req(action, a.Name, a.Env, i))
				if resp.Plan == nil {
					// e.g. staging already equals prod for this app: try another one.
					i--
					continue
				}
				if got := e.confirm(ctx, resp.Plan); got.Outcome != gitops.OutcomeCommitted {
					b.Fatalf("%s %s: %s", action, a.Name, got.Text)
				}
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/commit")
			record("commit_ms/"+string(action)+"/shipbot", float64(total.Microseconds())/1000/float64(b.N))
		})
		b.Run("commit/"+string(action)+"/git_cli", func(b *testing.B) {
			work := filepath.Join(b.TempDir(), "w")
			gittest.Git(b, "", "clone", "--quiet", e.url, work)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				a := pick()
				e.foreignPush(b)
				start := time.Now()
				gitCLIEdit(b, work, a, i)
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/commit")
			record("commit_ms/"+string(action)+"/git_cli", float64(total.Microseconds())/1000/float64(b.N))
		})
	}

	b.Run("concurrent_100", func(b *testing.B) {
		for b.Loop() {
			landed, secs := e.concurrent(b, 100)
			record("concurrent_100_landed", float64(landed))
			record("concurrent_100_seconds", secs)
		}
	})
	b.Run("concurrent_same_app_10", func(b *testing.B) {
		for b.Loop() {
			answered := e.sameApp(b, 10)
			record("concurrent_same_app_10_answered", float64(answered))
		}
	})
	record("peak_rss_mb", peakRSSMB(b))

	// A restart: the history index comes from the cache. The rollbacks
	// are of staging apps with an earlier tag (no benchmark above changed
	// them: a rollback without a tag needs one).
	var restartApps []gittest.BigApp
	for _, a := range e.apps {
		if a.Env == "staging" && a.PrevTag != "" {
			restartApps = append(restartApps, a)
		}
	}
	nextRestart := func() gittest.BigApp {
		a := restartApps[0]
		restartApps = restartApps[1:]
		return a
	}
	b.Run("restart_to_first_plan", func(b *testing.B) {
		for b.Loop() {
			record("restart_to_first_plan_s", e.restartToFirstPlan(b, cache, nextRestart(), nil))
		}
	})
	// The same without the saved index (as before issue 13): once, it
	// takes seconds.
	b.Run("restart_to_first_plan/no_saved_index", func(b *testing.B) {
		files, _ := filepath.Glob(filepath.Join(e.repo.Dir(), "shipbot-history-*.idx"))
		record("restart_to_first_plan_s/no_saved_index", e.restartToFirstPlan(b, cache, nextRestart(), func() {
			for _, f := range files {
				os.Remove(f)
			}
		}))
	})

	// The aged clone: what thousands of requests leave behind.
	if *ageRequests == 0 {
		return
	}
	if *ageNoMaint {
		e.svc.Close()
		e.repo.Close()
		e.openServiceWith(b, b.TempDir(), repo.Maintenance{Disabled: true})
		start := time.Now()
		e.age(b, *ageRequests, *ageFetches)
		record("age_s/nomaint", time.Since(start).Seconds())
		e.clutter(b, "aged_nomaint")
		e.agedCommits(b, "aged_nomaint", pick)
		e.svc.Close()
		e.repo.Close()
		e.openService(b, cache)
	}
	start := time.Now()
	e.age(b, *ageRequests, *ageFetches)
	record("age_s", time.Since(start).Seconds())
	e.clutter(b, "aged_at_once")
	// The aging wrote ~450 objects a second, far beyond any real load:
	// let maintenance catch up, as it does between real requests.
	start = time.Now()
	e.settle(b)
	record("age_catchup_s", time.Since(start).Seconds())
	e.clutter(b, "aged")
	e.agedCommits(b, "aged", pick)
	e.clutter(b, "aged_after")
	record("peak_rss_mb/with_aging", peakRSSMB(b))
}

// gitCLIEdit is what a person does with the git CLI for one change on a warm
// clone: fetch, reset to the remote, edit the tag line, commit, push.
func gitCLIEdit(tb testing.TB, work string, a gittest.BigApp, i int) {
	gittest.Git(tb, work, "fetch", "--quiet", "origin")
	gittest.Git(tb, work, "reset", "--quiet", "--hard", "origin/main")
	p := filepath.Join(work, a.File())
	data, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for j, l := range lines {
		if strings.Contains(l, a.Tag) {
			lines[j] = strings.Replace(l, a.Tag, fmt.Sprintf("9.9.%d", i), 1)
			break
		}
	}
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		tb.Fatal(err)
	}
	gittest.Git(tb, work, "commit", "--quiet", "-am", fmt.Sprintf("deploy %s 9.9.%d", a.Name, i))
	gittest.Git(tb, work, "push", "--quiet", "origin", "HEAD:main")
}

// concurrent confirms n rollbacks of n different apps at once and checks
// that every one landed and the remote equals a serial run: exactly those
// files changed, each to the edit planned on the common base.
func (e *env) concurrent(b *testing.B, n int) (landed int, seconds float64) {
	ctx := context.Background()
	b.StopTimer()
	e.round++
	base := gittest.Git(b, e.bare, "rev-parse", "main")
	var targets []gittest.BigApp
	for _, a := range e.apps {
		if a.Env == "dev" && len(targets) < n {
			targets = append(targets, a)
		}
	}
	if len(targets) < n {
		b.Logf("only %d apps in dev: running %d concurrent requests", len(targets), len(targets))
		n = len(targets)
	}
	b.StartTimer()
	start := time.Now()
	results := make([]gitops.Response, n)
	plans := make([]*gitops.Plan, n)
	var wg sync.WaitGroup
	for i, a := range targets {
		wg.Go(func() {
			r := req(gitops.ActionRollback, a.Name, a.Env, i)
			r.Tag = fmt.Sprintf("7.%d.%d", e.round, i)
			resp := e.svc.Handle(ctx, r)
			if resp.Plan == nil {
				results[i] = resp
				return
			}
			plans[i] = resp.Plan
			results[i] = e.confirm(ctx, resp.Plan)
		})
	}
	wg.Wait()
	seconds = time.Since(start).Seconds()
	b.StopTimer()
	for i, r := range results {
		if r.Outcome == gitops.OutcomeCommitted {
			landed++
		} else {
			b.Errorf("request %d (%s): %s: %s", i, targets[i].Name, r.Outcome, r.Text)
		}
	}
	// The remote equals a serial run: exactly the n files changed, each as planned.
	changed := strings.Fields(gittest.Git(b, e.bare, "diff", "--name-only", base, "main"))
	if len(changed) != n {
		b.Errorf("%d files changed on the remote, want %d", len(changed), n)
	}
	for i, a := range targets {
		if plans[i] == nil {
			continue
		}
		got := gittest.Git(b, e.bare, "show", "main:"+a.File())
		if !strings.Contains(got, fmt.Sprintf("7.%d.%d", e.round, i)) {
			b.Errorf("%s lost its update", a.Name)
		}
	}
	if c := gittest.Git(b, e.bare, "rev-list", "--count", base+"..main"); c != strconv.Itoa(n) {
		b.Errorf("%s commits since the base, want %d (one per request)", c, n)
	}
	b.StartTimer()
	return landed, seconds
}

// sameApp confirms n rollbacks of one app at once: one lands, the others are
// told the app changed under them; every request gets an answer.
func (e *env) sameApp(b *testing.B, n int) (answered int) {
	ctx := context.Background()
	e.round++
	a := e.apps[3*((len(e.apps)/3)/2)+2] // a prod target
	var wg sync.WaitGroup
	out := make([]gitops.Response, n)
	for i := range n {
		wg.Go(func() {
			r := req(gitops.ActionRollback, a.Name, a.Env, i)
			r.Tag = fmt.Sprintf("6.%d.%d", e.round, i)
			resp := e.svc.Handle(ctx, r)
			if resp.Plan == nil {
				out[i] = resp
				return
			}
			out[i] = e.confirm(ctx, resp.Plan)
		})
	}
	wg.Wait()
	landed := 0
	for _, r := range out {
		switch r.Outcome {
		case gitops.OutcomeCommitted:
			landed++
			answered++
		case gitops.OutcomeRejected:
			answered++
		}
	}
	if landed < 1 {
		b.Errorf("none of %d same-app requests landed", n)
	}
	return answered
}

var _ = exec.Command

// confirm answers a plan as its requester would: with the answer it asks
// for (e.g. `yes, deploy 7.1.0` for a tag never deployed), else yes.
func (e *env) confirm(ctx context.Context, p *gitops.Plan) gitops.Response {
	p.Answer = "yes"
	if p.Confirmation != "" {
		p.Answer = p.Confirmation
	}
	return e.svc.Confirm(ctx, p)
}
