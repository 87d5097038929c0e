package argo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
)

var (
	checkoutProd = gitops.Target{App: "checkout", Env: "prod",
		Location: edit.Location{Layout: edit.LayoutKustomize, Path: "apps/checkout/overlays/prod"}}
	paymentsProd = gitops.Target{App: "payments", Env: "prod",
		Location: edit.Location{Layout: edit.LayoutHelm, Path: "apps/payments/values-prod.yaml"}}
	paymentsStaging = gitops.Target{App: "payments", Env: "staging", ArgoApp: "payments-staging",
		Location: edit.Location{Layout: edit.LayoutHelm, Path: "apps/payments/values-staging.yaml"}}
)

// syncBuffer is a log sink safe for concurrent writes.
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

// watchResult is what one Watch did.
type watchResult struct {
	status   gitops.SyncStatus
	err      error
	progress []gitops.SyncStatus
	log      string
}

// watch runs one Watch against f with short pauses and a generous
// timeout; mod changes the options.
func watch(t *testing.T, f *fakeArgo, tg gitops.Target, mod func(*WatcherOptions)) watchResult {
	t.Helper()
	w, logs := testWatcher(t, f, mod)
	var res watchResult
	res.status, res.err = w.Watch(context.Background(), tg, newRev, func(st gitops.SyncStatus) {
		res.progress = append(res.progress, st)
	})
	res.log = logs.String()
	if strings.Contains(res.log, testToken) {
		t.Errorf("the log shows the token:\n%s", res.log)
	}
	if res.err != nil && strings.Contains(res.err.Error(), testToken) {
		t.Errorf("the error shows the token: %v", res.err)
	}
	return res
}

// testWatcher is a Watcher of f with short pauses, a generous timeout and
// a debug log; mod changes the options.
func testWatcher(t *testing.T, f *fakeArgo, mod func(*WatcherOptions)) (*Watcher, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	o := WatcherOptions{
		RepoURL: "https://GitHub.com/acme/env/", Branch: "main",
		Timeout:    10 * time.Second,
		BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		StreamIdle: 10 * time.Second,
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&o)
	}
	w, err := NewWatcher(f.client(t), o)
	if err != nil {
		t.Fatal(err)
	}
	return w, logs
}

// wantUserError checks that err is a *gitops.UserError wrapping sentinel
// whose message has every part of msg.
func wantUserError(t *testing.T, err, sentinel error, msg ...string) {
	t.Helper()
	var ue *gitops.UserError
	if !errors.As(err, &ue) || !errors.Is(err, sentinel) {
		t.Fatalf("error %v (%T), want a *gitops.UserError wrapping %v", err, err, sentinel)
	}
	for _, m := range msg {
		if !strings.Contains(ue.Message, m) {
			t.Errorf("message %q lacks %q", ue.Message, m)
		}
	}
}

// streamThenHold answers every stream with lines, then keeps it open.
func streamThenHold(lines ...[]byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		streamLines(w, lines...)
		holdOpen(r)
	}
}

// getApp answers a refresh with refreshed and a plain Get with plain.
func getApp(t *testing.T, refreshed, plain []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("refresh") != "" {
			writeJSON(w, refreshed)
			return
		}
		writeJSON(w, plain)
	}
}

var (
	stOutOfSync = gitops.SyncStatus{Sync: "OutOfSync", Health: "Healthy", Revision: newRev}
	stSyncing   = gitops.SyncStatus{Sync: "OutOfSync", Health: "Healthy", Revision: newRev, Phase: "Running",
		Message: "waiting for healthy state of apps/Deployment/checkout"}
	stProgressing = gitops.SyncStatus{Sync: "Synced", Health: "Progressing", Revision: newRev, Phase: "Succeeded",
		Message: "successfully synced (all tasks run); Deployment shop/checkout: Waiting for rollout to finish: 1 old replicas are pending termination..."}
	stLive = gitops.SyncStatus{Sync: "Synced", Health: "Healthy", Revision: newRev, Phase: "Succeeded"}
)

