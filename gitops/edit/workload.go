package edit

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// A restart rolls exactly the workloads that run the app's image, in every
// layout that names them (kustomize, raw manifests):
//
//   - Deployments, StatefulSets and DaemonSets get the pod-template annotation
//     RestartAnnotation; changing it makes their controller roll the pods.
//   - Argo Rollouts (apiVersion argoproj.io/*, kind Rollout) get spec.restartAt,
//     Argo Rollouts' own restart field (an RFC 3339 time): the controller
//     restarts the pods created before it. A Rollout with a workloadRef has no
//     pod template; it runs the app when the Deployment it references does, and
//     that Deployment is then restarted through the Rollout only (a change to
//     its template would start a new Rollout revision, not a restart).
//   - ReplicaSets, Jobs, CronJobs and bare Pods are never touched: a
//     ReplicaSet doesn't roll its pods when its template changes, a Job's pod
//     template is immutable, a Pod isn't restarted by an annotation, and a
//     CronJob's next run starts fresh pods anyway, so annotating its
//     jobTemplate would restart nothing that is running. When they are the
//     only workloads running the image, the restart is refused with that
//     reason (ErrNoWorkload).

// ErrNoWorkload: no Deployment, StatefulSet, DaemonSet or Rollout runs the
// app's image where a restart looked for one. It wraps ErrNotFound.
var ErrNoWorkload = fmt.Errorf("no workload to restart: %w", ErrNotFound)

func noWorkloadf(format string, a ...any) error {
	return &sentinelError{fmt.Sprintf(format, a...), ErrNoWorkload}
}

const rolloutKind = "Rollout"

// podSpecPaths says where each kind that runs pods keeps its pod spec.
var podSpecPaths = map[string][]string{
	"Deployment":  {"spec", "template", "spec"},
	"StatefulSet": {"spec", "template", "spec"},
	"DaemonSet":   {"spec", "template", "spec"},
	rolloutKind:   {"spec", "template", "spec"},
	"ReplicaSet":  {"spec", "template", "spec"},
	"Job":         {"spec", "template", "spec"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template", "spec"},
	"Pod":         {"spec"},
}

// notRestarted says why a kind that runs the image is left alone.
var notRestarted = map[string]string{
	"ReplicaSet": "a ReplicaSet doesn't roll its pods when its template changes",
	"Job":        "a Job's pod template is immutable",
	"CronJob":    "a CronJob's next run starts fresh pods anyway, so a restart would not restart anything running",
	"Pod":        "a Pod isn't restarted by an annotation",
}

// resource is one document of the app's manifests, as kustomize (or
// kubectl) would see it.
type resource struct {
	y    *yfile
	doc  int
	root *yaml.Node

	apiVersion, kind, name, namespace string
	// renames are the images: rewrites of the kustomizations the resource
	// goes through, innermost first (name -> newName); nil outside kustomize.
	renames []map[string]string
	// kusts are the kustomizations the resource goes through, innermost
	// first; nil outside kustomize.
	kusts []*yfile
}

func (r *resource) String() string { return r.kind + "/" + r.name }

// rollout reports whether r is an Argo Rollout.
func (r *resource) rollout() bool {
	return r.kind == rolloutKind && strings.HasPrefix(r.apiVersion, "argoproj.io/")
}

// readResource reads the identity of document d of y; nil if it isn't a
// Kubernetes object.
func readResource(y *yfile, d int) (*resource, error) {
	root := y.root(d)
	if root == nil || root.Kind != yaml.MappingNode {
		return nil, nil
	}
	r := &resource{y: y, doc: d, root: root}
	for _, f := range []struct {
		dst  *string
		keys []string
	}{
		{&r.apiVersion, []string{"apiVersion"}},
		{&r.kind, []string{"kind"}},
		{&r.name, []string{"metadata", "name"}},
		{&r.namespace, []string{"metadata", "namespace"}},
	} {
		n, err := getPath(root, f.keys...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", y.path, err)
		}
		*f.dst, _ = scalarString(n)
	}
	if r.kind == "" {
		return nil, nil
	}
	return r, nil
}

// names returns the names an image reference's repository is known by: as
// written, then as each kustomization on the way rewrites it (newName).
func (r *resource) names(name string) []string {
	out := []string{name}
	for _, m := range r.renames {
		if n, ok := m[name]; ok && n != "" {
			name = n
			out = append(out, n)
		}
	}
	return out
}

func (r *resource) matches(s string, image imageNames) bool {
	ref, ok := parseImageRef(s)
	if !ok {
		return false
	}
	for _, n := range r.names(ref.Name) {
		if image.has(n) {
			return true
		}
	}
	return false
}

// runsImage counts the containers (and init containers) of r's pod spec
// that run image. It checks the node walk against the decoded value: YAML
// aliases and merge keys can hide containers from the walk.
func (r *resource) runsImage(image imageNames) (int, error) {
	imgs, err := r.images(image)
	return len(imgs), err
}

// images returns the image references, as written, of the containers (and
// init containers) of r's pod spec that run image, in file order.
func (r *resource) images(image imageNames) ([]string, error) {
	sp, ok := podSpecPaths[r.kind]
	if !ok {
		return nil, nil
	}
	spec, err := getPath(r.root, sp...)
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", r.y.path, r, err)
	}
	var imgs []string
	if spec != nil && spec.Kind == yaml.MappingNode {
		for _, section := range []string{"containers", "initContainers"} {
			seq, err := get(spec, section)
			if err != nil {
				return nil, fmt.Errorf("%s (%s): %w", r.y.path, r, err)
			}
			if seq == nil || seq.Kind != yaml.SequenceNode {
				continue
			}
			for _, c := range seq.Content {
				img, err := get(c, "image")
				if err != nil {
					return nil, fmt.Errorf("%s (%s): %w", r.y.path, r, err)
				}
				if s, ok := scalarString(img); ok && r.matches(s, image) {
					imgs = append(imgs, s)
				}
			}
		}
	}
	// The same walk on the decoded value.
	var cur any = r.y.values[r.doc]
	for _, k := range sp {
		m, _ := cur.(map[string]any)
		cur = m[k]
	}
	g := 0
	spm, _ := cur.(map[string]any)
	for _, section := range []string{"containers", "initContainers"} {
		items, _ := spm[section].([]any)
		for _, it := range items {
			c, _ := it.(map[string]any)
			if s, ok := c["image"].(string); ok && r.matches(s, image) {
				g++
			}
		}
	}
	if g != len(imgs) {
		return nil, fmt.Errorf("%w: document %d of %s (%s) uses YAML aliases or merge keys around its containers", errUnsupported, r.doc+1, r.y.path, r)
	}
	return imgs, nil
}

