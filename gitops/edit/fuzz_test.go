package edit

import (
	"bytes"
	"errors"
	"io"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"
)

// The fuzz targets feed arbitrary file content to the edit operations.
// Operations may fail on weird input, but must never panic, and when they
// succeed the result must decode to the input's decoded value with exactly
// the intended change: the model functions below state that change on
// generic values, independently of the package's own bookkeeping.

var fuzzTags = []string{
	"1.4.2", "1.10", "v2.0.0-rc.1", "latest", "20240102", "2024-01-02", "1e3",
	"0x1F", "true", "sha-4f2c1a9", "1_000", "ON", "1.4.1", "main", "1:20", "_x",
}

var fuzzImages = []string{"registry.example.com/checkout", "localhost:5000/checkout", "checkout"}

const fuzzRestartValue = "2026-11-21T10:00:00Z"

func pick[T any](s []T, i uint8) T { return s[int(i)%len(s)] }

// goldenSeeds returns the before/ files of the golden cases of layout whose
// path satisfies keep.
func goldenSeeds(f *testing.F, layout Layout, keep func(p string) bool) [][]byte {
	var seeds [][]byte
	for _, c := range goldenCases(f) {
		if c.Layout != layout {
			continue
		}
		for p, b := range readTree(f, filepath.Join(c.dir, "before")) {
			if keep(p) {
				seeds = append(seeds, b)
			}
		}
	}
	return seeds
}

func isKustomization(p string) bool {
	for _, n := range kustomizationNames {
		if path.Base(p) == n {
			return true
		}
	}
	return false
}

func isYAML(p string) bool { return strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") }

// ---- generic value helpers (test side) ----

func decodeDocs(b []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []any
	for {
		var v any
		err := dec.Decode(&v)
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, v)
	}
}

func mget(m any, k string) any {
	switch m := m.(type) {
	case map[string]any:
		return m[k]
	case map[any]any:
		return m[k]
	}
	return nil
}

// mset sets m[k] = v and returns m (a new map if m is nil).
func mset(m any, k string, v any) any {
	switch mm := m.(type) {
	case map[string]any:
		mm[k] = v
		return mm
	case map[any]any:
		mm[k] = v
		return mm
	}
	return map[string]any{k: v}
}

func mdelete(m any, k string) {
	switch mm := m.(type) {
	case map[string]any:
		delete(mm, k)
	case map[any]any:
		delete(mm, k)
	}
}

// setKeys sets the nested keys of m to v, creating maps where missing.
func setKeys(m any, keys []string, v any) any {
	if len(keys) == 0 {
		return v
	}
	return mset(m, keys[0], setKeys(mget(m, keys[0]), keys[1:], v))
}

func getKeys(m any, keys ...string) any {
	for _, k := range keys {
		m = mget(m, k)
	}
	return m
}

// checkEdit asserts that after decodes to model(decoded before), and that
// every full-line comment of before survives.
func checkEdit(t *testing.T, before, after []byte, model func(docs []any) []any) {
	t.Helper()
	old, err := decodeDocs(before)
	if err != nil {
		t.Fatalf("edit succeeded on input that doesn't decode (%v):\n%s", err, before)
	}
	got, err := decodeDocs(after)
	if err != nil {
		t.Fatalf("edit produced invalid YAML (%v)\nbefore:\n%s\nafter:\n%s", err, before, after)
	}
	want := model(old)
	if d := cmp.Diff(want, got, cmpopts.EquateNaNs(), cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("edit changed more (or less) than intended (-want +got):\n%s\nbefore:\n%q\nafter:\n%q", d, before, after)
	}
	checkComments(t, before, after)
}

// yamlLines splits at YAML line breaks.
var yamlLines = regexp.MustCompile("\r\n|\r|\n|\u0085|\u2028|\u2029")

