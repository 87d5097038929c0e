package main

// Contract test: shipbot's argo package talks to Argo CD's REST API with its
// own small structs (argo/doc.go says why). Here real Argo CD v2.14.21
// values (v1alpha1.Application, ApplicationTree, ApplicationWatchEvent) are
// marshalled the way the API server does (encoding/json of the v1alpha1
// types; grpc-gateway uses their JSON tags) and decoded by shipbot, field by
// field for every field argo/ reads; then a fake server answering with those
// bytes drives shipbot's real Client and Watcher, and shipbot's sync request
// is decoded into Argo CD's own ApplicationSyncRequest.
//
//	cd deploy/local/tools/argocd && go test ./...

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appclient "github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/argoproj/gitops-engine/pkg/health"
	synccommon "github.com/argoproj/gitops-engine/pkg/sync/common"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shipbot/shipbot/argo"
	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
)

const (
	repoURL = "https://github.com/shop/env.git"
	commit  = "0123456789abcdef0123456789abcdef01234567"
	older   = "fedcba9876543210fedcba9876543210fedcba98"
)

var (
	started  = metav1.NewTime(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	finished = metav1.NewTime(started.Add(3 * time.Second))
	recon    = metav1.NewTime(started.Add(5 * time.Second))
)

// singleSource is a Helm app after a successful sync of commit, with a
// failed hook and a degraded resource so every field is set.
func singleSource() v1alpha1.Application {
	return v1alpha1.Application{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "Application"},
		ObjectMeta: metav1.ObjectMeta{Name: "payments-prod", Namespace: "argocd", ResourceVersion: "4711"},
		Spec: v1alpha1.ApplicationSpec{
			Project: "default",
			Source: &v1alpha1.ApplicationSource{
				RepoURL: repoURL, Path: "apps/payments/chart", TargetRevision: "main",
				Helm: &v1alpha1.ApplicationSourceHelm{ValueFiles: []string{"../values-prod.yaml", "/shared/values.yaml"}},
			},
			Destination: v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: "payments-prod"},
			SyncPolicy: &v1alpha1.SyncPolicy{
				Automated:   &v1alpha1.SyncPolicyAutomated{Prune: true, SelfHeal: true},
				SyncOptions: v1alpha1.SyncOptions{"CreateNamespace=true"},
			},
		},
		Status: v1alpha1.ApplicationStatus{
			Sync:   v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCodeSynced, Revision: commit},
			Health: v1alpha1.HealthStatus{Status: health.HealthStatusHealthy, Message: "all good"},
			OperationState: &v1alpha1.OperationState{
				Operation: v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{Revision: commit}},
				Phase:     synccommon.OperationSucceeded,
				Message:   "successfully synced (all tasks run)",
				SyncResult: &v1alpha1.SyncOperationResult{
					Revision: commit,
					Resources: v1alpha1.ResourceResults{
						{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "payments-prod", Name: "payments",
							Status: synccommon.ResultCodeSynced, Message: "deployment.apps/payments configured", SyncPhase: synccommon.SyncPhaseSync},
						{Group: "batch", Version: "v1", Kind: "Job", Namespace: "payments-prod", Name: "migrate",
							Status: synccommon.ResultCodeSyncFailed, Message: "Job has reached the specified backoff limit",
							HookType: synccommon.HookTypePreSync, HookPhase: synccommon.OperationFailed},
					},
				},
				StartedAt:  started,
				FinishedAt: &finished,
			},
			Conditions: []v1alpha1.ApplicationCondition{
				{Type: v1alpha1.ApplicationConditionSyncError, Message: "one hook failed", LastTransitionTime: &finished},
				{Type: v1alpha1.ApplicationConditionComparisonError, Message: "rpc error: manifest generation"},
			},
			Resources: []v1alpha1.ResourceStatus{
				{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "payments-prod", Name: "payments",
					Status: v1alpha1.SyncStatusCodeSynced, Health: &v1alpha1.HealthStatus{Status: health.HealthStatusDegraded, Message: "Deployment \"payments\" exceeded its progress deadline"}},
				{Version: "v1", Kind: "Service", Namespace: "payments-prod", Name: "payments", Status: v1alpha1.SyncStatusCodeOutOfSync},
			},
			ReconciledAt: &recon,
		},
	}
}