// workloadRef returns the kind and name a Rollout's spec.workloadRef
// references; ok is false if it has none.
func (r *resource) workloadRef() (kind, name string, ok bool) {
	ref, _ := getPath(r.root, "spec", "workloadRef")
	if ref == nil || ref.Kind != yaml.MappingNode {
		return "", "", false
	}
	kn, _ := get(ref, "kind")
	nn, _ := get(ref, "name")
	kind, _ = scalarString(kn)
	name, _ = scalarString(nn)
	if kind == "" {
		kind = "Deployment"
	}
	return kind, name, name != ""
}

// sameNamespace reports whether two resources can be in the same namespace
// (an unset namespace is the one the resources are applied to).
func sameNamespace(a, b *resource) bool {
	return a.namespace == "" || b.namespace == "" || a.namespace == b.namespace
}

// restartSelection is what a restart restarts, and what it left alone.
type restartSelection struct {
	targets []*resource // in file order
	skipped []string    // "CronJob/report runs it, but ..."
}

// selectRestart picks, among res, the workloads a restart of image rolls.
func selectRestart(res []*resource, image imageNames) (restartSelection, error) {
	var sel restartSelection
	runs := map[*resource]bool{}
	for _, r := range res {
		n, err := r.runsImage(image)
		if err != nil {
			return sel, err
		}
		runs[r] = n > 0
	}
	// Deployments run through a Rollout's workloadRef.
	viaRollout := map[*resource]bool{}
	refTarget := map[*resource]*resource{}
	for _, r := range res {
		if !r.rollout() {
			continue
		}
		kind, name, ok := r.workloadRef()
		if !ok {
			continue
		}
		for _, d := range res {
			if d.kind == kind && d.name == name && sameNamespace(r, d) && runs[d] {
				refTarget[r] = d
				viaRollout[d] = true
			}
		}
	}
	for _, r := range res {
		switch {
		case r.rollout() && (runs[r] || refTarget[r] != nil):
			sel.targets = append(sel.targets, r)
		case !runs[r] || viaRollout[r]:
		case r.kind == "Deployment" || r.kind == "StatefulSet" || r.kind == "DaemonSet":
			sel.targets = append(sel.targets, r)
		case notRestarted[r.kind] != "":
			sel.skipped = append(sel.skipped, fmt.Sprintf("%s runs it, but %s", r, notRestarted[r.kind]))
		default:
			sel.skipped = append(sel.skipped, fmt.Sprintf("%s runs it, but isn't a kind shipbot restarts", r))
		}
	}
	return sel, nil
}

// noWorkload is the error for a selection without targets.
func (sel restartSelection) noWorkload(where, image string, notes []string) error {
	msg := fmt.Sprintf("no Deployment, StatefulSet, DaemonSet or Rollout in %s runs %s", where, image)
	if all := append(append([]string(nil), sel.skipped...), notes...); len(all) > 0 {
		msg += " (" + strings.Join(all, "; ") + ")"
	}
	return noWorkloadf("%s", msg)
}

// newestRestart returns the latest of the restart values: shipbot writes
// RFC 3339 times in UTC, which sort as strings.
func newestRestart(values []string) string {
	sort.Strings(values)
	if len(values) == 0 {
		return ""
	}
	return values[len(values)-1]
}
