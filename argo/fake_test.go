package argo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The revisions in testdata/: the app was synced at oldRev; shipbot's
// commit is newRev.
const (
	oldRev = "c00dbbc9dadfbe1e232e93a729dd4752fade0abf"
	newRev = "c2a6b03f190dfb2b4aa91f8af8d477a9bc3401dc"
	// testToken looks like an Argo CD API token; no error may show it.
	testToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzaGlwYm90OmFwaUtleSJ9.S3cr3t-Sig_Na7ure"
)

// testdata returns a file of testdata/.
func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seenRequest is one request the fake server got.
type seenRequest struct {
	Method, Path, Query   string
	Auth, ContentType     string
	AcceptEncoding        string
	Body                  []byte
	AppNamespace, Refresh string
	StreamName            string
}

// fakeArgo is an httptest server that speaks Argo CD's REST wire format
// through the handlers a test gives it, checks the bearer token like the
// API server does, and records every request.
type fakeArgo struct {
	*httptest.Server
	t     testing.TB
	mu    sync.Mutex
	seen  []seenRequest
	token string
}

// newFake serves routes ("METHOD /path" patterns of net/http).
func newFake(t testing.TB, routes map[string]http.HandlerFunc) *fakeArgo {
	t.Helper()
	f := &fakeArgo{t: t, token: testToken}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		q := r.URL.Query()
		f.mu.Lock()
		f.seen = append(f.seen, seenRequest{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type"),
			AcceptEncoding: r.Header.Get("Accept-Encoding"), Body: body,
			AppNamespace: q.Get("appNamespace"), Refresh: q.Get("refresh"), StreamName: q.Get("name"),
		})
		token := f.token
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+token {
			grpcError(w, http.StatusUnauthorized, 16, "invalid session: token signature is invalid")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// requests returns the recorded requests matching method and path ("" = any).
func (f *fakeArgo) requests(method, path string) []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []seenRequest
	for _, s := range f.seen {
		if (method == "" || s.Method == method) && (path == "" || s.Path == path) {
			out = append(out, s)
		}
	}
	return out
}

// client returns a Client for f with the token in a file (with the
// whitespace and newline an editor or kubectl leaves).
func (f *fakeArgo) client(t testing.TB, mod ...func(*ClientOptions)) *Client {
	t.Helper()
	o := ClientOptions{Server: f.URL, TokenFile: writeToken(t, "\n  "+testToken+"  \n")}
	for _, m := range mod {
		m(&o)
	}
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeToken(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeJSON answers 200 with body.
func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// grpcError answers like grpc-gateway v1 does for a failed unary call.
func grpcError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"code":%d,"message":%q,"details":[]}`, msg, code, msg)
}

// event is one line of the watch stream carrying app.
func event(t testing.TB, typ string, app []byte) []byte {
	t.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, app); err != nil {
		t.Fatal(err)
	}
	return fmt.Appendf(nil, `{"result":{"type":%q,"application":%s}}`+"\n", typ, compact.Bytes())
}

// streamLines writes lines as the gateway does: headers, then each line
// flushed on its own.
func streamLines(w http.ResponseWriter, lines ...[]byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	for _, l := range lines {
		w.Write(l)
		w.(http.Flusher).Flush()
	}
}

// holdOpen keeps a stream open until the client goes away.
func holdOpen(r *http.Request) { <-r.Context().Done() }

// setJSON returns app with the field at path (keys) set to value; every
// other field, known or not, is kept.
func setJSON(t testing.TB, app []byte, value any, path ...string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(app, &m); err != nil {
		t.Fatal(err)
	}
	cur := m
	for _, k := range path[:len(path)-1] {
		next, ok := cur[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[k] = next
		}
		cur = next
	}
	cur[path[len(path)-1]] = value
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