// checkComments asserts that every full-line comment of before is still in after.
func checkComments(t *testing.T, before, after []byte) {
	t.Helper()
	count := map[string]int{}
	for _, l := range yamlLines.Split(string(after), -1) {
		count[l]++
	}
	for _, l := range yamlLines.Split(string(before), -1) {
		if !strings.HasPrefix(strings.TrimLeft(l, " "), "#") {
			continue
		}
		if count[l] == 0 {
			t.Fatalf("comment line %q lost\nbefore:\n%q\nafter:\n%q", l, before, after)
		}
		count[l]--
	}
}

func onlyChange(t *testing.T, changes []Change, p string) Change {
	t.Helper()
	if len(changes) != 1 || changes[0].Path != p {
		t.Fatalf("want one change to %s, got %d", p, len(changes))
	}
	return changes[0]
}

// checkIdempotent asserts that the operation, run on its own result, reports
// ErrUnchanged.
func checkIdempotent(t *testing.T, files MapFiles, changes []Change, op func(Files) ([]Change, error)) {
	t.Helper()
	next := MapFiles{}
	for p, b := range files {
		next[p] = b
	}
	for _, c := range changes {
		next[c.Path] = c.New
	}
	if again, err := op(next); !errors.Is(err, ErrUnchanged) {
		t.Fatalf("second run: %d changes, err %v; want ErrUnchanged\nfirst result:\n%s", len(again), err, Diff(changes))
	}
}

// ---- kustomize ----

func FuzzSetTagKustomize(f *testing.F) {
	for i, b := range goldenSeeds(f, LayoutKustomize, isKustomization) {
		f.Add(b, uint8(i), uint8(0))
	}
	for i, s := range []string{
		"",
		"# only a comment\n",
		"images: []\n",
		"images:\n",
		"images: ~ # none\nresources: [a]\n",
		"images: [{name: registry.example.com/checkout, newTag: '1.0', digest: 'sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c'}]\n",
		"images:\n- digest: sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c\n  name: checkout\n",
		"images:\n  - name: checkout\n    newTag: |\n      1.0\n",
		"{resources: [a], images: [{name: localhost:5000/checkout}]}",
		"resources:\n- a\nimages:\n- name: checkout\n  newTag: \"1.0\"\n  # trailing\n",
		"resources: [a]\r\nimages:\r\n- name: checkout\r\n  newTag: 1.0\r\n",
		"\ufeffimages:\n- name: checkout\n  newTag: 1.0 # é\n",
	} {
		f.Add([]byte(s), uint8(i), uint8(i))
	}
	for seed := int64(0); seed < 20; seed++ {
		g := newGen(seed)
		f.Add([]byte(g.finish(g.doc(g.kustomizeTree()))), uint8(seed), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, ti, ii uint8) {
		tag, image := pick(fuzzTags, ti), pick(fuzzImages, ii)
		files := MapFiles{"overlay/kustomization.yaml": data}
		loc := Location{Layout: LayoutKustomize, Path: "overlay", Image: image}
		changes, err := SetTag(files, loc, tag)
		if err != nil {
			return
		}
		c := onlyChange(t, changes, "overlay/kustomization.yaml")
		checkEdit(t, data, c.New, func(docs []any) []any {
			if len(docs) == 0 {
				docs = []any{nil}
			}
			images, _ := mget(docs[0], "images").([]any)
			for _, it := range images {
				// An entry names the image by name or by newName.
				if mget(it, "name") == image || mget(it, "newName") == image {
					mset(it, "newTag", tag)
					mdelete(it, "digest")
					return docs
				}
			}
			docs[0] = mset(docs[0], "images", append(images, map[string]any{"name": image, "newTag": tag}))
			return docs
		})
		if got, err := CurrentTag(MapFiles{"overlay/kustomization.yaml": c.New}, loc); err != nil || got != tag {
			t.Fatalf("CurrentTag after SetTag = %q, %v; want %q", got, err, tag)
		}
		checkIdempotent(t, files, changes, func(f Files) ([]Change, error) { return SetTag(f, loc, tag) })
	})
}

// ---- helm ----

