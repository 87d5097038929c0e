package argo

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/gitops"
)

// newerRev is a commit CI pushed on top of newRev; otherRev is unrelated.
const (
	newerRev = "d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0"
	otherRev = "0badc0de0badc0de0badc0de0badc0de0badc0de"
)

// fakeAncestry knows the history c00dbbc -> c2a6b03 (ours) -> d1e2f3a.
type fakeAncestry struct {
	mu    sync.Mutex
	asked []string
}

var history = []string{oldRev, newRev, newerRev}

func (a *fakeAncestry) IsAncestor(_ context.Context, ancestor, descendant string) (bool, error) {
	a.mu.Lock()
	a.asked = append(a.asked, short(ancestor)+".."+short(descendant))
	a.mu.Unlock()
	ai, di := -1, -1
	for i, h := range history {
		if h == ancestor {
			ai = i
		}
		if h == descendant {
			di = i
		}
	}
	return ai >= 0 && di >= 0 && ai <= di, nil
}

// CI pushed d1e2f3a on top of shipbot's commit before Argo CD synced: Argo
// CD syncs the newer commit, which contains ours. That is live, not a
// timeout.
func TestWatchNewerCommitContainingOursIsLive(t *testing.T) {
	newer := func(name string) []byte { return bytes.ReplaceAll(testdata(t, name), []byte(newRev), []byte(newerRev)) }
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, newer("checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", newer("checkout-prod-outofsync.json")),
			event(t, "MODIFIED", newer("checkout-prod-syncing.json")),
			event(t, "MODIFIED", newer("checkout-prod-healthy.json")),
		),
	})
	anc := &fakeAncestry{}
	res := watchChange(t, f, gitops.WatchedChange{Tag: "1.4.1", Ancestry: anc}, nil)
	if res.err != nil {
		t.Fatalf("%v\nprogress %+v", res.err, res.progress)
	}
	want := gitops.SyncStatus{Sync: "Synced", Health: "Healthy", Revision: newerRev, Phase: "Succeeded",
		Message: "live in d1e2f3a, a newer commit that contains c2a6b03"}
	if res.status != want {
		t.Errorf("status %+v\nwant   %+v", res.status, want)
	}
	if !strings.HasPrefix(res.progress[1].Message, "Argo CD syncs d1e2f3a, a newer commit that contains c2a6b03") {
		t.Errorf("progress while syncing: %+v", res.progress[1])
	}
	// Each revision is asked about once: the old one and the newer one.
	if d := cmp.Diff([]string{"c2a6b03..d1e2f3a", "c2a6b03..c00dbbc"}, dedupe(anc.asked)); d != "" || len(anc.asked) > 2 {
		t.Errorf("asked %q (-want +got):\n%s", anc.asked, d)
	}
}

func dedupe(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// A revision that does not contain ours (a force-push, another branch)
// never counts: the watch goes on until our commit is live.
func TestWatchUnrelatedRevisionDoesNotCount(t *testing.T) {
	other := bytes.ReplaceAll(testdata(t, "checkout-prod-healthy.json"), []byte(newRev), []byte(otherRev))
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), nil),
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", other),
			event(t, "MODIFIED", testdata(t, "checkout-prod-healthy.json")),
		),
	})
	res := watchChange(t, f, gitops.WatchedChange{Tag: "1.4.1", Ancestry: &fakeAncestry{}}, nil)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.status != stLive {
		t.Errorf("status %+v, want live at our own commit", res.status)
	}
	for _, p := range res.progress[:len(res.progress)-1] {
		if p.Revision == otherRev && p.Phase != "" {
			t.Errorf("the unrelated revision's operation was taken for ours: %+v", p)
		}
	}
}

// With SyncManual, shipbot syncs the newer commit Argo CD compares when it
// contains ours: syncing ours would take CI's change back.
func TestWatchSyncsTheNewerCommit(t *testing.T) {
	outOfSync := bytes.ReplaceAll(testdata(t, "payments-prod-outofsync.json"), []byte(newRev), []byte(newerRev))
	healthy := bytes.ReplaceAll(testdata(t, "payments-prod-healthy.json"), []byte(newRev), []byte(newerRev))
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/payments-prod": getApp(t, outOfSync, nil),
		"POST /api/v1/applications/payments-prod/sync": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, outOfSync)
		},
		"GET /api/v1/stream/applications": streamThenHold(event(t, "ADDED", healthy)),
	})
	res := watchChange(t, f, gitops.WatchedChange{Target: gitops.Target{App: "payments", Env: "prod", ArgoApp: "payments-prod"}, Tag: "2.0.1", Ancestry: &fakeAncestry{}},
		func(o *WatcherOptions) { o.SyncManual = true })
	if res.err != nil {
		t.Fatal(res.err)
	}
	posts := f.requests("POST", "/api/v1/applications/payments-prod/sync")
	if len(posts) != 1 {
		t.Fatalf("%d sync POSTs", len(posts))
	}
	var body struct{ Revision string }
	if err := json.Unmarshal(posts[0].Body, &body); err != nil || body.Revision != newerRev {
		t.Errorf("synced %s, want the newer commit %s", posts[0].Body, newerRev)
	}
	if res.status.Revision != newerRev {
		t.Errorf("status %+v", res.status)
	}
}
