package edit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const (
	vImage   = "registry.example.com/checkout"
	vRestart = "2026-11-21T10:00:00Z"
)

// overlayFiles is an environment repo with a base in the repo and a prod
// overlay over ../../base that sets the tag with an images entry, restarts
// with a patches entry, generates a ConfigMap and sets a namespace.
func overlayFiles() MapFiles {
	return MapFiles{
		"apps/checkout/base/kustomization.yaml": []byte(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
  - worker.yaml
  - service.yaml
  - ../../../platform/redis
`),
		"apps/checkout/base/deployment.yaml": []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  labels: {app: checkout}
spec:
  replicas: 2
  selector:
    matchLabels: {app: checkout}
  template:
    metadata:
      labels: {app: checkout}
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com/checkout:1.4.0
          args: [migrate]
      containers:
        - name: app
          image: registry.example.com/checkout:1.4.0
          envFrom:
            - configMapRef: {name: checkout-config}
        - name: proxy
          image: envoyproxy/envoy:v1.30.1
`),
		"apps/checkout/base/worker.yaml": []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout-worker
spec:
  selector:
    matchLabels: {app: checkout-worker}
  template:
    metadata:
      labels: {app: checkout-worker}
    spec:
      containers:
        - name: worker
          image: registry.example.com/checkout:1.4.0
          args: [work]
`),
		"apps/checkout/base/service.yaml": []byte(`apiVersion: v1
kind: Service
metadata:
  name: checkout
spec:
  selector: {app: checkout}
  ports: [{port: 80, targetPort: 8080}]
`),
		"platform/redis/kustomization.yaml": []byte("resources: [redis.yaml]\n"),
		"platform/redis/redis.yaml": []byte(`apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: redis
spec:
  serviceName: redis
  selector:
    matchLabels: {app: redis}
  template:
    metadata:
      labels: {app: redis}
    spec:
      containers:
        - name: redis
          image: redis:7.2
`),
		"apps/checkout/overlays/prod/kustomization.yaml": []byte(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop-prod
resources:
  - ../../base
images:
  - name: registry.example.com/checkout
    newTag: 1.4.1
configMapGenerator:
  - name: checkout-config
    envs: [config/app.env]
    files: [settings.json=config/settings.json]
patches:
  - path: replicas.yaml
`),
		"apps/checkout/overlays/prod/replicas.yaml": []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
spec:
  replicas: 3
`),
		"apps/checkout/overlays/prod/config/app.env":       []byte("LOG_LEVEL=info\n"),
		"apps/checkout/overlays/prod/config/settings.json": []byte(`{"currency":"EUR"}` + "\n"),
		"apps/checkout/overlays/prod/README.md":            []byte("not read\n"),
	}
}

var overlayLoc = Location{Layout: LayoutKustomize, Path: "apps/checkout/overlays/prod", Image: vImage}

// findObj returns the rendered object of kind and name.
func findObj(t *testing.T, docs []map[string]any, kind, name string) map[string]any {
	t.Helper()
	for _, d := range docs {
		k := keyOf(d)
		if k.kind == kind && k.name == name {
			return d
		}
	}
	t.Fatalf("no %s/%s in the rendered output", kind, name)
	return nil
}

func TestRenderKustomizeOverlay(t *testing.T) {
	docs, err := renderKustomize(context.Background(), overlayFiles(), overlayLoc.Path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, keyOf(d).String())
	}
	if len(docs) != 5 {
		t.Errorf("rendered %d objects, want 5 (Deployment x2, Service, StatefulSet, ConfigMap): %v", len(docs), got)
	}
	d := findObj(t, docs, "Deployment", "checkout")
	if ns := lookupKeys(d, []string{"metadata", "namespace"}); ns != "shop-prod" {
		t.Errorf("namespace = %v, want shop-prod", ns)
	}
	if r := lookupKeys(d, []string{"spec", "replicas"}); r != 3 {
		t.Errorf("replicas = %v (%T), want 3 from the overlay's patch", r, r)
	}
	var images []string
	for _, c := range podContainers(&robj{key: keyOf(d)}, d) {
		images = append(images, c.image)
	}
	if want := []string{"registry.example.com/checkout:1.4.1", "envoyproxy/envoy:v1.30.1", "registry.example.com/checkout:1.4.1"}; !cmp.Equal(images, want) {
		t.Errorf("images = %v, want %v", images, want)
	}
	// The generated ConfigMap gets its hash suffix, and the reference to it
	// follows.
	var cm string
	for _, d := range docs {
		if k := keyOf(d); k.kind == "ConfigMap" {
			cm = k.name
			if lookupKeys(d, []string{"data", "LOG_LEVEL"}) != "info" || lookupKeys(d, []string{"data", "settings.json"}) == nil {
				t.Errorf("ConfigMap %s data = %v", cm, d["data"])
			}
		}
	}
	if !strings.HasPrefix(cm, "checkout-config-") {
		t.Fatalf("generated ConfigMap %q, want checkout-config-<hash>", cm)
	}
	ref := lookupKeys(d, []string{"spec", "template", "spec"}).(map[string]any)["containers"].([]any)[0].(map[string]any)["envFrom"].([]any)[0]
	if got := lookupKeys(ref, []string{"configMapRef", "name"}); got != cm {
		t.Errorf("envFrom names %v, want %s", got, cm)
	}
}

// TestRenderKustomizeMatchesCLI renders the before/ trees of the golden
// kustomize cases in-process and with the kustomize CLI (or kubectl
// kustomize) when one is on PATH: the objects must be the same.
func TestRenderKustomizeMatchesCLI(t *testing.T) {
	var build func(string) ([]byte, error)
	n := 0
	for _, c := range goldenCases(t) {
		if c.Layout != LayoutKustomize {
			continue
		}
		if build == nil {
			build = kustomizeBuild(t)
		}
		t.Run(c.name, func(t *testing.T) {
			files := readTree(t, filepath.Join(c.dir, "before"))
			got, err := renderKustomize(context.Background(), files, c.Path)
			cli, cerr := build(filepath.Join(c.dir, "before", filepath.FromSlash(c.Path)))
			if err != nil || cerr != nil {
				if (err == nil) != (cerr == nil) {
					t.Fatalf("in-process: %v; CLI: %v", err, cerr)
				}
				t.Skipf("doesn't render: %v", err)
			}
			want, err := decodeObjects(cli)
			if err != nil {
				t.Fatal(err)
			}
			// The CLI sorts objects by kind (legacy order); the order
			// doesn't matter to the check, which matches objects by identity.
			byKey := cmpopts.SortSlices(func(a, b map[string]any) bool { return keyOf(a).String() < keyOf(b).String() })
			if d := cmp.Diff(want, got, byKey); d != "" {
				t.Errorf("in-process render differs from the CLI's (-cli +in-process):\n%s", d)
			}
			n++
		})
	}
	if n == 0 {
		t.Error("no golden kustomize case rendered")
	}
}

func TestRenderKustomizeNotRendered(t *testing.T) {
	for _, tc := range []struct {
		name, kustomization, want string
	}{
		{"github base", "resources:\n- github.com/acme/deploy//checkout/base?ref=v1.2.0\n", "uses the remote base github.com/acme/deploy//checkout/base?ref=v1.2.0 (shipbot renders only what is in the repo)"},
		{"https base", "resources:\n- https://github.com/acme/deploy.git//base\n", "uses the remote base https://"},
		{"scp base", "resources:\n- git@github.com:acme/deploy.git//base\n", "uses the remote base git@github.com"},
		{"remote component", "resources: [../../base]\ncomponents:\n- https://example.com/c?ref=main\n", "uses the remote base https://example.com/c?ref=main"},
		{"remote patch", "resources: [../../base]\npatches:\n- path: https://example.com/patch.yaml\n", "reads patches[].path from https://example.com/patch.yaml"},
		{"outside the repo", "resources:\n- ../../../../../elsewhere\n", "outside the repo"},
		{"absolute", "resources:\n- /etc/base\n", "absolute path"},
		{"missing base", "resources:\n- ../missing\n", "names apps/checkout/overlays/missing, which is not in the repo"},
		{"base without kustomization", "resources:\n- config\n", "apps/checkout/overlays/prod/config, which holds no kustomization.yaml"},
		{"missing file", "resources: [../../base]\npatches:\n- path: nothere.yaml\n", "names apps/checkout/overlays/prod/nothere.yaml, which is not in the repo"},
		{"helm charts", "helmCharts:\n- name: redis\n  repo: https://charts.example.com\n", "uses helmCharts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := overlayFiles()
			files["apps/checkout/overlays/prod/kustomization.yaml"] = []byte(tc.kustomization)
			_, err := renderKustomize(context.Background(), files, overlayLoc.Path)
			if !errors.Is(err, ErrNotRendered) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrNotRendered with %q", err, tc.want)
			}
			// Verify says so, and it is no error.
			v, err := Verify(context.Background(), files, nil, overlayLoc, Want{Tag: "1.4.2"}, RenderOptions{})
			if err != nil || v.Rendered || !strings.Contains(v.Reason, tc.want) || strings.HasPrefix(v.Reason, "not rendered") {
				t.Errorf("Verify = %+v, %v; want not rendered, the reason saying %q", v, err, tc.want)
			}
		})
	}
}

// objDocs decodes YAML objects for the checkEffect tables.
func objDocs(t *testing.T, s string) []map[string]any {
	t.Helper()
	d, err := decodeObjects([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// deploymentDoc is a Deployment named name running image, with extra
// appended under spec.template.metadata (indented 6 spaces).
func deploymentDoc(kind, name, image, tmplMeta string) string {
	api := "apps/v1"
	if kind == "Rollout" {
		api = "argoproj.io/v1alpha1"
	}
	return "---\napiVersion: " + api + "\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n  labels: {app: " + name + "}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: " + name + "}\n  template:\n    metadata:\n      labels: {app: " + name + "}\n" + tmplMeta +
		"    spec:\n      containers:\n      - name: main\n        image: " + image + "\n"
}

func restartMeta(v string) string {
	return "      annotations: {shipbot.io/restartedAt: \"" + v + "\"}\n"
}

const digestA = "sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c"
const digestB = "sha256:9b7f1e2d3c4b5a6978877665544332211f0e9d8c2f8a9d9e0c4b7a1e5f3d6c8b"

func TestCheckEffect(t *testing.T) {
	redis := deploymentDoc("StatefulSet", "redis", "redis:7.2", "")
	svc := "---\napiVersion: v1\nkind: Service\nmetadata: {name: checkout}\nspec: {ports: [{port: 80}]}\n"
	cron := "---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: report}\nspec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: r, image: " + vImage + ":1.4.0}]\n"
	cronRestarted := strings.Replace(cron, "        spec:\n          containers", "        metadata: {annotations: {shipbot.io/restartedAt: \""+vRestart+"\"}}\n        spec:\n          containers", 1)
	rolloutRef := "---\napiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: checkout}\nspec:\n  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: checkout}\n"
	rolloutRefRestarted := rolloutRef + "  restartAt: \"" + vRestart + "\"\n"

	tests := []struct {
		name          string
		before, after string
		want          Want
		// errs are what the error must say; none: no error.
		errs      []string
		noRestart bool
		workloads []string
	}{
		{
			name:      "right image",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + redis + svc,
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.1", "") + redis + svc,
			want:      Want{Tag: "1.4.1"},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "right image, by another name",
			before:    deploymentDoc("Deployment", "checkout", "old.example.com/checkout:1.4.0", ""),
			after:     deploymentDoc("Deployment", "checkout", "old.example.com/checkout:1.4.1", ""),
			want:      Want{Tag: "1.4.1", Names: []string{"old.example.com/checkout"}},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:   "wrong image left unchanged",
			before: deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + deploymentDoc("Deployment", "worker", vImage+":1.4.0", ""),
			after:  deploymentDoc("Deployment", "checkout", vImage+":1.4.1", "") + deploymentDoc("Deployment", "worker", vImage+":1.4.0", ""),
			want:   Want{Tag: "1.4.1"},
			errs: []string{"Deployment/worker container main still runs registry.example.com/checkout:1.4.0, not 1.4.1",
				"(expected every container running registry.example.com/checkout to run registry.example.com/checkout:1.4.1, and nothing else to change)"},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:   "no container runs the image",
			before: deploymentDoc("Deployment", "checkout", vImage+":1.4.0", ""),
			after:  deploymentDoc("Deployment", "checkout", "registry.example.com/other:1.4.1", ""),
			want:   Want{Tag: "1.4.1"},
			errs:   []string{"container main ran registry.example.com/checkout:1.4.0 before and runs registry.example.com/other:1.4.1 after", "no container in the rendered output runs registry.example.com/checkout"},
		},
		{
			name:      "other field changed",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + redis,
			after:     strings.Replace(deploymentDoc("Deployment", "checkout", vImage+":1.4.1", ""), "replicas: 2", "replicas: 5", 1) + strings.Replace(redis, "redis:7.2", "redis:7.4", 1),
			want:      Want{Tag: "1.4.1"},
			errs:      []string{"other changes in the rendered output: Deployment/checkout spec.replicas: 2 → 5; StatefulSet/redis spec.template.spec.containers[0].image: \"redis:7.2\" → \"redis:7.4\""},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "object added and removed",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + svc,
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.1", "") + redis,
			want:      Want{Tag: "1.4.1"},
			errs:      []string{"Service/checkout is gone", "StatefulSet/redis is new"},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "the tag echoed in a label",
			before:    strings.Replace(deploymentDoc("Deployment", "checkout", vImage+":1.4.0", ""), "{app: checkout}\nspec", "{app: checkout, version: 1.4.0}\nspec", 1),
			after:     strings.Replace(deploymentDoc("Deployment", "checkout", vImage+":1.4.1", ""), "{app: checkout}\nspec", "{app: checkout, version: 1.4.1}\nspec", 1),
			want:      Want{Tag: "1.4.1"},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "the tag in a selector",
			before:    strings.Replace(deploymentDoc("Deployment", "checkout", vImage+":1.4.0", ""), "matchLabels: {app: checkout}", "matchLabels: {app: checkout, version: 1.4.0}", 1),
			after:     strings.Replace(deploymentDoc("Deployment", "checkout", vImage+":1.4.1", ""), "matchLabels: {app: checkout}", "matchLabels: {app: checkout, version: 1.4.1}", 1),
			want:      Want{Tag: "1.4.1"},
			errs:      []string{`spec.selector.matchLabels.version: "1.4.0" → "1.4.1": the tag is part of the selector`},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "a stale digest pin",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0@"+digestA, ""),
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.1@"+digestA, ""),
			want:      Want{Tag: "1.4.1"},
			errs:      []string{"the digest decides what runs, and no digest was given for 1.4.1 (it is the digest of 1.4.0, which ran before: the new tag would not run)"},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "the digest given",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0@"+digestA, ""),
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.1@"+digestB, ""),
			want:      Want{Tag: "1.4.1", Digest: digestB},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "another digest than the one given",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0@"+digestA, ""),
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.1@"+digestA, ""),
			want:      Want{Tag: "1.4.1", Digest: digestB},
			errs:      []string{"not pinned to " + digestB},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "restart",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + redis + svc,
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.0", restartMeta(vRestart)) + redis + svc,
			want:      Want{Restart: vRestart},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "restart again",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", restartMeta("2026-11-01T09:30:00Z")),
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.0", restartMeta(vRestart)),
			want:      Want{Restart: vRestart},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "restart hits extra workload",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + redis,
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.0", restartMeta(vRestart)) + deploymentDoc("StatefulSet", "redis", "redis:7.2", restartMeta(vRestart)),
			want:      Want{Restart: vRestart},
			errs:      []string{"the restart also hits StatefulSet/redis, which doesn't run registry.example.com/checkout"},
			workloads: []string{"Deployment/checkout", "StatefulSet/redis"},
		},
		{
			name:      "restart hits nothing",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + redis,
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + redis,
			want:      Want{Restart: vRestart},
			errs:      []string{"no pod template got shipbot.io/restartedAt (nor any Rollout spec.restartAt) (expected exactly the workloads running registry.example.com/checkout to get shipbot.io/restartedAt \"2026-11-21T10:00:00Z\", and nothing else to change)"},
			noRestart: true,
		},
		{
			name:      "restart takes the annotation off another workload",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", restartMeta("2026-11-01T09:30:00Z")) + deploymentDoc("StatefulSet", "redis", "redis:7.2", restartMeta("2026-11-01T09:30:00Z")),
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.0", restartMeta(vRestart)) + deploymentDoc("StatefulSet", "redis", "redis:7.2", ""),
			want:      Want{Restart: vRestart},
			errs:      []string{"StatefulSet/redis lost the annotation shipbot.io/restartedAt, which restarts its pods too"},
			workloads: []string{"Deployment/checkout", "StatefulSet/redis"},
		},
		{
			name:      "restart misses a workload",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + deploymentDoc("DaemonSet", "agent", vImage+":1.4.0", ""),
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.0", restartMeta(vRestart)) + deploymentDoc("DaemonSet", "agent", vImage+":1.4.0", ""),
			want:      Want{Restart: vRestart},
			errs:      []string{"DaemonSet/agent runs registry.example.com/checkout but was not restarted"},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "restart with another value",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", ""),
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.0", restartMeta("2020-01-01T00:00:00Z")),
			want:      Want{Restart: vRestart},
			errs:      []string{`Deployment/checkout got the annotation shipbot.io/restartedAt "2020-01-01T00:00:00Z", not "2026-11-21T10:00:00Z"`},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "restart and another change",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", ""),
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.1", restartMeta(vRestart)),
			want:      Want{Restart: vRestart},
			errs:      []string{`Deployment/checkout spec.template.spec.containers[0].image: "registry.example.com/checkout:1.4.0" → "registry.example.com/checkout:1.4.1"`},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "restart of a CronJob",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + cron,
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.0", restartMeta(vRestart)) + cronRestarted,
			want:      Want{Restart: vRestart},
			errs:      []string{"the restart changes the pod template of CronJob/report, which a restart leaves alone"},
			workloads: []string{"Deployment/checkout", "CronJob/report"},
		},
		{
			name:      "Rollout restartAt",
			before:    deploymentDoc("Rollout", "checkout", vImage+":1.4.0", ""),
			after:     deploymentDoc("Rollout", "checkout", vImage+":1.4.0", "") + "  restartAt: \"" + vRestart + "\"\n",
			want:      Want{Restart: vRestart},
			workloads: []string{"Rollout/checkout"},
		},
		{
			name:      "Rollout with workloadRef",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + rolloutRef,
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + rolloutRefRestarted,
			want:      Want{Restart: vRestart},
			workloads: []string{"Rollout/checkout"},
		},
		{
			name:      "Rollout with workloadRef, Deployment annotated",
			before:    deploymentDoc("Deployment", "checkout", vImage+":1.4.0", "") + rolloutRef,
			after:     deploymentDoc("Deployment", "checkout", vImage+":1.4.0", restartMeta(vRestart)) + rolloutRef,
			want:      Want{Restart: vRestart},
			errs:      []string{"the restart changes the pod template of Deployment/checkout, whose pods Rollout/checkout runs (spec.workloadRef)", "Rollout/checkout runs registry.example.com/checkout but was not restarted"},
			workloads: []string{"Deployment/checkout"},
		},
		{
			name:      "namespaces tell objects apart",
			before:    strings.Replace(deploymentDoc("Deployment", "checkout", vImage+":1.4.0", ""), "name: checkout\n", "name: checkout\n  namespace: a\n", 1) + strings.Replace(deploymentDoc("Deployment", "checkout", "redis:7.2", ""), "name: checkout\n", "name: checkout\n  namespace: b\n", 1),
			after:     strings.Replace(deploymentDoc("Deployment", "checkout", vImage+":1.4.0", restartMeta(vRestart)), "name: checkout\n", "name: checkout\n  namespace: a\n", 1) + strings.Replace(deploymentDoc("Deployment", "checkout", "redis:7.2", ""), "name: checkout\n", "name: checkout\n  namespace: b\n", 1),
			want:      Want{Restart: vRestart},
			workloads: []string{"Deployment/checkout (namespace a)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.Image = vImage
			v, err := checkEffect(objDocs(t, tc.before), objDocs(t, tc.after), tc.want)
			if !v.Rendered {
				t.Error("Rendered = false")
			}
			if !cmp.Equal(v.Workloads, tc.workloads) {
				t.Errorf("Workloads = %q, want %q", v.Workloads, tc.workloads)
			}
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrWrongEffect) {
				t.Fatalf("err = %v, want ErrWrongEffect", err)
			}
			for _, s := range tc.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error doesn't say %q:\n%v", s, err)
				}
			}
			var ee *effectError
			if errors.As(err, &ee); ee.noRestart != tc.noRestart {
				t.Errorf("noRestart = %v, want %v", ee.noRestart, tc.noRestart)
			}
		})
	}
}

// TestVerifyKustomize plans a tag change and a restart on the overlay and
// verifies both, then changes that do something else.
func TestVerifyKustomize(t *testing.T) {
	ctx := context.Background()
	files := overlayFiles()
	e, err := SetImage(files, overlayLoc, SetImageOptions{Tag: "1.5.0"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(ctx, files, e.Changes, overlayLoc, Want{Tag: "1.5.0"}, RenderOptions{})
	if err != nil || !v.Rendered || v.Renderer != kustomizeRenderer {
		t.Fatalf("tag: Verify = %+v, %v", v, err)
	}
	want := []string{"Deployment/checkout (namespace shop-prod)", "Deployment/checkout-worker (namespace shop-prod)"}
	if !cmp.Equal(v.Workloads, want) {
		t.Errorf("tag: Workloads = %q, want %q", v.Workloads, want)
	}

	changes, err := SetRestart(files, overlayLoc, vRestart)
	if err != nil {
		t.Fatal(err)
	}
	v, err = Verify(ctx, files, changes, overlayLoc, Want{Restart: vRestart}, RenderOptions{})
	if err != nil || !v.Rendered {
		t.Fatalf("restart: Verify = %+v, %v", v, err)
	}
	if !cmp.Equal(v.Workloads, want) {
		t.Errorf("restart: Workloads = %q, want %q", v.Workloads, want)
	}

	// A restart patch that targets nothing the overlay renders.
	bad := append([]Change(nil), changes...)
	for i, c := range bad {
		if strings.HasSuffix(c.Path, "kustomization.yaml") {
			bad[i].New = []byte(strings.ReplaceAll(string(c.New), "name: checkout\n", "name: checkout-gone\n"))
			bad[i].New = []byte(strings.ReplaceAll(string(bad[i].New), "name: checkout-worker\n", "name: gone\n"))
		}
	}
	_, err = Verify(ctx, files, bad, overlayLoc, Want{Restart: vRestart}, RenderOptions{})
	if !errors.Is(err, ErrWrongEffect) || !strings.Contains(err.Error(), "rendered with kustomize v5.4.2 (in-process) (the kustomization in apps/checkout/overlays/prod): no pod template got shipbot.io/restartedAt") ||
		!strings.Contains(err.Error(), "check the target of its patches entry") {
		t.Errorf("restart patch targeting nothing: err = %v", err)
	}

	// A change that touches something else too.
	k := "apps/checkout/overlays/prod/kustomization.yaml"
	other := []Change{{Path: k, Old: files[k], New: []byte(strings.Replace(string(files[k]), "newTag: 1.4.1", "newTag: 1.5.0\n  - name: redis\n    newTag: \"7.4\"", 1))}}
	_, err = Verify(ctx, files, other, overlayLoc, Want{Tag: "1.5.0"}, RenderOptions{})
	if !errors.Is(err, ErrWrongEffect) || !strings.Contains(err.Error(), `StatefulSet/redis (namespace shop-prod) spec.template.spec.containers[0].image: "redis:7.2" → "redis:7.4"`) {
		t.Errorf("change touching redis: err = %v", err)
	}

	// A change after which the overlay no longer renders.
	broken := []Change{{Path: k, Old: files[k], New: append(append([]byte(nil), files[k]...), "  - missing.yaml\n"...)}}
	_, err = Verify(ctx, files, broken, overlayLoc, Want{Tag: "1.5.0"}, RenderOptions{})
	if !errors.Is(err, ErrWrongEffect) || !strings.Contains(err.Error(), "after the change the app no longer renders") {
		t.Errorf("broken change: err = %v", err)
	}

	// An overlay that doesn't render before the change: not rendered, no error.
	files["apps/checkout/base/worker.yaml"] = []byte("kind: [\n")
	v, err = Verify(ctx, files, e.Changes, overlayLoc, Want{Tag: "1.5.0"}, RenderOptions{})
	if err != nil || v.Rendered || !strings.HasPrefix(v.Reason, "it doesn't render before the change: kustomize build apps/checkout/overlays/prod:") {
		t.Errorf("overlay broken before: Verify = %+v, %v", v, err)
	}
}

// refusedGolden are the golden cases whose change rendering refuses, and why.
var refusedGolden = map[string]string{}

// TestVerifyGolden verifies the change of every golden kustomize and
// manifest case: each renders to exactly what was asked (but those in
// refusedGolden).
func TestVerifyGolden(t *testing.T) {
	rendered := 0
	for _, c := range goldenCases(t) {
		if c.Error != "" || (c.Layout != LayoutKustomize && c.Layout != LayoutManifest && c.Layout != LayoutApplication) {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			before := readTree(t, filepath.Join(c.dir, "before"))
			changes, err := c.run(before)
			if err != nil {
				t.Fatal(err)
			}
			want := Want{Tag: c.Value, Digest: c.Digest}
			if c.Op == "restart" {
				want = Want{Restart: c.Value}
			}
			v, err := Verify(context.Background(), before, changes, c.loc(), want, RenderOptions{})
			if why := refusedGolden[c.name]; why != "" {
				if !errors.Is(err, ErrWrongEffect) || !strings.Contains(err.Error(), why) {
					t.Fatalf("Verify: %v; want ErrWrongEffect saying %q", err, why)
				}
				rendered++
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !v.Rendered {
				t.Logf("not rendered: %s", v.Reason)
				if c.Layout != LayoutApplication && !strings.Contains(v.Reason, "not in the repo") && !strings.Contains(v.Reason, "remote") {
					t.Errorf("not rendered: %s", v.Reason)
				}
				return
			}
			rendered++
			if len(v.Workloads) == 0 {
				t.Error("no workload changed")
			}
		})
	}
	if rendered < 10 {
		t.Errorf("only %d golden cases rendered", rendered)
	}
}

func TestVerifyManifest(t *testing.T) {
	files := fixture()
	loc := with(manifest, func(l *Location) { l.Path = "m/split" })
	e, err := SetImage(files, loc, SetImageOptions{Tag: "1.5.0"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(context.Background(), files, e.Changes, loc, Want{Tag: "1.5.0"}, RenderOptions{})
	if err != nil || !v.Rendered || v.Renderer != "manifests" || !cmp.Equal(v.Workloads, []string{"Deployment/checkout", "Deployment/worker"}) {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	changes, err := SetRestart(files, loc, vRestart)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(context.Background(), files, changes, loc, Want{Restart: vRestart}, RenderOptions{}); err != nil || !cmp.Equal(v.Workloads, []string{"Deployment/checkout", "Deployment/worker"}) {
		t.Fatalf("restart: Verify = %+v, %v", v, err)
	}
}

func TestVerifyNotRendered(t *testing.T) {
	ctx := context.Background()
	files := fixture()
	for _, tc := range []struct {
		name string
		loc  Location
		opts RenderOptions
		want string
	}{
		{"application", Location{Layout: LayoutApplication, Path: "argo/app.yaml", Image: vImage}, RenderOptions{}, "rendered by Argo CD from the Application's source"},
		{"helm without a chart", Location{Layout: LayoutHelm, Path: "h/values.yaml", Image: vImage}, RenderOptions{Helm: "helm"}, "no chart in the repo for h/values.yaml"},
		{"helm without a binary", Location{Layout: LayoutHelm, Path: "hc/values.yaml", Image: vImage}, RenderOptions{}, "no helm binary configured (render.helm)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Verify(ctx, files, nil, tc.loc, Want{Tag: "1.5.0"}, tc.opts)
			if err != nil || v.Rendered || !strings.Contains(v.Reason, tc.want) {
				t.Errorf("Verify = %+v, %v; want not rendered: %s", v, err, tc.want)
			}
		})
	}
}

// helmBinary returns a helm binary, or skips the test: $SHIPBOT_HELM, helm
// on PATH, or the one the local e2e stack builds.
func helmBinary(t testing.TB) string {
	if p := os.Getenv("SHIPBOT_HELM"); p != "" {
		return p
	}
	if p := realBinary("helm"); p != "" {
		return p
	}
	t.Skip("no helm binary: set SHIPBOT_HELM, put helm on PATH, or run deploy/local/build.sh")
	return ""
}

const chartDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "checkout.fullname" . }}
  labels:
    app.kubernetes.io/version: {{ .Values.image.tag | quote }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: checkout}
  template:
    metadata:
      labels: {app: checkout}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      containers:
        - name: app
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          env:
            - {name: VERSION, value: {{ .Values.image.tag | quote }}}
`

func helmFiles(templates string) MapFiles {
	return MapFiles{
		"charts/checkout/Chart.yaml":                []byte("apiVersion: v2\nname: checkout\nversion: 0.3.0\nappVersion: 1.4.0\n"),
		"charts/checkout/values.yaml":               []byte("replicas: 1\nimage:\n  repository: registry.example.com/checkout\n  tag: 1.4.0\npodAnnotations: {}\n"),
		"charts/checkout/templates/_helpers.tpl":    []byte("{{- define \"checkout.fullname\" -}}{{ .Release.Name }}-checkout{{- end }}\n"),
		"charts/checkout/templates/deployment.yaml": []byte(templates),
		// A template in a subdirectory: the whole tree is copied.
		"charts/checkout/templates/net/service.yaml": []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ include \"checkout.fullname\" . }}\nspec:\n  ports: [{port: 80}]\n"),
		"env/prod/values.yaml":                       []byte("# prod\nreplicas: 3\nimage:\n  tag: \"1.4.1\"\n"),
		"env/prod/common.yaml":                       []byte("podAnnotations:\n  team: shop\n"),
	}
}