func TestWatchAutomatedSyncReachesHealthy(t *testing.T) {
	for _, final := range []string{"checkout-prod-healthy.json", "checkout-prod-v3-healthy.json"} {
		t.Run(final, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{
				"GET /api/v1/applications": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, testdata(t, "applications.json"))
				},
				"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), testdata(t, final)),
				"GET /api/v1/stream/applications": streamThenHold(
					event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")),
					event(t, "MODIFIED", testdata(t, "checkout-prod-syncing.json")),
					event(t, "MODIFIED", testdata(t, "checkout-prod-progressing.json")),
					event(t, "MODIFIED", testdata(t, final)),
				),
			})
			res := watch(t, f, checkoutProd, nil) // no ArgoApp: discovery finds checkout-prod
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.status != stLive {
				t.Errorf("status %+v, want %+v", res.status, stLive)
			}
			if d := cmp.Diff([]gitops.SyncStatus{stOutOfSync, stSyncing, stProgressing, stLive}, res.progress); d != "" {
				t.Errorf("progress (-want +got):\n%s", d)
			}
			gets := f.requests("GET", "/api/v1/applications/checkout-prod")
			if len(gets) != 1 || gets[0].Refresh != RefreshNormal {
				t.Errorf("GETs of the app: %+v, want one with refresh=normal", gets)
			}
			if n := len(f.requests("POST", "")); n != 0 {
				t.Errorf("%d POSTs: an app with automated sync syncs by itself", n)
			}
			if s := f.requests("GET", "/api/v1/stream/applications"); len(s) != 1 || s[0].StreamName != "checkout-prod" {
				t.Errorf("streams: %+v", s)
			}
		})
	}
}

// dropConnection writes lines and a piece of the next one, then kills the
// TCP connection as a crashing server or proxy would.
func dropConnection(t *testing.T, w http.ResponseWriter, lines []byte, partial []byte) {
	streamLines(w, lines, partial[:len(partial)/2])
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	conn.Close()
}

func TestWatchStreamDropsThenPollsToHealthy(t *testing.T) {
	var streams, polls atomic.Int32
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("refresh") != "" {
				writeJSON(w, testdata(t, "checkout-prod-outofsync.json"))
				return
			}
			switch polls.Add(1) {
			case 1: // Argo CD's API server is restarting
				grpcError(w, http.StatusServiceUnavailable, 14, "upstream connect error")
			case 2:
				writeJSON(w, testdata(t, "checkout-prod-progressing.json"))
			default:
				writeJSON(w, testdata(t, "checkout-prod-healthy.json"))
			}
		},
		"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) {
			if streams.Add(1) > 1 {
				grpcError(w, http.StatusBadGateway, 14, "stream unavailable")
				return
			}
			var lines bytes.Buffer
			lines.Write(event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")))
			lines.Write(event(t, "MODIFIED", testdata(t, "checkout-prod-syncing.json")))
			dropConnection(t, w, lines.Bytes(), event(t, "MODIFIED", testdata(t, "checkout-prod-progressing.json")))
		},
	})
	res := watch(t, f, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod", Location: checkoutProd.Location}, nil)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.status != stLive {
		t.Errorf("status %+v, want %+v", res.status, stLive)
	}
	if len(res.progress) != 5 {
		t.Fatalf("progress %+v, want 5 steps", res.progress)
	}
	unreachable := res.progress[2]
	if !strings.HasPrefix(unreachable.Message, "can't reach Argo CD, retrying: ") || !strings.Contains(unreachable.Message, "503") {
		t.Errorf("progress while Argo CD was down: %+v", unreachable)
	}
	unreachable.Message = stSyncing.Message
	if d := cmp.Diff([]gitops.SyncStatus{stOutOfSync, stSyncing, stSyncing, stProgressing, stLive},
		append(res.progress[:2:2], append([]gitops.SyncStatus{unreachable}, res.progress[3:]...)...)); d != "" {
		t.Errorf("progress (-want +got):\n%s", d)
	}
	if streams.Load() != 3 || polls.Load() != 3 {
		t.Errorf("%d streams and %d polls, want 3 and 3 (stream, poll, stream, poll, stream, poll)", streams.Load(), polls.Load())
	}
}

