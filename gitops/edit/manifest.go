package edit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// manifestLayout: the app's workloads are raw manifests in the repo.
type manifestLayout struct{}

func (manifestLayout) validate(loc Location) error { return needImage(loc) }

func (manifestLayout) inputs(f Files, loc Location) ([]string, error) {
	return manifestFiles(f, loc)
}

// templatePaths says where each workload kind keeps its pod template.
var templatePaths = map[string][]string{
	"Deployment":  {"spec", "template"},
	"StatefulSet": {"spec", "template"},
	"DaemonSet":   {"spec", "template"},
	"ReplicaSet":  {"spec", "template"},
	"Job":         {"spec", "template"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template"},
}

// templatePath returns where a document of kind (and apiVersion) keeps the
// pod template whose containers a tag edit writes. An Argo Rollout
// (argoproj.io/*, kind Rollout) with spec.template is edited like a
// Deployment; one with spec.workloadRef has no template of its own, its
// containers are those of the workload it references (see checkWorkloadRefs).
func templatePath(kind, apiVersion string) ([]string, bool) {
	if kind == rolloutKind {
		if !strings.HasPrefix(apiVersion, "argoproj.io/") {
			return nil, false
		}
		return []string{"spec", "template"}, true
	}
	tp, ok := templatePaths[kind]
	return tp, ok
}

// workload is one document with a pod template that runs loc.Image.
type workload struct {
	y          *yfile
	doc        int
	desc       string     // "Deployment/checkout"
	tmpl       *yaml.Node // the pod template mapping
	tmplPath   []any
	containers []container // the containers running loc.Image, in file order
}

type container struct {
	image *yaml.Node // the image scalar
	flow  bool       // the container is a flow mapping
	gpath []any
	name  string
	ref   imageRef
}

func (w *workload) where(c container) string {
	return fmt.Sprintf("%s (%s, container %s)", w.y.path, w.desc, c.name)
}

// manifestFiles lists the manifest files of loc: the *.yaml and *.yml files
// directly in the directory loc.Path, or loc.Path itself.
func manifestFiles(f Files, loc Location) ([]string, error) {
	names, err := f.ReadDir(loc.Path)
	if err == nil {
		var files []string
		for _, n := range names {
			if strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") {
				files = append(files, path.Join(loc.Path, n))
			}
		}
		if len(files) == 0 {
			return nil, notFoundf("no *.yaml or *.yml files in %s", loc.Path)
		}
		return files, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if _, err := f.ReadFile(loc.Path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, notFoundf("no manifests at %s", loc.Path)
		}
		return nil, err
	}
	return []string{loc.Path}, nil
}

