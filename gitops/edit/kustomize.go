package edit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// kustomizeLayout: the app is built by a kustomize overlay; its tag is an
// images entry (or what its in-repo bases run), its restart shipbot's own
// patches targeting the app's workloads by kind and name
// (kustomize_patches.go).
type kustomizeLayout struct{}

func (kustomizeLayout) validate(loc Location) error { return needImage(loc) }

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
func findImageEntry(y *yfile, image imageNames) (images *yaml.Node, keyIdx, entry int, err error) {
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

func walkImages(y *yfile, image imageNames) (images *yaml.Node, keyIdx, entry int, err error) {
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
		nn, err := get(it, "newName")
		if err != nil {
			return nil, -1, -1, fmt.Errorf("images[%d] in %s: %w", i, y.path, err)
		}
		name, ok := scalarString(n)
		newName, _ := scalarString(nn)
		if ok && (image.has(name) || image.has(newName)) {
			if entry >= 0 {
				return nil, -1, -1, fmt.Errorf("%s lists image %q twice (images[%d] and images[%d])", y.path, image, entry, i)
			}
			entry = i
		}
	}
	return images, keyIdx, entry, nil
}

// genericImageEntries counts the images entries naming image (by name or
// newName) in the decoded kustomization.
func genericImageEntries(docs []any, image imageNames) int {
	if len(docs) == 0 {
		return 0
	}
	m, _ := docs[0].(map[string]any)
	items, _ := m["images"].([]any)
	n := 0
	for _, it := range items {
		e, _ := it.(map[string]any)
		name, _ := e["name"].(string)
		newName, _ := e["newName"].(string)
		if e != nil && (image.has(name) || image.has(newName)) {
			n++
		}
	}
	return n
}

