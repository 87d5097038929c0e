package edit

// Golden tests on real environment repos: the trees under testdata/real are
// files copied byte for byte from public repositories (testdata/real/README.md
// says which, at which commit, under which license, and the shape each
// covers). Each case runs one operation on one fixture and states the
// outcome the right behaviour has: a successful edit (its diff is kept in
// testdata/real-golden/<case>.diff; go test -run Real -update rewrites
// them) or a refusal (the sentinel and part of its message).
//
// A successful edit must also: leave files that parse as YAML, read back
// (CurrentTag, CurrentRestart), be idempotent (ErrUnchanged the second
// time), keep every full-line comment, and touch exactly the expected
// number of lines. Where kustomize/kubectl or helm is found (PATH, or the
// local e2e stack's ~/.cache/shipbot-e2e/*/bin), the tree is rendered before
// and after the edit, and the rendered change must be exactly the one asked:
// the app's containers run the new tag and nothing else changed; a restart
// annotates exactly the app's workloads (an Argo Rollout gets spec.restartAt).
// Raw manifests are compared as they are, without a binary.
//
// A case with gap set is a known gap: the current code gets it wrong. Its
// expectations still describe the right behaviour; the case is skipped with
// the gap's description while they fail, and fails once they all pass, so
// that the marker is removed with the fix.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// realRestart is the restart value of every restart case.
const realRestart = "2026-01-02T03:04:05Z"

// realCase is one operation on one fixture of testdata/real.
type realCase struct {
	name string
	fx   string // the fixture: a directory of testdata/real (owner__repo)
	loc  Location
	op   string // "tag" (SetImage: a rollback to tag), "restart" (SetRestart), "current" (CurrentTag)
	tag  string // tag: the tag to deploy
	dig  string // tag: the digest the registry gives for tag

	// The expected outcome. err: the operation fails with it (errors.Is);
	// msg: a substring of its message (with err nil: any error). current:
	// what CurrentTag reads (op current), or reads before the edit.
	err     error
	msg     string
	current string
	// pins are substrings of the edit's pin notes, one per note, in order.
	pins []string
	// lines are the lines a successful edit removes and adds, all files.
	lines [2]int
	// renderTree prepares the tree a chart is rendered from (e.g. puts a
	// dependency the repo keeps elsewhere under the chart's charts/).
	renderTree func(MapFiles)
	// check holds further expectations of the right behaviour.
	check func(r *realT, f MapFiles, e ImageEdit, err error)
	// without are fixture files left out for this case.
	without []string
	// noRender says why the edit's effect can't be seen by rendering the
	// tree (an Argo CD override file: kustomize and helm don't read it).
	noRender string
	// gap is a known gap: what the current code gets wrong here.
	gap string
}

// The fixtures' image names.
const (
	realPodinfo   = "ghcr.io/stefanprodan/podinfo"
	realBoutique  = "us-central1-docker.pkg.dev/online-boutique-ci/microservices-demo/"
	realRollouts  = "argoproj/rollouts-demo"
	realRBACProxy = "quay.io/brancz/kube-rbac-proxy"
)

var (
	realNodeExporter  = Location{Layout: LayoutManifest, Path: "manifests", Image: "quay.io/prometheus/node-exporter"}
	realBoutiqueAll   = Location{Layout: LayoutManifest, Path: "release/kubernetes-manifests.yaml"}
	realBoutiqueChart = Location{Layout: LayoutHelm, Path: "helm-chart/values.yaml", TagPath: "images.tag", Image: realBoutique + "frontend"}
	realDkarpeleDev   = Location{Layout: LayoutHelm, Path: "011-appset/cluster-addons/dev/values.yaml", Image: "gcr.io/heptio-images/ks-guestbook-demo"}
	realBitnamiNginx  = Location{Layout: LayoutHelm, Path: "bitnami/nginx/values.yaml", DigestPath: "image.digest", Image: "docker.io/bitnami/nginx"}
)

func realWithImage(loc Location, image string) Location { loc.Image = image; return loc }

// realBitnamiCommon puts bitnami/common, the library chart bitnami/nginx
// depends on (fetched from a registry upstream), under the chart's charts/.
func realBitnamiCommon(f MapFiles) {
	for p, b := range f {
		if rest, ok := strings.CutPrefix(p, "bitnami/common/"); ok {
			f["bitnami/nginx/charts/common/"+rest] = b
		}
	}
}

