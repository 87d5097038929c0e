//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/argo"
	"github.com/shipbot/shipbot/deploy/local/stack"
)

// callLog records the API calls a Client makes and their answers' status.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodPost {
		l.mu.Lock()
		l.calls = append(l.calls, r.URL.Path+" "+resp.Status[:3])
		l.mu.Unlock()
	}
	return resp, err
}

// Scenario 6: a resource action through shipbot's argo client (the path
// the canary abort takes), on the real server. With no Argo Rollouts in
// the stack, the action is Argo CD's built-in Deployment "restart", run as
// admin (shipbot's account has no action rights here). v3.2 answers the v2
// endpoint (everything in the body); v2.14 does not have it, and the
// client falls back to the v1 endpoint. Either way the Deployment's pod
// template gets Argo CD's restartedAt annotation.
func TestResourceActionOnRealArgoCD(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ns, name, key = "search-staging", "search", "kubectl.kubernetes.io/restartedAt"
	before := getDeployment(t, ns, name).Spec.Template.Metadata.Annotations[key]
	log := &callLog{}
	c, err := argo.NewClient(argo.ClientOptions{Server: stack.ArgoURL, Token: st.AdminToken(), Transport: log})
	if err != nil {
		t.Fatal(err)
	}
	ref := argo.ResourceRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: ns, Name: name}
	if err := c.RunAction(ctx, "search-staging", ref, "restart"); err != nil {
		t.Fatalf("restart action: %v (calls %v)", err, log.calls)
	}
	after := getDeployment(t, ns, name).Spec.Template.Metadata.Annotations[key]
	if after == "" || after == before {
		t.Fatalf("pod template %s = %q after the action (before %q)", key, after, before)
	}
	const v2, v1 = "/api/v1/applications/search-staging/resource/actions/v2", "/api/v1/applications/search-staging/resource/actions"
	want := []string{v2 + " 200"}
	if strings.HasPrefix(st.ArgoVersion, "v2.") {
		want = []string{v2 + " 404", v1 + " 200"}
	}
	if strings.Join(log.calls, ", ") != strings.Join(want, ", ") {
		t.Errorf("calls %v, want %v", log.calls, want)
	}
	t.Logf("Argo CD %s: %v; %s=%s", st.ArgoVersion, log.calls, key, after)
	result("resource action (Deployment restart, the canary abort's path): %s", strings.Join(log.calls, " then "))
}