func (kustomizeLayout) currentTag(f Files, loc Location) (string, error) {
	if tag, ok, err := overrideTag(f, loc.Path, loc); ok || err != nil {
		return tag, err
	}
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

// ---- the tag -------------------------------------------------------------------

// applyImages applies the images: entry of the kustomization y that names
// ref.Name, as kustomize's image transformer does: newName replaces the
// name; newTag and digest replace both the tag and the digest.
func applyImages(y *yfile, ref imageRef) imageRef {
	images, _ := get(y.root(0), "images")
	if images == nil || images.Kind != yaml.SequenceNode {
		return ref
	}
	for _, it := range images.Content {
		n, _ := get(it, "name")
		if name, ok := scalarString(n); !ok || name != ref.Name {
			continue
		}
		field := func(k string) string {
			v, _ := get(it, k)
			s, _ := scalarString(v)
			return s
		}
		if nn := field("newName"); nn != "" {
			ref.Name = nn
		}
		tag, digest := field("newTag"), field("digest")
		if tag != "" || digest != "" {
			ref.Tag, ref.Digest = tag, digest
		}
		return ref
	}
	return ref
}

// kustomizeBaseRef returns the image reference the overlay's resources run
// for loc.Image, as kustomize builds it (in-repo bases only), and where it
// is written.
func kustomizeBaseRef(f Files, loc Location, y *yfile) (imageRef, string, error) {
	b := &kresources{f: f, seen: map[string]bool{}}
	if err := b.walk(loc.Path, y, nil, nil); err != nil {
		return imageRef{}, "", err
	}
	var first imageRef
	where := ""
	for _, r := range b.res {
		imgs, err := r.images(loc.names())
		if err != nil {
			return imageRef{}, "", err
		}
		for _, s := range imgs {
			ref, _ := parseImageRef(s)
			for _, k := range r.kusts {
				ref = applyImages(k, ref)
			}
			w := fmt.Sprintf("%s (%s)", r.y.path, r)
			if where == "" {
				first, where = ref, w
				continue
			}
			if ref.Tag != first.Tag || ref.Digest != first.Digest {
				return imageRef{}, "", fmt.Errorf("the containers running %s in %s disagree: %s runs %s, %s runs %s",
					loc.Image, loc.Path, where, first, w, ref)
			}
		}
	}
	if where == "" {
		msg := fmt.Sprintf("image %q not found in %s: no images entry, and no container of its resources runs it", loc.Image, y.path)
		if len(b.notes) > 0 {
			msg += " (" + strings.Join(b.notes, "; ") + ")"
		}
		return imageRef{}, "", notFoundf("%s", msg)
	}
	return first, where, nil
}

// kustomizeCurrentRef returns the tag and digest the overlay deploys for
// loc.Image: from its images entry when that sets newTag or digest, else
// from the resources it builds on.
func kustomizeCurrentRef(f Files, loc Location, y *yfile) (ref imageRef, where string, err error) {
	images, _, entry, err := findImageEntry(y, loc.names())
	if err != nil {
		return imageRef{}, "", err
	}
	if entry >= 0 {
		e := images.Content[entry]
		var tag, digest string
		for _, k := range []struct {
			key string
			dst *string
		}{{"newTag", &tag}, {"digest", &digest}} {
			n, err := get(e, k.key)
			if err != nil {
				return imageRef{}, "", fmt.Errorf("%s: %w", y.path, err)
			}
			*k.dst, _ = scalarString(n)
		}
		if tag != "" || digest != "" {
			return imageRef{Name: loc.Image, Tag: tag, Digest: digest}, fmt.Sprintf("%s (images[%d])", y.path, entry), nil
		}
	}
	return kustomizeBaseRef(f, loc, y)
}

// setImage does what `kustomize edit set image NAME=NAME:TAG[@DIGEST]`
// does: set newTag on the entry (keeping newName), or add an entry; a
// digest pin (on the entry, or on the image the base runs) is updated or
// removed and reported.
func (kustomizeLayout) setImage(f Files, loc Location, opts SetImageOptions) (ImageEdit, error) {
	if e, ok, err := setOverride(f, loc.Path, loc, opts); ok || err != nil {
		return e, err
	}
	y, err := readKustomization(f, loc.Path)
	if err != nil {
		return ImageEdit{}, err
	}
	images, keyIdx, entry, err := findImageEntry(y, loc.names())
	if err != nil {
		return ImageEdit{}, err
	}
	var pins []PinChange
	var entryDigest string // the digest: of the existing entry
	if entry >= 0 {
		dn, err := get(images.Content[entry], "digest")
		if err != nil {
			return ImageEdit{}, fmt.Errorf("%s: %w", y.path, err)
		}
		entryDigest, _ = scalarString(dn)
	}
	// A new newTag overrides a digest the base pins when the entry sets
	// neither newTag nor digest yet (kustomize replaces tag and digest).
	baseDigest := ""
	if cur, where, err := kustomizeCurrentRef(f, loc, y); err == nil && entryDigest == "" && cur.Digest != "" &&
		!strings.HasPrefix(where, y.path+" (images[") {
		baseDigest = cur.Digest
		if p, ok := pinFor(where, cur.Digest, opts.Digest); ok {
			pins = append(pins, p)
		}
	}
	root := y.root(0)
	kv := []any{"name", newScalar(loc.Image, false), "newTag", newScalar(opts.Tag, false)}
	if baseDigest != "" && opts.Digest != "" {
		kv = append(kv, "digest", newScalar(opts.Digest, false))
	}
	item := newMap(kv...)
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
		if _, err = y.setPath(0, gp, e, []string{"newTag"}, opts.Tag, modeTag); err != nil {
			break
		}
		switch {
		case baseDigest != "" && opts.Digest != "":
			_, err = y.setPath(0, gp, e, []string{"digest"}, opts.Digest, modeTag)
		case entryDigest != "" && opts.Digest != "":
			pins = append(pins, PinChange{Where: fmt.Sprintf("%s (images[%d].digest)", y.path, entry), Old: entryDigest, New: opts.Digest})
			_, err = y.setPath(0, gp, e, []string{"digest"}, opts.Digest, modeTag)
		default:
			var di int
			if di, err = lookup(e, "digest"); err == nil && di >= 0 {
				if entryDigest != "" {
					pins = append(pins, PinChange{Where: fmt.Sprintf("%s (images[%d].digest)", y.path, entry), Old: entryDigest})
				}
				err = y.deleteEntry(0, gp, e, di)
			}
		}
	}
	if err != nil {
		return ImageEdit{}, fmt.Errorf("set image %q in %s: %w", loc.Image, y.path, err)
	}
	if !y.changed() {
		return ImageEdit{}, unchangedf("image %q in %s already has newTag %s", loc.Image, y.path, opts.Tag)
	}
	changes, err := collect(y)
	if err != nil {
		return ImageEdit{}, err
	}
	return ImageEdit{Changes: changes, Pins: unchangedPinsOut(pins)}, nil
}