var realCases = []realCase{
	// ---- kustomize: an overlay without an images entry, the tag from its resources.
	// ---- kustomize: many services in one overlay, some images untagged.
	// ---- kustomize: an overlay of bases with Deployments, a StatefulSet, CronJobs and redis.
	{name: "podinfo-overlay-rollback", fx: "stefanprodan__podinfo", op: "tag", tag: "6.14.0",
		loc: Location{Layout: LayoutKustomize, Path: "deploy/overlays/production", Image: realPodinfo}, current: "6.14.1", lines: [2]int{0, 3}},
	{name: "podinfo-overlay-restart", fx: "stefanprodan__podinfo", op: "restart",
		loc: Location{Layout: LayoutKustomize, Path: "deploy/overlays/production", Image: realPodinfo}, lines: [2]int{0, 27}},
	{name: "podinfo-overlay-redis-restart", fx: "stefanprodan__podinfo", op: "restart",
		loc: Location{Layout: LayoutKustomize, Path: "deploy/overlays/production", Image: "docker.io/redis"}, lines: [2]int{0, 15}},
	// ---- kustomize: an Argo Rollout.
	// ---- kustomize: envs sharing a base through components, the tag set by a patchesStrategicMerge file.
	// ---- kustomize: eleven services; components: is null, its entries commented out.
	{name: "boutique-kustomize-rollback", fx: "GoogleCloudPlatform__microservices-demo", op: "tag", tag: "v0.10.5",
		loc: Location{Layout: LayoutKustomize, Path: "kustomize", Image: realBoutique + "cartservice"}, current: "v0.10.6", lines: [2]int{0, 3}},
	{name: "boutique-kustomize-restart", fx: "GoogleCloudPlatform__microservices-demo", op: "restart",
		loc: Location{Layout: LayoutKustomize, Path: "kustomize", Image: realBoutique + "cartservice"}, lines: [2]int{0, 15}},
	// ---- kustomize: an Argo CD parameter override file (.argocd-source-<app>.yaml) pins the image.
	{name: "argocd-source-kustomize-override", fx: "chengfang__image-updater-examples", op: "tag", tag: "1.27",
		loc:      Location{Layout: LayoutKustomize, Path: "image-list-kustomize/source", Image: "nginx"},
		check:    realEditsOverrideOrRefuses("image-list-kustomize/source/.argocd-source-image-list-kustomize.yaml"),
		pins:     []string{"dropped at image-list-kustomize/source/.argocd-source-image-list-kustomize.yaml (kustomize.images[0])"},
		noRender: "Argo CD applies .argocd-source-*.yaml; kustomize doesn't read it"},

	// ---- helm: a chart in the repo and a values stack (values.yaml + values-production.yaml).
	// tag: 0.1 is a YAML float: the new tag is written quoted.
	{name: "helm-float-tag-rollout", fx: "argoproj__argo-rollouts", op: "tag", tag: "0.2",
		loc: Location{Layout: LayoutHelm, Path: "examples/helm-blue-green/values.yaml", Image: "gcr.io/heptio-images/ks-guestbook-demo"}, current: "0.1", lines: [2]int{1, 1}},
	// ---- helm: podAnnotations read by the chart (podinfo: the redis Deployment doesn't).
	{name: "podinfo-chart-rollback", fx: "stefanprodan__podinfo", op: "tag", tag: "6.14.0",
		loc:     Location{Layout: LayoutHelm, Path: "charts/podinfo/values-prod.yaml", ValuesFiles: []string{"charts/podinfo/values-prod.yaml"}, Image: realPodinfo},
		current: "6.14.1", lines: [2]int{1, 1}},
	{name: "podinfo-chart-restart", fx: "stefanprodan__podinfo", op: "restart",
		loc:   Location{Layout: LayoutHelm, Path: "charts/podinfo/values-prod.yaml", ValuesFiles: []string{"charts/podinfo/values-prod.yaml"}, Image: realPodinfo},
		lines: [2]int{1, 1}},
	// ---- helm: the tag in a less specific file of a five-file stack.
	// ---- helm: tag: "" (the chart's appVersion applies), one tag for eleven services.
	{name: "boutique-chart-empty-tag", fx: "GoogleCloudPlatform__microservices-demo", op: "current",
		loc: Location{Layout: LayoutHelm, Path: "helm-chart/values.yaml", TagPath: "images.tag", Image: realBoutique + "frontend"},
		err: ErrNoTag, msg: "images.tag is empty in helm-chart/values.yaml: the chart's default tag applies (usually its appVersion, v0.10.6"},
	{name: "boutique-chart-shared-tag", fx: "GoogleCloudPlatform__microservices-demo", op: "tag", tag: "v0.10.5",
		loc: Location{Layout: LayoutHelm, Path: "helm-chart/values.yaml", TagPath: "images.tag", Image: realBoutique + "frontend"},
		// Written alone, images.tag rolls all eleven services: the check by
		// rendering refuses it (with helm; without, the plan says it wasn't
		// rendered).
		check:    realVerifyRefuses(realBoutiqueChart, "v0.10.5", "Deployment/cartservice"),
		noRender: "the verifier's refusal is the check"},
	// ---- helm: image.digest (Bitnami), podAnnotations read through a library chart.
	{name: "bitnami-nginx-rollback", fx: "bitnami__charts", op: "tag", tag: "1.29.0-debian-12-r0", loc: realBitnamiNginx,
		current: "1.29.1-debian-12-r0", lines: [2]int{1, 1}, renderTree: realBitnamiCommon},
	{name: "bitnami-nginx-restart", fx: "bitnami__charts", op: "restart", loc: realBitnamiNginx, lines: [2]int{1, 1}, renderTree: realBitnamiCommon},
	// ---- helm: values files for a chart from a Helm repository (not in the env repo).
	{name: "empty-values-file-rollback", fx: "chengfang__image-updater-examples", op: "tag", tag: "1.27.0",
		loc:     Location{Layout: LayoutHelm, Path: "empty-helmvalues/source2/values.yaml", ValuesFiles: []string{"empty-helmvalues/source2/values-0.yaml", "empty-helmvalues/source2/values.yaml"}, Image: "docker.io/bitnamilegacy/nginx"},
		current: "1.27.1", lines: [2]int{0, 2}},
	{name: "empty-values-file-restart", fx: "chengfang__image-updater-examples", op: "restart",
		loc:   Location{Layout: LayoutHelm, Path: "empty-helmvalues/source2/values.yaml", ValuesFiles: []string{"empty-helmvalues/source2/values-0.yaml", "empty-helmvalues/source2/values.yaml"}, Image: "docker.io/bitnamilegacy/nginx"},
		lines: [2]int{0, 2}},
	{name: "values-list-index-rollback", fx: "chengfang__image-updater-examples", op: "tag", tag: "1.27.0",
		loc: Location{Layout: LayoutHelm, Path: "helmvalues-list/source2/values.yaml", TagPath: "images[0].tag", Image: "docker.io/bitnami/nginx"}, current: "1.27.1", lines: [2]int{1, 1}},
	{name: "values-no-final-newline-restart", fx: "chengfang__image-updater-examples", op: "restart",
		loc: Location{Layout: LayoutHelm, Path: "helmvalues-list/source2/values.yaml", Image: "docker.io/bitnami/nginx"}, lines: [2]int{1, 3}},
	{name: "values-trailing-comment-rollback", fx: "chengfang__image-updater-examples", op: "tag", tag: "1.27.4",
		loc: Location{Layout: LayoutHelm, Path: "write-helmvalues/source2/values.yaml", Image: "docker.io/bitnamilegacy/nginx"}, current: "1.27.5", lines: [2]int{1, 1}},
	// ---- helm: a tag holding a digest, and an Argo CD parameter override beside the chart.
	{name: "tag-with-digest-current", fx: "dkarpele__image-updater-examples", op: "current", loc: realDkarpeleDev, current: "0.2"},
	{name: "tag-with-digest-pin-dropped", fx: "dkarpele__image-updater-examples", op: "tag", tag: "0.3", loc: realDkarpeleDev,
		without: []string{"011-appset/cluster-addons/dev/.argocd-source-dev-application-backend-use1.yaml"}, // the values file alone
		pins:    []string{"sha256:fe18e00a6aeece16b5b2f77a32ee60929e8a60e27c71df8df66bf804f5677f47 dropped"}, lines: [2]int{1, 1}},
	{name: "argocd-source-helm-override", fx: "dkarpele__image-updater-examples", op: "tag", tag: "0.3", loc: realDkarpeleDev,
		check:    realEditsOverrideOrRefuses("011-appset/cluster-addons/dev/.argocd-source-dev-application-backend-use1.yaml"),
		noRender: "Argo CD passes .argocd-source-*.yaml's parameters to helm; helm template doesn't read it"},

	// ---- raw manifests: Rollouts (a template, a workloadRef).
	{name: "rollout-canary-rollback", fx: "argoproj__argo-rollouts", op: "tag", tag: "yellow",
		loc: Location{Layout: LayoutManifest, Path: "examples/rollout-canary.yaml", Image: realRollouts}, current: "blue", lines: [2]int{1, 1}},
	{name: "rollout-canary-restart", fx: "argoproj__argo-rollouts", op: "restart",
		loc: Location{Layout: LayoutManifest, Path: "examples/rollout-canary.yaml", Image: realRollouts}, lines: [2]int{0, 1}},
	{name: "rollout-workload-ref-rollback", fx: "argoproj__argo-rollouts", op: "tag", tag: "yellow",
		loc: Location{Layout: LayoutManifest, Path: "examples/workload-ref", Image: realRollouts}, current: "blue", lines: [2]int{1, 1}},
	{name: "rollout-workload-ref-restart", fx: "argoproj__argo-rollouts", op: "restart",
		loc: Location{Layout: LayoutManifest, Path: "examples/workload-ref", Image: realRollouts}, lines: [2]int{1, 2}},
	// ---- raw manifests: one multi-document file of eleven services, a digest-pinned init container.
	{name: "boutique-manifest-rollback", fx: "GoogleCloudPlatform__microservices-demo", op: "tag", tag: "v0.10.5",
		loc: realWithImage(realBoutiqueAll, realBoutique+"cartservice"), current: "v0.10.6", lines: [2]int{1, 1}},
	{name: "boutique-manifest-restart", fx: "GoogleCloudPlatform__microservices-demo", op: "restart",
		loc: realWithImage(realBoutiqueAll, realBoutique+"cartservice"), lines: [2]int{0, 2}},
	{name: "boutique-manifest-redis-current", fx: "GoogleCloudPlatform__microservices-demo", op: "current",
		loc: realWithImage(realBoutiqueAll, "redis"), current: "alpine"},
	{name: "boutique-manifest-digest-dropped", fx: "GoogleCloudPlatform__microservices-demo", op: "tag", tag: "1.37.0",
		loc: realWithImage(realBoutiqueAll, "busybox"), current: "1.38.0", lines: [2]int{1, 1},
		pins: []string{"digest sha256:fd8d9aa63ba2f0982b5304e1ee8d3b90a210bc1ffb5314d980eb6962f1a9715d dropped at release/kubernetes-manifests.yaml (Deployment/loadgenerator, container frontend-check)"}},
	{name: "boutique-manifest-digest-updated", fx: "GoogleCloudPlatform__microservices-demo", op: "tag", tag: "1.37.0",
		dig: "sha256:0000000000000000000000000000000000000000000000000000000000000001", loc: realWithImage(realBoutiqueAll, "busybox"), lines: [2]int{1, 1},
		pins: []string{"updated: sha256:fd8d9aa63ba2f0982b5304e1ee8d3b90a210bc1ffb5314d980eb6962f1a9715d -> sha256:0000000000000000000000000000000000000000000000000000000000000001"}},
	// ---- raw manifests: a DaemonSet; a sidecar image run by three workloads.
	{name: "daemonset-rollback", fx: "prometheus-operator__kube-prometheus", op: "tag", tag: "v1.12.0", loc: realNodeExporter, current: "v1.12.1", lines: [2]int{1, 1}},
	{name: "daemonset-restart", fx: "prometheus-operator__kube-prometheus", op: "restart", loc: realNodeExporter, lines: [2]int{0, 1}},
	{name: "sidecar-three-workloads-rollback", fx: "prometheus-operator__kube-prometheus", op: "tag", tag: "v0.22.0",
		loc: realWithImage(realNodeExporter, realRBACProxy), current: "v0.22.1", lines: [2]int{4, 4}},
	{name: "sidecar-three-workloads-restart", fx: "prometheus-operator__kube-prometheus", op: "restart",
		loc: realWithImage(realNodeExporter, realRBACProxy), lines: [2]int{0, 3}},

	// ---- Argo CD Applications.
	{name: "application-kustomize-images-rollback", fx: "argoproj-labs__argocd-image-updater", op: "tag", tag: "1.6.9",
		loc: Location{Layout: LayoutApplication, Path: "test/e2e/suite/004-multiple-images/02-assert.yaml", Image: "memcached"}, current: "1.6.10", lines: [2]int{1, 1}},
	{name: "application-restart-refused", fx: "argoproj-labs__argocd-image-updater", op: "restart",
		loc: Location{Layout: LayoutApplication, Path: "test/e2e/suite/004-multiple-images/02-assert.yaml", Image: "memcached"},
		err: ErrNoPodTemplate, msg: "holds no pod template"},
	{name: "application-two-apps-ambiguous", fx: "argoproj-labs__argocd-image-updater", op: "tag", tag: "1.0.1",
		loc: Location{Layout: LayoutApplication, Path: "test/e2e/suite/005-app-wide-update-strategy/02-assert.yaml", Image: "quay.io/dkarpele/my-guestbook"},
		msg: "has 2 fields that may hold the tag of quay.io/dkarpele/my-guestbook"},
	// spec.sources is set, so Argo CD ignores spec.source and its kustomize.images.
	{name: "application-sources-win-over-source", fx: "argoproj__argo-cd", op: "tag", tag: "0.3",
		loc: Location{Layout: LayoutApplication, Path: "docs/operator-manual/application.yaml", Image: "quay.io/argoprojlabs/argocd-e2e-container"},
		err: ErrNotFound, msg: "no source of the Application in docs/operator-manual/application.yaml carries the tag"},
	{name: "application-values-object-without-tag", fx: "argoproj__argo-cd", op: "tag", tag: "v3.6.0",
		loc: Location{Layout: LayoutApplication, Path: "controller/testdata/target-child-application.yaml", Image: "quay.io/argoproj/argocli"},
		err: ErrNotFound, msg: "looked for a helm parameter named image.tag, helm.valuesObject.image.tag"},
}

