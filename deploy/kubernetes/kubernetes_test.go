package kubernetes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// obj is one rendered object, as the API server would read it (JSON types).
type obj map[string]any

func (o obj) key() string {
	return fmt.Sprintf("%s/%s %s/%s", o.str("apiVersion"), o.str("kind"), o.str("metadata", "namespace"), o.str("metadata", "name"))
}

// get walks maps by key and lists by index ("0").
func (o obj) get(path ...string) any {
	var v any = map[string]any(o)
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func (o obj) str(path ...string) string { s, _ := o.get(path...).(string); return s }

func (o obj) list(path ...string) []any { l, _ := o.get(path...).([]any); return l }

func asObj(v any) obj { m, _ := v.(map[string]any); return obj(m) }

// normalize gives YAML from any renderer the types JSON gives.
func normalize(t *testing.T, v any) obj {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var o obj
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

func renderKustomize(t *testing.T, dir string) []obj {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []obj
	for _, r := range m.Resources() {
		mm, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, normalize(t, mm))
	}
	return objs
}

func renderHelm(t *testing.T, helm, mode string) []obj {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helm, "template", "shipbot", "chart/shipbot", "--namespace", "shipbot", "--set", "mode="+mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template (mode %s): %v\n%s", mode, err, stderr.Bytes())
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	var objs []obj
	for {
		var v map[string]any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template output: %v", err)
		}
		if v == nil {
			continue
		}
		o := normalize(t, v)
		// The labels Helm's conventions add; kustomize has no equivalent.
		if labels, ok := o.get("metadata", "labels").(map[string]any); ok {
			delete(labels, "helm.sh/chart")
			delete(labels, "app.kubernetes.io/managed-by")
		}
		objs = append(objs, o)
	}
	return objs
}

func byKey(t *testing.T, objs []obj) map[string]obj {
	t.Helper()
	m := map[string]obj{}
	for _, o := range objs {
		if _, dup := m[o.key()]; dup {
			t.Errorf("%s rendered twice", o.key())
		}
		m[o.key()] = o
	}
	return m
}

func find(t *testing.T, objs []obj, kind string) obj {
	t.Helper()
	for _, o := range objs {
		if o.str("kind") == kind {
			return o
		}
	}
	t.Fatalf("no %s rendered", kind)
	return nil
}

var wantKinds = map[string][]string{
	"socket": {"ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget", "PrometheusRule", "Role", "RoleBinding", "Service", "ServiceAccount", "ServiceMonitor"},
	"http":   {"ConfigMap", "Deployment", "Ingress", "NetworkPolicy", "PodDisruptionBudget", "PrometheusRule", "Role", "RoleBinding", "Service", "ServiceAccount", "ServiceMonitor"},
}

// TestManifests renders each overlay and the chart in the same mode and
// checks the objects, then that both renderers agree object for object.
func TestManifests(t *testing.T) {
	helm, helmErr := exec.LookPath("helm")
	for _, mode := range []string{"socket", "http"} {
		t.Run(mode, func(t *testing.T) {
			k := renderKustomize(t, filepath.Join("overlays", mode))
			checkObjects(t, "kustomize", mode, k)
			if helmErr != nil {
				t.Skip("helm is not on PATH: the chart is not rendered and compared (CI puts helm on PATH)")
			}
			h := renderHelm(t, helm, mode)
			checkObjects(t, "helm", mode, h)
			km, hm := byKey(t, k), byKey(t, h)
			var keys []string
			for key := range km {
				keys = append(keys, key)
			}
			for key := range hm {
				if _, ok := km[key]; !ok {
					keys = append(keys, key)
				}
			}
			sort.Strings(keys)
			for _, key := range keys {
				ko, kok := km[key]
				ho, hok := hm[key]
				switch {
				case !kok:
					t.Errorf("%s: rendered by helm only", key)
				case !hok:
					t.Errorf("%s: rendered by kustomize only", key)
				default:
					if d := cmp.Diff(ko, ho); d != "" {
						t.Errorf("%s differs (-kustomize +helm):\n%s", key, d)
					}
				}
			}
		})
	}
}