func TestWatchDegraded(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-syncing.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-progressing.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-degraded.json")),
		),
		"GET /api/v1/applications/checkout-prod/resource-tree": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "checkout-prod-resource-tree.json"))
		},
	})
	res := watch(t, f, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"}, nil)
	deployment := `Deployment shop/checkout: Deployment "checkout" exceeded its progress deadline`
	condition := "OrphanedResourceWarning: Application has 1 orphaned resources"
	pod := `Pod shop/checkout-7d9f8c6b5-x2k4q: Back-off pulling image "registry.example.com/shop/checkout:1.4.1"`
	wantUserError(t, res.err, ErrDegraded, "checkout-prod is Degraded after syncing c2a6b03", deployment, condition, pod)
	want := gitops.SyncStatus{Sync: "Synced", Health: "Degraded", Revision: newRev, Phase: "Succeeded",
		Message: deployment + "; " + condition + "; " + pod}
	if res.status != want {
		t.Errorf("status\n%+v\nwant\n%+v", res.status, want)
	}
	if last := res.progress[len(res.progress)-1]; last != want {
		t.Errorf("last progress %+v", last)
	}
}

// A rollback is often made while the app is Degraded: that state, and a
// Degraded that the controller computed before our sync finished, must not
// end the watch.
func TestWatchDegradedBeforeOurSyncDoesNotCount(t *testing.T) {
	stale := setJSON(t, testdata(t, "checkout-prod-progressing.json"), map[string]any{"status": "Degraded"}, "status", "health")
	stale = setJSON(t, stale, "2026-03-02T14:10:04Z", "status", "reconciledAt") // before finishedAt 14:10:05
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-before-degraded.json"), nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", testdata(t, "checkout-prod-before-degraded.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-syncing.json")),
			event(t, "MODIFIED", stale),
			event(t, "MODIFIED", testdata(t, "checkout-prod-healthy.json")),
		),
	})
	res := watch(t, f, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"}, nil)
	if res.err != nil {
		t.Fatalf("watch ended with %v; progress %+v", res.err, res.progress)
	}
	if res.progress[0].Health != "Degraded" || res.progress[0].Revision != oldRev {
		t.Errorf("first progress %+v, want Degraded at the old revision", res.progress[0])
	}
}

func TestWatchSyncFailed(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-syncing.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-failed.json")),
		),
	})
	res := watch(t, f, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"}, nil)
	hook := "Job shop/checkout-db-migrate (PreSync hook): Job has reached the specified backoff limit"
	apply := `Deployment shop/checkout: admission webhook "validate.kyverno.svc-fail" denied the request: image tag 1.4.1 is not signed`
	wantUserError(t, res.err, ErrSyncFailed, "Argo CD's sync of checkout-prod to c2a6b03 ended Failed", hook, apply, "SyncError: Failed sync attempt to "+newRev)
	if res.status.Phase != "Failed" || !strings.HasPrefix(res.status.Message, "one or more synchronization tasks completed unsuccessfully") {
		t.Errorf("status %+v", res.status)
	}
}

func TestWatchOldFailedSyncDoesNotCount(t *testing.T) {
	oldFailure := bytes.ReplaceAll(testdata(t, "checkout-prod-failed.json"), []byte(newRev), []byte(oldRev))
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, oldFailure, nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", oldFailure),
			event(t, "MODIFIED", testdata(t, "checkout-prod-syncing.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-healthy.json")),
		),
	})
	res := watch(t, f, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"}, nil)
	if res.err != nil {
		t.Fatalf("watch ended with %v", res.err)
	}
	if res.progress[0].Phase != "" || !strings.Contains(res.progress[0].Message, "waiting for Argo CD to see c2a6b03") {
		t.Errorf("first progress %+v: an old failed sync is not ours", res.progress[0])
	}
}

func TestWatchTimeout(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), testdata(t, "checkout-prod-outofsync.json")),
		"GET /api/v1/stream/applications":        streamThenHold(event(t, "ADDED", testdata(t, "checkout-prod-syncing.json"))),
	})
	res := watch(t, f, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"}, func(o *WatcherOptions) {
		o.Timeout = 500 * time.Millisecond
	})
	wantUserError(t, res.err, ErrTimeout, "checkout-prod was not Synced and Healthy at c2a6b03 after",
		"last seen: OutOfSync/Healthy at c2a6b03 (Running): waiting for healthy state of apps/Deployment/checkout")
	if res.status != stSyncing {
		t.Errorf("status %+v, want the last seen %+v", res.status, stSyncing)
	}
}