// realEditsOverrideOrRefuses is the right behaviour where an Argo CD parameter
// override file overrides what the layout edits: the edit changes the
// override file, or is refused naming it.
func realEditsOverrideOrRefuses(override string) func(r *realT, f MapFiles, e ImageEdit, err error) {
	return func(r *realT, f MapFiles, e ImageEdit, err error) {
		if err != nil {
			if !strings.Contains(err.Error(), path.Base(override)) {
				r.errorf("refused without naming %s: %v", override, err)
			}
			return
		}
		if !slices.ContainsFunc(e.Changes, func(c Change) bool { return c.Path == override }) {
			r.errorf("the edit leaves %s, which Argo CD applies over it, as it is:\n%s", override, Diff(e.Changes))
		}
	}
}

// realVerifyRefuses: the edit is made, and the check by rendering (helm)
// refuses it, naming what else it changes.
func realVerifyRefuses(loc Location, tag, what string) func(r *realT, f MapFiles, e ImageEdit, err error) {
	return func(r *realT, f MapFiles, e ImageEdit, err error) {
		if err != nil {
			r.errorf("the edit: %v", err)
			return
		}
		helm := realBinary("helm")
		if helm == "" {
			return // not rendered: nothing more to tell
		}
		_, verr := Verify(context.Background(), f, e.Changes, loc, Want{Tag: tag}, RenderOptions{Helm: helm})
		if !errors.Is(verr, ErrWrongEffect) || !strings.Contains(verr.Error(), what) {
			r.errorf("Verify = %v; want ErrWrongEffect naming %s", verr, what)
		}
	}
}