// ---- the restart ---------------------------------------------------------------

// setRestart sets the restart value in shipbot's patches and makes
// the kustomization apply them to exactly the app's workloads.
func (kustomizeLayout) setRestart(f Files, loc Location, value string) ([]Change, error) {
	y, err := readKustomization(f, loc.Path)
	if err != nil {
		return nil, err
	}
	if listed, err := strategicMergeListed(y); err != nil {
		return nil, err
	} else if len(listed) > 0 {
		return nil, fmt.Errorf("%s lists %s under patchesStrategicMerge, which applies it to a Deployment named shipbot-restart, not to the app's workloads: remove that entry and shipbot will list it under patches with exact targets", y.path, listed[0])
	}
	targets, all, err := kustomizeRestartTargets(f, loc, y)
	if err != nil {
		return nil, err
	}
	entries, err := shipbotEntries(y)
	if err != nil {
		return nil, err
	}
	var wants []wantEntry
	for _, r := range targets {
		wants = append(wants, wantEntry{patch: patchFor(r), kind: r.kind, name: r.name, namespace: r.namespace, desc: r.String()})
	}
	// In an overlay of several apps, a shared patch file that restarts
	// another app's workloads is not ours to bump: this app gets its own.
	exists := func(file string) bool {
		_, err := f.ReadFile(path.Join(loc.Path, file))
		return err == nil
	}
	foreign := make([]bool, len(entries))
	taken := map[string]bool{}
	for i, e := range entries {
		if foreign[i] = e.foreign(wants, all, exists); foreign[i] {
			taken[e.file] = true
		}
	}
	var needed []shipbotPatch
	for i := range wants {
		if taken[wants[i].patch.file] {
			wants[i].patch.file = ownFile(wants[i].patch, loc.Image)
			if taken[wants[i].patch.file] {
				return nil, fmt.Errorf("%s: %s, shipbot's restart patch for %s, also restarts another app's workloads; give that app's entry its own file", y.path, wants[i].patch.file, loc.Image)
			}
		}
		if p := wants[i].patch; !slices.ContainsFunc(needed, func(n shipbotPatch) bool { return n.file == p.file }) {
			needed = append(needed, p)
		}
	}
	sort.Slice(needed, func(i, j int) bool { return needed[i].file < needed[j].file })

	used := make([]bool, len(entries))
	copy(used, foreign) // another app's entries are left as they are
	var missing []wantEntry
	for _, w := range wants {
		found := false
		for i, e := range entries {
			if !used[i] && e.exact(w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			missing = append(missing, w)
		}
	}
	// Stale entries (the old blanket form, a workload renamed) are
	// rewritten in place for the missing ones; new entries are appended.
	for i, e := range entries {
		if used[i] {
			continue
		}
		if len(missing) == 0 {
			return nil, fmt.Errorf("%s: %s applies shipbot's restart patch to workloads that don't run %s; remove that entry", y.path, e, loc.Image)
		}
		if err := retarget(y, e, missing[0]); err != nil {
			return nil, fmt.Errorf("retarget %s of %s to %s: %w", e, y.path, missing[0].desc, err)
		}
		missing = missing[1:]
	}
	if len(missing) > 0 {
		if err := addEntries(y, missing); err != nil {
			return nil, fmt.Errorf("add restart patches to %s: %w", y.path, err)
		}
	}

	files := []*yfile{y}
	var created []Change
	for _, p := range needed {
		pp := path.Join(loc.Path, p.file)
		b, err := f.ReadFile(pp)
		if errors.Is(err, fs.ErrNotExist) {
			created = append(created, Change{Path: pp, New: fmt.Appendf(nil, p.content, doubleQuote(value))})
			continue
		}
		if err != nil {
			return nil, err
		}
		py, err := parseYAML(pp, b)
		if err != nil {
			return nil, err
		}
		root := py.root(0)
		if len(py.docs) != 1 || root == nil || root.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s is not a patch shipbot can edit (one YAML mapping)", pp)
		}
		if _, err := py.setPath(0, nil, root, p.keys, value, modeQuoted); err != nil {
			return nil, fmt.Errorf("set %s in %s: %w", p.field, pp, err)
		}
		if i := strings.Index(string(py.src), blanketComment); i >= 0 {
			py.add(i, i+len(blanketComment), exactTargetComment)
		}
		files = append(files, py)
	}
	edited, err := collect(files...)
	if err != nil {
		return nil, err
	}
	changes := append(created, edited...)
	if len(changes) == 0 {
		return nil, unchangedf("%s in %s is already %s", needed[0].field, path.Join(loc.Path, needed[0].file), value)
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes, nil
}

// currentRestart returns the newest restart value of shipbot's
// patches that the kustomization applies ("" if none).
func (kustomizeLayout) currentRestart(f Files, loc Location) (string, error) {
	y, err := readKustomization(f, loc.Path)
	if err != nil {
		return "", err
	}
	entries, err := shipbotEntries(y)
	if err != nil {
		return "", err
	}
	listed, err := strategicMergeListed(y)
	if err != nil {
		return "", err
	}
	// The files applied to the app's workloads: entries targeting them,
	// and entries without an exact target (the old blanket form). When the
	// workloads can't be read, every file the kustomization applies.
	targets, _, terr := kustomizeRestartTargets(f, loc, y)
	for _, e := range entries {
		if terr != nil || e.target == nil || e.target.Kind != yaml.MappingNode || targetsAny(e, targets) {
			listed = append(listed, e.file)
		}
	}
	var values []string
	seen := map[string]bool{}
	for _, file := range listed {
		if seen[file] {
			continue
		}
		seen[file] = true
		p := patchOfFile(file)
		pp := path.Join(loc.Path, p.file)
		b, err := f.ReadFile(pp)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		py, err := parseYAML(pp, b)
		if err != nil {
			return "", err
		}
		n, err := getPath(py.root(0), p.keys...)
		if err != nil {
			return "", fmt.Errorf("%s: %w", pp, err)
		}
		if v, ok := scalarString(n); ok {
			values = append(values, v)
		}
	}
	return newestRestart(values), nil
}

// targetsAny reports whether e targets one of the workloads, by kind and
// name (and namespace).
func targetsAny(e patchEntry, workloads []*resource) bool {
	for _, r := range workloads {
		if e.targets(wantEntry{kind: r.kind, name: r.name, namespace: r.namespace}) {
			return true
		}
	}
	return false
}

// inputs are the overlay's kustomization and restart patches, and every
// file its in-repo build reads: the kustomizations of its bases and the
// resource files (a tag can come from a base).
func (kustomizeLayout) inputs(f Files, loc Location) ([]string, error) {
	y, err := readKustomization(f, loc.Path)
	if err != nil {
		return nil, err
	}
	paths := []string{y.path}
	overrides, err := overrideFiles(f, loc.Path)
	if err != nil {
		return nil, err
	}
	paths = append(paths, overrides...)
	for _, p := range []shipbotPatch{annotationPatch, restartAtPatch} {
		paths = append(paths, path.Join(loc.Path, p.file), path.Join(loc.Path, ownFile(p, loc.Image)))
	}
	b := &kresources{f: f, seen: map[string]bool{}}
	if err := b.walk(loc.Path, y, nil, nil); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, p := range paths {
		seen[p] = true
	}
	for _, r := range b.res {
		for _, p := range append([]string{r.y.path}, kustPaths(r.kusts)...) {
			if !seen[p] {
				seen[p] = true
				paths = append(paths, p)
			}
		}
	}
	return paths, nil
}

func kustPaths(ks []*yfile) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.path
	}
	return out
}

// renderer renders the overlay in-process with kustomize's own library.
func (kustomizeLayout) renderer(ctx context.Context, _ Files, loc Location, _ RenderOptions) appRenderer {
	return appRenderer{
		name:   kustomizeRenderer,
		what:   "the kustomization in " + loc.Path,
		hint:   "kustomize applied the restart patch to no workload: check the target of its patches entry",
		render: func(t Files) ([]map[string]any, error) { return renderKustomize(ctx, t, loc.Path) },
	}
}