// checkObjects checks what every rendering must hold.
func checkObjects(t *testing.T, renderer, mode string, objs []obj) {
	t.Helper()
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.str("kind"))
		if ns := o.str("metadata", "namespace"); ns != "shipbot" {
			t.Errorf("%s: %s is in namespace %q, want shipbot", renderer, o.key(), ns)
		}
		if o.str("kind") == "Secret" && (o.get("data") != nil || o.get("stringData") != nil) {
			t.Errorf("%s: Secret %s carries data: secrets are created by the SRE, never rendered", renderer, o.key())
		}
	}
	sort.Strings(kinds)
	if !slices.Equal(kinds, wantKinds[mode]) {
		t.Errorf("%s: kinds %v, want %v", renderer, kinds, wantKinds[mode])
	}

	d := find(t, objs, "Deployment")
	if r, _ := d.get("spec", "replicas").(float64); r != 2 {
		t.Errorf("%s: replicas %v, want 2", renderer, d.get("spec", "replicas"))
	}
	pod := asObj(d.get("spec", "template", "spec"))
	checkRestricted(t, renderer, pod)

	c := asObj(pod.get("containers", "0"))
	if img := c.str("image"); !strings.HasPrefix(img, "ghcr.io/shipbot/shipbot:") && !strings.Contains(img, "@sha256:") {
		t.Errorf("%s: image %q", renderer, img)
	}
	env := map[string]string{}
	for _, e := range c.list("env") {
		env[asObj(e).str("name")] = asObj(e).str("value")
	}
	if env["SHIPBOT_SLACK_MODE"] != mode {
		t.Errorf("%s: SHIPBOT_SLACK_MODE=%q, want %s", renderer, env["SHIPBOT_SLACK_MODE"], mode)
	}
	wantSecretEnv := map[string]string{"socket": "SHIPBOT_SLACK_APP_TOKEN_FILE", "http": "SHIPBOT_SLACK_SIGNING_SECRET_FILE"}[mode]
	for _, k := range []string{"SHIPBOT_SLACK_BOT_TOKEN_FILE", wantSecretEnv} {
		if !strings.HasPrefix(env[k], "/run/secrets/shipbot/") {
			t.Errorf("%s: %s=%q, want a file of the mounted Secret", renderer, k, env[k])
		}
	}
	// The probes reach what serve really listens on.
	if env["SHIPBOT_LISTEN"] != ":8080" {
		t.Errorf("%s: SHIPBOT_LISTEN=%q, want :8080 (the default 127.0.0.1:8080 is not reachable by probes)", renderer, env["SHIPBOT_LISTEN"])
	}
	if p := asObj(c.get("ports", "0")); p.str("name") != "http" || p.get("containerPort") != 8080.0 {
		t.Errorf("%s: container port %v, want http 8080", renderer, p)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if got := c.str(probe, "httpGet", "path"); got != path || c.str(probe, "httpGet", "port") != "http" {
			t.Errorf("%s: %s on %q port %v, want %s on http", renderer, probe, got, c.get(probe, "httpGet", "port"), path)
		}
	}

	// Mounts: the config, the Secret by name, and emptyDirs for what the
	// read-only root file system can't hold.
	vols := map[string]obj{}
	for _, v := range pod.list("volumes") {
		vols[asObj(v).str("name")] = asObj(v)
	}
	mounts := map[string]string{}
	for _, m := range c.list("volumeMounts") {
		mounts[asObj(m).str("mountPath")] = asObj(m).str("name")
	}
	for path, kind := range map[string]string{"/tmp": "emptyDir", "/var/cache/shipbot": "emptyDir", "/etc/shipbot": "configMap", "/run/secrets/shipbot": "secret"} {
		if v := vols[mounts[path]]; v == nil || v.get(kind) == nil {
			t.Errorf("%s: %s is not a %s volume", renderer, path, kind)
		}
	}
	if s := vols[mounts["/run/secrets/shipbot"]].str("secret", "secretName"); s != "shipbot" {
		t.Errorf("%s: secret volume refers to %q, want the Secret shipbot", renderer, s)
	}

	cm := find(t, objs, "ConfigMap")
	if cm.str("metadata", "name") != vols[mounts["/etc/shipbot"]].str("configMap", "name") {
		t.Errorf("%s: the config volume names %q, the ConfigMap is %q", renderer, vols[mounts["/etc/shipbot"]].str("configMap", "name"), cm.str("metadata", "name"))
	}
	var cfg struct {
		Repo struct {
			CacheDir string `yaml:"cacheDir"`
		} `yaml:"repo"`
		Policy struct{ Model, Policy string }
	}
	if err := yaml.Unmarshal([]byte(cm.str("data", "shipbot.yaml")), &cfg); err != nil {
		t.Errorf("%s: shipbot.yaml: %v", renderer, err)
	}
	if cfg.Repo.CacheDir != "/var/cache/shipbot" {
		t.Errorf("%s: repo.cacheDir %q is not the emptyDir /var/cache/shipbot", renderer, cfg.Repo.CacheDir)
	}
	for _, f := range []string{cfg.Policy.Model, cfg.Policy.Policy} {
		if cm.str("data", f) == "" {
			t.Errorf("%s: shipbot.yaml names %q, which the ConfigMap does not hold", renderer, f)
		}
	}
	model, err := os.ReadFile("../examples/model.conf")
	if err != nil {
		t.Fatal(err)
	}
	if cm.str("data", "model.conf") != string(model) {
		t.Errorf("%s: model.conf differs from deploy/examples/model.conf", renderer)
	}

	// Leases only: get, create, update.
	for _, r := range find(t, objs, "Role").list("rules") {
		r := asObj(r)
		for _, v := range r.list("verbs") {
			if !slices.Contains([]any{"get", "create", "update"}, v) {
				t.Errorf("%s: Role grants %v", renderer, v)
			}
		}
		if fmt.Sprint(r.get("apiGroups")) != "[coordination.k8s.io]" || fmt.Sprint(r.get("resources")) != "[leases]" {
			t.Errorf("%s: Role grants %v on %v", renderer, r.get("apiGroups"), r.get("resources"))
		}
	}
	if p := find(t, objs, "PodDisruptionBudget"); p.get("spec", "minAvailable") != 1.0 {
		t.Errorf("%s: PodDisruptionBudget minAvailable %v, want 1", renderer, p.get("spec", "minAvailable"))
	}
	checkNetworkPolicy(t, renderer, mode, find(t, objs, "NetworkPolicy"))
	checkAlerts(t, renderer, find(t, objs, "PrometheusRule"))
}