func TestWatchArgoDownUntilTimeout(t *testing.T) {
	down := func(w http.ResponseWriter, r *http.Request) {
		grpcError(w, http.StatusServiceUnavailable, 14, "no healthy upstream")
	}
	for _, tc := range []struct {
		name string
		t    gitops.Target
		msg  string
	}{
		{"discovery", checkoutProd, "the Argo CD Application of checkout in prod was not Synced and Healthy"},
		{"named app", gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"}, "checkout-prod was not Synced and Healthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{
				"GET /api/v1/applications":               down,
				"GET /api/v1/applications/checkout-prod": down,
				"GET /api/v1/stream/applications":        down,
			})
			res := watch(t, f, tc.t, func(o *WatcherOptions) { o.Timeout = 500 * time.Millisecond })
			wantUserError(t, res.err, ErrTimeout, tc.msg, "can't reach Argo CD, retrying", "503 no healthy upstream")
			if len(res.progress) == 0 || !strings.HasPrefix(res.progress[0].Message, "can't reach Argo CD, retrying: ") {
				t.Errorf("progress %+v", res.progress)
			}
			// It kept trying: more than one attempt each.
			if n := len(f.requests("GET", "")); n < 4 {
				t.Errorf("%d requests in the whole watch", n)
			}
		})
	}
}

// manualSyncRoutes are Argo CD's answers for payments-prod, a manual app
// that has compared our commit (OutOfSync): sync answers shipbot's sync,
// then the stream shows the operation and the app Synced and Healthy.
func manualSyncRoutes(t *testing.T, sync http.HandlerFunc) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /api/v1/applications": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "applications.json"))
		},
		"GET /api/v1/applications/payments-prod":       getApp(t, testdata(t, "payments-prod-outofsync.json"), nil),
		"POST /api/v1/applications/payments-prod/sync": sync,
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", testdata(t, "payments-prod-sync-response.json")),
			event(t, "MODIFIED", testdata(t, "payments-prod-healthy.json")),
		),
	}
}

// watchManualLive watches payments-prod with SyncManual and wants it live.
func watchManualLive(t *testing.T, f *fakeArgo) watchResult {
	t.Helper()
	res := watch(t, f, paymentsProd, func(o *WatcherOptions) { o.SyncManual = true })
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.status != stLive {
		t.Errorf("status %+v", res.status)
	}
	return res
}

func TestWatchSyncsManualApp(t *testing.T) {
	f := newFake(t, manualSyncRoutes(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, testdata(t, "payments-prod-sync-response.json"))
	}))
	watchManualLive(t, f)
	posts := f.requests("POST", "/api/v1/applications/payments-prod/sync")
	if len(posts) != 1 {
		t.Fatalf("%d sync POSTs, want 1", len(posts))
	}
	var body map[string]any
	// Discovery knows the app's namespace and names it in every call.
	if err := json.Unmarshal(posts[0].Body, &body); err != nil || !cmp.Equal(body, map[string]any{"revision": newRev, "appNamespace": "argocd"}) {
		t.Errorf("sync body %s", posts[0].Body)
	}
	if posts[0].ContentType != "application/json" {
		t.Errorf("Content-Type %q", posts[0].ContentType)
	}
	all := f.requests("", "")
	var order []string
	for _, r := range all {
		order = append(order, r.Method+" "+r.Path+"?"+r.Query)
	}
	want := []string{
		"GET /api/v1/applications?",
		"GET /api/v1/applications/payments-prod?refresh=normal&appNamespace=argocd",
		"POST /api/v1/applications/payments-prod/sync?",
		"GET /api/v1/stream/applications?name=payments-prod&appNamespace=argocd",
	}
	if d := cmp.Diff(want, order, cmp.Transformer("sortQuery", sortQuery)); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
}

// sortQuery makes "path?b=1&a=2" comparable whatever the query order.
func sortQuery(s string) string {
	p, q, _ := strings.Cut(s, "?")
	parts := strings.Split(q, "&")
	for i := range parts {
		for j := i + 1; j < len(parts); j++ {
			if parts[j] < parts[i] {
				parts[i], parts[j] = parts[j], parts[i]
			}
		}
	}
	return p + "?" + strings.Join(parts, "&")
}

