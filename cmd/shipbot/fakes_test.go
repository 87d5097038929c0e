package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdPagerDutyFake implements `pagerduty-fake ID=STATUS...`: a PagerDuty
// REST API v2 on 127.0.0.1 (GET /incidents/{id}, POST /incidents/{id}/notes)
// for the scripts' live justification checks. It sets PAGERDUTY_URL, checks
// the token header, and appends every note it receives to
// $WORK/pagerduty-notes.log. The server stops when the script ends.
func cmdPagerDutyFake(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! pagerduty-fake")
	}
	incidents := map[string]string{}
	for _, a := range args {
		id, status, ok := strings.Cut(a, "=")
		if !ok {
			ts.Fatalf("usage: pagerduty-fake ID=STATUS...")
		}
		incidents[id] = status
	}
	notes := filepath.Join(ts.Getenv("WORK"), "pagerduty-notes.log")
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Token token=pd-test-token" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":{"message":"Unauthorized","code":2006}}`)
			return
		}
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) < 2 || parts[0] != "incidents" {
			http.NotFound(w, r)
			return
		}
		status, ok := incidents[parts[1]]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"message":"Not Found","code":2100}}`)
			return
		}
		if len(parts) == 3 && parts[2] == "notes" && r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			f, err := os.OpenFile(notes, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err == nil {
				fmt.Fprintf(f, "%s from=%s %s\n", parts[1], r.Header.Get("From"), body)
				f.Close()
			}
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"note":{"id":"PWL7QXS","content":"ok"}}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"incident": map[string]any{
			"id": parts[1], "type": "incident", "incident_number": 1234, "title": "checkout errors", "status": status,
			"html_url": "https://acme.pagerduty.com/incidents/" + parts[1],
			"service":  map[string]any{"id": "PIJ90N7", "type": "service_reference", "summary": "checkout"},
		}})
	}))
	ts.Defer(srv.Close)
	ts.Setenv("PAGERDUTY_URL", srv.URL)
}

// cmdEnvsubst implements `envsubst FILE`: replaces $VAR and ${VAR} in FILE
// with the script's environment (txtar files are not expanded).
func cmdEnvsubst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: envsubst FILE")
	}
	p := ts.MkAbs(args[0])
	data, err := os.ReadFile(p)
	ts.Check(err)
	ts.Check(os.WriteFile(p, []byte(os.Expand(string(data), ts.Getenv)), 0o644))
}