var fuzzTagPaths = []string{"image.tag", "tag", "app.image.tag"}

func FuzzSetTagHelm(f *testing.F) {
	for i, b := range goldenSeeds(f, LayoutHelm, isYAML) {
		f.Add(b, uint8(i), uint8(0))
	}
	for i, s := range []string{
		"",
		"---\n",
		"image:\n",
		"image: {}\n",
		"image: {tag: }\n",
		"image: {repository: x}\n",
		"image:\n  tag:\n",
		"image:\n  tag: ~ # later\n",
		"app:\n    image:\n        tag: 'it''s'\n",
		"image:\n  repository: x\n  pullPolicy: >-\n    Always\n\n# end\n",
		"image: &img\n  tag: 1.0\nother: *img\n",
		"image:\n  <<: {tag: 1}\n",
		"a: [1, {b: c}]\nimage:\n  repository: x\n  tag: \"1.0\"",
		"image:\n  tag: 1.0\n...\n",
		"tag: x\n# c\n",
	} {
		f.Add([]byte(s), uint8(i), uint8(i))
	}
	for seed := int64(0); seed < 20; seed++ {
		g := newGen(seed)
		f.Add([]byte(g.finish(g.doc(g.helmTree()))), uint8(seed), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, ti, pi uint8) {
		tag, tagPath := pick(fuzzTags, ti), pick(fuzzTagPaths, pi)
		files := MapFiles{"values.yaml": data}
		loc := Location{Layout: LayoutHelm, Path: "values.yaml", TagPath: tagPath}
		changes, err := SetTag(files, loc, tag)
		if err != nil {
			return
		}
		c := onlyChange(t, changes, "values.yaml")
		checkEdit(t, data, c.New, func(docs []any) []any {
			if len(docs) == 0 {
				docs = []any{nil}
			}
			keys := strings.Split(tagPath, ".")
			// A digest beside the tag is a pin: without a known digest for
			// the new tag it is cleared.
			digestKeys := append(append([]string(nil), keys[:len(keys)-1]...), "digest")
			if d, ok := getKeys(docs[0], digestKeys...).(string); ok && validDigest(d) {
				docs[0] = setKeys(docs[0], digestKeys, "")
			}
			docs[0] = setKeys(docs[0], keys, tag)
			return docs
		})
		checkIdempotent(t, files, changes, func(f Files) ([]Change, error) { return SetTag(f, loc, tag) })
	})
}

// ---- manifests ----

// refPattern is the image reference grammar, written independently of image.go.
var refPattern = regexp.MustCompile(`^((?:[A-Za-z0-9._-]+:[0-9]+/)?[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*)(?::([A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(?:@([A-Za-z0-9+._-]+:[A-Za-z0-9=_-]{32,}))?$`)

var fuzzTemplatePaths = map[string][]string{
	"Deployment": {"spec", "template"}, "StatefulSet": {"spec", "template"},
	"DaemonSet": {"spec", "template"}, "ReplicaSet": {"spec", "template"},
	"Job": {"spec", "template"}, "CronJob": {"spec", "jobTemplate", "spec", "template"},
}

// modelWorkloads calls fn for every pod template (a decoded map) in docs
// that has a container running image, with those containers.
func modelWorkloads(docs []any, image string, fn func(tmpl any, containers []any)) {
	for _, d := range docs {
		kind, _ := mget(d, "kind").(string)
		tp, ok := fuzzTemplatePaths[kind]
		if api, _ := mget(d, "apiVersion").(string); kind == "Rollout" && strings.HasPrefix(api, "argoproj.io/") {
			tp, ok = []string{"spec", "template"}, true
		}
		if !ok {
			continue
		}
		tmpl := getKeys(d, tp...)
		var matching []any
		for _, section := range []string{"containers", "initContainers"} {
			items, _ := getKeys(tmpl, "spec", section).([]any)
			for _, c := range items {
				s, _ := mget(c, "image").(string)
				if m := refPattern.FindStringSubmatch(s); m != nil && m[1] == image {
					matching = append(matching, c)
				}
			}
		}
		if len(matching) > 0 {
			fn(tmpl, matching)
		}
	}
}