// realRefuses is the right behaviour where the edit can't be made safely: an
// error naming what.
func realRefuses(what string) func(r *realT, f MapFiles, e ImageEdit, err error) {
	return func(r *realT, f MapFiles, e ImageEdit, err error) {
		if err == nil {
			r.errorf("the edit was made; want a refusal naming %s:\n%s", what, Diff(e.Changes))
		} else if !strings.Contains(err.Error(), what) {
			r.errorf("refused without naming %s: %v", what, err)
		}
	}
}

// realT collects the failures of one case, so that a known gap can be told
// from a fix.
type realT struct {
	*testing.T
	failures []string
}

func (r *realT) errorf(format string, a ...any) {
	r.Helper()
	r.failures = append(r.failures, fmt.Sprintf(format, a...))
}

func TestRealCases(t *testing.T) {
	names := map[string]bool{}
	for _, c := range realCases {
		if names[c.name] {
			t.Fatalf("two cases are named %s", c.name)
		}
		names[c.name] = true
	}
	for _, c := range realCases {
		t.Run(c.name, func(t *testing.T) {
			files := readTree(t, filepath.Join("testdata", "real", c.fx))
			if len(files) == 0 {
				t.Fatalf("no fixture testdata/real/%s", c.fx)
			}
			for _, p := range c.without {
				delete(files, p)
			}
			r := &realT{T: t}
			c.run(r, files)
			switch {
			case c.gap != "" && len(r.failures) > 0:
				t.Skipf("known gap: %s\n%s", c.gap, strings.Join(r.failures, "\n"))
			case c.gap != "":
				t.Errorf("the known gap no longer shows (%s): drop the gap marker of this case", c.gap)
			case len(r.failures) > 0:
				t.Error(strings.Join(r.failures, "\n"))
			}
		})
	}
}

