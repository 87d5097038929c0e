// Package stack runs a real Argo CD v2.14 with a real kube-apiserver,
// kube-controller-manager, kube-scheduler and kubelet v1.31 (containerd and
// runc underneath: one real node) on 127.0.0.1, without Docker, for
// shipbot's end-to-end tests and the full-loop demo (see
// deploy/local/README.md).
//
// Start expects to run inside a private network namespace (the harness's
// `netns` command makes one, with a private mount namespace): every server
// binds 127.0.0.1, and the Argo CD application controller binds
// 0.0.0.0:8082 with no flag to change it; node.go says what the node does
// in those namespaces. Besides the standard library it uses only
// deploy/local/images (go-containerregistry, already one of shipbot's
// dependencies), so it lives in shipbot's own module without pulling Argo CD
// or Kubernetes into it; the binaries come from deploy/local/build.sh.
//
// Ports (inside the namespace): etcd 2379/2380, kube-apiserver 6443, redis
// 6379, argocd-server 8080 (plain HTTP, --insecure), repo-server 8081,
// controller metrics 8082, server metrics 8083, repo-server metrics 8084,
// registry 5000, kubelet 10250 (healthz 10248), kube-scheduler 10259,
// kube-controller-manager 10257.
package stack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shipbot/shipbot/deploy/local/images"
)

// Fixed endpoints inside the namespace.
const (
	KubeURL   = "https://127.0.0.1:6443"
	ArgoURL   = "http://127.0.0.1:8080"
	Namespace = "argocd"
	// Account is the Argo CD local account shipbot uses: apiKey only, with
	// get and sync on applications, as in production.
	Account = "shipbot"
)

// App is one Argo CD Application to create.
type App struct {
	Name      string
	Path      string   // in the env repo
	Namespace string   // destination namespace (created by Argo CD)
	Values    []string // Helm valueFiles relative to Path (Helm apps)
	Automated bool     // automated sync (prune off, self-heal off)
}

// Options configure Start.
type Options struct {
	// BinDir holds argocd, kube-apiserver, kube-controller-manager,
	// kube-scheduler, kubelet, kustomize, helm, app (the images' binary)
	// and crds/ (from build.sh).
	BinDir string
	// WorkDir gets data, certs, tokens and one log per process (logs/).
	WorkDir string
	// RepoPath is the bare env repo; Argo CD reads it as file://RepoPath.
	RepoPath string
	// Apps are created once Argo CD runs.
	Apps []App
	// Images are built and pushed to the local registry before the node
	// starts (the pause image is added). Their registries are served by
	// it: containerd's hosts.toml sends them there.
	Images []images.Image
	// Log gets progress lines (default: discard).
	Log io.Writer
	// Ready bounds each wait for a server (default 60s).
	Ready time.Duration
}

// Stack is a running stack. Stop it.
type Stack struct {
	o             Options
	kubeToken     string
	adminToken    string
	adminPassword string
	// TokenFile holds the shipbot account's API token.
	TokenFile string
	// RepoURL is the env repo as Argo CD knows it.
	RepoURL string
	// ArgoVersion is the running Argo CD's own version (GET /api/version),
	// e.g. "v3.2.11+unknown".
	ArgoVersion string

	http *http.Client
	node node

	mu      sync.Mutex
	procs   map[string]*proc
	order   []string
	stopped bool
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	spec procSpec
}

type procSpec struct {
	bin  string
	args []string
	env  []string
}