// restartTemplatePaths are the kinds a restart rolls, and where their pod
// template is.
var restartTemplatePaths = map[string][]string{
	"Deployment": {"spec", "template"}, "StatefulSet": {"spec", "template"},
	"DaemonSet": {"spec", "template"}, "Rollout": {"spec", "template"},
}

// modelRestart is what a restart of image does to manifests: the pod
// template of every Deployment, StatefulSet and DaemonSet running image
// gets the annotation; every Argo Rollout running it (itself, or through
// the Deployment its workloadRef names, which is then left alone) gets
// spec.restartAt; nothing else changes.
func modelRestart(docs []any, image, value string) []any {
	runs := func(d any, kind string) bool {
		tp, ok := restartTemplatePaths[kind]
		if !ok {
			return false
		}
		found := false
		for _, section := range []string{"containers", "initContainers"} {
			items, _ := getKeys(getKeys(d, tp...), "spec", section).([]any)
			for _, c := range items {
				s, _ := mget(c, "image").(string)
				if m := refPattern.FindStringSubmatch(s); m != nil && m[1] == image {
					found = true
				}
			}
		}
		return found
	}
	str := func(v any) string { s, _ := v.(string); return s }
	isRollout := func(d any) bool {
		return str(mget(d, "kind")) == "Rollout" && strings.HasPrefix(str(mget(d, "apiVersion")), "argoproj.io/")
	}
	viaRollout := map[int]bool{}
	restartAt := map[int]bool{}
	for i, d := range docs {
		if !isRollout(d) {
			continue
		}
		if runs(d, "Rollout") {
			restartAt[i] = true
			continue
		}
		ref := getKeys(d, "spec", "workloadRef")
		if _, ok := ref.(map[string]any); !ok {
			continue
		}
		kind, name := str(mget(ref, "kind")), str(mget(ref, "name"))
		if kind == "" {
			kind = "Deployment"
		}
		ns := str(getKeys(d, "metadata", "namespace"))
		for j, e := range docs {
			ens := str(getKeys(e, "metadata", "namespace"))
			if name != "" && str(mget(e, "kind")) == kind && str(getKeys(e, "metadata", "name")) == name &&
				(ns == "" || ens == "" || ns == ens) && runs(e, kind) {
				restartAt[i], viaRollout[j] = true, true
			}
		}
	}
	for i, d := range docs {
		kind := str(mget(d, "kind"))
		switch {
		case restartAt[i]:
			docs[i] = setKeys(d, []string{"spec", "restartAt"}, value)
		case viaRollout[i] || kind == "Rollout" || !runs(d, kind):
		default:
			docs[i] = setKeys(d, append(append([]string(nil), restartTemplatePaths[kind]...), "metadata", "annotations", RestartAnnotation), value)
		}
	}
	return docs
}

func FuzzSetTagManifest(f *testing.F) {
	for i, b := range goldenSeeds(f, LayoutManifest, isYAML) {
		f.Add(b, uint8(i), uint8(i))
	}
	for i, s := range []string{
		"kind: Deployment\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: checkout}]\n",
		"kind: Job\nspec: {template: {spec: {containers: [{image: 'localhost:5000/checkout:1'}]}}}\n",
		"---\nkind: Pod\nspec:\n  containers:\n  - image: checkout:1\n---\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      initContainers:\n      - image: \"checkout:1\" # c\n",
		"kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - &c\n        image: checkout:1\n      - *c\n",
		"kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - image: >-\n          checkout:1\n",
	} {
		f.Add([]byte(s), uint8(i), uint8(i))
	}
	for seed := int64(0); seed < 20; seed++ {
		g := newGen(seed)
		f.Add([]byte(g.finish(g.doc(g.manifestDoc())+"---\n"+g.doc(g.manifestDoc()))), uint8(seed), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, ti, ii uint8) {
		tag, image := pick(fuzzTags, ti), pick(fuzzImages, ii)
		files := MapFiles{"m.yaml": data}
		loc := Location{Layout: LayoutManifest, Path: "m.yaml", Image: image}
		changes, err := SetTag(files, loc, tag)
		if err != nil {
			return
		}
		c := onlyChange(t, changes, "m.yaml")
		checkEdit(t, data, c.New, func(docs []any) []any {
			modelWorkloads(docs, image, func(_ any, containers []any) {
				for _, c := range containers {
					mset(c, "image", image+":"+tag)
				}
			})
			return docs
		})
		checkIdempotent(t, files, changes, func(f Files) ([]Change, error) { return SetTag(f, loc, tag) })
	})
}