// TestRealGoldenFiles checks that every golden diff belongs to a case.
func TestRealGoldenFiles(t *testing.T) {
	got, err := filepath.Glob(filepath.Join("testdata", "real-golden", "*.diff"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		name := strings.TrimSuffix(filepath.Base(p), ".diff")
		if !slices.ContainsFunc(realCases, func(c realCase) bool { return c.name == name && c.goldenDiff() }) {
			t.Errorf("%s belongs to no successful edit case", p)
		}
	}
}

// goldenDiff reports whether the case keeps a golden diff: a successful
// edit that is not a known gap.
func (c realCase) goldenDiff() bool {
	return c.op != "current" && c.err == nil && c.msg == "" && c.check == nil && c.gap == ""
}

func (c realCase) run(r *realT, files MapFiles) {
	r.Helper()
	if c.current != "" || c.op == "current" {
		cur, err := CurrentTag(files, c.loc)
		if c.op == "current" {
			c.checkErr(r, "CurrentTag", err)
			if c.err == nil && c.msg == "" && cur != c.current {
				r.errorf("CurrentTag = %q; want %q", cur, c.current)
			}
			return
		}
		if err != nil || cur != c.current {
			r.errorf("before the edit: CurrentTag = %q, %v; want %q", cur, err, c.current)
		}
	}
	e, err := c.do(files)
	if c.check != nil {
		c.check(r, files, e, err)
	}
	if c.err != nil || c.msg != "" {
		c.checkErr(r, c.op, err)
		return
	}
	if err != nil {
		if c.check == nil {
			r.errorf("%s: %v", c.op, err)
		}
		return
	}
	notes := e.Notes()
	if len(notes) != len(c.pins) {
		r.errorf("pin notes %q; want %d containing %q", notes, len(c.pins), c.pins)
	} else {
		for i, want := range c.pins {
			if !strings.Contains(notes[i], want) {
				r.errorf("pin note %q; want it to contain %q", notes[i], want)
			}
		}
	}
	after := realApply(r, files, e.Changes)
	if after == nil {
		return
	}
	if c.goldenDiff() {
		c.checkGolden(r, e.Changes)
	}
	c.checkChanges(r, files, after, e.Changes)
	// The render is a subtest of its own, skipped where no tool renders it.
	r.Run("render", func(t *testing.T) {
		rr := &realT{T: t}
		if c.noRender != "" {
			t.Skipf("not rendered: %s", c.noRender)
		}
		if why := c.checkRendered(rr, files, after); why != "" {
			t.Skipf("not rendered: %s", why)
		}
		switch {
		case len(rr.failures) > 0 && c.gap != "":
			t.Skipf("known gap: %s\n%s", c.gap, strings.Join(rr.failures, "\n"))
		case len(rr.failures) > 0:
			t.Error(strings.Join(rr.failures, "\n"))
		}
	})
}

func (c realCase) do(f Files) (ImageEdit, error) {
	if c.op == "restart" {
		changes, err := SetRestart(f, c.loc, realRestart)
		return ImageEdit{Changes: changes}, err
	}
	return SetImage(f, c.loc, SetImageOptions{Tag: c.tag, Digest: c.dig})
}

func (c realCase) value() string {
	if c.op == "restart" {
		return realRestart
	}
	return c.tag
}

// checkErr checks an expected failure.
func (c realCase) checkErr(r *realT, what string, err error) {
	r.Helper()
	if c.err == nil && c.msg == "" {
		if err != nil {
			r.errorf("%s: %v", what, err)
		}
		return
	}
	switch {
	case err == nil:
		r.errorf("%s succeeded; want an error (%v) containing %q", what, c.err, c.msg)
	case c.err != nil && !errors.Is(err, c.err):
		r.errorf("%s: %v; want errors.Is %v", what, err, c.err)
	case !strings.Contains(err.Error(), c.msg):
		r.errorf("%s: %v; want a message containing %q", what, err, c.msg)
	}
}

// realApply returns files with changes applied, nil if a change doesn't
// fit the tree.
func realApply(r *realT, files MapFiles, changes []Change) MapFiles {
	out, err := applied(files, changes)
	if err != nil {
		r.errorf("%v", err)
	}
	return out
}

func (c realCase) checkGolden(r *realT, changes []Change) {
	r.Helper()
	p := filepath.Join("testdata", "real-golden", c.name+".diff")
	got := Diff(changes)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			r.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		r.errorf("no golden diff (run go test -run Real -update): %v\ngot:\n%s", err, got)
		return
	}
	if d := cmp.Diff(string(want), got); d != "" {
		r.errorf("diff differs from %s (-want +got):\n%s", p, d)
	}
}

