package policy

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

// tempPolicy copies the example policy to a temporary file.
func tempPolicy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "policy.csv")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// appendFile adds text to the end of file, keeping what is there. It
// writes a new file and renames it over the old one, as an operator should.
func appendFile(t *testing.T, file, text string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, file, string(b)+text)
}

func replaceFile(t *testing.T, file, text string) {
	t.Helper()
	tmp := file + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

func allowed(t *testing.T, e *Enforcer, user, action, app, env string) bool {
	t.Helper()
	d, err := e.Authorize(context.Background(), query(user, "#ops", action, app, env))
	if err != nil {
		t.Fatal(err)
	}
	return d.Allowed
}

func TestReload(t *testing.T) {
	pol := tempPolicy(t)
	mod := writeModel(t, DefaultModel)
	e, err := NewEnforcer(mod, pol)
	if err != nil {
		t.Fatal(err)
	}
	if allowed(t, e, "mallory", "status", "checkout", "prod") {
		t.Fatal("mallory allowed before the change")
	}

	// A valid change: new decisions.
	appendFile(t, pol, "p, mallory, *, checkout, status, *\np, bob, prod, *, freeze, *, deny\n")
	if err := e.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if !allowed(t, e, "mallory", "status", "checkout", "prod") || allowed(t, e, "bob", "freeze", "", "prod") {
		t.Fatal("the reloaded policy is not in force")
	}

	// An invalid change: refused with file:line, the previous policy stays.
	good, _ := os.ReadFile(pol)
	appendFile(t, pol, "p, mallory, *, payments, stauts, *\n")
	lines := strings.Count(string(good), "\n") + 1
	err = e.Reload()
	if err == nil {
		t.Fatal("Reload accepted an invalid policy")
	}
	for _, s := range []string{"reload refused, the previous policy stays in force", pol + ":" + strconv.Itoa(lines) + ": ", `action "stauts" matches no shipbot action`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Reload error %q lacks %q", err, s)
		}
	}
	if !allowed(t, e, "mallory", "status", "checkout", "prod") || allowed(t, e, "bob", "freeze", "", "prod") {
		t.Fatal("the previous policy is not in force after a refused reload")
	}

	// A model the policy does not fit (no deny) is refused too; so is a
	// missing file.
	if err := os.WriteFile(pol, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mod, []byte(v1Model), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), "deny rules need a model where deny wins") {
		t.Errorf("Reload with a model without deny: %v", err)
	}
	if err := os.Remove(mod); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), "reload refused") || !strings.Contains(err.Error(), "model.conf") {
		t.Errorf("Reload with a missing model: %v", err)
	}
	if !allowed(t, e, "mallory", "status", "checkout", "prod") || allowed(t, e, "bob", "freeze", "", "prod") {
		t.Fatal("the previous policy is not in force after refused reloads")
	}
}

// syncBuffer is a bytes.Buffer safe for the watcher's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