// checkRestricted checks a pod spec against the PodSecurity "restricted"
// profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
// plus a read-only root file system and resources.
func checkRestricted(t *testing.T, renderer string, pod obj) {
	t.Helper()
	for _, f := range []string{"hostNetwork", "hostPID", "hostIPC"} {
		if pod.get(f) == true {
			t.Errorf("%s: pod sets %s", renderer, f)
		}
	}
	allowedVolumes := []string{"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
	for _, v := range pod.list("volumes") {
		for k := range asObj(v) {
			if k != "name" && !slices.Contains(allowedVolumes, k) {
				t.Errorf("%s: volume %s of type %s is not allowed by restricted", renderer, asObj(v).str("name"), k)
			}
		}
	}
	psc := asObj(pod.get("securityContext"))
	containers := append(slices.Clone(pod.list("containers")), pod.list("initContainers")...)
	if len(containers) == 0 {
		t.Fatalf("%s: no containers", renderer)
	}
	for _, c := range containers {
		c := asObj(c)
		sc := asObj(c.get("securityContext"))
		name := c.str("name")
		nonRoot := sc.get("runAsNonRoot")
		if nonRoot == nil {
			nonRoot = psc.get("runAsNonRoot")
		}
		if nonRoot != true {
			t.Errorf("%s: %s: runAsNonRoot is not true", renderer, name)
		}
		for _, s := range []obj{psc, sc} {
			if u, ok := s.get("runAsUser").(float64); ok && u == 0 {
				t.Errorf("%s: %s: runAsUser 0", renderer, name)
			}
		}
		if sc.get("allowPrivilegeEscalation") != false {
			t.Errorf("%s: %s: allowPrivilegeEscalation is not false", renderer, name)
		}
		if sc.get("privileged") == true {
			t.Errorf("%s: %s: privileged", renderer, name)
		}
		if sc.get("readOnlyRootFilesystem") != true {
			t.Errorf("%s: %s: readOnlyRootFilesystem is not true", renderer, name)
		}
		if !slices.Contains(sc.list("capabilities", "drop"), any("ALL")) {
			t.Errorf("%s: %s: capabilities do not drop ALL", renderer, name)
		}
		for _, a := range sc.list("capabilities", "add") {
			if a != "NET_BIND_SERVICE" {
				t.Errorf("%s: %s: adds capability %v", renderer, name, a)
			}
		}
		seccomp := sc.str("seccompProfile", "type")
		if seccomp == "" {
			seccomp = psc.str("seccompProfile", "type")
		}
		if seccomp != "RuntimeDefault" && seccomp != "Localhost" {
			t.Errorf("%s: %s: seccompProfile %q, want RuntimeDefault", renderer, name, seccomp)
		}
		for _, p := range c.list("ports") {
			if asObj(p).get("hostPort") != nil {
				t.Errorf("%s: %s: hostPort", renderer, name)
			}
		}
		for _, r := range []string{"requests", "limits"} {
			if asObj(c.get("resources", r)).get("memory") == nil || asObj(c.get("resources", r)).get("cpu") == nil {
				t.Errorf("%s: %s: resources.%s lacks cpu or memory", renderer, name, r)
			}
		}
	}
}

// checkNetworkPolicy: egress to DNS, 443 and Argo CD; ingress only to the
// HTTP port, open to all in http mode only.
func checkNetworkPolicy(t *testing.T, renderer, mode string, np obj) {
	t.Helper()
	if fmt.Sprint(np.get("spec", "policyTypes")) != "[Ingress Egress]" {
		t.Errorf("%s: NetworkPolicy types %v", renderer, np.get("spec", "policyTypes"))
	}
	egressPorts := map[string]bool{}
	argo := false
	for _, r := range np.list("spec", "egress") {
		r := asObj(r)
		for _, p := range r.list("ports") {
			egressPorts[fmt.Sprint(asObj(p).get("port"))] = true
		}
		for _, to := range r.list("to") {
			if asObj(to).str("namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") == "argocd" {
				argo = true
			}
		}
	}
	for _, p := range []string{"53", "443"} {
		if !egressPorts[p] {
			t.Errorf("%s: NetworkPolicy allows no egress to port %s", renderer, p)
		}
	}
	if !argo {
		t.Errorf("%s: NetworkPolicy allows no egress to the namespace argocd", renderer)
	}
	open := 0
	for _, r := range np.list("spec", "ingress") {
		r := asObj(r)
		for _, p := range r.list("ports") {
			if asObj(p).get("port") != "http" {
				t.Errorf("%s: NetworkPolicy ingress to port %v", renderer, asObj(p).get("port"))
			}
		}
		if len(r.list("ports")) == 0 {
			t.Errorf("%s: NetworkPolicy ingress rule to every port", renderer)
		}
		if len(r.list("from")) == 0 {
			open++
		}
	}
	if want := map[string]int{"socket": 0, "http": 1}[mode]; open != want {
		t.Errorf("%s: %d ingress rules open to every source, want %d in %s mode", renderer, open, want, mode)
	}
}

// hostMetrics are the names an alert may use besides shipbot's own: the
// scrape itself and kube-state-metrics.
var hostMetrics = []string{"up", "kube_deployment_status_replicas_available", "kube_pod_status_ready"}

// haMetrics are registered by shipbot serve with ha: enabled.
var haMetrics = []string{"shipbot_lease_leading"}

// checkAlerts checks that every alert uses only metrics shipbot really
// registers (read from its source), the documented HA ones, or the
// cluster's, and that the alerts the operator needs exist.
func checkAlerts(t *testing.T, renderer string, rule obj) {
	t.Helper()
	// Where shipbot registers its metrics.
	var sources []string
	for _, glob := range []string{"../../chat/slack/slackmetrics/*.go", "../../cmd/shipbot/*.go", "../../gitops/lease/*.go"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, m...)
	}
	exported := map[string]bool{}
	for _, f := range sources {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`Name:\s+"(shipbot_\w+)"`).FindAllSubmatch(src, -1) {
			exported[string(m[1])] = true
		}
	}
	if !exported["shipbot_requests_total"] {
		t.Fatalf("shipbot_requests_total not found in %v: where are the metrics registered?", sources)
	}
	metricRe := regexp.MustCompile(`\b([a-z_][a-z0-9_]*)\{`)
	alerts := map[string]bool{}
	for _, g := range rule.list("spec", "groups") {
		for _, r := range asObj(g).list("rules") {
			r := asObj(r)
			alerts[r.str("alert")] = true
			expr := r.str("expr")
			if r.str("labels", "severity") == "" || r.str("annotations", "summary") == "" {
				t.Errorf("%s: alert %s lacks a severity or a summary", renderer, r.str("alert"))
			}
			for _, m := range metricRe.FindAllStringSubmatch(expr, -1) {
				name := m[1]
				if !exported[name] && !slices.Contains(haMetrics, name) && !slices.Contains(hostMetrics, name) {
					t.Errorf("%s: alert %s uses %s, which shipbot does not export", renderer, r.str("alert"), name)
				}
			}
		}
	}
	for _, a := range []string{"ShipbotDown", "ShipbotChangesFailing", "ShipbotWatchTimeouts", "ShipbotSlackDisconnected", "ShipbotLeaseLost", "ShipbotNoLeader"} {
		if !alerts[a] {
			t.Errorf("%s: no alert %s", renderer, a)
		}
	}
}

