//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deploy/local/stack"
)

// Scenario 5: an Argo CD sync window. A deny window of the default
// project holds search-prod (manual sync) for an hour from a minute ago.
// The plan says so before `yes`; after the push Argo CD refuses shipbot's
// sync ("cannot sync: blocked by sync window", a PermissionDenied), and the
// reply names the window and until when it holds — never a permission
// problem. The commit stands.
func TestSyncWindowRefusal(t *testing.T) {
	ctx := context.Background()
	start := time.Now().UTC().Add(-time.Minute).Truncate(time.Minute)
	until := start.Add(time.Hour)
	window := map[string]any{
		"kind": "deny", "schedule": fmt.Sprintf("%d %d * * *", start.Minute(), start.Hour()), "duration": "1h",
		"applications": []string{"search-prod"}, "timeZone": "UTC",
	}
	setWindows(ctx, t, []any{window})
	t.Cleanup(func() { setWindows(ctx, t, nil) })

	chat.send(t, "/as bob") // an SRE: search is not alice's team's
	chat.expect(t, `you are now bob`, 10*time.Second)
	chat.send(t, "rollback search prod --why https://acme.pagerduty.com/incidents/PQ7R2KD")
	// shipbot's account may not read the project (get on applications and
	// sync only), so it can't see the window's time zone and says so.
	hold := `an Argo CD sync window holds syncs of (argocd/)?search-prod until ` + regexp.QuoteMeta(until.Format("15:04")) + ` UTC( \(if its schedule is in UTC\))?`
	chat.expect(t, hold+`: the commit lands now, the rollout waits for the window`, 30*time.Second, `denied|nothing to change`)
	ans, _ := chat.expect(t, "Reply `(yes[^`]*)`", 10*time.Second)
	chat.send(t, ans[1])
	m, pushed := chat.expect(t, `commit ([0-9a-f]{7,}) pushed`, 60*time.Second)
	commit := m[1]
	// The watch ends at once: the window outlasts it. The reply names the
	// window, carries Argo CD's own refusal and says the commit stands.
	_, done := chat.expect(t, `search prod .* is not live yet: `+hold+` \(deny "`+regexp.QuoteMeta(window["schedule"].(string))+`" for 1h\); `+
		`Argo CD: "cannot sync: blocked by sync window"\. The commit `+commit+` stands: sync the app in Argo CD once the window lets it`,
		60*time.Second, `permission denied|needs get and sync|could not confirm|`+healthy)
	t.Logf("reported %.1fs after the push", done.Sub(pushed).Seconds())
	// Argo CD did not sync it.
	a, err := st.App(ctx, "search-prod", "normal")
	if err != nil {
		t.Fatal(err)
	}
	if s := a.Status; s.Sync.Status == "Synced" && strings.HasPrefix(s.Sync.Revision, commit) {
		t.Errorf("search-prod is Synced at %s while the window holds it", s.Sync.Revision)
	}
	result("sync window on search prod: said in the plan; sync refusal reported as the window, %.1fs after the push", done.Sub(pushed).Seconds())
}

// setWindows sets the sync windows of Argo CD's default project through
// the kube-apiserver (nil removes them).
func setWindows(ctx context.Context, t *testing.T, windows []any) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"syncWindows": windows}})
	if _, err := st.Kube(ctx, http.MethodPatch, "/apis/argoproj.io/v1alpha1/namespaces/"+stack.Namespace+"/appprojects/default",
		"application/merge-patch+json", patch); err != nil {
		t.Fatalf("set sync windows: %v", err)
	}
}