// eventually waits up to 10s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	pol := tempPolicy(t)
	e, err := NewEnforcer("", pol)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		e.Watch(ctx, 3*time.Millisecond, log)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()

	// A valid change is picked up.
	appendFile(t, pol, "p, mallory, *, checkout, status, *\n")
	eventually(t, "the change to be in force", func() bool { return allowed(t, e, "mallory", "status", "checkout", "prod") })
	eventually(t, "the reload to be logged", func() bool { return strings.Contains(logs.String(), `msg="policy reloaded"`) })

	// An invalid change is refused, logged once with file:line, and the
	// previous policy stays in force.
	appendFile(t, pol, "g, mallory, sre\n")
	eventually(t, "the refusal to be logged", func() bool { return strings.Contains(logs.String(), "policy reload refused") })
	time.Sleep(30 * time.Millisecond) // ten more polls of the same bad content
	out := logs.String()
	if n := strings.Count(out, "policy reload refused"); n != 1 {
		t.Errorf("refusal logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, `g line has 2 fields after \"g\", want 3 (user, group, env)`) || !strings.Contains(out, "level=ERROR") {
		t.Errorf("the refusal does not say why, at error level:\n%s", out)
	}
	if !allowed(t, e, "mallory", "status", "checkout", "prod") || allowed(t, e, "mallory", "rollback", "checkout", "prod") {
		t.Fatal("the previous policy is not in force after a refused change")
	}

	// Fixing the file reloads it.
	b, _ := os.ReadFile(pol)
	replaceFile(t, pol, strings.Replace(string(b), "g, mallory, sre\n", "g, mallory, sre, dev\n", 1))
	eventually(t, "the fix to be in force", func() bool { return allowed(t, e, "mallory", "rollback", "search", "dev") })
	if allowed(t, e, "mallory", "rollback", "search", "prod") {
		t.Error("mallory is an SRE in dev only")
	}
	eventually(t, "the second reload to be logged", func() bool { return strings.Count(logs.String(), `msg="policy reloaded"`) == 2 })

	// An empty file (an in-place write caught between truncation and
	// write) is not loaded: a warning, and the policy stays.
	if err := os.WriteFile(pol, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the empty file to be logged", func() bool { return strings.Contains(logs.String(), "policy file is empty: not loading it") })
	time.Sleep(30 * time.Millisecond)
	if n := strings.Count(logs.String(), "policy file is empty"); n != 1 {
		t.Errorf("empty file logged %d times, want once", n)
	}
	if !allowed(t, e, "mallory", "rollback", "search", "dev") {
		t.Fatal("an empty policy file was loaded")
	}

	// A file that disappears is reported once; the policy stays.
	if err := os.Remove(pol); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the missing file to be logged", func() bool { return strings.Count(logs.String(), "policy reload refused") == 2 })
	if !allowed(t, e, "mallory", "rollback", "search", "dev") {
		t.Fatal("the policy changed when its file disappeared")
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	e := newExampleEnforcer(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		e.Watch(ctx, 0, nil) // default interval, discarded log
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return when its context ended")
	}
}

// TestReloadConcurrent decides and explains from many goroutines while the
// policy is reloaded between two versions: every decision is entirely one
// version's (rule and review together), never a mix. Run with -race.
func TestReloadConcurrent(t *testing.T) {
	pol := tempPolicy(t)
	orig, _ := os.ReadFile(pol)
	a := string(orig)
	b := "p, bob, prod, *, promote, *\n" +
		strings.Replace(a, "review, *, prod, *, promote, 2, sre", "review, *, prod, *, promote, 1, sre", 1)
	e, err := NewEnforcer("", pol)
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		rule      string
		approvals int
	}
	valid := map[outcome]bool{
		{"p, sre, *, *, *, *", 2}:          true, // version a
		{"p, bob, prod, *, promote, *", 1}: true, // version b: the first matching allow line
	}
	q := gitops.AuthzQuery{Subject: gitops.Subject{User: "bob", Channel: "#ops"}, Env: "prod", App: "checkout", Action: gitops.ActionPromote}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				d, err := e.Authorize(context.Background(), q)
				if err != nil {
					errs <- err.Error()
					return
				}
				if o := (outcome{d.Rule, d.Review.Approvals}); !d.Allowed || !valid[o] {
					errs <- "mixed decision: " + d.Rule + " with " + strconv.Itoa(d.Review.Approvals) + " approvals"
					return
				}
				x := e.Explain(q)
				if o := (outcome{x.Decision.Rule, x.Decision.Review.Approvals}); !valid[o] || len(x.Allow) == 0 || x.Allow[0].Rule != x.Decision.Rule {
					errs <- "inconsistent explanation: " + x.String()
					return
				}
			}
		})
	}
	for i := range 40 {
		text := a
		if i%2 == 0 {
			text = b
		}
		if err := os.WriteFile(pol, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
