package edit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// automationCase is testdata/automation/<name>/case.yaml: a rollback to
// tag on the before/ tree, with the automation held (after-pin/), then
// released (after-unpin/: the rollback's tree, byte for byte).
type automationCase struct {
	name, dir string

	Layout  Layout `yaml:"layout"`
	Path    string `yaml:"path"`
	Image   string `yaml:"image"`
	TagPath string `yaml:"tagPath"`
	ArgoApp string `yaml:"argoApp"`
	Tag     string `yaml:"tag"`
	// Held is what the pin must hold: "TOOL PATH REF" each.
	Held     []string `yaml:"held"`
	Warnings []string `yaml:"warnings"`
}

func (c automationCase) loc() Location {
	return Location{Layout: c.Layout, Path: c.Path, Image: c.Image, TagPath: c.TagPath}
}

func automationCases(t *testing.T) []automationCase {
	t.Helper()
	specs, err := filepath.Glob("testdata/automation/*/case.yaml")
	if err != nil || len(specs) == 0 {
		t.Fatalf("no automation cases: %v", err)
	}
	var out []automationCase
	for _, spec := range specs {
		b, err := os.ReadFile(spec)
		if err != nil {
			t.Fatal(err)
		}
		c := automationCase{dir: filepath.Dir(spec), name: filepath.Base(filepath.Dir(spec))}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		out = append(out, c)
	}
	return out
}

func heldStrings(held []Held) []string {
	var out []string
	for _, h := range held {
		out = append(out, h.Tool+" "+h.Path+" "+h.Ref)
	}
	return out
}

// golden compares a tree with dir (rewritten with -update).
func goldenTree(t *testing.T, dir string, got MapFiles) {
	t.Helper()
	if *update {
		writeTree(t, dir, got)
	}
	want := readTree(t, dir)
	if d := cmp.Diff(asStrings(want), asStrings(got)); d != "" {
		t.Errorf("tree differs from %s (-want +got):\n%s", dir, d)
	}
}

func TestAutomationGolden(t *testing.T) {
	for _, c := range automationCases(t) {
		t.Run(c.name, func(t *testing.T) {
			before := readTree(t, filepath.Join(c.dir, "before"))
			img, err := SetImage(before, c.loc(), SetImageOptions{Tag: c.Tag})
			if err != nil {
				t.Fatal(err)
			}
			rolledBack := applyChanges(t, before, img.Changes)

			hold, err := HoldAutomation(before, c.loc(), HoldOptions{Changes: img.Changes, ArgoApp: c.ArgoApp})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.Held, heldStrings(hold.Held)); d != "" {
				t.Errorf("held (-want +got):\n%s", d)
			}
			if d := cmp.Diff(c.Warnings, hold.Warnings); d != "" {
				t.Errorf("warnings (-want +got):\n%s", d)
			}
			pinned := applyChanges(t, before, MergeChanges(img.Changes, hold.Changes))
			goldenTree(t, filepath.Join(c.dir, "after-pin"), pinned)
			// The hold changes no value but the held ones: the tag reads
			// what the rollback wrote.
			if tag, err := CurrentTag(pinned, c.loc()); err != nil || tag != c.Tag {
				t.Errorf("after the pin the tag reads %q, %v", tag, err)
			}
			// Holding again (a second rollback) changes nothing more and
			// keeps what is held.
			again, err := HoldAutomation(pinned, c.loc(), HoldOptions{ArgoApp: c.ArgoApp, Held: hold.Held})
			if err != nil || len(again.Changes) != 0 || cmp.Diff(hold.Held, again.Held) != "" {
				t.Errorf("hold again: %d changes, held %v, %v", len(again.Changes), again.Held, err)
			}

			rel, err := ReleaseAutomation(pinned, hold.Held)
			if err != nil {
				t.Fatal(err)
			}
			if len(rel.Warnings) > 0 || cmp.Diff(hold.Held, rel.Held) != "" {
				t.Errorf("release: restored %v, warnings %q", rel.Held, rel.Warnings)
			}
			unpinned := applyChanges(t, pinned, rel.Changes)
			goldenTree(t, filepath.Join(c.dir, "after-unpin"), unpinned)
			// The unpin restores the automation byte for byte: the tree is
			// the rollback's.
			for p, b := range rolledBack {
				if string(unpinned[p]) != string(b) {
					t.Errorf("%s after the unpin is not the rollback's bytes:\n%s\nwant:\n%s", p, unpinned[p], b)
				}
			}
			if len(unpinned) != len(rolledBack) {
				t.Errorf("the unpin left %d files, the rollback %d", len(unpinned), len(rolledBack))
			}
			// Only the files the pin changed changed.
			for p := range before {
				changed := string(pinned[p]) != string(rolledBack[p])
				held := false
				for _, h := range hold.Held {
					held = held || h.Path == p
				}
				if changed && !held {
					t.Errorf("the pin changed %s, which holds nothing", p)
				}
			}
		})
	}
}

