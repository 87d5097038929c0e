//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// resources maps the kinds shipbot's manifests hold to their API paths.
var resources = map[string]struct{ group, res string }{
	"ConfigMap":           {"/api/v1", "configmaps"},
	"Service":             {"/api/v1", "services"},
	"ServiceAccount":      {"/api/v1", "serviceaccounts"},
	"Pod":                 {"/api/v1", "pods"},
	"Deployment":          {"/apis/apps/v1", "deployments"},
	"Role":                {"/apis/rbac.authorization.k8s.io/v1", "roles"},
	"RoleBinding":         {"/apis/rbac.authorization.k8s.io/v1", "rolebindings"},
	"PodDisruptionBudget": {"/apis/policy/v1", "poddisruptionbudgets"},
	"NetworkPolicy":       {"/apis/networking.k8s.io/v1", "networkpolicies"},
	"Ingress":             {"/apis/networking.k8s.io/v1", "ingresses"},
	"Application":         {"/apis/argoproj.io/v1alpha1", "applications"},
}

// The Prometheus Operator's kinds: the stack has no such CRDs.
var noCRD = map[string]bool{"ServiceMonitor": true, "PrometheusRule": true}

// dryRun creates obj in ns with ?dryRun=All: the API server validates it
// (schema, admission, PodSecurity) and stores nothing.
func dryRun(ctx context.Context, ns string, obj map[string]any) error {
	kind, _ := obj["kind"].(string)
	r, ok := resources[kind]
	if !ok {
		return fmt.Errorf("no API path known for kind %s", kind)
	}
	obj["metadata"].(map[string]any)["namespace"] = ns
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	_, err = st.Kube(ctx, http.MethodPost, r.group+"/namespaces/"+ns+"/"+r.res+"?dryRun=All&fieldValidation=Strict", "application/json", b)
	return err
}

func decodeAll(t *testing.T, r io.Reader) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := yaml.NewDecoder(r)
	for {
		var o map[string]any
		err := dec.Decode(&o)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if o != nil {
			out = append(out, o)
		}
	}
}

// TestManifestsServerDryRun: deploy/kubernetes's overlays, its chart and
// the Argo CD Application are accepted by the real kube-apiserver (server
// side dry run, strict field validation), and shipbot's pod passes
// PodSecurity "restricted" enforcement in a namespace that enforces it.
func TestManifestsServerDryRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const ns = "shipbot-dryrun"
	nsObj := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns,
		"labels": map[string]any{"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}}
	b, _ := json.Marshal(nsObj)
	if _, err := st.Kube(ctx, http.MethodPost, "/api/v1/namespaces", "application/json", b); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}

	// The namespace enforces it: a pod that may escalate is refused.
	bad := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "escalates"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "registry.example.com/x:1"}}}}
	if err := dryRun(ctx, ns, bad); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Fatalf("PodSecurity restricted is not enforced in %s (a pod without a security context: %v)", ns, err)
	}

	sets := map[string][]map[string]any{}
	for _, overlay := range []string{"socket", "http"} {
		m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, "deploy", "kubernetes", "overlays", overlay))
		if err != nil {
			t.Fatalf("kustomize %s: %v", overlay, err)
		}
		y, err := m.AsYaml()
		if err != nil {
			t.Fatal(err)
		}
		sets["kustomize/"+overlay] = decodeAll(t, bytes.NewReader(y))
	}
	for _, mode := range []string{"socket", "http"} {
		cmd := exec.CommandContext(ctx, filepath.Join(*binDir, "helm"), "template", "shipbot", filepath.Join(root, "deploy", "kubernetes", "chart", "shipbot"), "--namespace", ns, "--set", "mode="+mode)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("helm template %s: %v", mode, err)
		}
		sets["helm/"+mode] = decodeAll(t, bytes.NewReader(out))
	}
	checked, skipped := 0, map[string]bool{}
	for name, objs := range sets {
		for _, o := range objs {
			kind, _ := o["kind"].(string)
			meta, _ := o["metadata"].(map[string]any)
			if noCRD[kind] {
				skipped[kind] = true
				continue
			}
			if kind == "Namespace" {
				continue
			}
			if err := dryRun(ctx, ns, o); err != nil {
				t.Errorf("%s: %s/%v refused: %v", name, kind, meta["name"], err)
				continue
			}
			checked++
			if kind != "Deployment" {
				continue
			}
			// The pod as the Deployment would create it, under enforce=restricted.
			tmpl := o["spec"].(map[string]any)["template"].(map[string]any)
			pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "shipbot-dryrun", "labels": tmpl["metadata"].(map[string]any)["labels"]}, "spec": tmpl["spec"]}
			if err := dryRun(ctx, ns, pod); err != nil {
				t.Errorf("%s: shipbot's pod refused in a namespace enforcing PodSecurity restricted: %v", name, err)
			}
		}
	}
	// The Argo CD Application that deploys shipbot by GitOps.
	var app []byte
	app, err = os.ReadFile(filepath.Join(root, "deploy", "kubernetes", "argocd-application.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range decodeAll(t, bytes.NewReader(app)) {
		if err := dryRun(ctx, "argocd", o); err != nil {
			t.Errorf("argocd-application.yaml refused: %v", err)
		} else {
			checked++
		}
	}
	result("deploy/kubernetes (2 overlays, the chart in 2 modes, the Application): %d objects accepted by kube-apiserver (server dry run, strict); not checked (no CRD in the stack): %s", checked, strings.Join(slices.Sorted(maps.Keys(skipped)), ", "))
}

// repoRoot is shipbot's checkout: the suite runs from it (make e2e) or
// from its package directory (go test).
func repoRoot() (string, error) {
	dir := mustAbs(".")
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/shipbot/shipbot\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("shipbot's go.mod not found above %s", mustAbs("."))
		}
		dir = parent
	}
}