// ---- restart, all layouts ----

func FuzzRestart(f *testing.F) {
	for i, b := range goldenSeeds(f, LayoutHelm, isYAML) {
		f.Add(uint8(0), b, []byte(nil), uint8(i))
	}
	for i, b := range goldenSeeds(f, LayoutManifest, isYAML) {
		f.Add(uint8(1), b, []byte(nil), uint8(i))
	}
	patches := goldenSeeds(f, LayoutKustomize, func(p string) bool { return path.Base(p) == restartPatchFile })
	for i, b := range goldenSeeds(f, LayoutKustomize, isKustomization) {
		f.Add(uint8(2), b, []byte(nil), uint8(i))
		for _, p := range patches {
			f.Add(uint8(2), b, p, uint8(i))
		}
	}
	for _, s := range []string{
		"podAnnotations:\n",
		"podAnnotations: {a: b}\n",
		"podAnnotations: {a: b,\n  c: d, }\n",
		"podAnnotations:\n  a: |\n    x\n\n  # c\nnext: 1\n",
		"podAnnotations: {}\n",
		"",
	} {
		f.Add(uint8(0), []byte(s), []byte(nil), uint8(0))
	}
	for seed := int64(0); seed < 10; seed++ {
		g := newGen(seed)
		f.Add(uint8(0), []byte(g.finish(g.doc(g.helmTree()))), []byte(nil), uint8(0))
		f.Add(uint8(1), []byte(g.finish(g.doc(g.manifestDoc()))), []byte(nil), uint8(0))
		f.Add(uint8(2), []byte(g.finish(g.doc(g.kustomizeTree()))), []byte(nil), uint8(0))
	}
	f.Add(uint8(2), []byte("patches:\n"), []byte("spec: {template: {}}\n"), uint8(0))
	for i, k := range []string{
		"resources: [../base]\n",
		"resources:\n- ../../base\n- other.yaml\npatches:\n- path: shipbot-restart.yaml\n  target: {kind: Deployment}\n",
		"resources: [other.yaml]\npatches: # restarts\n  - path: ./shipbot-restart.yaml\n    target:\n      kind: Deployment\n      labelSelector: app=checkout\n",
		"resources: [../base]\nimages:\n- {name: registry.example.com/web, newName: checkout}\npatches: [{path: shipbot-restart.yaml, target: {kind: Deployment, name: checkout}}]\n",
		"namespace: prod\nresources:\n- ../base\n- ../../base\npatches:\n- path: shipbot-restart-rollout.yaml\n",
	} {
		f.Add(uint8(2), []byte(k), []byte(nil), uint8(i))
		f.Add(uint8(2), []byte(k), []byte(restartPatch), uint8(i))
	}
	f.Add(uint8(2), []byte("patchesStrategicMerge:\n- shipbot-restart.yaml\n"), []byte("spec:\n  template:\n    metadata: {annotations: {shipbot.io/restartedAt: x}}\n"), uint8(0))
	f.Fuzz(func(t *testing.T, layout uint8, data, patch []byte, ii uint8) {
		image := pick(fuzzImages, ii)
		switch layout % 3 {
		case 0:
			files := MapFiles{"values.yaml": data}
			loc := Location{Layout: LayoutHelm, Path: "values.yaml"}
			changes, err := SetRestart(files, loc, fuzzRestartValue)
			if err != nil {
				return
			}
			checkEdit(t, data, onlyChange(t, changes, "values.yaml").New, func(docs []any) []any {
				if len(docs) == 0 {
					docs = []any{nil}
				}
				docs[0] = setKeys(docs[0], []string{"podAnnotations", RestartAnnotation}, fuzzRestartValue)
				return docs
			})
			checkIdempotent(t, files, changes, func(f Files) ([]Change, error) { return SetRestart(f, loc, fuzzRestartValue) })
		case 1:
			files := MapFiles{"m.yaml": data}
			loc := Location{Layout: LayoutManifest, Path: "m.yaml", Image: image}
			changes, err := SetRestart(files, loc, fuzzRestartValue)
			if err != nil {
				return
			}
			checkEdit(t, data, onlyChange(t, changes, "m.yaml").New, func(docs []any) []any {
				return modelRestart(docs, image, fuzzRestartValue)
			})
			checkIdempotent(t, files, changes, func(f Files) ([]Change, error) { return SetRestart(f, loc, fuzzRestartValue) })
		case 2:
			files := fuzzOverlay(data, patch)
			loc := Location{Layout: LayoutKustomize, Path: fuzzOverlayDir, Image: image}
			changes, err := SetRestart(files, loc, fuzzRestartValue)
			if err != nil {
				return
			}
			checkKustomizeRestart(t, loc, files, changes)
			checkIdempotent(t, files, changes, func(f Files) ([]Change, error) { return SetRestart(f, loc, fuzzRestartValue) })
		}
	})
}