func TestParseImageList(t *testing.T) {
	got := parseImageList("checkout=registry.example.com:5000/shop/checkout:~1.4, nginx ,envoy=envoyproxy/envoy")
	want := []iuEntry{{"checkout", "registry.example.com:5000/shop/checkout"}, {"", "nginx"}, {"envoy", "envoyproxy/envoy"}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(iuEntry{})); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// An image-list entry without an alias, and an ImageUpdater resource (v1),
// are not held: the hold says so instead.
func TestAutomationNotHeldIsSaid(t *testing.T) {
	files := MapFiles{
		"apps/checkout/prod/kustomization.yaml": []byte("images:\n  - name: registry.example.com/checkout\n    newTag: 1.4.2\n"),
		"argocd/checkout-prod.yaml": []byte("apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: checkout-prod\n  annotations:\n" +
			"    argocd-image-updater.argoproj.io/image-list: registry.example.com/checkout\nspec:\n  source:\n    path: apps/checkout/prod\n"),
		"argocd/updater.yaml": []byte("apiVersion: argocd-image-updater.argoproj.io/v1alpha1\nkind: ImageUpdater\nmetadata:\n  name: shop\nspec:\n  applicationRefs:\n" +
			"    - namePattern: \"checkout-*\"\n      images:\n        - alias: checkout\n          imageName: registry.example.com/checkout:1.x\n"),
	}
	loc := Location{Layout: LayoutKustomize, Path: "apps/checkout/prod", Image: "registry.example.com/checkout"}
	img, err := SetImage(files, loc, SetImageOptions{Tag: "1.4.1"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := HoldAutomation(files, loc, HoldOptions{Changes: img.Changes, ArgoApp: "checkout-prod"})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Changes) != 0 || len(e.Held) != 0 || len(e.Warnings) != 2 ||
		!strings.Contains(e.Warnings[0], "its image-list entry registry.example.com/checkout has no alias") ||
		!strings.Contains(e.Warnings[1], `the ImageUpdater shop (argocd/updater.yaml, applicationRefs namePattern "checkout-*")`) {
		t.Errorf("hold: %d changes, held %v, warnings %q", len(e.Changes), e.Held, e.Warnings)
	}
}

// A held marker or annotation changed by hand is not restored, and said.
func TestReleaseMissingHeldIsSaid(t *testing.T) {
	files := MapFiles{"v.yaml": []byte("tag: 1.4.1 # {\"$imagepolicy\": \"flux-system:checkout:tag\"}\n")}
	e, err := ReleaseAutomation(files, []Held{{Tool: ToolFlux, Path: "v.yaml", Ref: "flux-system:checkout"}})
	if err != nil || len(e.Changes) != 0 || len(e.Warnings) != 1 || !strings.Contains(e.Warnings[0], "no held marker found") {
		t.Errorf("release: %d changes, warnings %q, %v", len(e.Changes), e.Warnings, err)
	}
}

func TestCommentStart(t *testing.T) {
	for line, want := range map[string]int{
		`tag: 1.4.2 # {"$imagepolicy": "a:b"}`:     11,
		`tag: "a # b" # c`:                         13,
		`tag: 'it''s # x' # c`:                     17,
		`url: http://x#y`:                          -1,
		`# {"$imagepolicy": "a:b"}`:                0,
		`image: "reg/app:1" #{"$imagepolicy":"a"}`: 19,
	} {
		if got := commentStart(line); got != want {
			t.Errorf("commentStart(%q) = %d, want %d", line, got, want)
		}
	}
}

// FuzzAutomationRoundTrip: whatever the file, a hold never makes invalid
// YAML or changes a value other than the held annotation, and the release
// gives the bytes back.
func FuzzAutomationRoundTrip(f *testing.F) {
	for _, c := range []string{
		"images:\n  - name: registry.example.com/checkout # {\"$imagepolicy\": \"ns:checkout:name\"}\n    newTag: 1.4.2 # {\"$imagepolicy\": \"ns:checkout:tag\"}\n",
		"image:\n  tag: \"1.4.2\" #{\"$imagepolicy\":\"ns:a\"} # {\"$imagepolicy\": \"ns:b\"}\n",
		"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: a\n  annotations: {argocd-image-updater.argoproj.io/image-list: \"c=registry.example.com/checkout\", argocd-image-updater.argoproj.io/c.ignore-tags: x}\nspec:\n  source:\n    path: apps/checkout\n",
		// A null ignore-tags in a flow mapping: its hold could not be undone exactly, so it is refused.
		"kind: Application\nmetadata:\n  name: a\n  annotations: {argocd-image-updater.argoproj.io/image-list: \"c=registry.example.com/checkout\",argocd-image-updater.argoproj.io/c.ignore-tags}",
		"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: a\n  annotations:\n    argocd-image-updater.argoproj.io/image-list: c=registry.example.com/checkout\n    argocd-image-updater.argoproj.io/c.ignore-tags: \"a, 'b'\" # keep\nspec:\n  source:\n    path: apps/checkout\n",
	} {
		f.Add(c)
	}
	loc := Location{Layout: LayoutManifest, Path: "apps/checkout", Image: "registry.example.com/checkout"}
	f.Fuzz(func(t *testing.T, src string) {
		if _, err := decodeValues([]byte(src)); err != nil {
			return
		}
		files := MapFiles{"apps/checkout/app.yaml": []byte(src)}
		// The image edit: a file whose every line changed (so every marker is the app's).
		img := []Change{{Path: "apps/checkout/app.yaml", Old: []byte("\x00"), New: []byte(src)}}
		hold, err := HoldAutomation(files, loc, HoldOptions{Changes: img, ArgoApp: "a"})
		if err != nil {
			return // refused: nothing written
		}
		pinned, err := applied(files, hold.Changes)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range hold.Changes {
			if _, err := decodeValues(c.New); err != nil {
				t.Fatalf("hold made invalid YAML of %q: %v\n%s", src, err, c.New)
			}
		}
		rel, err := ReleaseAutomation(pinned, hold.Held)
		if err != nil {
			t.Fatalf("release of %q: %v", src, err)
		}
		back, err := applied(pinned, rel.Changes)
		if err != nil {
			t.Fatal(err)
		}
		if string(back["apps/checkout/app.yaml"]) != src {
			t.Fatalf("hold and release of %q give %q (held %v, pinned %q)", src, back["apps/checkout/app.yaml"], hold.Held, pinned["apps/checkout/app.yaml"])
		}
	})
}
