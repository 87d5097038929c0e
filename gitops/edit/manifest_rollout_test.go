package edit

import (
	"errors"
	"strings"
	"testing"
)

// Argo Rollouts in the raw-manifest layout: a Rollout with a pod template is
// edited like a Deployment; one with a workloadRef through the workload it
// references, which must be among the app's files.
func TestManifestRolloutTag(t *testing.T) {
	const image = "registry.example.com/search"
	deploy := func(ns, img string) string {
		s := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: search\n"
		if ns != "" {
			s += "  namespace: " + ns + "\n"
		}
		return s + "spec:\n  template:\n    spec:\n      containers:\n      - name: search\n        image: " + img + "\n"
	}
	rolloutRef := func(ns string) string {
		s := "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: search\n"
		if ns != "" {
			s += "  namespace: " + ns + "\n"
		}
		return s + "spec:\n  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: search}\n"
	}
	rolloutTmpl := func(apiVersion string) string {
		return "apiVersion: " + apiVersion + "\nkind: Rollout\nmetadata: {name: search}\nspec:\n  template:\n    spec:\n      containers: [{name: search, image: 'registry.example.com/search:5.0.0'}]\n"
	}
	for _, tc := range []struct {
		name    string
		files   MapFiles
		from    string // CurrentTag before
		changed []string
		errText string // both CurrentTag and SetTag fail with it (ErrNotFound)
	}{
		{name: "template", files: MapFiles{"a/r.yaml": []byte(rolloutTmpl("argoproj.io/v1alpha1"))},
			from: "5.0.0", changed: []string{"a/r.yaml"}},
		{name: "not an Argo Rollout", files: MapFiles{"a/r.yaml": []byte(rolloutTmpl("example.com/v1"))},
			errText: `no container with image "registry.example.com/search" in a`},
		{name: "workloadRef same file", files: MapFiles{"a/r.yaml": []byte(rolloutRef("") + "---\n" + deploy("", image+":5.0.0"))},
			from: "5.0.0", changed: []string{"a/r.yaml"}},
		{name: "workloadRef other file, namespaces match", files: MapFiles{
			"a/r.yaml": []byte(rolloutRef("prod")), "a/d.yaml": []byte(deploy("prod", image+":5.0.0"))},
			from: "5.0.0", changed: []string{"a/d.yaml"}},
		{name: "workloadRef missing", files: MapFiles{"a/r.yaml": []byte(rolloutRef(""))},
			errText: "Rollout/search in a/r.yaml runs the pods of Deployment/search (its spec.workloadRef), which is not in a: the image is written in that workload's manifest, outside the app's files"},
		{name: "workloadRef to another namespace", files: MapFiles{
			"a/r.yaml": []byte(rolloutRef("prod")), "a/d.yaml": []byte(deploy("staging", image+":5.0.0"))},
			errText: "Rollout/search in a/r.yaml runs the pods of Deployment/search (its spec.workloadRef), which is not in a"},
		{name: "workloadRef to a Deployment of another image", files: MapFiles{
			"a/r.yaml": []byte(rolloutRef("")), "a/d.yaml": []byte(deploy("", "registry.example.com/other:1")),
			"a/x.yaml": []byte(strings.Replace(deploy("", image+":5.0.0"), "name: search", "name: x", 1))},
			from: "5.0.0", changed: []string{"a/x.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc := Location{Layout: LayoutManifest, Path: "a", Image: image}
			from, err := CurrentTag(tc.files, loc)
			changes, serr := SetTag(tc.files, loc, "5.1.0")
			if tc.errText != "" {
				for _, e := range []error{err, serr} {
					if e == nil || !strings.HasPrefix(e.Error(), tc.errText) || !errors.Is(e, ErrNotFound) {
						t.Errorf("got %v; want ErrNotFound %q", e, tc.errText)
					}
				}
				return
			}
			if err != nil || from != tc.from {
				t.Fatalf("CurrentTag = %q, %v; want %q", from, err, tc.from)
			}
			if serr != nil {
				t.Fatalf("SetTag: %v", serr)
			}
			var got []string
			for _, c := range changes {
				got = append(got, c.Path)
				if strings.Contains(string(c.New), "5.0.0") || !strings.Contains(string(c.New), image+":5.1.0") {
					t.Errorf("%s after the edit:\n%s", c.Path, c.New)
				}
				if strings.Contains(string(c.Old), "workloadRef") && !strings.Contains(string(c.Old), "kind: Deployment\nmetadata") {
					t.Errorf("the Rollout itself was edited: %s", c.Path)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.changed, ",") {
				t.Errorf("changed %v; want %v", got, tc.changed)
			}
			if v, err := CurrentTag(withChanges(tc.files, changes), loc); err != nil || v != "5.1.0" {
				t.Errorf("CurrentTag after = %q, %v", v, err)
			}
		})
	}
}
