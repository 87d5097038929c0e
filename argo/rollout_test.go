package argo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
)

const (
	ourImage = "registry.example.com/shop/checkout:1.4.1" // what newRev deploys
	pullErr  = `Failed to pull image "registry.example.com/shop/checkout:1.4.1": rpc error: code = NotFound desc = failed to pull and unpack image "registry.example.com/shop/checkout:1.4.1": failed to resolve reference "registry.example.com/shop/checkout:1.4.1": registry.example.com/shop/checkout:1.4.1: not found`
)

var checkoutProdApp = gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod",
	Location: edit.Location{Layout: edit.LayoutKustomize, Path: "apps/checkout/overlays/prod", Image: "registry.example.com/shop/checkout"}}

// watchChange is watch for a WatchedChange: the rollback of checkout prod
// to 1.4.1 (or the restart given).
func watchChange(t *testing.T, f *fakeArgo, c gitops.WatchedChange, mod func(*WatcherOptions)) watchResult {
	t.Helper()
	w, logs := testWatcher(t, f, mod)
	if c.Target.App == "" {
		c.Target = checkoutProdApp
	}
	if c.Commit == "" {
		c.Commit = newRev
	}
	var res watchResult
	res.status, res.err = w.WatchChange(context.Background(), c, func(st gitops.SyncStatus) {
		res.progress = append(res.progress, st)
	})
	res.log = logs.String()
	return res
}

// wantRollout checks that err reports exactly pods (compared without
// Message, which must contain msg[i]) as a RolloutFailure that is both
// ErrDegraded's.
func wantRollout(t *testing.T, err error, pods []gitops.PodFailure, msgs ...string) *gitops.RolloutFailure {
	t.Helper()
	var f *gitops.RolloutFailure
	if !errors.As(err, &f) {
		t.Fatalf("error %v (%T) carries no *gitops.RolloutFailure", err, err)
	}
	var ue *gitops.UserError
	if !errors.As(err, &ue) || !errors.Is(err, ErrDegraded) || !errors.Is(err, gitops.ErrDegraded) {
		t.Errorf("error %v: want a *gitops.UserError that is argo.ErrDegraded and gitops.ErrDegraded", err)
	}
	got := append([]gitops.PodFailure(nil), f.Pods...)
	for i := range got {
		if i < len(msgs) && !strings.Contains(got[i].Message, msgs[i]) {
			t.Errorf("pod %s: message %q lacks %q", got[i].Pod, got[i].Message, msgs[i])
		}
		got[i].Message = ""
	}
	if d := cmp.Diff(pods, got); d != "" {
		t.Errorf("failing pods (-want +got):\n%s", d)
	}
	if f.App != "checkout-prod" || f.Revision != newRev {
		t.Errorf("failure of %s at %s", f.App, f.Revision)
	}
	return f
}

