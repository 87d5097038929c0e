package argo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// chunked writes b in pieces of n bytes, each flushed on its own, so that
// lines arrive split across reads.
func chunked(w http.ResponseWriter, b []byte, n int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	for len(b) > 0 {
		k := min(n, len(b))
		w.Write(b[:k])
		w.(http.Flusher).Flush()
		b = b[k:]
	}
}

func readAll(t *testing.T, s *EventStream) ([]WatchEvent, error) {
	t.Helper()
	var evs []WatchEvent
	for {
		ev, err := s.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

func TestStreamDecodesNewlineDelimitedResults(t *testing.T) {
	var stream bytes.Buffer
	stream.Write(event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")))
	stream.WriteString("\n") // blank lines are skipped
	stream.Write(event(t, "MODIFIED", testdata(t, "checkout-prod-syncing.json")))
	stream.Write(event(t, "MODIFIED", testdata(t, "checkout-prod-v3-healthy.json")))
	for _, size := range []int{7, 4096, stream.Len()} {
		f := newFake(t, map[string]http.HandlerFunc{
			"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) {
				chunked(w, stream.Bytes(), size)
			},
		})
		s, err := f.client(t).Watch(context.Background(), "checkout-prod")
		if err != nil {
			t.Fatal(err)
		}
		evs, err := readAll(t, s)
		s.Close()
		if !errors.Is(err, io.EOF) {
			t.Errorf("chunks of %d: stream ended with %v, want io.EOF", size, err)
		}
		if len(evs) != 3 {
			t.Fatalf("chunks of %d: %d events, want 3", size, len(evs))
		}
		phases := []string{evs[0].Application.Status.OperationState.Phase, evs[1].Application.Status.OperationState.Phase, evs[2].Application.Status.OperationState.Phase}
		if evs[0].Type != "ADDED" || evs[2].Type != "MODIFIED" || strings.Join(phases, ",") != "Succeeded,Running,Succeeded" {
			t.Errorf("chunks of %d: events %s/%s phases %v", size, evs[0].Type, evs[2].Type, phases)
		}
		if evs[2].Application.Status.Sync.Revision != newRev || evs[2].Application.Status.Health.Status != HealthHealthy {
			t.Errorf("chunks of %d: last event %+v", size, evs[2].Application.Status.Sync)
		}
	}
}

func TestStreamRequest(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) {
			streamLines(w, event(t, "ADDED", testdata(t, "checkout-prod-before.json")))
		},
	})
	s, err := f.client(t).Watch(context.Background(), "search-apps/search-prod-us")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, s)
	s.Close()
	r := f.requests("GET", "/api/v1/stream/applications")[0]
	if r.StreamName != "search-prod-us" || r.AppNamespace != "search-apps" {
		t.Errorf("query %q: want name=search-prod-us&appNamespace=search-apps", r.Query)
	}
	if r.Auth != "Bearer "+testToken || r.AcceptEncoding != "identity" {
		t.Errorf("headers: Authorization %q, Accept-Encoding %q", r.Auth, r.AcceptEncoding)
	}
}

func TestStreamLargeEvent(t *testing.T) {
	// An app with many resources is one line far above bufio's 64 KiB.
	app := testdata(t, "checkout-prod-healthy.json")
	var resources []any
	for i := range 2000 {
		resources = append(resources, map[string]any{
			"version": "v1", "kind": "ConfigMap", "namespace": "shop", "name": strings.Repeat("c", 40) + string(rune('a'+i%26)),
			"status": "Synced", "health": map[string]any{"status": "Healthy"},
		})
	}
	big := setJSON(t, app, resources, "status", "resources")
	line := event(t, "MODIFIED", big)
	if len(line) < 200<<10 {
		t.Fatalf("event is only %d bytes", len(line))
	}
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) { chunked(w, line, 10000) },
	})
	s, err := f.client(t).Watch(context.Background(), "checkout-prod")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Application.Status.Resources) != 2000 {
		t.Errorf("%d resources decoded, want 2000", len(ev.Application.Status.Resources))
	}
}

func TestStreamEnds(t *testing.T) {
	full := event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json"))
	for _, tc := range []struct {
		name   string
		body   []byte
		events int
		want   func(error) bool
	}{
		{"clean end", full, 1, func(err error) bool { return errors.Is(err, io.EOF) }},
		{"last line without newline", bytes.TrimSuffix(full, []byte("\n")), 1, func(err error) bool { return errors.Is(err, io.EOF) }},
		{"cut inside a message", append(append([]byte{}, full...), full[:len(full)/2]...), 1,
			func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"error message", append(append([]byte{}, full...), `{"error":{"grpc_code":7,"http_code":403,"message":"permission denied","http_status":"Forbidden"}}`+"\n"...), 1,
			func(err error) bool {
				var ae *APIError
				return errors.As(err, &ae) && ae.StatusCode == 403 && ae.Code == 7 && errors.Is(err, ErrPermissionDenied)
			}},
		{"garbage", []byte("<html>proxy error</html>\n"), 0, func(err error) bool { return err != nil && !errors.Is(err, io.EOF) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{
				"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) { chunked(w, tc.body, 1000) },
			})
			s, err := f.client(t).Watch(context.Background(), "checkout-prod")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			evs, err := readAll(t, s)
			if len(evs) != tc.events || !tc.want(err) {
				t.Errorf("%d events, end %v", len(evs), err)
			}
		})
	}
}

func TestStreamRefusedAtConnect(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) {
			grpcError(w, http.StatusServiceUnavailable, 14, "connection refused")
		},
	})
	_, err := f.client(t).Watch(context.Background(), "checkout-prod")
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 503 || !ae.Temporary() {
		t.Fatalf("Watch: %v, want a temporary 503", err)
	}
}