// checkChanges checks the edited tree itself.
func (c realCase) checkChanges(r *realT, before, after MapFiles, changes []Change) {
	r.Helper()
	removed, added := 0, 0
	for _, ch := range changes {
		if _, err := decodeDocs(ch.New); err != nil {
			r.errorf("%s no longer parses as YAML: %v", ch.Path, err)
		}
		rm, ad := changedLines(string(ch.Old), string(ch.New))
		removed, added = removed+rm, added+ad
		realComments(r, ch.Path, ch.Old, ch.New)
	}
	// (A case judged by check has no line count: the right edit may differ.)
	if c.check == nil && [2]int{removed, added} != c.lines {
		r.errorf("the edit removes %d lines and adds %d; want %d and %d:\n%s", removed, added, c.lines[0], c.lines[1], Diff(changes))
	}
	// It reads back, and doing it again changes nothing.
	read := CurrentTag
	if c.op == "restart" {
		read = CurrentRestart
	}
	if v, err := read(after, c.loc); err != nil || v != c.value() {
		r.errorf("after the edit: read %q, %v; want %q", v, err, c.value())
	}
	if again, err := c.do(after); !errors.Is(err, ErrUnchanged) {
		r.errorf("second %s: %d changes, %v; want ErrUnchanged", c.op, len(again.Changes), err)
	}
	inputs, err := Inputs(after, c.loc)
	if err != nil {
		r.errorf("Inputs: %v", err)
	}
	for _, ch := range changes {
		if !slices.Contains(inputs, ch.Path) {
			r.errorf("Inputs %v misses the changed file %s", inputs, ch.Path)
		}
	}
}

