//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deploy/local/stack"
	"github.com/shipbot/shipbot/gitops/lease"
)

// TestLeaseElectionOnKubeAPIServer runs shipbot's Lease election against
// the real kube-apiserver (coordination.k8s.io/v1, resourceVersion
// conflicts, MicroTime): one leader; a shutdown hands the Lease over at
// the next try; a leader cut off from the API server stops leading before
// another replica takes the Lease after the lease duration.
func TestLeaseElectionOnKubeAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, token := st.KubeAuth()
	const ns = "shipbot-lease"
	b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}})
	if _, err := st.Kube(ctx, http.MethodPost, "/api/v1/namespaces", "application/json", b); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}
	type replica struct {
		e      *lease.Elector
		cut    atomic.Bool // its token stops working: cut off
		cancel context.CancelFunc
		done   chan error
	}
	start := func(id string) *replica {
		r := &replica{done: make(chan error, 1)}
		var err error
		r.e, err = lease.New(lease.Options{
			Server: stack.KubeURL, Client: client, Namespace: ns, Name: "shipbot-e2e", Identity: id,
			Token: func() (string, error) {
				if r.cut.Load() {
					return "revoked", nil
				}
				return token, nil
			},
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		r.cancel = cancel
		go func() { r.done <- r.e.Run(rctx, func(ctx context.Context) { <-ctx.Done() }) }()
		t.Cleanup(func() { cancel(); <-r.done })
		return r
	}
	wait := func(what string, cond func() bool) time.Duration {
		t.Helper()
		began := time.Now()
		for !cond() {
			if time.Since(began) > 30*time.Second {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(began)
	}
	holder := func() (string, int) {
		b, err := st.Kube(ctx, http.MethodGet, "/apis/coordination.k8s.io/v1/namespaces/"+ns+"/leases/shipbot-e2e", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var l struct {
			Spec struct {
				HolderIdentity   string `json:"holderIdentity"`
				LeaseTransitions int    `json:"leaseTransitions"`
				RenewTime        string `json:"renewTime"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		return l.Spec.HolderIdentity, l.Spec.LeaseTransitions
	}

	a := start("shipbot-a")
	wait("shipbot-a to lead", a.e.Held)
	b2 := start("shipbot-b")
	time.Sleep(4 * time.Second) // longer than the lease duration: a renews, b must not take it
	if b2.e.Held() {
		t.Fatal("b took a Lease a renews")
	}
	if h, _ := holder(); h != "shipbot-a" {
		t.Fatalf("holder %q", h)
	}

	// a shuts down: it releases the Lease, b takes it at its next try.
	a.cancel()
	if err := <-a.done; err != nil {
		t.Fatalf("a: %v", err)
	}
	a.done <- nil // for the cleanup
	handover := wait("b to take the released Lease", b2.e.Held)

	// b is cut off from the API server: it stops leading within the renew
	// deadline; c takes the Lease only once it has seen it unrenewed for
	// the lease duration, never while b still leads.
	c := start("shipbot-c")
	time.Sleep(500 * time.Millisecond)
	b2.cut.Store(true)
	cutAt := time.Now()
	var overlap atomic.Bool
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				if b2.e.Held() && c.e.Held() {
					overlap.Store(true)
				}
			}
		}
	}()
	if err := <-b2.done; !errors.Is(err, lease.ErrLost) {
		t.Fatalf("b: %v, want lease lost", err)
	}
	b2.done <- nil
	stopped := time.Since(cutAt)
	took := wait("c to take the Lease over", c.e.Held) + stopped
	close(stop)
	if overlap.Load() {
		t.Error("b and c both held the Lease at once")
	}
	h, transitions := holder()
	if h != "shipbot-c" || transitions < 2 {
		t.Errorf("Lease holder %q, transitions %d", h, transitions)
	}
	result("Lease election on kube-apiserver: hand-over on shutdown %.2fs; a leader cut off stops after %.2fs, another leads %.2fs after the cut (lease 3s, renew deadline 2s)",
		handover.Seconds(), stopped.Seconds(), took.Seconds())
}

var cmdTests = flag.String("cmd-tests", "", "cmd/shipbot's test binary (go test -c ./cmd/shipbot): its failover tests run against this stack's kube-apiserver")

// TestServeFailoverOnKubeAPIServer runs cmd/shipbot's failover scenarios
// — two `shipbot serve` processes, the leader killed with SIGKILL after
// showing a plan, and between "yes" and its push — with their Lease on
// this stack's real kube-apiserver: the confirmation lands exactly once.
func TestServeFailoverOnKubeAPIServer(t *testing.T) {
	if *cmdTests == "" {
		t.Skip("-cmd-tests not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const ns = "shipbot-ha"
	b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}})
	if _, err := st.Kube(ctx, http.MethodPost, "/api/v1/namespaces", "application/json", b); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}
	out, err := runCmdTests(ctx, "^TestServeFailover", "SHIPBOT_TEST_KUBE_URL="+stack.KubeURL, "SHIPBOT_TEST_KUBE_TOKEN_FILE="+st.KubeTokenFile(),
		"SHIPBOT_TEST_KUBE_CA_FILE="+st.KubeCAFile(), "SHIPBOT_TEST_KUBE_NAMESPACE="+ns)
	if err != nil || !strings.Contains(string(out), "the Lease is on the kube-apiserver") {
		t.Fatalf("cmd/shipbot failover tests against kube-apiserver: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "failover"); i >= 0 && strings.Contains(l, "serve_ha_test.go") {
			result("shipbot serve HA on kube-apiserver: %s", strings.TrimSpace(l[i:]))
		}
	}
	for _, name := range []string{"TestServeFailoverConfirmsOnce", "TestServeFailoverBetweenYesAndPush"} {
		if !strings.Contains(string(out), "--- PASS: "+name) {
			t.Errorf("%s did not pass:\n%s", name, out)
		}
	}
}

// runCmdTests runs cmd/shipbot's tests matching pattern (-cmd-tests) with
// env added, in the package's directory as `go test` does.
func runCmdTests(ctx context.Context, pattern string, env ...string) ([]byte, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, mustAbs(*cmdTests), "-test.run", pattern, "-test.v", "-test.count=1")
	cmd.Dir = filepath.Join(root, "cmd", "shipbot")
	cmd.Env = append(os.Environ(), env...)
	return cmd.CombinedOutput()
}