func TestWatchManualAppWithoutSyncManual(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/payments-prod": getApp(t, testdata(t, "payments-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications":        streamThenHold(event(t, "ADDED", testdata(t, "payments-prod-outofsync.json"))),
	})
	res := watch(t, f, gitops.Target{App: "payments", Env: "prod", ArgoApp: "payments-prod"}, func(o *WatcherOptions) {
		o.Timeout = 500 * time.Millisecond
	})
	wantUserError(t, res.err, ErrTimeout, "no automated sync: waiting for someone to sync it")
	if n := len(f.requests("POST", "")); n != 0 {
		t.Errorf("%d POSTs without SyncManual", n)
	}
}

func TestWatchSyncRetriedWhileAnotherOperationRuns(t *testing.T) {
	var posts atomic.Int32
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/payments-prod": getApp(t, testdata(t, "payments-prod-outofsync.json"), nil),
		"POST /api/v1/applications/payments-prod/sync": func(w http.ResponseWriter, r *http.Request) {
			if posts.Add(1) == 1 {
				grpcError(w, http.StatusBadRequest, 9, "another operation is already in progress")
				return
			}
			writeJSON(w, testdata(t, "payments-prod-sync-response.json"))
		},
		"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) {
			// The stream says nothing new until shipbot's sync ran.
			lines := [][]byte{event(t, "ADDED", testdata(t, "payments-prod-outofsync.json"))}
			streamLines(w, lines...)
			for posts.Load() < 2 {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(time.Millisecond):
				}
			}
			w.Write(event(t, "MODIFIED", testdata(t, "payments-prod-healthy.json")))
			w.(http.Flusher).Flush()
			holdOpen(r)
		},
	})
	res := watch(t, f, gitops.Target{App: "payments", Env: "prod", ArgoApp: "payments-prod"}, func(o *WatcherOptions) {
		o.SyncManual = true
	})
	if res.err != nil {
		t.Fatal(res.err)
	}
	if posts.Load() != 2 {
		t.Errorf("%d sync POSTs, want 2", posts.Load())
	}
	if n := len(f.requests("GET", "/api/v1/stream/applications")); n != 1 {
		t.Errorf("%d streams: the retry should not need a new stream", n)
	}
	var saw bool
	for _, p := range res.progress {
		saw = saw || p.Message == "another operation is running: shipbot syncs when it ends"
	}
	if !saw {
		t.Errorf("progress %+v does not say why the sync waits", res.progress)
	}
}

func TestWatchRefusedForGood(t *testing.T) {
	for _, tc := range []struct {
		name     string
		routes   map[string]http.HandlerFunc
		sentinel error
		msg      string
	}{
		{"sync permission denied", map[string]http.HandlerFunc{
			"GET /api/v1/applications/payments-prod": getApp(t, testdata(t, "payments-prod-outofsync.json"), nil),
			"POST /api/v1/applications/payments-prod/sync": func(w http.ResponseWriter, r *http.Request) {
				grpcError(w, http.StatusForbidden, 7, "permission denied: applications, sync, payments/payments-prod, sub: shipbot")
			},
		}, ErrPermissionDenied, "Argo CD refused to sync payments-prod: permission denied"},
		{"app gone", map[string]http.HandlerFunc{
			"GET /api/v1/applications/payments-prod": func(w http.ResponseWriter, r *http.Request) {
				grpcError(w, http.StatusForbidden, 7, "permission denied")
			},
		}, ErrPermissionDenied, "Argo CD refused to refresh payments-prod"},
		{"token expired", map[string]http.HandlerFunc{
			"GET /api/v1/applications/payments-prod": func(w http.ResponseWriter, r *http.Request) {
				grpcError(w, http.StatusUnauthorized, 16, "invalid session: token has invalid claims: token is expired")
			},
		}, ErrUnauthenticated, "token was refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.routes)
			res := watch(t, f, gitops.Target{App: "payments", Env: "prod", ArgoApp: "payments-prod"}, func(o *WatcherOptions) {
				o.SyncManual = true
			})
			wantUserError(t, res.err, tc.sentinel, tc.msg)
			if n := len(f.requests("GET", "/api/v1/stream/applications")); n != 0 {
				t.Errorf("kept watching after a final refusal (%d streams)", n)
			}
		})
	}
}