// A rollback to a tag that does not exist: the new pod waits in
// ImagePullBackOff while the old one serves and the Deployment is merely
// Progressing. The first event of our rollout reports it, with the
// registry's answer from the kubelet's event — on v2 and v3 payloads.
func TestWatchImagePullBackOffReportedAtOnce(t *testing.T) {
	v2 := testdata(t, "checkout-prod-syncing.json")
	// v3 keeps resource health out of the stored Application.
	v3 := setJSON(t, v2, "appTree", "status", "resourceHealthSource")
	v3 = setJSON(t, v3, []any{map[string]any{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "checkout", "status": "Synced"}}, "status", "resources")
	for name, syncing := range map[string][]byte{"v2": v2, "v3": v3} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{
				"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
				"GET /api/v1/stream/applications": streamThenHold(
					event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")),
					event(t, "MODIFIED", syncing),
				),
				"GET /api/v1/applications/checkout-prod/resource-tree": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, testdata(t, "checkout-prod-tree-imagepull.json"))
				},
				"GET /api/v1/applications/checkout-prod/events": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, testdata(t, "checkout-prod-pod-events-imagepull.json"))
				},
			})
			res := watchChange(t, f, gitops.WatchedChange{Tag: "1.4.1"}, nil)
			wantRollout(t, res.err, []gitops.PodFailure{{
				Pod: "shop/checkout-7d9f8c6b5-x2k4q", Workload: "Deployment shop/checkout", Reason: "ImagePullBackOff", Image: ourImage,
			}}, pullErr)
			wantUserError(t, res.err, ErrDegraded, "checkout-prod: pods of c2a6b03 fail", "Pod shop/checkout-7d9f8c6b5-x2k4q: ImagePullBackOff: "+pullErr)
			// The event that showed our sync running ended the watch.
			if n := len(f.requests("GET", "/api/v1/applications/checkout-prod/resource-tree")); n != 1 {
				t.Errorf("%d tree reads, want 1", n)
			}
			ev := f.requests("GET", "/api/v1/applications/checkout-prod/events")
			if len(ev) != 1 || sortQuery("?"+ev[0].Query) != "?resourceName=checkout-7d9f8c6b5-x2k4q&resourceNamespace=shop&resourceUID=a4" {
				t.Errorf("event reads %+v: want the new pod's, by name, namespace and uid", ev)
			}
			if n := len(f.requests("GET", "/api/v1/applications/checkout-prod/resource")); n != 0 {
				t.Errorf("%d manifest reads: the tree's images tell whose pod it is", n)
			}
			last := res.progress[len(res.progress)-1]
			if last != res.status || last.Phase != "Running" || !strings.HasPrefix(last.Message, "Pod shop/checkout-7d9f8c6b5-x2k4q: ImagePullBackOff: Failed to pull image") {
				t.Errorf("last progress %+v, status %+v", last, res.status)
			}
		})
	}
}

// A pod that crash-loops at our revision: its last exit and termination
// message say why.
func TestWatchCrashLoopBackOff(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-progressing.json")),
		),
		"GET /api/v1/applications/checkout-prod/resource-tree": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "checkout-prod-tree-crashloop.json"))
		},
		"GET /api/v1/applications/checkout-prod/resource": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "checkout-prod-pod-crashloop.json"))
		},
	})
	res := watchChange(t, f, gitops.WatchedChange{Tag: "1.4.1"}, nil)
	wantRollout(t, res.err, []gitops.PodFailure{{
		Pod: "shop/checkout-7d9f8c6b5-x2k4q", Workload: "Deployment shop/checkout", Reason: "CrashLoopBackOff", Image: ourImage, Restarts: 3,
	}}, `container "checkout" exited with code 1 (Error): panic: DATABASE_URL is not set`)
	got := f.requests("GET", "/api/v1/applications/checkout-prod/resource")
	if len(got) != 1 || sortQuery("?"+got[0].Query) != "?group=&kind=Pod&namespace=shop&resourceName=checkout-7d9f8c6b5-x2k4q&version=v1" {
		t.Errorf("manifest reads %+v", got)
	}
	if res.status.Sync != "Synced" || res.status.Health != "Progressing" {
		t.Errorf("status %+v: Argo CD's own state, not made up", res.status)
	}
}

// The rollback is asked for because the running version crash-loops: those
// pods belong to the ReplicaSet before and are not blamed on our revision.
func TestWatchOldReplicaSetInTroubleIsNotBlamed(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-syncing.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-progressing.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-healthy.json")),
		),
		"GET /api/v1/applications/checkout-prod/resource-tree": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "checkout-prod-tree-old-crashloop.json"))
		},
	})
	res := watchChange(t, f, gitops.WatchedChange{Tag: "1.4.1"}, func(o *WatcherOptions) { o.TreeInterval = time.Nanosecond })
	if res.err != nil {
		t.Fatalf("watch ended with %v", res.err)
	}
	if res.status != stLive {
		t.Errorf("status %+v", res.status)
	}
	if n := len(f.requests("GET", "/api/v1/applications/checkout-prod/resource-tree")); n == 0 {
		t.Error("the tree was never read")
	}
	if n := len(f.requests("GET", "/api/v1/applications/checkout-prod/events")) + len(f.requests("GET", "/api/v1/applications/checkout-prod/resource")); n != 0 {
		t.Errorf("%d detail reads about a pod that is not ours", n)
	}
}

