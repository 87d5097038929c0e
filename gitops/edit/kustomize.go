package edit

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"gopkg.in/yaml.v3"
)

// kustomizationNames are the file names kustomize accepts, in its order.
var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

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
	ref, where, err := kustomizeCurrentRef(f, loc, y)
	if err != nil {
		return "", err
	}
	switch {
	case ref.Tag != "":
		return ref.Tag, nil
	case ref.Digest != "":
		return "", noTagf("image %q has no tag at %s (it is pinned by digest %s)", loc.Image, where, ref.Digest)
	}
	return "", noTagf("image %q has no tag at %s (%s: Kubernetes pulls %s:latest)", loc.Image, where, ref, ref.Name)
}

// kustomizeSetTag is kustomizeSetImage without a digest.
func kustomizeSetTag(f Files, loc Location, tag string) ([]Change, error) {
	e, err := kustomizeSetImage(f, loc, SetImageOptions{Tag: tag})
	return e.Changes, err
}