// loadWorkloads parses the manifest files of loc and finds the workloads
// with a container (or init container) running loc.Image.
func loadWorkloads(f Files, loc Location) ([]*yfile, []*workload, error) {
	var ws []*workload
	files, res, err := readManifests(f, loc, func(y *yfile, d int) error {
		w, err := findWorkload(y, d, loc.names())
		if err != nil {
			return fmt.Errorf("%s: %w", y.path, err)
		}
		found := 0
		if w != nil {
			ws = append(ws, w)
			found = len(w.containers)
		}
		// The decoded value must agree with the node walk; YAML aliases
		// and merge keys can hide containers from it.
		if genericContainers(y.values[d], loc.names()) != found {
			return fmt.Errorf("%w: document %d of %s uses YAML aliases or merge keys around its containers", errUnsupported, d+1, y.path)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := checkWorkloadRefs(res, loc.Path); err != nil {
		return nil, nil, err
	}
	return files, ws, nil
}

// readManifests parses the manifest files of loc into their resources,
// calling each (when set) on every document.
func readManifests(f Files, loc Location, each func(y *yfile, d int) error) ([]*yfile, []*resource, error) {
	paths, err := manifestFiles(f, loc)
	if err != nil {
		return nil, nil, err
	}
	var files []*yfile
	var res []*resource
	for _, p := range paths {
		b, err := f.ReadFile(p)
		if err != nil {
			return nil, nil, err
		}
		y, err := parseYAML(p, b)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, y)
		for d := range y.docs {
			r, err := readResource(y, d)
			if err != nil {
				return nil, nil, err
			}
			if r != nil {
				res = append(res, r)
			}
			if each != nil {
				if err := each(y, d); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	return files, res, nil
}

// checkWorkloadRefs fails when an Argo Rollout among res runs its pods
// through a spec.workloadRef to a workload that isn't among res: its image
// is written in a file that isn't the app's, so the edit can neither read
// nor change it. (A referenced workload that is among res is edited like
// any other when it runs the image; the Rollout itself then has nothing to
// edit.)
func checkWorkloadRefs(res []*resource, where string) error {
	for _, r := range res {
		if !r.rollout() {
			continue
		}
		kind, name, ok := r.workloadRef()
		if !ok {
			continue
		}
		found := false
		for _, d := range res {
			if d != r && d.kind == kind && d.name == name && sameNamespace(r, d) {
				found = true
				break
			}
		}
		if !found {
			return notFoundf("%s in %s runs the pods of %s/%s (its spec.workloadRef), which is not in %s: the image is written in that workload's manifest, outside the app's files",
				r, r.y.path, kind, name, where)
		}
	}
	return nil
}

// findWorkload returns the workload of document d if it runs image.
func findWorkload(y *yfile, d int, image imageNames) (*workload, error) {
	root := y.root(d)
	if root == nil || root.Kind != yaml.MappingNode {
		return nil, nil
	}
	kn, err := get(root, "kind")
	if err != nil {
		return nil, err
	}
	kind, _ := scalarString(kn)
	an, err := get(root, "apiVersion")
	if err != nil {
		return nil, err
	}
	apiVersion, _ := scalarString(an)
	tp, ok := templatePath(kind, apiVersion)
	if !ok {
		return nil, nil
	}
	tmpl, err := getPath(root, tp...)
	if err != nil || tmpl == nil || tmpl.Kind != yaml.MappingNode {
		return nil, err
	}
	nn, err := getPath(root, "metadata", "name")
	if err != nil {
		return nil, err
	}
	name, _ := scalarString(nn)
	w := &workload{y: y, doc: d, desc: kind + "/" + name, tmpl: tmpl}
	for _, k := range tp {
		w.tmplPath = append(w.tmplPath, k)
	}
	spec, err := get(tmpl, "spec")
	if err != nil || spec == nil || spec.Kind != yaml.MappingNode {
		return nil, err
	}
	// Walk the pod spec in file order so "first container" means first in the file.
	for i := 0; i+1 < len(spec.Content); i += 2 {
		section := spec.Content[i].Value
		seq := spec.Content[i+1]
		if (section != "containers" && section != "initContainers") || seq.Kind != yaml.SequenceNode {
			continue
		}
		for j, c := range seq.Content {
			img, err := get(c, "image")
			if err != nil {
				return nil, err
			}
			s, ok := scalarString(img)
			if !ok {
				continue
			}
			ref, ok := parseImageRef(s)
			if !ok || !image.has(ref.Name) {
				continue
			}
			cn, _ := get(c, "name")
			cname, _ := scalarString(cn)
			w.containers = append(w.containers, container{
				image: img,
				flow:  isStyle(c, yaml.FlowStyle),
				gpath: appendPath(appendPath(appendPath(appendPath(w.tmplPath, "spec"), section), j), "image"),
				name:  cname,
				ref:   ref,
			})
		}
	}
	if len(w.containers) == 0 {
		return nil, nil
	}
	return w, nil
}

// genericContainers counts, in a decoded document, the containers running
// image: the walk of findWorkload, on the decoded value.
func genericContainers(doc any, image imageNames) int {
	m, _ := doc.(map[string]any)
	kind, _ := m["kind"].(string)
	apiVersion, _ := m["apiVersion"].(string)
	tp, ok := templatePath(kind, apiVersion)
	if !ok {
		return 0
	}
	var cur any = m
	for _, k := range tp {
		mm, _ := cur.(map[string]any)
		cur = mm[k]
	}
	tmpl, _ := cur.(map[string]any)
	spec, _ := tmpl["spec"].(map[string]any)
	n := 0
	for _, section := range []string{"containers", "initContainers"} {
		items, _ := spec[section].([]any)
		for _, it := range items {
			c, _ := it.(map[string]any)
			s, _ := c["image"].(string)
			if ref, ok := parseImageRef(s); ok && image.has(ref.Name) {
				n++
			}
		}
	}
	return n
}

func (manifestLayout) currentTag(f Files, loc Location) (string, error) {
	_, ws, err := loadWorkloads(f, loc)
	if err != nil {
		return "", err
	}
	if len(ws) == 0 {
		return "", notFoundf("no container with image %q in %s", loc.Image, loc.Path)
	}
	first, fw := ws[0].containers[0], ws[0]
	for _, w := range ws {
		for _, c := range w.containers {
			if c.ref != first.ref {
				return "", fmt.Errorf("containers running %s disagree: %s has %s, %s has %s",
					loc.Image, fw.where(first), first.ref, w.where(c), c.ref)
			}
		}
	}
	switch {
	case first.ref.Tag == "" && first.ref.Digest != "":
		return "", noTagf("image %q has no tag in %s (%s: it is pinned by digest)", loc.Image, fw.where(first), first.ref)
	case first.ref.Tag == "":
		return "", noTagf("image %q has no tag in %s (%s: Kubernetes pulls %s:latest)", loc.Image, fw.where(first), first.ref, first.ref.Name)
	}
	return first.ref.Tag, nil
}

// setImage writes NAME:TAG into every container running loc.Image
// (an untagged image gets its tag); a container pinned by digest gets
// NAME:TAG@DIGEST with opts.Digest, or NAME:TAG and a dropped pin without.
func (manifestLayout) setImage(f Files, loc Location, opts SetImageOptions) (ImageEdit, error) {
	files, ws, err := loadWorkloads(f, loc)
	if err != nil {
		return ImageEdit{}, err
	}
	if len(ws) == 0 {
		return ImageEdit{}, notFoundf("no container with image %q in %s", loc.Image, loc.Path)
	}
	var pins []PinChange
	for _, w := range ws {
		for _, c := range w.containers {
			ref := imageRef{Name: loc.Image, Tag: opts.Tag}
			if p, ok := pinFor(w.where(c), c.ref.Digest, opts.Digest); ok {
				ref.Digest = opts.Digest
				if p.Old != p.New {
					pins = append(pins, p)
				}
			}
			if _, err := w.y.setScalar(w.doc, c.gpath, c.image, c.flow, ref.String(), modeTag); err != nil {
				return ImageEdit{}, fmt.Errorf("set image of %s: %w", w.where(c), err)
			}
		}
	}
	changes, err := collect(files...)
	if err != nil {
		return ImageEdit{}, err
	}
	if len(changes) == 0 {
		return ImageEdit{}, unchangedf("every container running %s in %s already runs %s", loc.Image, loc.Path, imageRef{Name: loc.Image, Tag: opts.Tag})
	}
	return ImageEdit{Changes: changes, Pins: pins}, nil
}

var templateRestartKeys = []string{"metadata", "annotations", RestartAnnotation}

// rolloutRestartKeys is Argo Rollouts' restart field.
var rolloutRestartKeys = []string{"spec", "restartAt"}

// manifestRestartTargets parses the manifest files of loc and selects the
// workloads a restart rolls (see selectRestart).
func manifestRestartTargets(f Files, loc Location) ([]*yfile, []*resource, error) {
	files, res, err := readManifests(f, loc, nil)
	if err != nil {
		return nil, nil, err
	}
	sel, err := selectRestart(res, loc.names())
	if err != nil {
		return nil, nil, err
	}
	if len(sel.targets) == 0 {
		return nil, nil, sel.noWorkload(loc.Path, loc.Image, nil)
	}
	return files, sel.targets, nil
}

// restartField returns the mapping that holds r's restart field, its
// generic path, and the keys of the field below it.
func restartField(r *resource) (m *yaml.Node, gpath []any, keys []string) {
	if r.rollout() {
		return r.root, nil, rolloutRestartKeys
	}
	tmpl, _ := getPath(r.root, "spec", "template")
	return tmpl, []any{"spec", "template"}, templateRestartKeys
}

func (manifestLayout) currentRestart(f Files, loc Location) (string, error) {
	_, ts, err := manifestRestartTargets(f, loc)
	if err != nil {
		return "", err
	}
	m, _, keys := restartField(ts[0])
	n, err := getPath(m, keys...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", ts[0].y.path, err)
	}
	v, _ := scalarString(n)
	return v, nil
}

// setRestart sets the restart field of every Deployment,
// StatefulSet, DaemonSet and Rollout running loc.Image (see selectRestart).
func (manifestLayout) setRestart(f Files, loc Location, value string) ([]Change, error) {
	files, ts, err := manifestRestartTargets(f, loc)
	if err != nil {
		return nil, err
	}
	for _, r := range ts {
		m, gpath, keys := restartField(r)
		if m == nil || m.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s in %s has no pod template mapping", r, r.y.path)
		}
		if _, err := r.y.setPath(r.doc, gpath, m, keys, value, modeQuoted); err != nil {
			return nil, fmt.Errorf("set %s on %s in %s: %w", strings.Join(keys, "."), r, r.y.path, err)
		}
	}
	changes, err := collect(files...)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return nil, unchangedf("%s of every workload running %s in %s is already %s", RestartAnnotation, loc.Image, loc.Path, value)
	}
	return changes, nil
}

// renderer: raw manifests are their own rendering.
func (manifestLayout) renderer(_ context.Context, _ Files, loc Location, _ RenderOptions) appRenderer {
	return appRenderer{
		name:   "manifests",
		what:   "the manifests in " + loc.Path,
		render: func(t Files) ([]map[string]any, error) { return manifestObjects(t, loc) },
	}
}
