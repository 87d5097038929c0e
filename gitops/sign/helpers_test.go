package sign

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

const ciNote = "CI installs it: .ci/run must apt-get install gnupg and openssh-client"

// needTool skips the test when a real tool is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (%s)", name, ciNote)
	}
}

// cmdResult is what a real tool printed and how it exited.
type cmdResult struct {
	stdout, stderr string
	err            error
}

func (r cmdResult) out() string { return r.stdout + r.stderr }

// run runs a tool with env (nil: an isolated environment, see toolEnv) in
// dir, with stdin.
func run(t *testing.T, dir string, env []string, stdin []byte, name string, args ...string) cmdResult {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if env == nil {
		env = toolEnv(t)
	}
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	return cmdResult{so.String(), se.String(), err}
}

// mustRun is run, failing the test on a non-zero exit.
func mustRun(t *testing.T, dir string, env []string, stdin []byte, name string, args ...string) cmdResult {
	t.Helper()
	r := run(t, dir, env, stdin, name, args...)
	if r.err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), r.err, r.out())
	}
	return r
}

// toolEnv isolates git and the tools it calls from the user's configuration
// and keys; extra entries (e.g. GNUPGHOME=...) win over earlier ones.
func toolEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	home := t.TempDir()
	env := append(os.Environ(),
		"HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+filepath.Join(home, ".gitconfig"),
		"LC_ALL=C", "LANG=C",
		"GNUPGHOME="+filepath.Join(home, "no-gnupg"),
	)
	return append(env, extra...)
}

const (
	testMessage = "deploy web 1.2.3 to prod\n\nShipbot-Request: 42\nShipbot-Approved-By: bob\n"
	tamperedMsg = "deploy web 1.2.3 to prod\n\nShipbot-Request: 42\nShipbot-Approved-By: mallory\n"
)

// commitWith makes a real repository with one commit signed by s through
// go-git's CommitOptions.Signer, and returns the repo dir and the commit as
// read back from the object store.
func commitWith(t *testing.T, s Signer) (string, *object.Commit) {
	t.Helper()
	return commitAt(t, s, time.Now())
}

// commitAt is commitWith with author and committer time when.
func commitAt(t *testing.T, s Signer, when time.Time) (string, *object.Commit) {
	t.Helper()
	needTool(t, "git")
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "values.yaml"), []byte("image:\n  tag: 1.2.3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("values.yaml"); err != nil {
		t.Fatal(err)
	}
	who := &object.Signature{Name: "shipbot", Email: "shipbot@example.com", When: when}
	opts := &git.CommitOptions{Author: who, Committer: who}
	if s != nil {
		opts.Signer = s
	}
	h, err := wt.Commit(testMessage, opts)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	return dir, readCommit(t, dir, h)
}

func readCommit(t *testing.T, dir string, h plumbing.Hash) *object.Commit {
	t.Helper()
	r, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CommitObject(h)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tampered returns a copy of c with a changed trailer and c's old signature,
// as a history rewrite that kept the signature would look.
func tampered(c *object.Commit) *object.Commit {
	d := *c
	d.Message = tamperedMsg
	return &d
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeFileErr(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o644)
}

func payloadOf(t *testing.T, c *object.Commit) []byte {
	t.Helper()
	p, err := CommitPayload(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newVerifier(t *testing.T, keyrings, allowed []string) *Verifier {
	t.Helper()
	v, err := NewVerifier(keyrings, allowed)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func wantStatus(t *testing.T, what string, gotS Status, gotName string, wantS Status, wantName string) {
	t.Helper()
	if gotS != wantS || (wantName != "*" && gotName != wantName) {
		t.Errorf("%s: got (%q, %q), want (%q, %q)", what, gotS, gotName, wantS, wantName)
	}
}