// multiSource is a chart from a Helm repository with its values from the
// env repo ($values), synced at commit for the env repo's source.
func multiSource() v1alpha1.Application {
	return v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "payments-dev", Namespace: "team-a"},
		Spec: v1alpha1.ApplicationSpec{
			Sources: v1alpha1.ApplicationSources{
				{RepoURL: "https://charts.example.com", Chart: "payments", TargetRevision: "0.3.0",
					Helm: &v1alpha1.ApplicationSourceHelm{ValueFiles: []string{"$values/apps/payments/values-dev.yaml"}}},
				{RepoURL: repoURL, TargetRevision: "HEAD", Ref: "values"},
			},
		},
		Status: v1alpha1.ApplicationStatus{
			Sync:   v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCodeOutOfSync, Revisions: []string{"0.3.0", commit}},
			Health: v1alpha1.HealthStatus{Status: health.HealthStatusProgressing},
			OperationState: &v1alpha1.OperationState{
				Operation:  v1alpha1.Operation{Sync: &v1alpha1.SyncOperation{Revisions: []string{"0.3.0", commit}}},
				Phase:      synccommon.OperationRunning,
				SyncResult: &v1alpha1.SyncOperationResult{Revisions: []string{"0.3.0", older}},
				StartedAt:  started,
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func tm(t metav1.Time) *time.Time { u := t.Time.UTC(); return &u }

// roundTrip marshals an Argo CD value and decodes it into shipbot's type.
func roundTrip[T any](t *testing.T, v any) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("shipbot can't decode Argo CD's JSON: %v\n%s", err, b)
	}
	return out
}

func TestApplicationSingleSource(t *testing.T) {
	got := roundTrip[argo.Application](t, singleSource())
	if got.Status.ReconciledAt != nil {
		*got.Status.ReconciledAt = got.Status.ReconciledAt.UTC()
	}
	if op := got.Status.OperationState; op != nil {
		if op.StartedAt != nil {
			*op.StartedAt = op.StartedAt.UTC()
		}
		if op.FinishedAt != nil {
			*op.FinishedAt = op.FinishedAt.UTC()
		}
	}
	want := argo.Application{
		Metadata: argo.ObjectMeta{Name: "payments-prod", Namespace: "argocd", ResourceVersion: "4711"},
		Spec: argo.ApplicationSpec{
			Source: &argo.ApplicationSource{
				RepoURL: repoURL, Path: "apps/payments/chart", TargetRevision: "main",
				Helm: &argo.HelmSource{ValueFiles: []string{"../values-prod.yaml", "/shared/values.yaml"}},
			},
			SyncPolicy: &argo.SyncPolicy{Automated: &argo.SyncPolicyAutomated{Prune: ptr(true), SelfHeal: ptr(true)}},
		},
		Status: argo.ApplicationStatus{
			Sync:   argo.SyncStatus{Status: "Synced", Revision: commit},
			Health: argo.HealthStatus{Status: "Healthy", Message: "all good"},
			OperationState: &argo.OperationState{
				Operation: argo.Operation{Sync: &argo.SyncOperation{Revision: commit}},
				Phase:     "Succeeded",
				Message:   "successfully synced (all tasks run)",
				SyncResult: &argo.SyncOperationResult{
					Revision: commit,
					Resources: []argo.ResourceResult{
						{Group: "apps", Kind: "Deployment", Namespace: "payments-prod", Name: "payments", Status: "Synced", Message: "deployment.apps/payments configured"},
						{Group: "batch", Kind: "Job", Namespace: "payments-prod", Name: "migrate", Status: "SyncFailed",
							Message: "Job has reached the specified backoff limit", HookType: "PreSync", HookPhase: "Failed"},
					},
				},
				StartedAt:  tm(started),
				FinishedAt: tm(finished),
			},
			Conditions: []argo.ApplicationCondition{
				{Type: "SyncError", Message: "one hook failed"},
				{Type: "ComparisonError", Message: "rpc error: manifest generation"},
			},
			Resources: []argo.ResourceStatus{
				{Group: "apps", Kind: "Deployment", Namespace: "payments-prod", Name: "payments", Status: "Synced",
					Health: &argo.HealthStatus{Status: "Degraded", Message: "Deployment \"payments\" exceeded its progress deadline"}},
				{Kind: "Service", Namespace: "payments-prod", Name: "payments", Status: "OutOfSync"},
			},
			ReconciledAt: tm(recon),
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("decoded Application differs (-want +got):\n%s", d)
	}
	// The constants shipbot compares with are Argo CD's words.
	for name, pair := range map[string][2]string{
		"synced":      {argo.SyncSynced, string(v1alpha1.SyncStatusCodeSynced)},
		"healthy":     {argo.HealthHealthy, string(health.HealthStatusHealthy)},
		"progressing": {argo.HealthProgressing, string(health.HealthStatusProgressing)},
		"degraded":    {argo.HealthDegraded, string(health.HealthStatusDegraded)},
		"running":     {argo.PhaseRunning, string(synccommon.OperationRunning)},
		"succeeded":   {argo.PhaseSucceeded, string(synccommon.OperationSucceeded)},
		"failed":      {argo.PhaseFailed, string(synccommon.OperationFailed)},
		"error":       {argo.PhaseError, string(synccommon.OperationError)},
		"syncFailed":  {argo.ResultSyncFailed, string(synccommon.ResultCodeSyncFailed)},
		"refreshHard": {argo.RefreshHard, string(v1alpha1.RefreshTypeHard)},
		"refreshNorm": {argo.RefreshNormal, string(v1alpha1.RefreshTypeNormal)},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s: shipbot says %q, Argo CD %q", name, pair[0], pair[1])
		}
	}
	if !got.AutomatedSync() || got.MultiSource() || got.SyncedRevision(-1) != commit {
		t.Errorf("AutomatedSync=%v MultiSource=%v SyncedRevision=%q", got.AutomatedSync(), got.MultiSource(), got.SyncedRevision(-1))
	}
}