func (s *Stack) logf(format string, args ...any) {
	fmt.Fprintf(s.o.Log, "[stack %s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// Start brings the whole stack up and waits until every app is Synced and
// Healthy. On error it stops what it started.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Ready <= 0 {
		o.Ready = 60 * time.Second
	}
	for _, p := range []*string{&o.BinDir, &o.WorkDir, &o.RepoPath} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	for _, b := range []string{"argocd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kustomize", "helm", "app"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return nil, fmt.Errorf("stack: %w (run deploy/local/build.sh)", err)
		}
	}
	for _, b := range []string{"etcd", "redis-server", "git", "containerd", "containerd-shim-runc-v2", "runc", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			return nil, fmt.Errorf("stack: %s not on PATH (apt-get install etcd-server redis-server git containerd runc containernetworking-plugins iproute2)", b)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		return nil, fmt.Errorf("stack: no CNI plugins in /usr/lib/cni (apt-get install containernetworking-plugins)")
	}
	s := &Stack{
		o:       o,
		RepoURL: "file://" + o.RepoPath,
		procs:   map[string]*proc{},
		http: &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the apiserver's self-signed cert, loopback only
		}},
	}
	defer func() {
		if err != nil {
			s.logf("start failed: %v; stopping", err)
			s.Stop()
		}
	}()
	start := time.Now()
	if err := s.files(); err != nil {
		return nil, err
	}
	if err := s.startRegistry(ctx); err != nil {
		return nil, err
	}
	if err := s.startKube(ctx); err != nil {
		return nil, err
	}
	if err := s.startNode(ctx); err != nil {
		return nil, err
	}
	if err := s.bootstrapKube(ctx); err != nil {
		return nil, err
	}
	if err := s.startArgo(ctx); err != nil {
		return nil, err
	}
	if err := s.bootstrapArgo(ctx); err != nil {
		return nil, err
	}
	names := make([]string, len(o.Apps))
	for i, a := range o.Apps {
		names[i] = a.Name
	}
	if err := s.WaitApps(ctx, names, 3*time.Minute); err != nil {
		return nil, err
	}
	s.logf("stack up in %s: %d apps Synced and Healthy (pods Ready)", time.Since(start).Round(100*time.Millisecond), len(names))
	return s, nil
}

func (s *Stack) path(p ...string) string {
	return filepath.Join(append([]string{s.o.WorkDir}, p...)...)
}

