package edit

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"gopkg.in/yaml.v3"
)

// kustomizationNames are the file names kustomize accepts, in its order.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// restartPatchFile is the strategic-merge patch shipbot owns in an overlay.
const restartPatchFile = "shipbot-restart.yaml"

// restartPatch is the content of a new restart patch; %s is the quoted value.
const restartPatch = "# Managed by shipbot: bumping this annotation restarts the pods. Edit with `/ship restart`.\n" +
	`apiVersion: apps/v1
kind: Deployment
metadata:
  name: shipbot-restart # kustomize applies this patch to every Deployment of the overlay (see target)
spec:
  template:
    metadata:
      annotations:
        ` + RestartAnnotation + `: %s
`

// restartPatchKeys is where the annotation sits in the restart patch.
var restartPatchKeys = []string{"spec", "template", "metadata", "annotations", RestartAnnotation}

// findKustomization returns the path and content of the overlay's
// kustomization file.
func findKustomization(f Files, dir string) (string, []byte, error) {
	var found []string
	var data []byte
	for _, name := range kustomizationNames {
		p := path.Join(dir, name)
		b, err := f.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		if found = append(found, p); len(found) == 1 {
			data = b
		}
	}
	switch len(found) {
	case 0:
		return "", nil, notFoundf("no kustomization.yaml in %s", dir)
	case 1:
		return found[0], data, nil
	}
	return "", nil, fmt.Errorf("%s has more than one kustomization file: %v", dir, found)
}

func readKustomization(f Files, dir string) (*yfile, error) {
	p, data, err := findKustomization(f, dir)
	if err != nil {
		return nil, err
	}
	y, err := parseYAML(p, data)
	if err != nil {
		return nil, err
	}
	if len(y.docs) > 1 {
		return nil, fmt.Errorf("%s holds %d YAML documents; a kustomization is one", p, len(y.docs))
	}
	if r := y.root(0); r != nil && r.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s is not a mapping", p)
	}
	return y, nil
}

// findImageEntry finds the images entry named image. images is the value of
// the images key (nil if absent), keyIdx the index of that key in the root
// mapping (-1 if absent), entry the index of the entry (-1 if none).
func findImageEntry(y *yfile, image string) (images *yaml.Node, keyIdx, entry int, err error) {
	images, keyIdx, entry, err = walkImages(y, image)
	if err != nil {
		return nil, -1, -1, err
	}
	// The decoded value must agree with the node walk: YAML aliases and
	// merge keys can hide entries (or the whole list) from it.
	want := 0
	if entry >= 0 {
		want = 1
	}
	root := y.root(0)
	if genericImageEntries(y.values, image) != want || (keyIdx < 0 && root != nil && hasMergeKey(root)) {
		return nil, -1, -1, fmt.Errorf("%w: the images of %s use YAML aliases or merge keys", errUnsupported, y.path)
	}
	return images, keyIdx, entry, nil
}

func walkImages(y *yfile, image string) (images *yaml.Node, keyIdx, entry int, err error) {
	root := y.root(0)
	if root == nil {
		return nil, -1, -1, nil
	}
	if keyIdx, err = lookup(root, "images"); err != nil || keyIdx < 0 {
		return nil, keyIdx, -1, err
	}
	images = root.Content[keyIdx+1]
	if isNull(images) {
		return images, keyIdx, -1, nil
	}
	if images.Kind != yaml.SequenceNode {
		return nil, -1, -1, fmt.Errorf("images in %s is a %s, not a list", y.path, kindName(images))
	}
	entry = -1
	for i, it := range images.Content {
		n, err := get(it, "name")
		if err != nil {
			return nil, -1, -1, fmt.Errorf("images[%d] in %s: %w", i, y.path, err)
		}
		if name, ok := scalarString(n); ok && name == image {
			if entry >= 0 {
				return nil, -1, -1, fmt.Errorf("%s lists image %q twice (images[%d] and images[%d])", y.path, image, entry, i)
			}
			entry = i
		}
	}
	return images, keyIdx, entry, nil
}

// genericImageEntries counts the images entries named image in the decoded
// kustomization.
func genericImageEntries(docs []any, image string) int {
	if len(docs) == 0 {
		return 0
	}
	m, _ := docs[0].(map[string]any)
	items, _ := m["images"].([]any)
	n := 0
	for _, it := range items {
		if e, ok := it.(map[string]any); ok && e["name"] == image {
			n++
		}
	}
	return n
}

func kustomizeCurrentTag(f Files, loc Location) (string, error) {
	y, err := readKustomization(f, loc.Path)
	if err != nil {
		return "", err
	}
	images, _, entry, err := findImageEntry(y, loc.Image)
	if err != nil {
		return "", err
	}
	if entry < 0 {
		return "", notFoundf("image %q not found in %s", loc.Image, y.path)
	}
	e := images.Content[entry]
	n, err := get(e, "newTag")
	if err != nil {
		return "", fmt.Errorf("%s: %w", y.path, err)
	}
	tag, ok := scalarString(n)
	if !ok {
		if d, _ := get(e, "digest"); d != nil {
			return "", notFoundf("image %q in %s has no newTag (it is pinned by digest)", loc.Image, y.path)
		}
		return "", notFoundf("image %q in %s has no newTag", loc.Image, y.path)
	}
	return tag, nil
}