func TestApplicationMultiSource(t *testing.T) {
	got := roundTrip[argo.Application](t, multiSource())
	if !got.MultiSource() || got.AutomatedSync() {
		t.Fatalf("MultiSource=%v AutomatedSync=%v", got.MultiSource(), got.AutomatedSync())
	}
	want := []argo.ApplicationSource{
		{RepoURL: "https://charts.example.com", Chart: "payments", TargetRevision: "0.3.0",
			Helm: &argo.HelmSource{ValueFiles: []string{"$values/apps/payments/values-dev.yaml"}}},
		{RepoURL: repoURL, TargetRevision: "HEAD", Ref: "values"},
	}
	if d := cmp.Diff(want, got.SourceList()); d != "" {
		t.Errorf("sources (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"0.3.0", commit}, got.Status.Sync.Revisions); d != "" {
		t.Errorf("sync.revisions: %s", d)
	}
	if got.SyncedRevision(1) != commit || got.SyncedRevision(0) != "0.3.0" {
		t.Errorf("SyncedRevision(1)=%q (0)=%q", got.SyncedRevision(1), got.SyncedRevision(0))
	}
	op := got.Status.OperationState
	if op == nil || op.Operation.Sync == nil || cmp.Diff([]string{"0.3.0", commit}, op.Operation.Sync.Revisions) != "" ||
		op.SyncResult == nil || cmp.Diff([]string{"0.3.0", older}, op.SyncResult.Revisions) != "" || op.Phase != "Running" {
		t.Errorf("operationState: %+v", op)
	}
	// Discovery finds the env repo's source through the chart's $values/ file.
	f, err := argo.NewFinder(mustClient(t, serve(t, nil)), argo.FinderOptions{RepoURL: "git@github.com:shop/env.git", Branch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	i, err := f.Source(&got, gitops.Target{App: "payments", Env: "dev", Location: edit.Location{Path: "apps/payments/values-dev.yaml", Layout: edit.LayoutHelm}})
	if err != nil || i != 1 {
		t.Errorf("Finder.Source = %d, %v; want 1", i, err)
	}
}

func TestResourceTreeAndWatchEvent(t *testing.T) {
	tree := v1alpha1.ApplicationTree{Nodes: []v1alpha1.ResourceNode{
		{ResourceRef: v1alpha1.ResourceRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "ns", Name: "web", UID: "u1"},
			Health: &v1alpha1.HealthStatus{Status: health.HealthStatusDegraded, Message: "exceeded its progress deadline"}},
		{ResourceRef: v1alpha1.ResourceRef{Version: "v1", Kind: "Pod", Namespace: "ns", Name: "web-1"},
			ParentRefs: []v1alpha1.ResourceRef{{Group: "apps", Kind: "ReplicaSet", Name: "web-abc"}},
			Health:     &v1alpha1.HealthStatus{Status: health.HealthStatusDegraded, Message: "Back-off pulling image"}},
	}}
	got := roundTrip[argo.ResourceTree](t, tree)
	want := argo.ResourceTree{Nodes: []argo.ResourceNode{
		{Group: "apps", Kind: "Deployment", Namespace: "ns", Name: "web", Health: &argo.HealthStatus{Status: "Degraded", Message: "exceeded its progress deadline"}},
		{Kind: "Pod", Namespace: "ns", Name: "web-1", Health: &argo.HealthStatus{Status: "Degraded", Message: "Back-off pulling image"}},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("resource tree (-want +got):\n%s", d)
	}
	ev := roundTrip[argo.WatchEvent](t, v1alpha1.ApplicationWatchEvent{Type: "MODIFIED", Application: singleSource()})
	if ev.Type != "MODIFIED" || ev.Application.Metadata.Name != "payments-prod" || ev.Application.Status.Sync.Revision != commit {
		t.Errorf("watch event: %s %s %s", ev.Type, ev.Application.Metadata.Name, ev.Application.Status.Sync.Revision)
	}
}

// fakeArgo answers like Argo CD's API server, with real v1alpha1 JSON.
type fakeArgo struct {
	app func(synced bool) v1alpha1.Application

	mu       sync.Mutex
	syncBody []byte
}

func (f *fakeArgo) current() v1alpha1.Application {
	f.mu.Lock()
	synced := f.syncBody != nil
	f.mu.Unlock()
	return f.app(synced)
}

func (f *fakeArgo) body() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncBody
}

func serve(t *testing.T, f *fakeArgo) *httptest.Server {
	mux := http.NewServeMux()
	if f != nil {
		mux.HandleFunc("GET /api/v1/applications", func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(v1alpha1.ApplicationList{Items: []v1alpha1.Application{f.current()}})
		})
		mux.HandleFunc("GET /api/v1/applications/{name}", func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(f.current())
		})
		mux.HandleFunc("POST /api/v1/applications/{name}/sync", func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			f.mu.Lock()
			f.syncBody = b
			f.mu.Unlock()
			json.NewEncoder(w).Encode(f.current())
		})
		mux.HandleFunc("GET /api/v1/applications/{name}/resource-tree", func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(v1alpha1.ApplicationTree{Nodes: []v1alpha1.ResourceNode{{
				ResourceRef: v1alpha1.ResourceRef{Version: "v1", Kind: "Pod", Namespace: "payments-prod", Name: "payments-1"},
				Health:      &v1alpha1.HealthStatus{Status: health.HealthStatusDegraded, Message: "ImagePullBackOff"},
			}}})
		})
		mux.HandleFunc("GET /api/v1/stream/applications", func(w http.ResponseWriter, r *http.Request) {
			// grpc-gateway's stream: one {"result": ...} object a line.
			enc := json.NewEncoder(w)
			enc.Encode(map[string]any{"result": v1alpha1.ApplicationWatchEvent{Type: "ADDED", Application: f.current()}})
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func mustClient(t *testing.T, srv *httptest.Server) *argo.Client {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("jwt\n"), 0o600)
	c, err := argo.NewClient(argo.ClientOptions{Server: srv.URL, TokenFile: tok})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestWatcherAgainstArgoJSON runs shipbot's real Watcher on answers made of
// real v1alpha1 JSON: a manual app it must sync (the sync request must be
// one Argo CD's ApplicationSyncRequest accepts), then Healthy; and a
// Degraded app with the Pod's reason from the resource tree.
func TestWatcherAgainstArgoJSON(t *testing.T) {
	target := gitops.Target{App: "payments", Env: "prod", Location: edit.Location{Path: "apps/payments/values-prod.yaml", Layout: edit.LayoutHelm}}

	t.Run("manual app synced by shipbot, then Healthy", func(t *testing.T) {
		// The fake syncs instantly once asked.
		f := &fakeArgo{}
		f.app = func(synced bool) v1alpha1.Application {
			a := singleSource()
			a.Spec.SyncPolicy = nil // manual
			a.Status.Resources[0].Health.Status = health.HealthStatusHealthy
			a.Status.Conditions = nil
			a.Status.OperationState.SyncResult.Resources = a.Status.OperationState.SyncResult.Resources[:1]
			if !synced {
				a.Status.Sync = v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCodeOutOfSync, Revision: older}
				a.Status.OperationState.Operation.Sync.Revision = older
				a.Status.OperationState.SyncResult.Revision = older
			}
			return a
		}
		srv := serve(t, f)
		w, err := argo.NewWatcher(mustClient(t, srv), argo.WatcherOptions{RepoURL: "https://github.com/shop/env", Branch: "main", SyncManual: true, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		st, err := w.Watch(context.Background(), target, commit, nil)
		if err != nil || st.Sync != "Synced" || st.Health != "Healthy" || st.Revision != commit {
			t.Fatalf("Watch = %+v, %v; want Synced/Healthy at the commit", st, err)
		}
		var req appclient.ApplicationSyncRequest
		if err := json.Unmarshal(f.body(), &req); err != nil {
			t.Fatalf("shipbot's sync body %s is not an ApplicationSyncRequest: %v", f.body(), err)
		}
		if req.GetRevision() != commit {
			t.Errorf("sync request revision %q, want %q (body %s)", req.GetRevision(), commit, f.body())
		}
	})

	t.Run("Degraded after our sync", func(t *testing.T) {
		f := &fakeArgo{app: func(bool) v1alpha1.Application {
			a := singleSource()
			a.Status.Health = v1alpha1.HealthStatus{Status: health.HealthStatusDegraded}
			a.Status.OperationState.SyncResult.Resources = a.Status.OperationState.SyncResult.Resources[:1]
			a.Status.Conditions = nil
			return a
		}}
		w, err := argo.NewWatcher(mustClient(t, serve(t, f)), argo.WatcherOptions{RepoURL: "https://github.com/shop/env", Branch: "main", Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		st, err := w.Watch(context.Background(), target, commit, nil)
		if err == nil || st.Health != "Degraded" {
			t.Fatalf("Watch = %+v, %v; want Degraded", st, err)
		}
		for _, want := range []string{"exceeded its progress deadline", "ImagePullBackOff"} {
			if !strings.Contains(st.Message, want) {
				t.Errorf("message %q lacks %q", st.Message, want)
			}
		}
	})

	t.Run("multi-source sync request", func(t *testing.T) {
		f := &fakeArgo{app: func(bool) v1alpha1.Application { return multiSource() }}
		c := mustClient(t, serve(t, f))
		if _, err := c.SyncSource(context.Background(), "team-a/payments-dev", 1, commit); err != nil {
			t.Fatal(err)
		}
		var req appclient.ApplicationSyncRequest
		if err := json.Unmarshal(f.body(), &req); err != nil {
			t.Fatalf("body %s: %v", f.body(), err)
		}
		if cmp.Diff([]string{commit}, req.Revisions) != "" || cmp.Diff([]int64{2}, req.SourcePositions) != "" || req.GetAppNamespace() != "team-a" {
			t.Errorf("sync request %s decodes to revisions %v positions %v appNamespace %q", f.body(), req.Revisions, req.SourcePositions, req.GetAppNamespace())
		}
	})
}
