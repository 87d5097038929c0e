package githubtest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops/gittest"
)

// gitHandler serves the bare repository at /{owner}/{repo}.git over smart
// HTTP with `git http-backend`, and brings the pull requests up to date
// after every push.
func (s *Server) gitHandler(t testing.TB) http.Handler {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	bare, err := filepath.Abs(s.o.BareRepo)
	if err != nil {
		t.Fatal(err)
	}
	cgiH := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env: []string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(bare),
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + s.home,
		},
	}
	prefix := "/" + s.o.Owner + "/" + s.o.Repo + ".git"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + filepath.Base(bare) + strings.TrimPrefix(r.URL.Path, prefix)
		r2.URL.RawPath = ""
		cgiH.ServeHTTP(w, r2)
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			s.mu.Lock()
			s.refresh()
			s.mu.Unlock()
		}
	})
}

// gitRun runs git in the bare repository. exit is git's exit status (-1
// when it did not run).
func (s *Server) gitRun(stdin []byte, args ...string) (out string, exit int, err error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = s.o.BareRepo
	cmd.Env = gittest.Env(s.home)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return stdout.String(), ee.ExitCode(), fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return "", -1, err
	}
	return strings.TrimSpace(stdout.String()), 0, nil
}

// branches maps each branch of the repository to its commit.
func (s *Server) branches() map[string]string {
	out, _, err := s.gitRun(nil, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/")
	refs := map[string]string{}
	if err != nil {
		return refs
	}
	for _, line := range strings.Split(out, "\n") {
		name, sha, ok := strings.Cut(line, " ")
		if ok {
			refs[strings.TrimPrefix(name, "refs/heads/")] = sha
		}
	}
	return refs
}

// isAncestor: commit a is reachable from b.
func (s *Server) isAncestor(a, b string) bool {
	_, exit, _ := s.gitRun(nil, "merge-base", "--is-ancestor", a, b)
	return exit == 0
}

// mergeTree merges head into base without touching any ref and returns
// the tree; clean is false when they conflict.
func (s *Server) mergeTree(base, head string) (tree string, clean bool, err error) {
	out, exit, err := s.gitRun(nil, "merge-tree", "--write-tree", base, head)
	switch exit {
	case 0:
		return strings.TrimSpace(out), true, nil
	case 1:
		return "", false, nil
	}
	return "", false, err
}

// refresh brings the pull requests up to date with the repository, as
// GitHub does on a push: a moved head is a synchronize, a head that
// reached its base is merged, a deleted head branch closes its pull
// request. Called with s.mu held.
func (s *Server) refresh() {
	refs := s.branches()
	for _, n := range s.numbers() {
		p := s.pulls[n]
		if p.state != "open" {
			continue
		}
		headSHA, headOK := refs[p.head]
		if headOK && headSHA != p.headSHA {
			before := p.headSHA
			p.headSHA, p.mergeable, p.updated = headSHA, nil, s.now()
			s.hookPull(p, "synchronize", before)
		}
		baseSHA := refs[p.base]
		if baseSHA != "" && s.isAncestor(p.headSHA, baseSHA) {
			now := s.now()
			p.state, p.merged, p.mergedAt, p.closedAt, p.updated = "closed", true, now, now, now
			p.mergeCommit, p.baseSHA, p.mergeable = p.headSHA, baseSHA, nil
			s.hookPull(p, "closed", "")
			continue
		}
		if !headOK {
			now := s.now()
			p.state, p.closedAt, p.updated, p.mergeable = "closed", now, now, nil
			s.hookPull(p, "closed", "")
			continue
		}
		if baseSHA != p.baseSHA || p.mergeable == nil {
			p.baseSHA = baseSHA
			if _, clean, err := s.mergeTree(baseSHA, p.headSHA); err == nil {
				p.mergeable = &clean
			}
		}
	}
}

// createPull opens a pull request, or says why GitHub would not. Called
// with s.mu held.
func (s *Server) createPull(login, head, base, title, body string) (*pull, int, string) {
	if owner, branch, ok := strings.Cut(head, ":"); ok {
		if !strings.EqualFold(owner, s.o.Owner) {
			return nil, http.StatusUnprocessableEntity, "head: forks are not supported by the double"
		}
		head = branch
	}
	if title == "" {
		return nil, http.StatusUnprocessableEntity, "Missing field: title"
	}
	refs := s.branches()
	headSHA, ok := refs[head]
	if !ok {
		return nil, http.StatusUnprocessableEntity, "head: invalid"
	}
	baseSHA, ok := refs[base]
	if !ok {
		return nil, http.StatusUnprocessableEntity, "base: invalid"
	}
	for _, p := range s.pulls {
		if p.state == "open" && p.head == head && p.base == base {
			return nil, http.StatusUnprocessableEntity, fmt.Sprintf("A pull request already exists for %s:%s.", s.o.Owner, head)
		}
	}
	if s.isAncestor(headSHA, baseSHA) {
		return nil, http.StatusUnprocessableEntity, fmt.Sprintf("No commits between %s and %s", base, head)
	}
	s.number++
	now := s.now()
	p := &pull{
		number: s.number, title: title, body: body, head: head, base: base, user: login,
		state: "open", created: now, updated: now, headSHA: headSHA, baseSHA: baseSHA,
	}
	if _, clean, err := s.mergeTree(baseSHA, headSHA); err == nil {
		p.mergeable = &clean
	}
	s.pulls[p.number] = p
	s.hookPull(p, "opened", "")
	return p, http.StatusCreated, ""
}

// merge merges pull request p with method (merge, squash, or rebase when
// it fast-forwards) in the repository. Called with s.mu held.
func (s *Server) merge(p *pull, method, title, message string) (string, error) {
	if method == "rebase" {
		if !s.isAncestor(p.baseSHA, p.headSHA) {
			return "", errors.New("the double rebases only what fast-forwards")
		}
		if _, _, err := s.gitRun(nil, "update-ref", "refs/heads/"+p.base, p.headSHA, p.baseSHA); err != nil {
			return "", err
		}
		return p.headSHA, nil
	}
	tree, clean, err := s.mergeTree(p.baseSHA, p.headSHA)
	if err != nil {
		return "", err
	}
	if !clean {
		return "", errors.New("conflict")
	}
	if title == "" {
		title = fmt.Sprintf("Merge pull request #%d from %s/%s", p.number, s.o.Owner, p.head)
		if method == "squash" {
			title = fmt.Sprintf("%s (#%d)", p.title, p.number)
		}
	}
	msg := title
	if message != "" {
		msg += "\n\n" + message
	}
	args := []string{"commit-tree", tree, "-p", p.baseSHA}
	if method != "squash" {
		args = append(args, "-p", p.headSHA)
	}
	commit, _, err := s.gitRun([]byte(msg+"\n"), append(args, "-F", "-")...)
	if err != nil {
		return "", err
	}
	if _, _, err := s.gitRun(nil, "update-ref", "refs/heads/"+p.base, commit, p.baseSHA); err != nil {
		return "", err
	}
	return commit, nil
}