// realComments checks that every full-line comment of old is in new.
func realComments(r *realT, p string, old, new []byte) {
	count := map[string]int{}
	for _, l := range strings.Split(string(new), "\n") {
		count[strings.TrimRight(l, "\r")]++
	}
	for _, l := range strings.Split(string(old), "\n") {
		l = strings.TrimRight(l, "\r")
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if count[l] == 0 {
			r.errorf("%s: comment line %q lost", p, l)
		}
		count[l]--
	}
}

// ---- rendering -------------------------------------------------------------

// realBinary finds a tool: on PATH, or built by the local e2e stack.
func realBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		if m, _ := filepath.Glob(filepath.Join(home, ".cache", "shipbot-e2e", "*", "bin", name)); len(m) > 0 {
			return m[0]
		}
	}
	return ""
}

// realRender renders tree (written to dir) the way the case's layout
// deploys it; why says why not when no tool is found or there is nothing to
// render ("error" when rendering failed, which is recorded).
func (c realCase) realRender(r *realT, tree MapFiles, dir string) (docs []any, why string) {
	r.Helper()
	t := make(MapFiles, len(tree))
	for p, b := range tree {
		t[p] = b
	}
	if c.renderTree != nil {
		c.renderTree(t)
	}
	writeTree(r, dir, t)
	var name string
	var args []string
	switch c.loc.Layout {
	case LayoutManifest:
		files, err := manifestFiles(tree, c.loc)
		if err != nil {
			r.errorf("manifest files: %v", err)
			return nil, "error"
		}
		for _, p := range files {
			d, err := decodeDocs(tree[p])
			if err != nil {
				r.errorf("%s: %v", p, err)
				return nil, "error"
			}
			docs = append(docs, d...)
		}
		return docs, ""
	case LayoutKustomize:
		if p := realBinary("kustomize"); p != "" {
			name, args = p, []string{"build", filepath.Join(dir, c.loc.Path)}
		} else if p := realBinary("kubectl"); p != "" {
			name, args = p, []string{"kustomize", filepath.Join(dir, c.loc.Path)}
		} else {
			return nil, "neither kustomize nor kubectl found"
		}
	case LayoutHelm:
		chart := chartDir(tree, c.loc)
		if chart == "" {
			return nil, "the chart is not in the repo"
		}
		if name = realBinary("helm"); name == "" {
			return nil, "no helm binary found"
		}
		args = []string{"template", "real", filepath.Join(dir, chart), "--kube-version", "1.31.0"}
		vf := c.loc.ValuesFiles
		if len(vf) == 0 {
			vf = []string{c.loc.Path}
		}
		for _, p := range vf {
			args = append(args, "-f", filepath.Join(dir, p))
		}
	default:
		return nil, "nothing to render in the " + string(c.loc.Layout) + " layout"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		r.errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
		return nil, "error"
	}
	if docs, err = decodeDocs(out); err != nil {
		r.errorf("rendered output doesn't decode: %v", err)
		return nil, "error"
	}
	return docs, ""
}

