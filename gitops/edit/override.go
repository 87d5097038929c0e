package edit

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"

	"gopkg.in/yaml.v3"
)

// Argo CD reads parameter overrides from files in an Application's source
// directory — .argocd-source.yaml, and .argocd-source-<app>.yaml for one
// Application — and applies them over the files: helm.parameters are passed
// to Helm last, kustomize.images are set with `kustomize edit set image`.
// Argo CD Image Updater writes its updates there. Where such a file sets
// the app's tag, it is the tag Argo CD deploys: it is read there, and a tag
// change is written there (an edit of the values or the overlay underneath
// would change nothing that is deployed).

// overrideFileRE matches the override files Argo CD reads.
var overrideFileRE = regexp.MustCompile(`^\.argocd-source(-[^/]+)?\.ya?ml$`)

// overrideFiles returns the override files of dir, the shared one first.
func overrideFiles(f Files, dir string) ([]string, error) {
	names, err := f.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if overrideFileRE.MatchString(n) {
			out = append(out, path.Join(dir, n))
		}
	}
	return out, nil
}

// argoOverride returns the override file of dir that sets the app's tag
// (a helm parameter named TagPath, a kustomize images entry naming the
// image), and the field; found is false when none does. Two app-specific
// files that both set it can't be told apart without the Application's
// name: refused.
func argoOverride(f Files, dir string, loc Location) (y *yfile, t appTarget, found bool, err error) {
	files, err := overrideFiles(f, dir)
	if err != nil || len(files) == 0 {
		return nil, appTarget{}, false, err
	}
	vp, err := parseValuesPath(loc.TagPath)
	if err != nil {
		return nil, appTarget{}, false, err
	}
	var hits []string
	for _, p := range files {
		b, err := f.ReadFile(p)
		if err != nil {
			return nil, appTarget{}, false, err
		}
		oy, err := parseYAML(p, b)
		if err != nil {
			return nil, appTarget{}, false, err
		}
		root := oy.root(0)
		if root == nil || root.Kind != yaml.MappingNode {
			continue
		}
		ot, ok, err := sourceTarget(oy, root, nil, loc, vp)
		if err != nil {
			return nil, appTarget{}, false, err
		}
		if !ok {
			continue
		}
		hits = append(hits, p)
		// An app-specific file wins over the shared one.
		if y == nil || path.Base(p) != ".argocd-source.yaml" {
			y, t = oy, ot
		}
	}
	if len(hits) > 2 || (len(hits) == 2 && path.Base(hits[0]) != ".argocd-source.yaml") {
		return nil, appTarget{}, false, fmt.Errorf("the Argo CD override files %v all set the tag of %s; shipbot can't tell which Application each is for: keep one", hits, loc.Image)
	}
	return y, t, y != nil, nil
}

// overrideTag returns the tag an override file of dir sets; ok is false
// when none sets it.
func overrideTag(f Files, dir string, loc Location) (tag string, ok bool, err error) {
	y, t, found, err := argoOverride(f, dir, loc)
	if err != nil || !found {
		return "", false, err
	}
	tag, err = targetTag(y, t, loc)
	return tag, true, err
}

// setOverride writes the tag into the override file of dir that sets it;
// ok is false when none does.
func setOverride(f Files, dir string, loc Location, opts SetImageOptions) (e ImageEdit, ok bool, err error) {
	y, t, found, err := argoOverride(f, dir, loc)
	if err != nil || !found {
		return ImageEdit{}, false, err
	}
	e, err = setTarget(y, t, opts)
	return e, true, err
}