// ---- kustomize restart ----

const fuzzOverlayDir = "a/b/o"

// fuzzWorkloads are the resources of the bases a fuzzed overlay may list
// (../base, ../../base) and of its own other.yaml: the workloads a
// restart may target, by kind and name.
const fuzzWorkloads = `apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout}
spec:
  template:
    spec:
      containers:
      - {name: a, image: "registry.example.com/checkout:1"}
      - {name: b, image: "localhost:5000/checkout:1"}
      - {name: c, image: "checkout:1"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers: [{name: web, image: "registry.example.com/web:1"}]
`

var fuzzTargets = map[string]bool{"Deployment/checkout": true, "Deployment/web": true, "StatefulSet/checkout": true, "StatefulSet/web": true, "StatefulSet/db": true, "Rollout/ro": true}

// fuzzOverlay is an overlay at fuzzOverlayDir with kustomization data (and
// shipbot's patch, when not empty), and bases it may list.
func fuzzOverlay(data, patch []byte) MapFiles {
	files := MapFiles{
		fuzzOverlayDir + "/kustomization.yaml": data,
		"a/base/kustomization.yaml":            []byte("resources: [w.yaml]\n"),
		"a/base/w.yaml":                        []byte(fuzzWorkloads),
		"a/b/base/kustomization.yaml":          []byte("resources:\n- w.yaml\n"),
		"a/b/base/w.yaml":                      []byte(strings.ReplaceAll(fuzzWorkloads, "Deployment", "StatefulSet")),
		fuzzOverlayDir + "/other.yaml": []byte("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: ro}\n" +
			"spec: {template: {spec: {containers: [{image: registry.example.com/checkout}]}}}\n---\n" +
			"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec: {template: {spec: {containers: [{image: checkout}]}}}\n"),
	}
	if len(patch) > 0 {
		files[fuzzOverlayDir+"/"+restartPatchFile] = patch
	}
	return files
}

