package argo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/shipbot/shipbot/gitops"
)

// A Rollout paused at a canary step, in Argo CD's resource tree
// (v1alpha1.ApplicationTree): Argo CD gives it health Suspended with the
// pause's reason; its canary ReplicaSet is its child.
const canaryTree = `{"nodes":[
 {"group":"argoproj.io","version":"v1alpha1","kind":"Rollout","namespace":"shop","name":"checkout","uid":"7c1f",
  "health":{"status":"Suspended","message":"CanaryPauseStep"},
  "info":[{"name":"Revision","value":"Rev:5"}]},
 {"group":"apps","version":"v1","kind":"ReplicaSet","namespace":"shop","name":"checkout-6f7d9c8b4","uid":"a1",
  "parentRefs":[{"group":"argoproj.io","kind":"Rollout","namespace":"shop","name":"checkout","uid":"7c1f"}],
  "health":{"status":"Healthy"}},
 {"version":"v1","kind":"Service","namespace":"shop","name":"checkout","uid":"s1","health":{"status":"Healthy"}}
]}`

func TestCanaryFoundAndAborted(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, nil, testdata(t, "checkout-prod-outofsync.json")),
		"GET /api/v1/applications/checkout-prod/resource-tree": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, []byte(canaryTree))
		},
		"POST /api/v1/applications/checkout-prod/resource/actions": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, []byte(`{}`))
		},
	})
	w, _ := testWatcher(t, f, nil)
	ctx := context.Background()
	c, err := w.Canary(ctx, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"})
	if err != nil {
		t.Fatal(err)
	}
	want := gitops.Canary{ArgoApp: "checkout-prod", Namespace: "shop", Name: "checkout", Health: "Suspended", Message: "CanaryPauseStep"}
	if c == nil || *c != want {
		t.Fatalf("canary = %+v, want %+v", c, want)
	}
	if err := w.AbortCanary(ctx, *c); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests("POST", "/api/v1/applications/checkout-prod/resource/actions")
	if len(reqs) != 1 {
		t.Fatalf("%d action requests", len(reqs))
	}
	q, _ := url.ParseQuery(reqs[0].Query)
	for k, v := range map[string]string{"namespace": "shop", "resourceName": "checkout", "version": "v1alpha1", "group": "argoproj.io", "kind": "Rollout"} {
		if q.Get(k) != v {
			t.Errorf("query %s = %q, want %q (%s)", k, q.Get(k), v, reqs[0].Query)
		}
	}
	if string(reqs[0].Body) != `"abort"` || !strings.HasPrefix(reqs[0].ContentType, "application/json") {
		t.Errorf("body %s, content type %q", reqs[0].Body, reqs[0].ContentType)
	}
}

func TestNoCanaryWhenRolloutsAreHealthy(t *testing.T) {
	healthy := strings.Replace(canaryTree, `"health":{"status":"Suspended","message":"CanaryPauseStep"}`, `"health":{"status":"Healthy"}`, 1)
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, nil, testdata(t, "checkout-prod-outofsync.json")),
		"GET /api/v1/applications/checkout-prod/resource-tree": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, []byte(healthy))
		},
	})
	w, _ := testWatcher(t, f, nil)
	c, err := w.Canary(context.Background(), gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"})
	if err != nil || c != nil {
		t.Fatalf("canary = %+v, %v", c, err)
	}
}

func TestAbortRefusedIsAnError(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"POST /api/v1/applications/checkout-prod/resource/actions": func(w http.ResponseWriter, r *http.Request) {
			grpcError(w, http.StatusForbidden, 7, "permission denied: applications, action/argoproj.io/Rollout/abort, default/checkout-prod")
		},
	})
	w, _ := testWatcher(t, f, nil)
	err := w.AbortCanary(context.Background(), gitops.Canary{ArgoApp: "checkout-prod", Namespace: "shop", Name: "checkout"})
	if err == nil || !strings.Contains(err.Error(), "abort on Rollout shop/checkout of checkout-prod") {
		t.Fatalf("err = %v", err)
	}
}

// Argo CD v3.1+ has the v2 action endpoint (everything in the body, as its
// ResourceActionRunRequestV2): shipbot uses it and never the deprecated v1.
func TestAbortUsesActionsV2WhereServed(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"POST /api/v1/applications/checkout-prod/resource/actions/v2": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, []byte(`{}`))
		},
	})
	w, _ := testWatcher(t, f, nil)
	if err := w.AbortCanary(context.Background(), gitops.Canary{ArgoApp: "argocd-apps/checkout-prod", Namespace: "shop", Name: "checkout"}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests("POST", "/api/v1/applications/checkout-prod/resource/actions")); n != 0 {
		t.Errorf("%d calls of the deprecated v1 endpoint", n)
	}
	reqs := f.requests("POST", "/api/v1/applications/checkout-prod/resource/actions/v2")
	if len(reqs) != 1 {
		t.Fatalf("%d v2 action requests", len(reqs))
	}
	var body map[string]any
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "checkout-prod", "appNamespace": "argocd-apps", "namespace": "shop", "resourceName": "checkout",
		"version": "v1alpha1", "group": "argoproj.io", "kind": "Rollout", "action": "abort"}
	if d := cmp.Diff(want, body); d != "" || reqs[0].Query != "" {
		t.Errorf("v2 body (-want +got):\n%s\nquery %q", d, reqs[0].Query)
	}
}

// A refusal on the v2 endpoint is the answer: no second try on v1.
func TestAbortRefusedOnV2IsNotRetriedOnV1(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"POST /api/v1/applications/checkout-prod/resource/actions/v2": func(w http.ResponseWriter, r *http.Request) {
			grpcError(w, http.StatusForbidden, 7, "permission denied: applications, action/argoproj.io/Rollout/abort, default/checkout-prod")
		},
	})
	w, _ := testWatcher(t, f, nil)
	err := w.AbortCanary(context.Background(), gitops.Canary{ArgoApp: "checkout-prod", Namespace: "shop", Name: "checkout"})
	if !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.requests("POST", "/api/v1/applications/checkout-prod/resource/actions")); n != 0 {
		t.Errorf("%d calls of v1 after v2 refused", n)
	}
}
