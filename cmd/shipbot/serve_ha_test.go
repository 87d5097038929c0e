package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/lease"
	"github.com/shipbot/shipbot/gitops/lease/leasetest"
)

// replicaProc is one `shipbot serve` process of a highly available pair.
type replicaProc struct {
	name string
	base string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

func (r *replicaProc) readyz() string {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(r.base + "/readyz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// startReplica runs `shipbot serve --config cfg` as a separate process (the
// test binary as shipbot), so that it can be killed with SIGKILL.
func startReplica(t *testing.T, name, cfg string) *replicaProc {
	t.Helper()
	bin, err := exec.LookPath("shipbot") // testscript.Main puts the test binary on PATH as shipbot
	if err != nil {
		t.Skipf("no shipbot command on PATH: %v", err)
	}
	r := &replicaProc{name: name, base: "http://" + serveFreeAddr(t), log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	r.cmd = exec.Command(bin, "serve", "--config", cfg)
	r.cmd.Env = append(os.Environ(), "SHIPBOT_LISTEN="+strings.TrimPrefix(r.base, "http://"), "POD_NAME="+name)
	r.cmd.Stdout = io.Discard
	r.cmd.Stderr = lockedWriter{r.mu, r.log}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
		if t.Failed() {
			r.mu.Lock()
			t.Logf("%s log:\n%s", name, r.log.String())
			r.mu.Unlock()
		}
	})
	return r
}

// TestServeFailoverConfirmsOnce: two `shipbot serve` replicas elect a
// leader with a Lease (an API server on 127.0.0.1 that keeps Leases as
// kube-apiserver does). The leader shows alice's plan and is killed with
// SIGKILL before she answers; the standby takes the Lease, connects to
// Slack, and her Confirm — delivered to it — re-plans from the button's
// token and lands exactly once; a second Confirm is answered with that
// commit.
// haPair starts two `shipbot serve` replicas of the demo with ha: against
// a Lease API on 127.0.0.1 and a fake Slack, shipbot-a leading. The env
// repo is served over smart HTTP through a remote that can be told to
// misbehave.
func haPair(t *testing.T) (fs *serveSlack, remote *gittest.Remote, repo string, a, b *replicaProc, holder func() string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs two shipbot processes")
	}
	cfg, repo := serveDemo(t)
	dir := filepath.Dir(cfg)
	kube := leaseAPI(t, dir)
	remote = gittest.ServeFaults(t, dir)
	serveGit(t, repo, "config", "http.receivepack", "true")
	if err := os.WriteFile(filepath.Join(dir, "confirm-key"), []byte(strings.Repeat("k", 44)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	configs := map[string]string{}
	for _, name := range []string{"shipbot-a", "shipbot-b"} {
		c := strings.Replace(string(base), "  cacheDir: cache ", "  cacheDir: cache-"+name+" ", 1)
		c = strings.Replace(c, "  url: env.git ", "  url: "+remote.URL+"/"+filepath.Base(repo)+" ", 1)
		c = strings.Replace(c, "  channel: \"#ops\"\n", "  channel: \"#ops\"\n  confirmKeyFile: confirm-key\n", 1)
		c += "ha:\n  enabled: true\n  server: " + kube.url + "\n  tokenFile: " + kube.tokenFile + "\n  caFile: " + kube.caFile + "\n  namespace: " + kube.namespace +
			"\n  lease: shipbot-demo\n  leaseDuration: 3s\n  renewDeadline: 2s\n  retryPeriod: 250ms\n"
		configs[name] = filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(configs[name], []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fs = newServeSlack(t)
	serveEnv(t, "socket", fs.apiURL())

	a = startReplica(t, "shipbot-a", configs["shipbot-a"])
	serveWaitFor(t, "shipbot-a to lead and connect", func() bool { return a.readyz() == "ready\n" })
	b = startReplica(t, "shipbot-b", configs["shipbot-b"])
	serveWaitFor(t, "shipbot-b to stand by", func() bool { return b.readyz() == "ready (standby)\n" })
	if h := kube.holder(); h != "shipbot-a" {
		t.Fatalf("lease holder %q", h)
	}
	return fs, remote, repo, a, b, kube.holder
}

// leaseServer is where the replicas' Lease lives.
type leaseServer struct {
	url, tokenFile, caFile, namespace string
	holder                            func() string
}

// leaseAPI is a real kube-apiserver when SHIPBOT_TEST_KUBE_URL names one
// (make e2e runs these tests against its stack's: with
// SHIPBOT_TEST_KUBE_TOKEN_FILE, SHIPBOT_TEST_KUBE_CA_FILE and
// SHIPBOT_TEST_KUBE_NAMESPACE), else a Lease API on 127.0.0.1.
func leaseAPI(t *testing.T, dir string) leaseServer {
	t.Helper()
	if u := os.Getenv("SHIPBOT_TEST_KUBE_URL"); u != "" {
		k := leaseServer{url: u, tokenFile: os.Getenv("SHIPBOT_TEST_KUBE_TOKEN_FILE"), caFile: os.Getenv("SHIPBOT_TEST_KUBE_CA_FILE"), namespace: os.Getenv("SHIPBOT_TEST_KUBE_NAMESPACE")}
		o, err := lease.External(k.url, k.tokenFile, k.caFile)
		if err != nil {
			t.Fatal(err)
		}
		// A Lease of its own per test: the API server outlives the test.
		name := "shipbot-demo"
		k.holder = func() string {
			tok, err := o.Token()
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodGet, k.url+"/apis/coordination.k8s.io/v1/namespaces/"+k.namespace+"/leases/"+name, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := o.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var l struct {
				Spec struct {
					HolderIdentity string `json:"holderIdentity"`
				} `json:"spec"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&l)
			return l.Spec.HolderIdentity
		}
		t.Cleanup(func() {
			req, _ := http.NewRequest(http.MethodDelete, k.url+"/apis/coordination.k8s.io/v1/namespaces/"+k.namespace+"/leases/"+name, nil)
			if tok, err := o.Token(); err == nil {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			if resp, err := o.Client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
		t.Logf("the Lease is on the kube-apiserver at %s", k.url)
		return k
	}
	api := leasetest.New(t)
	token := filepath.Join(dir, "kube-token")
	if err := os.WriteFile(token, []byte(leasetest.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return leaseServer{url: api.URL, tokenFile: token, namespace: leasetest.Namespace, holder: func() string { return api.Holder("shipbot-demo") }}
}

// failover kills the leader a with SIGKILL and waits for b to lead and
// connect to Slack; it returns how long that took.
func failover(t *testing.T, a, b *replicaProc, holder func() string) time.Duration {
	t.Helper()
	killed := time.Now()
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.done
	serveWaitFor(t, "shipbot-b to take over", func() bool { return b.readyz() == "ready\n" })
	took := time.Since(killed)
	if h := holder(); h != "shipbot-b" {
		t.Fatalf("lease holder after the failover %q", h)
	}
	return took
}

// TestServeFailoverConfirmsOnce: two `shipbot serve` replicas elect a
// leader with a Lease (an API server on 127.0.0.1 that keeps Leases as
// kube-apiserver does). The leader shows alice's plan and is killed with
// SIGKILL before she answers; the standby takes the Lease, connects to
// Slack, and her Confirm — delivered to it — re-plans from the button's
// token and lands exactly once; a second Confirm is answered with that
// commit.
func TestServeFailoverConfirmsOnce(t *testing.T) {
	fs, _, repo, a, b, holder := haPair(t)
	before := serveGit(t, repo, "rev-parse", "main")
	count := serveCount(t, repo)

	fs.deliver(t, "slash_commands", "env-ha-1", serveSlash("UALICE", "rollback checkout prod --why "+servePD, "trig-ha-1"))
	plan := fs.planMessage(t, serveChannel, 0)
	token := serveButtonValue(t, plan)
	if !strings.HasPrefix(token, "v1.") {
		t.Fatalf("the Confirm button carries %q, not a confirmation token", token)
	}

	// The leader dies before alice answers.
	took := failover(t, a, b, holder)
	t.Logf("failover (SIGKILL of the leader -> the standby leads and is connected to Slack): %s", took.Round(10*time.Millisecond))

	fs.deliver(t, "interactive", "env-ha-2", serveClick("UALICE", plan.TS, token, "1700000100.000001", "trig-ha-2"))
	serveWaitFor(t, "the change landed", func() bool { return serveCount(t, repo) == count+1 })
	serveWaitFor(t, "the plan's message says done", func() bool {
		return strings.Contains(fs.current(serveChannel, plan.TS).Shown(), "done: rollback checkout in prod: 1.4.2 -> 1.4.1")
	})
	commit := serveGit(t, repo, "rev-parse", "main")
	if parent := serveGit(t, repo, "rev-parse", "main~1"); parent != before {
		t.Fatalf("the rollback is not on top of %s", before)
	}

	// Another Confirm of the same plan (a double click, a redelivery after
	// another failover): the request landed, nothing more is written.
	fs.deliver(t, "interactive", "env-ha-3", serveClick("UALICE", plan.TS, token, "1700000100.000002", "trig-ha-3"))
	serveWaitFor(t, "the second confirm answered", func() bool {
		return strings.Contains(fs.current(serveChannel, plan.TS).Shown(), commit[:7])
	})
	time.Sleep(500 * time.Millisecond)
	if serveCount(t, repo) != count+1 || serveGit(t, repo, "rev-parse", "main") != commit {
		t.Fatal("the confirmation landed twice")
	}
}

// serveButtonValue is the value of a plan message's Confirm button.
func serveButtonValue(t *testing.T, plan serveCall) string {
	t.Helper()
	i := strings.Index(plan.Blocks, `"action_id":"shipbot_confirm"`)
	if i < 0 {
		t.Fatalf("no Confirm button in %s", plan.Blocks)
	}
	rest := plan.Blocks[i:]
	j := strings.Index(rest, `"value":"`)
	rest = rest[j+len(`"value":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestServeFailoverBetweenYesAndPush: alice confirms, the leader's push to
// the git remote hangs, and the leader is killed with SIGKILL before it
// wrote anything or acknowledged the click. Slack delivers the click again
// — to the replica that leads next — which re-plans it from the button's
// token and writes it exactly once.
func TestServeFailoverBetweenYesAndPush(t *testing.T) {
	fs, remote, repo, a, b, holder := haPair(t)
	count := serveCount(t, repo)
	fs.deliver(t, "slash_commands", "env-yp-1", serveSlash("UALICE", "rollback checkout prod --why "+servePD, "trig-yp-1"))
	plan := fs.planMessage(t, serveChannel, 0)
	token := serveButtonValue(t, plan)

	remote.Inject(gittest.Fault{Match: gittest.PushPost, Kind: gittest.Hang})
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		// Retried every 5 s until acknowledged, as Slack retries.
		fs.deliver(t, "interactive", "env-yp-2", serveClick("UALICE", plan.TS, token, "1700000200.000001", "trig-yp-2"))
	}()
	serveWaitFor(t, "the leader's push to hang", func() bool { return remote.Pushes() > 0 })
	if fs.acked("env-yp-2") {
		t.Fatal("the click was acknowledged before its change was written")
	}
	took := failover(t, a, b, holder)
	remote.Heal()
	t.Logf("failover between yes and the push: %s", took.Round(10*time.Millisecond))
	<-delivered
	serveWaitFor(t, "the change landed", func() bool { return serveCount(t, repo) == count+1 })
	serveWaitFor(t, "the plan's message says done", func() bool {
		return strings.Contains(fs.current(serveChannel, plan.TS).Shown(), "done: rollback checkout in prod: 1.4.2 -> 1.4.1")
	})
	time.Sleep(500 * time.Millisecond)
	if n := serveCount(t, repo); n != count+1 {
		t.Fatalf("%d commits, want exactly one more than %d", n, count)
	}
}