// checkRendered renders before and after and checks that the change is
// exactly the one asked; it returns why not when there is no tool or
// nothing to render.
func (c realCase) checkRendered(r *realT, before, after MapFiles) (why string) {
	r.Helper()
	b, why := c.realRender(r, before, filepath.Join(r.TempDir(), "before"))
	if why == "error" {
		return ""
	}
	if why != "" {
		return why
	}
	a, why := c.realRender(r, after, filepath.Join(r.TempDir(), "after"))
	if why != "" {
		return ""
	}
	// What a chart generates anew on every render (a self-signed
	// certificate, its checksum) is left out of the comparison.
	if c.loc.Layout == LayoutHelm {
		b2, why := c.realRender(r, before, filepath.Join(r.TempDir(), "again"))
		if why != "" {
			return ""
		}
		if len(b2) == len(b) {
			for i := range b {
				var random [][]any
				realRandomLeaves(b[i], b2[i], nil, &random)
				for _, p := range random {
					realDropLeaf(b[i], p)
					if i < len(a) {
						realDropLeaf(a[i], p)
					}
				}
			}
		}
	}
	var want []any
	switch c.op {
	case "restart":
		want = modelRestart(b, c.loc.Image, realRestart)
		if realCountRestarts(a) == 0 {
			r.errorf("the rendered tree restarts nothing")
		}
	default:
		n := 0
		want, n = realModelTag(b, c.loc.names(), c.tag, c.dig)
		if n == 0 {
			r.errorf("no rendered container runs %s", c.loc.Image)
		}
	}
	if d := cmp.Diff(want, a, cmpopts.EquateEmpty()); d != "" {
		r.errorf("the rendered change is not exactly the %s asked (-want +got):\n%s", c.op, d)
	}
	return ""
}

func realCountRestarts(docs []any) int {
	n := 0
	for _, d := range docs {
		if getKeys(d, "spec", "restartAt") == realRestart || getKeys(d, "spec", "template", "metadata", "annotations", RestartAnnotation) == realRestart {
			n++
		}
	}
	return n
}

// realModelTag is what a tag change does to rendered documents: every
// container (and init container) running the image, in any pod spec, runs
// the new tag; a digest pin is kept with the new tag's digest, or dropped.
func realModelTag(docs []any, names imageNames, tag, digest string) ([]any, int) {
	n := 0
	var walk func(v any)
	walk = func(v any) {
		switch m := v.(type) {
		case map[string]any:
			for _, section := range []string{"containers", "initContainers"} {
				items, _ := m[section].([]any)
				for _, it := range items {
					s, _ := mget(it, "image").(string)
					sm := refPattern.FindStringSubmatch(s)
					if sm == nil || !names.has(sm[1]) {
						continue
					}
					ref := sm[1] + ":" + tag
					if sm[3] != "" && digest != "" {
						ref += "@" + digest
					}
					mset(it, "image", ref)
					n++
				}
			}
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(m[k])
			}
		case []any:
			for _, x := range m {
				walk(x)
			}
		}
	}
	for _, d := range docs {
		walk(d)
	}
	return docs, n
}

// realRandomLeaves collects the paths where two renders of the same tree
// differ.
func realRandomLeaves(x, y any, p []any, out *[][]any) {
	switch xm := x.(type) {
	case map[string]any:
		if ym, ok := y.(map[string]any); ok {
			for k, v := range xm {
				realRandomLeaves(v, ym[k], append(slices.Clone(p), k), out)
			}
			return
		}
	case []any:
		if ys, ok := y.([]any); ok && len(ys) == len(xm) {
			for i := range xm {
				realRandomLeaves(xm[i], ys[i], append(slices.Clone(p), i), out)
			}
			return
		}
	}
	if !cmp.Equal(x, y) {
		*out = append(*out, p)
	}
}

// realDropLeaf removes the value at path p.
func realDropLeaf(d any, p []any) {
	for i, k := range p {
		last := i == len(p)-1
		switch v := d.(type) {
		case map[string]any:
			key, _ := k.(string)
			if last {
				delete(v, key)
				return
			}
			d = v[key]
		case []any:
			j, _ := k.(int)
			if j >= len(v) {
				return
			}
			if last {
				v[j] = nil
				return
			}
			d = v[j]
		default:
			return
		}
	}
}
