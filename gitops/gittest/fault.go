package gittest

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Remote is a smart-HTTP git remote on 127.0.0.1, `git http-backend` behind
// net/http/cgi as in Serve, that a test can make misbehave the ways real
// remotes do: refuse connections (Down), answer an HTTP status, hang, or
// apply a push and drop the connection before answering. It stops when the
// test ends; requests it holds are let go then.
type Remote struct {
	// URL is the base URL: a repository root/x.git is at URL + "/x.git".
	URL string

	t       testing.TB
	addr    string
	backend http.Handler

	mu      sync.Mutex
	srv     *http.Server
	faults  []*Fault
	release chan struct{} // closed to let hung requests go
	pushes  int           // receive-pack POSTs seen
	applied int           // pushes applied and then dropped
}

// Match says which requests a fault applies to.
type Match int

const (
	// Any request.
	Any Match = iota
	// Pushes: the receive-pack advertisement and the push (POST).
	Pushes
	// PushPost: the receive-pack POST only, which carries the pack.
	PushPost
	// Fetches: upload-pack requests (the advertisement and the POST).
	Fetches
)

// FaultKind is how the remote misbehaves.
type FaultKind int

const (
	// Status answers with Fault.Status (e.g. 503) without running git.
	Status FaultKind = iota + 1
	// Hang never answers: the request is held until the client gives up
	// (its connection closes) or the fault is healed, then the connection
	// is closed without an answer.
	Hang
	// DropAfterApply lets git receive and apply the push, then closes the
	// connection before a byte of the answer is sent. Only for PushPost.
	DropAfterApply
)

// Fault is one injected misbehaviour.
type Fault struct {
	Match  Match
	Kind   FaultKind
	Status int // for Kind Status
	// Times is how many matching requests it applies to (0: every one, until
	// Heal).
	Times int
	// Then runs after the fault fired on a request (for DropAfterApply:
	// after git applied the push, before the connection is dropped).
	Then func()
}

// ServeFaults serves the bare repositories under root like Serve, through
// a Remote that behaves until told otherwise.
func ServeFaults(t testing.TB, root string) *Remote {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	r := &Remote{
		t: t,
		backend: &cgi.Handler{
			Path: gitBin,
			Args: []string{"http-backend"},
			Env: []string{
				"GIT_PROJECT_ROOT=" + root,
				"GIT_HTTP_EXPORT_ALL=1",
				"GIT_CONFIG_NOSYSTEM=1",
				"HOME=" + root,
			},
		},
		release: make(chan struct{}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.URL = "http://" + r.addr
	r.start(ln)
	t.Cleanup(func() {
		r.Heal()
		r.mu.Lock()
		srv := r.srv
		r.srv = nil
		r.mu.Unlock()
		if srv != nil {
			srv.Close()
		}
	})
	return r
}

func (r *Remote) start(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.serve)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Inject adds a fault; the first fault that matches a request applies.
func (r *Remote) Inject(f Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, &f)
}

// Heal removes every fault and lets the requests held by Hang go (their
// connections are closed without an answer).
func (r *Remote) Heal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = nil
	close(r.release)
	r.release = make(chan struct{})
}

// Down makes the remote refuse connections, as a host whose git server is
// down: the listener and every open connection are closed.
func (r *Remote) Down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Up listens again on the same address after Down.
func (r *Remote) Up() {
	r.t.Helper()
	r.mu.Lock()
	up := r.srv != nil
	r.mu.Unlock()
	if up {
		return
	}
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("listen again on %s: %v", r.addr, err)
	}
	r.start(ln)
}

// Pushes is how many pushes (receive-pack POSTs) reached the remote.
func (r *Remote) Pushes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pushes
}

// Dropped is how many pushes were applied and then dropped.
func (r *Remote) Dropped() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied
}

func matches(m Match, req *http.Request) bool {
	service := req.URL.Query().Get("service")
	push := strings.HasSuffix(req.URL.Path, "/git-receive-pack") || service == "git-receive-pack"
	fetch := strings.HasSuffix(req.URL.Path, "/git-upload-pack") || service == "git-upload-pack"
	switch m {
	case Pushes:
		return push
	case PushPost:
		return push && req.Method == http.MethodPost
	case Fetches:
		return fetch
	}
	return true
}

// fault returns the fault for req, counting it down, and the channel that
// lets it go.
func (r *Remote) fault(req *http.Request) (*Fault, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/git-receive-pack") {
		r.pushes++
	}
	for i, f := range r.faults {
		if !matches(f.Match, req) {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				r.faults = append(r.faults[:i:i], r.faults[i+1:]...)
			}
		}
		return f, r.release
	}
	return nil, r.release
}

func (r *Remote) serve(w http.ResponseWriter, req *http.Request) {
	f, release := r.fault(req)
	if f == nil {
		r.backend.ServeHTTP(w, req)
		return
	}
	switch f.Kind {
	case Status:
		_, _ = io.Copy(io.Discard, req.Body)
		http.Error(w, http.StatusText(f.Status), f.Status)
	case Hang:
		// Read the request: the server then notices when the client
		// goes away.
		_, _ = io.Copy(io.Discard, req.Body)
		select {
		case <-req.Context().Done():
		case <-release:
		}
		drop(w)
	case DropAfterApply:
		rec := httptest.NewRecorder()
		r.backend.ServeHTTP(rec, req)
		r.mu.Lock()
		r.applied++
		r.mu.Unlock()
		if f.Then != nil {
			f.Then()
		}
		drop(w)
		return
	}
	if f.Then != nil {
		f.Then()
	}
}

// drop closes the connection without an answer.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("gittest: the response can't be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, as a crashed server or proxy sends
	}
	_ = conn.Close()
}

// PreReceive installs script as the pre-receive hook of the bare repository
// (a shell script: it reads "old new ref" lines on stdin; what it prints
// reaches the pusher; exiting non-zero refuses the push).
func PreReceive(t testing.TB, bare, script string) {
	t.Helper()
	hooks := filepath.Join(bare, "hooks")
	if err := os.MkdirAll(hooks, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hooks, "pre-receive"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// RemovePreReceive removes the pre-receive hook.
func RemovePreReceive(t testing.TB, bare string) {
	t.Helper()
	if err := os.Remove(filepath.Join(bare, "hooks", "pre-receive")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}
