// Package leasetest serves coordination.k8s.io/v1 Leases over HTTP as
// kube-apiserver does, for tests of leader election: GET, POST (409
// AlreadyExists) and PUT with a resourceVersion that must match (409
// Conflict), Status objects for errors, a bearer token.
package leasetest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Token is the bearer token the server accepts.
const Token = "sa-token"

// Namespace is the only namespace it serves.
const Namespace = "shipbot"

// Server keeps Leases in memory.
type Server struct {
	URL     string
	mu      sync.Mutex
	leases  map[string]map[string]any // name -> object
	version int
	// Refuse, when set for an identity, answers its writes 503 (a replica
	// cut off from the API server).
	Refuse sync.Map
	Writes atomic.Int32
}

// New starts a Server on 127.0.0.1, stopped when the test ends.
func New(t testing.TB) *Server {
	a := &Server{leases: map[string]map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

func status(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg, "reason": reason, "code": code})
}

func (a *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+Token {
		status(w, 401, "Unauthorized", "Unauthorized")
		return
	}
	const prefix = "/apis/coordination.k8s.io/v1/namespaces/" + Namespace + "/leases"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		status(w, 404, "NotFound", "the server could not find the requested resource")
		return
	}
	name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, prefix), "/")
	a.mu.Lock()
	defer a.mu.Unlock()
	var body map[string]any
	if r.Method != http.MethodGet {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			status(w, 400, "BadRequest", err.Error())
			return
		}
		holder, _ := body["spec"].(map[string]any)["holderIdentity"].(string)
		if _, cut := a.Refuse.Load(holder); cut {
			status(w, 503, "ServiceUnavailable", "cut off")
			return
		}
		a.Writes.Add(1)
	}
	meta := func(o map[string]any) map[string]any { return o["metadata"].(map[string]any) }
	switch r.Method {
	case http.MethodGet:
		o, ok := a.leases[name]
		if !ok {
			status(w, 404, "NotFound", `leases.coordination.k8s.io "`+name+`" not found`)
			return
		}
		_ = json.NewEncoder(w).Encode(o)
	case http.MethodPost:
		name = meta(body)["name"].(string)
		if _, ok := a.leases[name]; ok {
			status(w, 409, "AlreadyExists", `leases.coordination.k8s.io "`+name+`" already exists`)
			return
		}
		a.version++
		meta(body)["resourceVersion"] = strconv.Itoa(a.version)
		a.leases[name] = body
		w.WriteHeader(201)
		_ = json.NewEncoder(w).Encode(body)
	case http.MethodPut:
		cur, ok := a.leases[name]
		if !ok {
			status(w, 404, "NotFound", `leases.coordination.k8s.io "`+name+`" not found`)
			return
		}
		if meta(body)["resourceVersion"] != meta(cur)["resourceVersion"] {
			status(w, 409, "Conflict", "Operation cannot be fulfilled on leases.coordination.k8s.io \""+name+"\": the object has been modified; please apply your changes to the latest version and try again")
			return
		}
		a.version++
		meta(body)["resourceVersion"] = strconv.Itoa(a.version)
		a.leases[name] = body
		_ = json.NewEncoder(w).Encode(body)
	default:
		status(w, 405, "MethodNotAllowed", "method not allowed")
	}
}

// Holder is who holds the Lease name ("" = nobody, or no such Lease).
func (a *Server) Holder(name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	o, ok := a.leases[name]
	if !ok {
		return ""
	}
	h, _ := o["spec"].(map[string]any)["holderIdentity"].(string)
	return h
}