// A restart keeps the image: the restart annotation on the pod tells ours
// from the pods before, which crash-loop too.
func TestWatchRestartBlamesOnlyRestartedPods(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-progressing.json")),
		),
		"GET /api/v1/applications/checkout-prod/resource-tree": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "checkout-prod-tree-restart-crashloop.json"))
		},
		"GET /api/v1/applications/checkout-prod/resource": func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Query().Get("resourceName") {
			case "checkout-6c5b4d3f2-h8k2m":
				writeJSON(w, testdata(t, "checkout-prod-pod-restart-old.json"))
			case "checkout-8e7f6a5b4-p4n7r":
				writeJSON(w, testdata(t, "checkout-prod-pod-restart-new.json"))
			default:
				grpcError(w, http.StatusNotFound, 5, "not found")
			}
		},
	})
	res := watchChange(t, f, gitops.WatchedChange{Restart: "2026-03-02T14:10:00Z"}, nil)
	wantRollout(t, res.err, []gitops.PodFailure{{
		Pod: "shop/checkout-8e7f6a5b4-p4n7r", Workload: "Deployment shop/checkout", Reason: "CrashLoopBackOff", Image: ourImage, Restarts: 2,
	}}, `container "checkout" exited with code 2 (Error): listen tcp :8080: bind: address already in use`)
}

// A pod that runs but whose readiness probe keeps failing: reported once
// it was seen so twice and the probe failed ReadinessFailures times, with
// the count of a core/v1 event and of an events.k8s.io one (series).
func TestWatchReadinessFailing(t *testing.T) {
	for _, events := range []string{"checkout-prod-pod-events-unready.json", "checkout-prod-pod-events-unready-series.json"} {
		t.Run(events, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{
				"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
				"GET /api/v1/stream/applications": streamThenHold(
					event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")),
					event(t, "MODIFIED", testdata(t, "checkout-prod-progressing.json")),
				),
				"GET /api/v1/applications/checkout-prod/resource-tree": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, testdata(t, "checkout-prod-tree-unready.json"))
				},
				"GET /api/v1/applications/checkout-prod/events": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, testdata(t, events))
				},
			})
			res := watchChange(t, f, gitops.WatchedChange{Tag: "1.4.1"}, func(o *WatcherOptions) { o.TreeInterval = time.Nanosecond })
			wantRollout(t, res.err, []gitops.PodFailure{{
				Pod: "shop/checkout-7d9f8c6b5-x2k4q", Workload: "Deployment shop/checkout", Reason: ReasonReadiness, Image: ourImage,
			}}, "Readiness probe failed: HTTP probe failed with statuscode: 503 (4 times)")
			if n := len(f.requests("GET", "/api/v1/applications/checkout-prod/resource-tree")); n < 2 {
				t.Errorf("%d tree reads: a pod not ready once is not looked at", n)
			}
		})
	}
}

// Fewer failed probes than ReadinessFailures: a pod still starting, not a
// failure.
func TestWatchReadinessNotYetFailing(t *testing.T) {
	few := bytes.ReplaceAll(testdata(t, "checkout-prod-pod-events-unready.json"), []byte(`"count": 4`), []byte(`"count": 2`))
	var f *fakeArgo
	f = newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) {
			streamLines(w, event(t, "ADDED", testdata(t, "checkout-prod-progressing.json")))
			// Healthy once shipbot looked at the pod's events.
			for len(f.requests("GET", "/api/v1/applications/checkout-prod/events")) == 0 {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(time.Millisecond):
				}
			}
			streamLines(w, event(t, "MODIFIED", testdata(t, "checkout-prod-healthy.json")))
			holdOpen(r)
		},
		"GET /api/v1/applications/checkout-prod/resource-tree": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "checkout-prod-tree-unready.json"))
		},
		"GET /api/v1/applications/checkout-prod/events": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, few)
		},
	})
	res := watchChange(t, f, gitops.WatchedChange{Tag: "1.4.1"}, func(o *WatcherOptions) { o.TreeInterval = time.Nanosecond })
	if res.err != nil {
		t.Fatalf("watch ended with %v", res.err)
	}
}