// files writes the service-account key pair, the static token file and the
// kubeconfig.
func (s *Stack) files() error {
	for _, d := range []string{"logs", "certs", "etcd", "argocd/tls", "argocd/ssh", "argocd/gnupg", "argocd/gpg", "argocd/plugins", "home"} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return err
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.path("certs/sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(s.path("certs/sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return err
	}
	b := make([]byte, 24)
	rand.Read(b)
	s.kubeToken = hex.EncodeToString(b)
	if err := os.WriteFile(s.path("certs/tokens.csv"), []byte(s.kubeToken+",admin,admin,system:masters\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(s.path("certs/admin.token"), []byte(s.kubeToken+"\n"), 0o600); err != nil {
		return err
	}
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
`, KubeURL, s.kubeToken)
	return os.WriteFile(s.path("kubeconfig"), []byte(kubeconfig), 0o600)
}

func (s *Stack) startKube(ctx context.Context) error {
	if err := s.spawn("etcd", procSpec{bin: "etcd", args: []string{
		"--name", "e2e", "--data-dir", s.path("etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "e2e=http://127.0.0.1:2380",
	}}); err != nil {
		return err
	}
	if err := s.waitHTTP(ctx, "etcd", "http://127.0.0.1:2379/health", ""); err != nil {
		return err
	}
	if err := s.spawn("redis", procSpec{bin: "redis-server", args: []string{
		"--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no", "--dir", s.path(),
	}}); err != nil {
		return err
	}
	if err := s.spawn("kube-apiserver", procSpec{bin: filepath.Join(s.o.BinDir, "kube-apiserver"), args: []string{
		"--etcd-servers=http://127.0.0.1:2379", "--bind-address=127.0.0.1", "--secure-port=6443",
		"--advertise-address=127.0.0.1", "--cert-dir=" + s.path("certs"),
		"--token-auth-file=" + s.path("certs/tokens.csv"), "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + s.path("certs/sa.pub"),
		"--service-account-signing-key-file=" + s.path("certs/sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24", "--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false", "--disable-admission-plugins=ServiceAccount",
	}}); err != nil {
		return err
	}
	if err := s.waitHTTP(ctx, "kube-apiserver", KubeURL+"/readyz", s.kubeToken); err != nil {
		return err
	}
	kc := s.path("kubeconfig")
	// node-lifecycle-controller: the kubelet registers its node tainted
	// not-ready, and only this controller removes the taint.
	if err := s.spawn("kube-controller-manager", procSpec{bin: filepath.Join(s.o.BinDir, "kube-controller-manager"), args: []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", "--leader-elect=false",
		"--controllers=deployment-controller,replicaset-controller,namespace-controller,garbage-collector-controller,serviceaccount-controller,node-lifecycle-controller",
		"--service-account-private-key-file=" + s.path("certs/sa.key"),
	}}); err != nil {
		return err
	}
	return s.spawn("kube-scheduler", procSpec{bin: filepath.Join(s.o.BinDir, "kube-scheduler"), args: []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1", "--leader-elect=false",
	}})
}

// Argo CD's config objects (manifests/base/config): empty, labelled so
// Argo CD's informers see them.
var argoConfigMaps = []string{"argocd-cm", "argocd-cmd-params-cm", "argocd-rbac-cm", "argocd-ssh-known-hosts-cm", "argocd-tls-certs-cm", "argocd-gpg-keys-cm"}

func labels(name string) map[string]string {
	return map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "argocd"}
}

func (s *Stack) bootstrapKube(ctx context.Context) error {
	s.logf("bootstrap: namespace %s, CRDs, config", Namespace)
	if err := s.apply(ctx, "/api/v1/namespaces/"+Namespace, map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": Namespace},
	}); err != nil {
		return err
	}
	for _, crd := range []string{"application", "appproject", "applicationset"} {
		y, err := os.ReadFile(filepath.Join(s.o.BinDir, "crds", crd+"-crd.yaml"))
		if err != nil {
			return fmt.Errorf("stack: CRD: %w (run deploy/local/build.sh)", err)
		}
		name := crd + "s.argoproj.io"
		if _, err := s.Kube(ctx, http.MethodPatch, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+name+"?fieldManager=shipbot-e2e&force=true",
			"application/apply-patch+yaml", y); err != nil {
			return fmt.Errorf("stack: CRD %s: %w", name, err)
		}
	}
	// The admin password for bootstrap only (shipbot never uses it).
	pw := make([]byte, 12)
	rand.Read(pw)
	s.adminPassword = hex.EncodeToString(pw)
	hash, err := s.argocdCLI(ctx, "account", "bcrypt", "--password", s.adminPassword)
	if err != nil {
		return err
	}
	for _, cm := range argoConfigMaps {
		data := map[string]string{}
		switch cm {
		case "argocd-cm":
			data["accounts."+Account] = "apiKey"
		case "argocd-rbac-cm":
			data["policy.csv"] = "p, " + Account + ", applications, get, */*, allow\n" +
				"p, " + Account + ", applications, sync, */*, allow\n"
			data["policy.default"] = ""
		}
		if err := s.apply(ctx, "/api/v1/namespaces/"+Namespace+"/configmaps/"+cm, map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": cm, "namespace": Namespace, "labels": labels(cm)},
			"data":     data,
		}); err != nil {
			return err
		}
	}
	return s.apply(ctx, "/api/v1/namespaces/"+Namespace+"/secrets/argocd-secret", map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
		"metadata": map[string]any{"name": "argocd-secret", "namespace": Namespace, "labels": labels("argocd-secret")},
		"stringData": map[string]string{
			"admin.password":      strings.TrimSpace(hash),
			"admin.passwordMtime": time.Now().UTC().Format(time.RFC3339),
		},
	})
}

// argoEnv is the environment of every Argo CD role.
func (s *Stack) argoEnv(role string) []string {
	return []string{
		"ARGOCD_BINARY_NAME=" + role,
		"KUBECONFIG=" + s.path("kubeconfig"),
		"ARGOCD_FAKE_IN_CLUSTER=true",
		"ARGOCD_GPG_ENABLED=false",
		"ARGOCD_TLS_DATA_PATH=" + s.path("argocd/tls"),
		"ARGOCD_SSH_DATA_PATH=" + s.path("argocd/ssh"),
		"ARGOCD_GNUPGHOME=" + s.path("argocd/gnupg"),
		"ARGOCD_GPG_DATA_PATH=" + s.path("argocd/gpg"),
		"ARGOCD_PLUGINSOCKFILEPATH=" + s.path("argocd/plugins"),
		"HOME=" + s.path("home"),
		// kustomize 5.4.3 and helm 3.16.4 first on Argo CD's PATH.
		"PATH=" + s.o.BinDir + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
}

func (s *Stack) argocdCLI(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.o.BinDir, "argocd"), args...)
	cmd.Env = s.argoEnv("argocd")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("stack: argocd %s: %w: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// argoSpecs are the three Argo CD roles, all from the one binary.
func (s *Stack) argoSpecs() map[string]procSpec {
	bin := filepath.Join(s.o.BinDir, "argocd")
	return map[string]procSpec{
		"argocd-repo-server": {bin: bin, env: s.argoEnv("argocd-repo-server"), args: []string{
			"--address", "127.0.0.1", "--port", "8081", "--metrics-address", "127.0.0.1", "--metrics-port", "8084", "--redis", "127.0.0.1:6379",
		}},
		"argocd-server": {bin: bin, env: s.argoEnv("argocd-server"), args: []string{
			"--namespace", Namespace, "--insecure", "--address", "127.0.0.1", "--port", "8080",
			"--metrics-address", "127.0.0.1", "--metrics-port", "8083", "--redis", "127.0.0.1:6379", "--repo-server", "127.0.0.1:8081",
		}},
		"argocd-application-controller": {bin: bin, env: append(s.argoEnv("argocd-application-controller"), "HOSTNAME=argocd-application-controller-0"), args: []string{
			"--namespace", Namespace, "--metrics-port", "8082", "--redis", "127.0.0.1:6379",
			"--repo-server", "127.0.0.1:8081", "--commit-server", "127.0.0.1:8086",
		}},
	}
}

func (s *Stack) startArgo(ctx context.Context) error {
	specs := s.argoSpecs()
	for _, role := range []string{"argocd-repo-server", "argocd-server", "argocd-application-controller"} {
		if err := s.spawn(role, specs[role]); err != nil {
			return err
		}
	}
	return s.waitHTTP(ctx, "argocd-server", ArgoURL+"/healthz", "")
}

func (s *Stack) bootstrapArgo(ctx context.Context) error {
	var sess struct {
		Token string `json:"token"`
	}
	// The server creates the default project and its secret key on start;
	// a login right after /healthz can still race that.
	if err := retry(ctx, 30*time.Second, func() error {
		return s.argo(ctx, http.MethodPost, "/api/v1/session", "", map[string]string{"username": "admin", "password": s.adminPassword}, &sess)
	}); err != nil {
		return fmt.Errorf("stack: admin login: %w", err)
	}
	s.adminToken = sess.Token
	if err := s.argo(ctx, http.MethodPost, "/api/v1/repositories?upsert=true", s.adminToken, map[string]string{"repo": s.RepoURL, "type": "git", "name": "env"}, nil); err != nil {
		return fmt.Errorf("stack: register repo: %w", err)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := retry(ctx, 30*time.Second, func() error {
		return s.argo(ctx, http.MethodPost, "/api/v1/account/"+Account+"/token", s.adminToken, map[string]string{"id": "e2e"}, &tok)
	}); err != nil {
		return fmt.Errorf("stack: token for %s: %w", Account, err)
	}
	s.TokenFile = s.path("shipbot-argocd.token")
	if err := os.WriteFile(s.TokenFile, []byte(tok.Token+"\n"), 0o600); err != nil {
		return err
	}
	for _, a := range s.o.Apps {
		if err := s.argo(ctx, http.MethodPost, "/api/v1/applications?upsert=true", s.adminToken, s.application(a), nil); err != nil {
			return fmt.Errorf("stack: create app %s: %w", a.Name, err)
		}
	}
	var ver struct {
		Version string `json:"Version"`
	}
	if err := s.argo(ctx, http.MethodGet, "/api/version", s.adminToken, nil, &ver); err != nil {
		return fmt.Errorf("stack: Argo CD version: %w", err)
	}
	s.ArgoVersion = ver.Version
	s.logf("Argo CD %s: repo %s, account %s with get+sync, %d apps created", s.ArgoVersion, s.RepoURL, Account, len(s.o.Apps))
	return nil
}

func (s *Stack) application(a App) map[string]any {
	src := map[string]any{"repoURL": s.RepoURL, "path": a.Path, "targetRevision": "main"}
	if len(a.Values) > 0 {
		src["helm"] = map[string]any{"valueFiles": a.Values}
	}
	policy := map[string]any{"syncOptions": []string{"CreateNamespace=true"}}
	if a.Automated {
		policy["automated"] = map[string]any{"prune": false, "selfHeal": false}
	}
	spec := map[string]any{
		"project":     "default",
		"source":      src,
		"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": a.Namespace},
		"syncPolicy":  policy,
	}
	return map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
		"metadata": map[string]any{"name": a.Name, "namespace": Namespace},
		"spec":     spec,
	}
}

// AppState is the part of an Application WaitApps reads.
type AppState struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		SyncPolicy struct {
			Automated *struct{} `json:"automated"`
		} `json:"syncPolicy"`
	} `json:"spec"`
	Status struct {
		Sync struct {
			Status   string `json:"status"`
			Revision string `json:"revision"`
		} `json:"sync"`
		Health struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"health"`
		OperationState *struct {
			Phase string `json:"phase"`
		} `json:"operationState"`
	} `json:"status"`
}

