package slack

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
	"github.com/shipbot/shipbot/policy"
)

const pdLink = "https://acme.pagerduty.com/incidents/P1X2Y3Z"

func overlay(tag string) string {
	return "# checkout prod overlay\nresources:\n  - ../../base\nimages:\n  - name: registry.example.com/checkout\n    newTag: " + tag + " # live\n"
}

// env is a real core on a real environment repo (served over smart HTTP),
// with the example policy: alice is in team-checkout, bob is an SRE,
// mallory has no rule.
type env struct {
	opts gitops.ServiceOptions // what svc was built with
	bare string
	svc  *gitops.Service
	core *countingCore
	dir  *Directory
	fs   *fakeSlack
	logs *syncBuffer
}

func newEnv(t *testing.T, confirmTimeout time.Duration) *env {
	t.Helper()
	return newEnvWithPolicy(t, confirmTimeout, filepath.Join("..", "..", "deploy", "examples", "policy.csv"))
}

// newEnvWithPolicy is newEnv with another policy file.
func newEnvWithPolicy(t *testing.T, confirmTimeout time.Duration, policyFile string) *env {
	t.Helper()
	bare := gittest.InitBare(t)
	gittest.Seed(t, bare, map[string]string{"README.md": "env\n", "apps/checkout/overlays/prod/kustomization.yaml": overlay("1.4.0")}, "bootstrap")
	gittest.Seed(t, bare, map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": overlay("1.4.1")}, "deploy 1.4.1")
	gittest.Seed(t, bare, map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": overlay("1.4.2")}, "deploy 1.4.2")
	url := gittest.Serve(t, filepath.Dir(bare)) + "/env.git"
	r, err := repo.Open(context.Background(), repo.Options{URL: url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	authz, err := policy.NewEnforcer("", policyFile)
	if err != nil {
		t.Fatal(err)
	}
	fs := newFakeSlack(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(logs, testWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir, err := NewDirectory(DirectoryOptions{API: fs.client(), TeamID: "T1", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cat := &gitops.Catalog{
		Envs: []gitops.Environment{{Name: "staging"}, {Name: "prod", Protected: true}},
		Apps: map[string]map[string]gitops.Target{"checkout": {"prod": {App: "checkout", Env: "prod", Location: edit.Location{
			Layout: edit.LayoutKustomize, Path: "apps/checkout/overlays/prod", Image: "registry.example.com/checkout",
		}}}},
	}
	opts := gitops.ServiceOptions{
		Catalog: cat, Repo: r, Authorizer: authz, Justifier: policy.PatternJustifier{}, Directory: dir,
		Committer: gitops.Person{Name: "shipbot", Email: "shipbot@acme.example"}, Logger: log,
		ConfirmTimeout: confirmTimeout,
	}
	svc, err := gitops.NewService(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &env{opts: opts, bare: bare, svc: svc, core: &countingCore{Core: svc}, dir: dir, fs: fs, logs: logs}
}

func (e *env) adapter(t *testing.T, mod ...func(*Options)) *Adapter {
	t.Helper()
	o := Options{API: e.fs.client(), Core: e.core, Directory: e.dir, BotUserID: "UBOT",
		Logger: slog.New(slog.NewJSONHandler(io.MultiWriter(e.logs, testWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, m := range mod {
		m(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	return a
}

func (e *env) head(t *testing.T) string { return gittest.Git(t, e.bare, "rev-parse", "main") }

// commitsSince counts the commits on main after base.
func (e *env) commitsSince(t *testing.T, base string) int {
	t.Helper()
	n, err := strconv.Atoi(gittest.Git(t, e.bare, "rev-list", "--count", base+"..main"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// countingCore counts what reached the core.
type countingCore struct {
	Core
	handles, confirms, cancels atomic.Int32
	// confirmGate, when set, holds Confirm until it is closed.
	confirmGate chan struct{}
}

func (c *countingCore) Handle(ctx context.Context, req gitops.Request) gitops.Response {
	c.handles.Add(1)
	return c.Core.Handle(ctx, req)
}

func (c *countingCore) Confirm(ctx context.Context, p *gitops.Plan) gitops.Response {
	c.confirms.Add(1)
	if c.confirmGate != nil {
		<-c.confirmGate
	}
	return c.Core.Confirm(ctx, p)
}

func (c *countingCore) Cancel(p *gitops.Plan, why string) gitops.Response {
	c.cancels.Add(1)
	return c.Core.Cancel(p, why)
}

// syncBuffer collects log output safely across goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testWriter shows logs with -v only.
func testWriter(t *testing.T) io.Writer {
	if testing.Verbose() && os.Getenv("SHIPBOT_TEST_LOGS") != "" {
		return os.Stderr
	}
	return io.Discard
}

// planMessageFor waits for the plan of the request with the Confirm button
// and returns the message.
func planMessageFor(t *testing.T, fs *fakeSlack, channel string) fakeMsg {
	t.Helper()
	var found fakeMsg
	waitFor(t, "a plan with buttons in "+channel, func() bool {
		for _, m := range fs.messages() {
			if m.Channel == channel && strings.Contains(m.Blocks, actionConfirm) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// requestIDOf finds the request id in a plan message's Confirm button.
func requestIDOf(t *testing.T, m fakeMsg) string {
	t.Helper()
	i := strings.Index(m.Blocks, `"value":"shp-`)
	if i < 0 {
		t.Fatalf("no request id in %s", m.Blocks)
	}
	rest := m.Blocks[i+len(`"value":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// messageAt returns the current version of a message.
func messageAt(fs *fakeSlack, channel, ts string) fakeMsg {
	for _, m := range fs.messages() {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return fakeMsg{}
}