var helmLoc = Location{Layout: LayoutHelm, Path: "env/prod/values.yaml", Image: vImage, Chart: "charts/checkout", ValuesFiles: []string{"env/prod/common.yaml", "env/prod/values.yaml"}}

func TestVerifyHelm(t *testing.T) {
	opts := RenderOptions{Helm: helmBinary(t)}
	ctx := context.Background()

	files := helmFiles(chartDeployment)
	docs, err := renderHelm(ctx, files, "charts/checkout", helmLoc.ValuesFiles, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Errorf("rendered %d objects, want a Deployment and a Service", len(docs))
	}
	d := findObj(t, docs, "Deployment", "shipbot-render-checkout")
	if r := lookupKeys(d, []string{"spec", "replicas"}); r != 3 {
		t.Errorf("replicas = %v: the values files were not applied", r)
	}

	e, err := SetImage(files, helmLoc, SetImageOptions{Tag: "1.5.0"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(ctx, files, e.Changes, helmLoc, Want{Tag: "1.5.0"}, opts)
	if err != nil || !v.Rendered || v.Renderer != helmRenderer || !cmp.Equal(v.Workloads, []string{"Deployment/shipbot-render-checkout"}) {
		t.Fatalf("tag: Verify = %+v, %v", v, err)
	}
	changes, err := SetRestart(files, helmLoc, vRestart)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(ctx, files, changes, helmLoc, Want{Restart: vRestart}, opts); err != nil || !cmp.Equal(v.Workloads, []string{"Deployment/shipbot-render-checkout"}) {
		t.Fatalf("restart: Verify = %+v, %v", v, err)
	}

	// A chart that never reads podAnnotations: the restart is written (the
	// chart is not beside the values file, so SetRestart can't tell), and
	// rendering refuses it.
	deaf := helmFiles(strings.Replace(chartDeployment, "{{- with .Values.podAnnotations }}", "{{- with .Values.annotations }}", 1))
	unknown := helmLoc
	unknown.Chart = "" // SetRestart can't look at the chart
	changes, err = SetRestart(deaf, unknown, vRestart)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(ctx, deaf, changes, helmLoc, Want{Restart: vRestart}, opts)
	if !errors.Is(err, ErrWrongEffect) ||
		!strings.Contains(err.Error(), "rendered with helm template (the chart in charts/checkout with env/prod/common.yaml, env/prod/values.yaml): no pod template got shipbot.io/restartedAt") ||
		!strings.Contains(err.Error(), "the chart in charts/checkout never reads podAnnotations: set annotationsPath to the values key its pod template's annotations come from") {
		t.Errorf("deaf chart: err = %v", err)
	} else {
		t.Logf("deaf chart: %v", err)
	}

	// Dependencies that are not vendored: not rendered.
	deps := helmFiles(chartDeployment)
	deps["charts/checkout/Chart.yaml"] = []byte("apiVersion: v2\nname: checkout\nversion: 0.3.0\ndependencies:\n  - name: redis\n    version: 18.1.0\n    repository: https://charts.example.com\n")
	v, err = Verify(ctx, deps, e.Changes, helmLoc, Want{Tag: "1.5.0"}, opts)
	if err != nil || v.Rendered || !strings.Contains(v.Reason, "the chart's dependencies are not in the repo (redis from https://charts.example.com") {
		t.Errorf("unvendored dependencies: Verify = %+v, %v", v, err)
	}
	deps["charts/checkout/charts/redis/Chart.yaml"] = []byte("apiVersion: v2\nname: redis\nversion: 18.1.0\n")
	if v, err := Verify(ctx, deps, e.Changes, helmLoc, Want{Tag: "1.5.0"}, opts); err != nil || !v.Rendered {
		t.Errorf("vendored dependencies: Verify = %+v, %v", v, err)
	}

	// A template error after the change.
	broken := append([]Change{{Path: "charts/checkout/templates/broken.yaml", New: []byte("{{ .Values.nope.nope }}\n")}}, e.Changes...)
	_, err = Verify(ctx, files, broken, helmLoc, Want{Tag: "1.5.0"}, opts)
	if !errors.Is(err, ErrWrongEffect) || !strings.Contains(err.Error(), "after the change the app no longer renders: helm template charts/checkout:") || strings.Contains(err.Error(), os.TempDir()) {
		t.Errorf("broken template: err = %v", err)
	}
}

func TestMapFilesReadTree(t *testing.T) {
	files := helmFiles(chartDeployment)
	got, err := files.ReadTree("charts/checkout/templates")
	want := []string{"charts/checkout/templates/_helpers.tpl", "charts/checkout/templates/deployment.yaml", "charts/checkout/templates/net/service.yaml"}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("ReadTree = %q, %v; want %q", got, err, want)
	}
	tree := withChangesTree(files, []Change{
		{Path: "charts/checkout/templates/new.yaml", New: []byte("x")},
		{Path: "charts/checkout/templates/deployment.yaml", Old: []byte("x")},
		{Path: "env/prod/values.yaml", New: []byte("x")},
	}).(treeFiles)
	got, err = tree.ReadTree("charts/checkout/templates")
	want = []string{"charts/checkout/templates/_helpers.tpl", "charts/checkout/templates/net/service.yaml", "charts/checkout/templates/new.yaml"}
	if err != nil || !cmp.Equal(got, want) {
		t.Errorf("changed ReadTree = %q, %v; want %q", got, err, want)
	}
	if _, err := files.ReadTree("nowhere"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadTree(nowhere) err = %v", err)
	}
}

// BenchmarkVerifyKustomize verifies a restart of one service of a
// twelve-service overlay (two in-process renders and the check): the cost
// a plan pays.
func BenchmarkVerifyKustomize(b *testing.B) {
	files := readTree(b, filepath.Join("testdata", "golden", "kustomize-restart-twelve-services", "before"))
	loc := Location{Layout: LayoutKustomize, Path: "apps/shop/overlays/prod", Image: "registry.example.com/shop/checkout"}
	changes, err := SetRestart(files, loc, vRestart)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		v, err := Verify(ctx, files, changes, loc, Want{Restart: vRestart}, RenderOptions{})
		if err != nil || !v.Rendered {
			b.Fatalf("Verify = %+v, %v", v, err)
		}
	}
}

// BenchmarkVerifyHelm is a plan's check of a Helm chart in the repo (two
// helm template runs): podinfo's chart and a production values file.
func BenchmarkVerifyHelm(b *testing.B) {
	helm := helmBinary(b)
	files := readTree(b, filepath.Join("testdata", "real", "stefanprodan__podinfo"))
	loc := Location{Layout: LayoutHelm, Path: "charts/podinfo/values-prod.yaml", Image: "ghcr.io/stefanprodan/podinfo"}
	e, err := SetImage(files, loc, SetImageOptions{Tag: "6.14.0"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		v, err := Verify(ctx, files, e.Changes, loc, Want{Tag: "6.14.0"}, RenderOptions{Helm: helm})
		if err != nil || !v.Rendered {
			b.Fatalf("Verify = %+v, %v", v, err)
		}
	}
}

// TestVerifyConcurrent verifies from several goroutines at once (run with
// -race): in-process kustomize keeps state in package globals.
func TestVerifyConcurrent(t *testing.T) {
	files := overlayFiles()
	changes, err := SetRestart(files, overlayLoc, vRestart)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := Verify(context.Background(), files, changes, overlayLoc, Want{Restart: vRestart}, RenderOptions{})
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