// Argo CD calls the app Degraded (progress deadline): with the change
// known, the pods' own reason comes with it, as a RolloutFailure.
func TestWatchDegradedWithPodsOfOurs(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-degraded.json")),
		),
		"GET /api/v1/applications/checkout-prod/resource-tree": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "checkout-prod-resource-tree.json"))
		},
		// No events endpoint: the container's own message is kept.
	})
	res := watchChange(t, f, gitops.WatchedChange{Tag: "1.4.1"}, nil)
	wantRollout(t, res.err, []gitops.PodFailure{{
		Pod: "shop/checkout-7d9f8c6b5-x2k4q", Workload: "Deployment shop/checkout", Reason: "ImagePullBackOff", Image: ourImage,
	}}, `Back-off pulling image "registry.example.com/shop/checkout:1.4.1"`)
	if res.status.Health != "Degraded" || !strings.Contains(res.status.Message, `Deployment shop/checkout: Deployment "checkout" exceeded its progress deadline`) {
		t.Errorf("status %+v lacks Argo CD's own reason", res.status)
	}
}

// A plain Watch knows neither tag nor restart: it reads no tree while the
// app rolls out (no pod can be told to be ours).
func TestPlainWatchReadsNoTree(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-progressing.json")),
			event(t, "MODIFIED", testdata(t, "checkout-prod-healthy.json")),
		),
	})
	res := watch(t, f, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"}, nil)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if n := len(f.requests("GET", "/api/v1/applications/checkout-prod/resource-tree")); n != 0 {
		t.Errorf("%d tree reads", n)
	}
}

func TestImageIsOurs(t *testing.T) {
	for _, tc := range []struct {
		ref, image, tag string
		want            bool
	}{
		{"registry.example.com/shop/checkout:1.4.1", "registry.example.com/shop/checkout", "1.4.1", true},
		{"registry.example.com/shop/checkout:1.4.2", "registry.example.com/shop/checkout", "1.4.1", false},
		{"127.0.0.1:5000/checkout:1.4.1", "127.0.0.1:5000/checkout", "1.4.1", true},
		{"127.0.0.1:5000/checkout", "127.0.0.1:5000/checkout", "5000/checkout", false},
		{"mirror.internal/shop/checkout:1.4.1@sha256:6f1c", "registry.example.com/shop/checkout", "1.4.1", true}, // kustomize newName, digest pinned
		{"registry.example.com/shop/istio-proxy:1.4.1", "registry.example.com/shop/checkout", "1.4.1", false},    // a sidecar with the same tag
		{"registry.example.com/shop/checkout@sha256:6f1c", "registry.example.com/shop/checkout", "1.4.1", false},
		{"checkout:1.4.1", "", "1.4.1", true},
	} {
		if got := imageIsOurs(tc.ref, tc.image, tc.tag); got != tc.want {
			t.Errorf("imageIsOurs(%q, %q, %q) = %v", tc.ref, tc.image, tc.tag, got)
		}
	}
}

func BenchmarkPodFailures(b *testing.B) {
	tree := roundTripTree(b, testdata(b, "checkout-prod-tree-old-crashloop.json"))
	w, err := NewWatcher(&Client{}, WatcherOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r := &run{w: w, change: gitops.WatchedChange{Target: checkoutProdApp, Commit: newRev, Tag: "1.4.1"}, commit: newRev, pods: newPodChecks(), log: w.opts.Logger}
	ctx := context.Background()
	for b.Loop() {
		if f := r.podFailures(ctx, tree); f != nil {
			b.Fatal(f)
		}
	}
}

func roundTripTree(tb testing.TB, b []byte) *Tree {
	var t Tree
	if err := json.Unmarshal(b, &t); err != nil {
		tb.Fatal(err)
	}
	return &t
}
