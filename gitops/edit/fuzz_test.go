package edit

import (
	"bytes"
	"errors"
	"io"
	"path"
	"path/filepath"
	"regexp"
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
				if mget(it, "name") == image {
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
			docs[0] = setKeys(docs[0], strings.Split(tagPath, "."), tag)
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
				for i, d := range docs {
					kind, _ := mget(d, "kind").(string)
					tp := fuzzTemplatePaths[kind]
					modelWorkloads([]any{d}, image, func(any, []any) {
						keys := append(append([]string(nil), tp...), "metadata", "annotations", RestartAnnotation)
						docs[i] = setKeys(d, keys, fuzzRestartValue)
					})
				}
				return docs
			})
			checkIdempotent(t, files, changes, func(f Files) ([]Change, error) { return SetRestart(f, loc, fuzzRestartValue) })
		case 2:
			files := MapFiles{"o/kustomization.yaml": data}
			if len(patch) > 0 {
				files["o/"+restartPatchFile] = patch
			}
			loc := Location{Layout: LayoutKustomize, Path: "o", Image: image}
			changes, err := SetRestart(files, loc, fuzzRestartValue)
			if err != nil {
				return
			}
			for _, c := range changes {
				switch c.Path {
				case "o/kustomization.yaml":
					checkEdit(t, data, c.New, func(docs []any) []any {
						if len(docs) == 0 {
							docs = []any{nil}
						}
						items, _ := mget(docs[0], "patches").([]any)
						docs[0] = mset(docs[0], "patches", append(items, map[string]any{
							"path": restartPatchFile, "target": map[string]any{"kind": "Deployment"},
						}))
						return docs
					})
				case "o/" + restartPatchFile:
					if len(patch) == 0 {
						if c.Old != nil {
							t.Fatal("new patch file has Old content")
						}
						docs, err := decodeDocs(c.New)
						if err != nil || len(docs) != 1 || getKeys(docs[0], restartPatchKeys...) != fuzzRestartValue {
							t.Fatalf("bad new patch file (%v):\n%s", err, c.New)
						}
						continue
					}
					checkEdit(t, patch, c.New, func(docs []any) []any {
						docs[0] = setKeys(docs[0], restartPatchKeys, fuzzRestartValue)
						return docs
					})
				default:
					t.Fatalf("unexpected change to %s", c.Path)
				}
			}
			checkIdempotent(t, files, changes, func(f Files) ([]Change, error) { return SetRestart(f, loc, fuzzRestartValue) })
		}
	})
}