func TestWatchMultiSource(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/payments-staging": getApp(t, testdata(t, "payments-staging-outofsync.json"), nil),
		"POST /api/v1/applications/payments-staging/sync": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "payments-staging-outofsync.json"))
		},
		"GET /api/v1/stream/applications": streamThenHold(event(t, "ADDED", testdata(t, "payments-staging-healthy.json"))),
	})
	res := watch(t, f, paymentsStaging, func(o *WatcherOptions) { o.SyncManual = true })
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.status != stLive {
		t.Errorf("status %+v", res.status)
	}
	posts := f.requests("POST", "")
	if len(posts) != 1 {
		t.Fatalf("%d POSTs", len(posts))
	}
	var body map[string]any
	json.Unmarshal(posts[0].Body, &body)
	if d := cmp.Diff(map[string]any{"revisions": []any{newRev}, "sourcePositions": []any{2.0}}, body); d != "" {
		t.Errorf("sync body (-want +got):\n%s", d)
	}
}

func TestWatchAutomatedSyncSwitchedOff(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-autosync-disabled.json"), nil),
		"POST /api/v1/applications/checkout-prod/sync": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "checkout-prod-autosync-disabled.json"))
		},
		"GET /api/v1/stream/applications": streamThenHold(event(t, "ADDED", testdata(t, "checkout-prod-healthy.json"))),
	})
	res := watch(t, f, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"}, func(o *WatcherOptions) { o.SyncManual = true })
	if res.err != nil {
		t.Fatal(res.err)
	}
	if n := len(f.requests("POST", "")); n != 1 {
		t.Errorf("%d POSTs: automated.enabled=false needs shipbot's sync", n)
	}
}

func TestWatchAppDeleted(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")),
			event(t, "DELETED", testdata(t, "checkout-prod-outofsync.json")),
		),
	})
	res := watch(t, f, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"}, nil)
	wantUserError(t, res.err, ErrAppDeleted, "checkout-prod was deleted")
}

func TestWatchSilentStreamIsReconnected(t *testing.T) {
	var streams atomic.Int32
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), testdata(t, "checkout-prod-syncing.json")),
		"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) {
			if streams.Add(1) == 1 {
				holdOpen(r) // a proxy that buffers the stream: not even headers
				return
			}
			streamThenHold(event(t, "ADDED", testdata(t, "checkout-prod-healthy.json")))(w, r)
		},
	})
	res := watch(t, f, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"}, func(o *WatcherOptions) {
		o.StreamIdle = 20 * time.Millisecond
	})
	if res.err != nil {
		t.Fatal(res.err)
	}
	// A slow machine may give up on the second stream too: at least two.
	if streams.Load() < 2 {
		t.Errorf("%d streams, want a new one after the silent one", streams.Load())
	}
}

func TestWatchContextCancelled(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications":        streamThenHold(event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json"))),
	})
	w, err := NewWatcher(f.client(t), WatcherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err = w.Watch(ctx, gitops.Target{ArgoApp: "checkout-prod"}, newRev, func(st gitops.SyncStatus) {
		if st.Sync == "OutOfSync" {
			cancel() // the user gave up
		}
	})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("Watch: %v, want context.Canceled", err)
	}
}

func TestWatchNeedsAppOrRepo(t *testing.T) {
	f := newFake(t, nil)
	w, err := NewWatcher(f.client(t), WatcherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Watch(context.Background(), checkoutProd, newRev, nil)
	wantUserError(t, err, ErrNoApp, "set argoApp")
	if _, err := w.Watch(context.Background(), checkoutProd, "", nil); err == nil {
		t.Error("Watch without a commit: no error")
	}
}

// Argo CD answers the first refresh without having seen our commit (its
// repo-server failed or lagged): the watcher refreshes again until it has,
// instead of waiting for Argo's own poll (found in the real-Argo e2e run).
func TestWatchRefreshesAgainUntilArgoSeesTheCommit(t *testing.T) {
	stale := setJSON(t, testdata(t, "checkout-prod-outofsync.json"), "c00dbbc9dadfbe1e232e93a729dd4752fade0abf", "status", "sync", "revision")
	var mu sync.Mutex
	refreshes := 0
	seen := make(chan struct{})
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "applications.json"))
		},
		"GET /api/v1/applications/checkout-prod": func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("refresh") == "" {
				writeJSON(w, stale)
				return
			}
			mu.Lock()
			refreshes++
			n := refreshes
			mu.Unlock()
			if n < 3 {
				writeJSON(w, stale) // compared the old revision: our commit not seen
				return
			}
			writeJSON(w, testdata(t, "checkout-prod-outofsync.json"))
			close(seen)
		},
		// Argo only syncs (and the stream only moves) once it saw the commit.
		"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) {
			streamLines(w, event(t, "ADDED", stale))
			select {
			case <-seen:
			case <-r.Context().Done():
				return
			}
			streamLines(w, event(t, "MODIFIED", testdata(t, "checkout-prod-healthy.json")))
			holdOpen(r)
		},
	})
	res := watch(t, f, checkoutProd, nil)
	if res.err != nil {
		t.Fatalf("%v\n%s", res.err, res.log)
	}
	if res.status != stLive {
		t.Errorf("status %+v", res.status)
	}
	if refreshes != 3 {
		t.Errorf("%d refreshes, want 3 (two answered with the old revision)", refreshes)
	}
	if !strings.Contains(res.log, "has not seen the commit yet") {
		t.Errorf("log lacks the re-refresh:\n%s", res.log)
	}
}