// kustomizeSetTag does what `kustomize edit set image NAME=NAME:TAG` does:
// set newTag on the entry (dropping a digest, keeping newName), or add an
// entry.
func kustomizeSetTag(f Files, loc Location, tag string) ([]Change, error) {
	y, err := readKustomization(f, loc.Path)
	if err != nil {
		return nil, err
	}
	images, keyIdx, entry, err := findImageEntry(y, loc.Image)
	if err != nil {
		return nil, err
	}
	root := y.root(0)
	item := newMap("name", newScalar(loc.Image, false), "newTag", newScalar(tag, false))
	switch {
	case root == nil:
		err = y.appendToFile("images", newSeq(item))
	case keyIdx < 0:
		err = y.insertEntry(0, nil, root, "images", newSeq(item))
	case entry < 0 && isNull(images):
		err = y.fillNull(0, []any{"images"}, root, keyIdx, newSeq(item))
	case entry < 0:
		err = y.appendItem(0, []any{"images"}, images, item)
	default:
		e := images.Content[entry]
		gp := []any{"images", entry}
		if _, err = y.setPath(0, gp, e, []string{"newTag"}, tag, modeTag); err != nil {
			break
		}
		var di int
		if di, err = lookup(e, "digest"); err == nil && di >= 0 {
			err = y.deleteEntry(0, gp, e, di)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("set image %q in %s: %w", loc.Image, y.path, err)
	}
	if !y.changed() {
		return nil, unchangedf("image %q in %s already has newTag %s", loc.Image, y.path, tag)
	}
	return collect(y)
}

// patchListed reports whether the kustomization already applies the
// restart patch (as a patches entry, or the legacy patchesStrategicMerge).
func patchListed(y *yfile) (bool, error) {
	root := y.root(0)
	for _, key := range []string{"patches", "patchesStrategicMerge"} {
		seq, err := get(root, key)
		if err != nil {
			return false, fmt.Errorf("%s: %w", y.path, err)
		}
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for _, it := range seq.Content {
			n := it
			if key == "patches" {
				if n, err = get(it, "path"); err != nil {
					return false, fmt.Errorf("%s: %w", y.path, err)
				}
			}
			if p, ok := scalarString(n); ok && path.Clean(p) == restartPatchFile {
				return true, nil
			}
		}
	}
	return false, nil
}

// kustomizeSetRestart sets the annotation in the overlay's restart patch,
// creating the patch (and its patches entry) on first use.
func kustomizeSetRestart(f Files, loc Location, value string) ([]Change, error) {
	y, err := readKustomization(f, loc.Path)
	if err != nil {
		return nil, err
	}
	patchPath := path.Join(loc.Path, restartPatchFile)
	var changes []Change
	var py *yfile
	b, err := f.ReadFile(patchPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		changes = append(changes, Change{Path: patchPath, New: fmt.Appendf(nil, restartPatch, doubleQuote(value))})
	case err != nil:
		return nil, err
	default:
		if py, err = parseYAML(patchPath, b); err != nil {
			return nil, err
		}
		root := py.root(0)
		if root == nil || root.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s is not a Deployment patch", patchPath)
		}
		if _, err := py.setPath(0, nil, root, restartPatchKeys, value, modeQuoted); err != nil {
			return nil, fmt.Errorf("set %s in %s: %w", RestartAnnotation, patchPath, err)
		}
	}

	listed, err := patchListed(y)
	if err != nil {
		return nil, err
	}
	if !listed {
		if err := addPatchEntry(y); err != nil {
			return nil, fmt.Errorf("add %s to the patches of %s: %w", restartPatchFile, y.path, err)
		}
	}
	files := []*yfile{y}
	if py != nil {
		files = append(files, py)
	}
	edited, err := collect(files...)
	if err != nil {
		return nil, err
	}
	changes = append(changes, edited...)
	if len(changes) == 0 {
		return nil, unchangedf("%s in %s is already %s", RestartAnnotation, patchPath, value)
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes, nil
}

// addPatchEntry adds the restart patch, targeting every Deployment, to the
// kustomization's patches.
func addPatchEntry(y *yfile) error {
	item := newMap("path", newScalar(restartPatchFile, false),
		"target", newMap("kind", newScalar("Deployment", false)))
	root := y.root(0)
	if root == nil {
		return y.appendToFile("patches", newSeq(item))
	}
	k, err := lookup(root, "patches")
	if err != nil {
		return err
	}
	if k < 0 {
		if hasMergeKey(root) {
			return fmt.Errorf("%w: the kustomization has a merge key (<<)", errUnsupported)
		}
		return y.insertEntry(0, nil, root, "patches", newSeq(item))
	}
	switch v := root.Content[k+1]; {
	case isNull(v):
		return y.fillNull(0, []any{"patches"}, root, k, newSeq(item))
	case v.Kind == yaml.SequenceNode:
		return y.appendItem(0, []any{"patches"}, v, item)
	default:
		return fmt.Errorf("patches is a %s, not a list", kindName(v))
	}
}

func kustomizeCurrentRestart(f Files, loc Location) (string, error) {
	if _, _, err := findKustomization(f, loc.Path); err != nil {
		return "", err
	}
	patchPath := path.Join(loc.Path, restartPatchFile)
	b, err := f.ReadFile(patchPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	py, err := parseYAML(patchPath, b)
	if err != nil {
		return "", err
	}
	n, err := getPath(py.root(0), restartPatchKeys...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", patchPath, err)
	}
	v, _ := scalarString(n)
	return v, nil
}

func kustomizeInputs(f Files, loc Location) ([]string, error) {
	p, _, err := findKustomization(f, loc.Path)
	if err != nil {
		return nil, err
	}
	return []string{p, path.Join(loc.Path, restartPatchFile)}, nil
}
