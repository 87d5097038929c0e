// Package gittest gives tests real git: the git CLI in an isolated
// environment, bare repositories, and a smart-HTTP remote served by
// `git http-backend` (through net/http/cgi) on 127.0.0.1.
package gittest

import (
	"bytes"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Env is the environment every git command of a test runs with: no user or
// system config, a fixed identity, a fixed clock.
func Env(home string) []string {
	return append(os.Environ(),
		"HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+filepath.Join(home, ".gitconfig"),
		"GIT_AUTHOR_NAME=Test Human", "GIT_AUTHOR_EMAIL=human@example.com",
		"GIT_COMMITTER_NAME=Test Human", "GIT_COMMITTER_EMAIL=human@example.com",
		"GIT_TERMINAL_PROMPT=0",
	)
}

// Git runs git in dir and returns its trimmed stdout; the test fails on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := Run(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// GitIn is Git with stdin: e.g. hash-object --stdin, mktree.
func GitIn(t testing.TB, dir, stdin string, args ...string) string {
	t.Helper()
	out, err := run(dir, stdin, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// Run runs git in dir and returns its trimmed stdout, or an error carrying stderr.
func Run(dir string, args ...string) (string, error) { return run(dir, "", args...) }

func run(dir, stdin string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Dir = dir
	cmd.Env = Env(os.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", &Error{Args: args, Stderr: stderr.String(), Err: err}
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Error is a failed git command.
type Error struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	return e.Err.Error() + ": " + strings.TrimSpace(e.Stderr)
}

// InitBare creates a bare repository with default branch main under a fresh
// temporary directory and returns its path (…/env.git).
func InitBare(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "env.git")
	Git(t, "", "init", "--quiet", "--bare", "--initial-branch=main", dir)
	Git(t, dir, "config", "http.receivepack", "true")
	return dir
}

// Seed commits files (path -> content) onto branch main of the bare repo
// through a temporary clone, as a human with the git CLI would, and returns
// the new commit's hash.
func Seed(t testing.TB, bare string, files map[string]string, message string) string {
	t.Helper()
	work := filepath.Join(t.TempDir(), "work")
	Git(t, "", "clone", "--quiet", bare, work)
	if _, err := Run(work, "rev-parse", "--verify", "HEAD"); err != nil {
		Git(t, work, "checkout", "--quiet", "-b", "main")
	}
	for p, content := range files {
		full := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	Git(t, work, "add", "-A")
	Git(t, work, "commit", "--quiet", "-m", message)
	// Like a person: if someone pushed meanwhile, pull --rebase and push again.
	for attempt := 0; ; attempt++ {
		_, err := Run(work, "push", "--quiet", "origin", "HEAD:main")
		if err == nil {
			break
		}
		if attempt == 20 {
			t.Fatalf("push: %v", err)
		}
		Git(t, work, "pull", "--quiet", "--rebase", "origin", "main")
	}
	return Git(t, work, "rev-parse", "HEAD")
}

// Serve serves the bare repositories under root over git's smart HTTP
// protocol on 127.0.0.1 and returns the base URL; a repository root/x.git is
// at URL + "/x.git". The server stops when the test ends.
func Serve(t testing.TB, root string) string {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	h := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + root,
		},
	}
	srv := httptest.NewServer(http.StripPrefix("", h))
	t.Cleanup(srv.Close)
	return srv.URL
}