// withoutShipbotPatches removes shipbot's entries from the decoded
// kustomization's patches (and patches itself when nothing is left), and
// returns them.
func withoutShipbotPatches(doc any) (rest any, entries []any) {
	items, _ := mget(doc, "patches").([]any)
	var others []any
	for _, it := range items {
		if p, ok := mget(it, "path").(string); ok && shipbotFile(p) != "" {
			entries = append(entries, it)
			continue
		}
		others = append(others, it)
	}
	if len(others) == 0 {
		mdelete(doc, "patches")
	} else {
		doc = mset(doc, "patches", others)
	}
	return doc, entries
}

// checkKustomizeRestart asserts what a kustomize restart may change: the
// kustomization only in shipbot's patches entries, each an exact target
// (kind and name, nothing else) of a workload the overlay builds from,
// with the right patch file for its kind; shipbot's patch files only in the
// restart value (or created with it); and that a second run changes nothing.
func checkKustomizeRestart(t *testing.T, loc Location, files MapFiles, changes []Change) {
	t.Helper()
	kpath := fuzzOverlayDir + "/kustomization.yaml"
	data := files[kpath]
	next := MapFiles{}
	for p, b := range files {
		next[p] = b
	}
	for _, c := range changes {
		next[c.Path] = c.New
		switch {
		case c.Path == kpath:
		case path.Dir(c.Path) == fuzzOverlayDir && shipbotFile(path.Base(c.Path)) != "":
			keys := patchOfFile(path.Base(c.Path)).keys
			if c.Old == nil {
				docs, err := decodeDocs(c.New)
				if err != nil || len(docs) != 1 || getKeys(docs[0], keys...) != fuzzRestartValue {
					t.Fatalf("bad new patch file %s (%v):\n%s", c.Path, err, c.New)
				}
				continue
			}
			checkEdit(t, c.Old, c.New, func(docs []any) []any {
				docs[0] = setKeys(docs[0], keys, fuzzRestartValue)
				return docs
			})
		default:
			t.Fatalf("unexpected change to %s", c.Path)
		}
	}
	// The kustomization: everything but shipbot's entries as it was.
	old, err := decodeDocs(data)
	if err != nil {
		t.Fatalf("edit succeeded on input that doesn't decode (%v)", err)
	}
	got, err := decodeDocs(next[kpath])
	if err != nil {
		t.Fatalf("edit produced invalid YAML (%v):\n%s", err, next[kpath])
	}
	if len(old) == 0 {
		old = []any{map[string]any{}}
	}
	oldRest, oldEntries := withoutShipbotPatches(old[0])
	gotRest, entries := withoutShipbotPatches(got[0])
	if d := cmp.Diff(oldRest, gotRest, cmpopts.EquateNaNs(), cmpopts.EquateEmpty()); d != "" {
		t.Fatalf("restart changed the kustomization outside shipbot's patches (-want +got):\n%s\nbefore:\n%q\nafter:\n%q", d, data, next[kpath])
	}
	checkComments(t, data, next[kpath])
	if len(entries) == 0 {
		t.Fatalf("no shipbot patches entry after a restart:\n%s", next[kpath])
	}
	// Entries that were there before and are left as they were (another
	// app's, an old blanket entry that reaches other workloads) are fine;
	// every other one is an exact target with the patch file of its kind.
	for _, e := range entries {
		if slices.ContainsFunc(oldEntries, func(o any) bool { return cmp.Equal(o, e) }) {
			continue
		}
		target, ok := mget(e, "target").(map[string]any)
		kind, _ := mget(target, "kind").(string)
		name, _ := mget(target, "name").(string)
		if !ok || len(target) != 2 || !fuzzTargets[kind+"/"+name] {
			t.Fatalf("patches entry %v is not an exact target of a workload:\n%s", e, next[kpath])
		}
		file := shipbotFile(mget(e, "path").(string))
		if rollout := strings.HasPrefix(file, "shipbot-restart-rollout"); file == "" || rollout != (kind == "Rollout") {
			t.Fatalf("patches entry %v applies the wrong patch file for a %s", e, kind)
		}
	}
	checkIdempotent(t, files, changes, func(f Files) ([]Change, error) { return SetRestart(f, loc, fuzzRestartValue) })
}