// AdminToken is Argo CD's admin session token, for a scenario that acts
// as an operator would (shipbot's own account stays get+sync).
func (s *Stack) AdminToken() string { return s.adminToken }

// App reads an app as admin (refresh: "", "normal" or "hard").
func (s *Stack) App(ctx context.Context, name, refresh string) (*AppState, error) {
	p := "/api/v1/applications/" + url.PathEscape(name)
	if refresh != "" {
		p += "?refresh=" + refresh
	}
	var a AppState
	if err := s.argo(ctx, http.MethodGet, p, s.adminToken, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Sync syncs an app to revision as admin, the way a person would.
func (s *Stack) Sync(ctx context.Context, name, revision string) error {
	return s.argo(ctx, http.MethodPost, "/api/v1/applications/"+url.PathEscape(name)+"/sync", s.adminToken, map[string]any{"revision": revision}, nil)
}

// WaitApps waits until every app is Synced and Healthy, syncing the manual
// ones (once) as admin.
func (s *Stack) WaitApps(ctx context.Context, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	synced := map[string]bool{}
	last := map[string]string{}
	for {
		pending := 0
		for _, n := range names {
			a, err := s.App(ctx, n, "")
			if err != nil {
				last[n] = err.Error()
				pending++
				continue
			}
			st := a.Status
			last[n] = fmt.Sprintf("%s/%s %s", st.Sync.Status, st.Health.Status, st.Health.Message)
			if st.Sync.Status == "Synced" && st.Health.Status == "Healthy" {
				continue
			}
			pending++
			if a.Spec.SyncPolicy.Automated == nil && !synced[n] && st.Sync.Status == "OutOfSync" {
				if err := s.argo(ctx, http.MethodPost, "/api/v1/applications/"+n+"/sync", s.adminToken, map[string]any{}, nil); err == nil {
					synced[n] = true
				}
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, n := range names {
				fmt.Fprintf(&b, "\n  %s: %s", n, last[n])
			}
			return fmt.Errorf("stack: apps not Synced and Healthy after %s:%s", timeout, b.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// StopProcess stops one process (SIGTERM, then SIGKILL after 10s).
func (s *Stack) StopProcess(name string) error {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("stack: no process %s", name)
	}
	s.kill(p)
	return nil
}

// StartProcess starts a stopped process again with its original spec.
func (s *Stack) StartProcess(name string) error {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("stack: no process %s", name)
	}
	select {
	case <-p.done:
	default:
		return fmt.Errorf("stack: %s is running", name)
	}
	return s.spawn(name, p.spec)
}

// WaitArgo waits until argocd-server answers /healthz.
func (s *Stack) WaitArgo(ctx context.Context) error {
	return s.waitHTTP(ctx, "argocd-server", ArgoURL+"/healthz", "")
}

// Stop stops Argo CD, takes the node down (workloads first; see node.go)
// and stops every other process, newest first.
func (s *Stack) Stop() {
	s.mu.Lock()
	stopped := s.stopped
	s.stopped = true
	s.mu.Unlock()
	if stopped {
		return
	}
	start := time.Now()
	for _, n := range []string{"argocd-application-controller", "argocd-server", "argocd-repo-server"} {
		s.stopNamed(n)
	}
	s.stopNode()
	s.mu.Lock()
	order := append([]string(nil), s.order...)
	s.mu.Unlock()
	for i := len(order) - 1; i >= 0; i-- {
		s.mu.Lock()
		p := s.procs[order[i]]
		s.mu.Unlock()
		s.kill(p)
	}
	s.logf("stopped in %s; logs in %s", time.Since(start).Round(100*time.Millisecond), s.path("logs"))
}

func (s *Stack) kill(p *proc) {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	s.logf("%s stopped", p.name)
}

// spawn starts a process in its own process group, logging to logs/NAME.log.
func (s *Stack) spawn(name string, spec procSpec) error {
	f, err := os.OpenFile(s.path("logs", name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(spec.bin, spec.args...)
	cmd.Dir = s.path()
	cmd.Env = append(os.Environ(), spec.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the harness kills leftovers with the namespace
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("stack: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), spec: spec}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.mu.Lock()
	if _, ok := s.procs[name]; !ok {
		s.order = append(s.order, name)
	}
	s.procs[name] = p
	s.mu.Unlock()
	s.logf("%s started (pid %d, log %s)", name, cmd.Process.Pid, s.path("logs", name+".log"))
	return nil
}

func (s *Stack) exited(name string) error {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return fmt.Errorf("stack: %s exited (%v); last log lines:\n%s", name, p.cmd.ProcessState, s.tail(name, 15))
	default:
		return nil
	}
}

// tail returns the last n lines of a process log.
func (s *Stack) tail(name string, n int) string {
	f, err := os.Open(s.path("logs", name+".log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

func (s *Stack) waitHTTP(ctx context.Context, name, u, token string) error {
	start := time.Now()
	deadline := start.Add(s.o.Ready)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := s.http.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.logf("%s ready in %s", name, time.Since(start).Round(100*time.Millisecond))
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if e := s.exited(name); e != nil {
			return e
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stack: %s not ready after %s: %v; last log lines:\n%s", name, s.o.Ready, err, s.tail(name, 15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Kube does one request to the kube-apiserver as system:masters and
// returns the body of a 2xx answer.
func (s *Stack) Kube(ctx context.Context, method, path, contentType string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, KubeURL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.kubeToken)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}

// KubeTokenFile holds the admin token of KubeAuth; KubeCAFile is the
// certificate kube-apiserver generated for itself (with its CA): what a
// client outside the stack (a shipbot serve with ha.server) trusts.
func (s *Stack) KubeTokenFile() string { return s.path("certs/admin.token") }
func (s *Stack) KubeCAFile() string    { return s.path("certs/apiserver.crt") }

// KubeAuth is how to reach kube-apiserver at KubeURL: an HTTP client
// (TLS to its self-signed certificate, loopback only) and an admin token.
func (s *Stack) KubeAuth() (*http.Client, string) { return s.http, s.kubeToken }

// apply server-side-applies obj at path.
func (s *Stack) apply(ctx context.Context, path string, obj any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	_, err = s.Kube(ctx, http.MethodPatch, path+"?fieldManager=shipbot-e2e&force=true", "application/apply-patch+yaml", b)
	return err
}

// argo does one Argo CD REST call (every POST with a JSON body).
func (s *Stack) argo(ctx context.Context, method, path, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, ArgoURL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func retry(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