// TestArgoCDApplication checks that shipbot's own Application points at an
// overlay that exists and into shipbot's namespace.
func TestArgoCDApplication(t *testing.T) {
	b, err := os.ReadFile("argocd-application.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	app := normalize(t, v)
	if app.str("kind") != "Application" || app.str("apiVersion") != "argoproj.io/v1alpha1" {
		t.Fatalf("not an Argo CD Application: %s", app.key())
	}
	p := app.str("spec", "source", "path")
	rel, ok := strings.CutPrefix(p, "deploy/kubernetes/")
	if !ok {
		t.Fatalf("spec.source.path %q is not under deploy/kubernetes", p)
	}
	if _, err := os.Stat(filepath.Join(rel, "kustomization.yaml")); err != nil {
		t.Errorf("spec.source.path %q is no kustomization: %v", p, err)
	}
	if ns := app.str("spec", "destination", "namespace"); ns != "shipbot" {
		t.Errorf("destination namespace %q, want shipbot", ns)
	}
	if app.get("spec", "syncPolicy", "automated") == nil {
		t.Error("shipbot is not synced automatically: GitOps deploys it")
	}
}

// TestChartFiles checks that the chart's copies of the config are the
// kustomize base's (helm can't read files outside the chart).
func TestChartFiles(t *testing.T) {
	for _, f := range []string{"shipbot.yaml", "model.conf", "policy.csv"} {
		a, err := os.ReadFile(filepath.Join("base/config", f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join("chart/shipbot/files", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("chart/shipbot/files/%s differs from base/config/%s: copy it", f, f)
		}
	}
}
