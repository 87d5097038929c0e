package edit

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const appImage = "registry.example.com/shop/orders"

func appLoc(p string) Location {
	return Location{Layout: LayoutApplication, Path: p, Image: appImage}
}

// application wraps spec in an Application document.
func application(spec string) []byte {
	return []byte("apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: orders\nspec:\n" + spec)
}

func TestApplicationCurrentTag(t *testing.T) {
	for _, tc := range []struct {
		name, file, tagPath, want, err string
	}{{
		name: "sources win over source",
		file: string(application(`  source:
    helm: {parameters: [{name: image.tag, value: "0.0.1"}]}
  sources:
    - helm: {parameters: [{name: image.tag, value: "2.0.0"}]}
`)),
		want: "2.0.0",
	}, {
		name: "a parameter wins over valuesObject",
		file: string(application(`  source:
    helm:
      valuesObject: {image: {tag: 1.0.0}}
      parameters: [{name: image.tag, value: "1.1.0"}]
`)),
		want: "1.1.0",
	}, {
		name: "the source that names the image is chosen",
		file: string(application(`  sources:
    - helm: {parameters: [{name: image.repository, value: registry.example.com/shop/other}, {name: image.tag, value: "9.9.9"}]}
    - helm: {parameters: [{name: image.repository, value: registry.example.com/shop/orders}, {name: image.tag, value: "2.0.0"}]}
`)),
		want: "2.0.0",
	}, {
		name: "two sources carry the tag and none names the image",
		file: string(application(`  sources:
    - helm: {parameters: [{name: image.tag, value: "9.9.9"}]}
    - helm: {parameters: [{name: image.tag, value: "2.0.0"}]}
`)),
		err: "has 2 fields that may hold the tag",
	}, {
		name: "kustomize image matched by its old name",
		file: string(application(`  source:
    kustomize: {images: ["registry.example.com/shop/orders=mirror.example.com/orders:3.1.0"]}
`)),
		want: "3.1.0",
	}, {
		name: "a custom tagPath names the parameter",
		file: string(application(`  source:
    helm: {parameters: [{name: image.tag, value: "1"}, {name: orders.image.tag, value: "4.0.0"}]}
`)),
		tagPath: "orders.image.tag",
		want:    "4.0.0",
	}, {
		name: "empty parameter: the chart's default",
		file: string(application("  source:\n    helm:\n      parameters:\n        - name: image.tag\n          value: \"\"\n")),
		err:  "image.tag is empty at a.yaml (Application orders, spec.source.helm.parameters[0].value): the chart's default tag applies",
	}, {
		name: "untagged kustomize image",
		file: string(application("  source:\n    kustomize:\n      images: [registry.example.com/shop/orders]\n")),
		err:  "has no tag",
	}, {
		name: "no Application",
		file: "apiVersion: apps/v1\nkind: Deployment\n",
		err:  "a.yaml holds no Argo CD Application (kind: Application)",
	}, {
		name: "a parameter listed twice",
		file: string(application("  source:\n    helm: {parameters: [{name: image.tag, value: a}, {name: image.tag, value: b}]}\n")),
		err:  "listed twice",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			loc := appLoc("a.yaml")
			loc.TagPath = tc.tagPath
			got, err := CurrentTag(MapFiles{"a.yaml": []byte(tc.file)}, loc)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("CurrentTag = %q, %v; want error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CurrentTag = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestApplicationSetTag(t *testing.T) {
	for _, tc := range []struct {
		name, before, tag, after string
	}{{
		name:   "an empty parameter is written",
		before: "  source:\n    helm:\n      parameters:\n        - name: image.tag\n          value: \"\"\n",
		tag:    "1.2.3",
		after:  "  source:\n    helm:\n      parameters:\n        - name: image.tag\n          value: \"1.2.3\"\n",
	}, {
		name:   "a tag YAML 1.1 reads as a bool is quoted",
		before: "  source:\n    helm:\n      parameters:\n        - name: image.tag\n          value: v1 # c\n",
		tag:    "on",
		after:  "  source:\n    helm:\n      parameters:\n        - name: image.tag\n          value: \"on\" # c\n",
	}, {
		name:   "single quotes stay",
		before: "  source:\n    helm:\n      valuesObject:\n        image: {tag: '1.0'}\n",
		tag:    "1.1",
		after:  "  source:\n    helm:\n      valuesObject:\n        image: {tag: '1.1'}\n",
	}, {
		name:   "an untagged kustomize image gets its tag",
		before: "  source:\n    kustomize:\n      images:\n      - registry.example.com/shop/orders\n",
		tag:    "2.0.0",
		after:  "  source:\n    kustomize:\n      images:\n      - registry.example.com/shop/orders:2.0.0\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			files := MapFiles{"a.yaml": application(tc.before)}
			changes, err := SetTag(files, appLoc("a.yaml"), tc.tag)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(string(application(tc.after)), string(onlyChange(t, changes, "a.yaml").New)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestApplicationDigestDroppedIsReported(t *testing.T) {
	old := "sha256:" + strings.Repeat("1", 64)
	files := MapFiles{"a.yaml": application("  source:\n    kustomize:\n      images: [\"registry.example.com/shop/orders:1.0.0@" + old + "\"]\n")}
	e, err := SetImage(files, appLoc("a.yaml"), SetImageOptions{Tag: "1.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Pins) != 1 || !e.Pins[0].Dropped() || e.Pins[0].Old != old {
		t.Fatalf("pins = %+v; want the old pin reported dropped", e.Pins)
	}
	if got := string(e.Changes[0].New); !strings.Contains(got, `["registry.example.com/shop/orders:1.1.0"]`) {
		t.Errorf("after:\n%s", got)
	}
}

func TestApplicationRestartRefused(t *testing.T) {
	files := MapFiles{"a.yaml": application("  source:\n    helm: {parameters: [{name: image.tag, value: \"1\"}]}\n")}
	if v, err := CurrentRestart(files, appLoc("a.yaml")); v != "" || err != nil {
		t.Errorf("CurrentRestart = %q, %v; want none", v, err)
	}
	_, err := SetRestart(files, appLoc("a.yaml"), "2024-05-01T10:00:00Z")
	if !errors.Is(err, ErrNoPodTemplate) || !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "configure its environment with the layout") {
		t.Fatalf("SetRestart: %v; want ErrNoPodTemplate saying what to configure", err)
	}
	if in, err := Inputs(files, appLoc("a.yaml")); err != nil || !cmp.Equal(in, []string{"a.yaml"}) {
		t.Errorf("Inputs = %v, %v", in, err)
	}
}

func TestApplicationLocationNeedsImage(t *testing.T) {
	files := MapFiles{"a.yaml": application("  source: {}\n")}
	if _, err := CurrentTag(files, Location{Layout: LayoutApplication, Path: "a.yaml"}); err == nil || !strings.Contains(err.Error(), "image name") {
		t.Fatalf("CurrentTag without image: %v", err)
	}
	if _, err := CurrentTag(MapFiles{}, appLoc("missing.yaml")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: %v; want ErrNotFound", err)
	}
}

// leafDiffs lists the paths where the decoded values a and b differ, with
// b's value there.
func leafDiffs(a, b any, p string, out map[string]any) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok && len(av) == len(bv) {
			for k, x := range av {
				y, ok := bv[k]
				if !ok {
					out[p+"/"+k+"(missing)"] = nil
					continue
				}
				leafDiffs(x, y, p+"/"+k, out)
			}
			return
		}
	case []any:
		if bv, ok := b.([]any); ok && len(av) == len(bv) {
			for i := range av {
				leafDiffs(av[i], bv[i], fmt.Sprintf("%s[%d]", p, i), out)
			}
			return
		}
	}
	if !cmp.Equal(a, b, cmpopts.EquateNaNs()) {
		out[p] = b
	}
}

// FuzzSetTagApplication: a successful edit changes exactly one scalar of
// the decoded file, to the tag or to an image reference carrying it, and
// keeps every comment line.
func FuzzSetTagApplication(f *testing.F) {
	for i, b := range goldenSeeds(f, LayoutApplication, isYAML) {
		f.Add(b, uint8(i), uint8(i))
	}
	f.Add(application("  sources:\n  - helm: {parameters: [{name: image.tag, value: 1}]}\n  - kustomize: {images: [checkout]}\n"), uint8(0), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, ti, ii uint8) {
		tag, image := pick(fuzzTags, ti), pick(fuzzImages, ii)
		if ii%2 == 1 { // the images the golden seeds name
			image = "registry.example.com/shop/" + pick([]string{"checkout", "payments", "search", "web", "orders"}, ii/2)
		}
		files := MapFiles{"app.yaml": data}
		loc := Location{Layout: LayoutApplication, Path: "app.yaml", Image: image}
		changes, err := SetTag(files, loc, tag)
		if err != nil {
			return
		}
		c := onlyChange(t, changes, "app.yaml")
		before, err := decodeDocs(data)
		if err != nil {
			t.Fatalf("edit succeeded on input that doesn't decode: %v", err)
		}
		after, err := decodeDocs(c.New)
		if err != nil {
			t.Fatalf("edit produced invalid YAML (%v):\n%s", err, c.New)
		}
		diffs := map[string]any{}
		leafDiffs(before, after, "", diffs)
		if len(diffs) != 1 {
			t.Fatalf("edit changed %d fields, want 1: %v\nbefore:\n%s\nafter:\n%s", len(diffs), diffs, data, c.New)
		}
		for p, v := range diffs {
			s, ok := v.(string)
			if !ok || !(s == tag || strings.Contains(s, ":"+tag)) {
				t.Fatalf("%s became %#v, not the tag %q (or an image carrying it)", p, v, tag)
			}
		}
		checkComments(t, data, c.New)
		checkIdempotent(t, files, changes, func(f Files) ([]Change, error) { return SetTag(f, loc, tag) })
	})
}