// overrideDenied is Argo CD's answer to a sync to a revision other than the
// app's targetRevision when argocd-cm sets
// application.sync.requireOverridePrivilegeForRevisionSync and the account
// has no override (server/application.go, util/rbac EnforceErr; v3.3+).
func overrideDenied(w http.ResponseWriter, r *http.Request) bool {
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	if body["revision"] == nil && body["revisions"] == nil {
		return false
	}
	grpcError(w, http.StatusForbidden, 7, "permission denied: applications, override, default/payments-prod, sub: shipbot, iat: 2026-12-03T09:00:00Z")
	return true
}

func TestWatchSyncsTargetRevisionWhenOverrideRequired(t *testing.T) {
	f := newFake(t, manualSyncRoutes(t, func(w http.ResponseWriter, r *http.Request) {
		if !overrideDenied(w, r) {
			writeJSON(w, testdata(t, "payments-prod-sync-response.json"))
		}
	}))
	res := watchManualLive(t, f)
	posts := f.requests("POST", "/api/v1/applications/payments-prod/sync")
	if len(posts) != 2 {
		t.Fatalf("%d sync POSTs, want 2 (the revision, refused; then the target revision)", len(posts))
	}
	var body map[string]any
	if err := json.Unmarshal(posts[1].Body, &body); err != nil || !cmp.Equal(body, map[string]any{"appNamespace": "argocd"}) {
		t.Errorf("second sync body %s, want no revision", posts[1].Body)
	}
	var said bool
	for _, p := range res.progress {
		said = said || strings.Contains(p.Message, "only the app's target revision")
	}
	if !said {
		t.Errorf("no progress line says why shipbot syncs the target revision: %+v", res.progress)
	}
}

// While Argo CD still resolves the target revision to an older commit,
// syncing it would deploy that one: shipbot waits for the refresh to see
// ours, then syncs.
func TestWatchTargetRevisionSyncWaitsForOurCommit(t *testing.T) {
	var refreshes atomic.Int32
	old := setJSON(t, testdata(t, "payments-prod-outofsync.json"), "c00dbbc9dadfbe1e232e93a729dd4752fade0abf", "status", "sync", "revision")
	var syncedEarly atomic.Bool
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "applications.json"))
		},
		"GET /api/v1/applications/payments-prod": func(w http.ResponseWriter, r *http.Request) {
			if refreshes.Add(1) < 3 {
				writeJSON(w, old)
				return
			}
			writeJSON(w, testdata(t, "payments-prod-outofsync.json"))
		},
		"POST /api/v1/applications/payments-prod/sync": func(w http.ResponseWriter, r *http.Request) {
			if overrideDenied(w, r) {
				return
			}
			if refreshes.Load() < 3 {
				syncedEarly.Store(true)
			}
			writeJSON(w, testdata(t, "payments-prod-sync-response.json"))
		},
		"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) {
			// Nothing new until the refresh sees our commit.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			for refreshes.Load() < 3 {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(time.Millisecond):
				}
			}
			streamLines(w, event(t, "ADDED", testdata(t, "payments-prod-sync-response.json")),
				event(t, "MODIFIED", testdata(t, "payments-prod-healthy.json")))
			holdOpen(r)
		},
	})
	watchManualLive(t, f)
	if syncedEarly.Load() {
		t.Error("shipbot synced the target revision while Argo CD resolved it to an older commit")
	}
}
