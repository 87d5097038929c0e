package edit

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// imageUpdater holds Argo CD Image Updater (v0.x, configured with
// annotations on the Application):
//
//	argocd-image-updater.argoproj.io/image-list: checkout=registry.example.com/checkout
//	argocd-image-updater.argoproj.io/checkout.update-strategy: semver
//	argocd-image-updater.argoproj.io/checkout.allow-tags: regexp:^1\.
//	argocd-image-updater.argoproj.io/checkout.ignore-tags: latest, dev
//
// The hold sets the image's ignore-tags to "*" (every tag ignored: no
// candidate, so no update, whatever the strategy and allow-tags) and keeps
// the original in the annotation shipbot.io/held.ALIAS.ignore-tags ("was
// ORIGINAL" with the original value exactly as it was written, or
// "absent"). It is per Application and per image: other images of the
// Application, and the Applications of other environments, keep updating.
// The image-list, the strategy and allow-tags stay byte-identical. The
// release writes the original back (or removes the annotation it added)
// and removes the held annotation: the file is byte for byte what it was.
// The alternative, removing the image from image-list, would hold too but
// rewrites a list other images share; allow-tags matching only the pinned
// tag would have to follow every re-pin.
//
// The app's Application is the one whose tag the application layout edits
// (the same document), or, for the other layouts, an Application in the
// repo named like the target's Argo CD Application or whose source path is
// the app's path; its image-list must name the app's image. An image-list
// entry without an alias can't be held per image (its options have no
// annotation key): the plan warns instead. Image Updater v1's ImageUpdater
// resources (whose applicationRefs select Applications by a name pattern
// that may cover several apps) are not edited: the plan names them.
type imageUpdater struct{}

const (
	iuPrefix    = "argocd-image-updater.argoproj.io/"
	iuImageList = iuPrefix + "image-list"
	iuHeld      = "shipbot.io/held."
	iuAbsent    = "absent"
	iuWas       = "was "
	iuIgnoreAll = "*"
)

func (imageUpdater) tool() string { return ToolImageUpdater }

// iuEntry is one entry of an image-list: [ALIAS=]IMAGE[:CONSTRAINT].
type iuEntry struct {
	alias, image string
}

func parseImageList(s string) []iuEntry {
	var out []iuEntry
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var e iuEntry
		if a, rest, ok := strings.Cut(part, "="); ok && !strings.ContainsAny(a, "/:") {
			e.alias, part = strings.TrimSpace(a), strings.TrimSpace(rest)
		}
		// The constraint follows the last colon after the last slash.
		if i := strings.LastIndexByte(part, ':'); i > strings.LastIndexByte(part, '/') {
			part = part[:i]
		}
		e.image = part
		out = append(out, e)
	}
	return out
}

// iuCandidates are the files that may hold the app's Application.
func iuCandidates(f Files, loc Location) []string {
	if loc.Layout == LayoutApplication {
		return []string{loc.Path}
	}
	t, ok := f.(treeFiles)
	if !ok {
		return nil
	}
	all, err := t.ReadTree(".")
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range all {
		if yamlFile(p) && !strings.HasPrefix(p, ".shipbot/") {
			out = append(out, p)
		}
	}
	return out
}

// appName is an Application document's metadata.name.
func appName(root *yaml.Node) string {
	n, _ := getPath(root, "metadata", "name")
	s, _ := scalarString(n)
	return s
}

// sourcePaths are the paths of an Application's sources.
func sourcePaths(root *yaml.Node) []string {
	var out []string
	if p, _ := getPath(root, "spec", "source", "path"); p != nil {
		if s, ok := scalarString(p); ok {
			out = append(out, cleanPath(s))
		}
	}
	if srcs, _ := getPath(root, "spec", "sources"); srcs != nil && srcs.Kind == yaml.SequenceNode {
		for _, src := range srcs.Content {
			if p, _ := get(src, "path"); p != nil {
				if s, ok := scalarString(p); ok {
					out = append(out, cleanPath(s))
				}
			}
		}
	}
	return out
}

// isApp reports whether the Application document d of y (at p) is the
// app's at loc.
func isApp(y *yfile, d int, root *yaml.Node, loc Location, argoApp string, tagDoc int) bool {
	if loc.Layout == LayoutApplication && cleanPath(y.path) == loc.Path {
		if tagDoc >= 0 {
			return d == tagDoc
		}
		return argoApp != "" && appName(root) == argoApp
	}
	if argoApp != "" && appName(root) == argoApp {
		return true
	}
	for _, sp := range sourcePaths(root) {
		if sp == loc.Path || sp == path.Dir(loc.Path) && loc.Layout != LayoutKustomize {
			return true
		}
	}
	return false
}

// annotations returns the annotations mapping of root, nil if none.
func annotations(root *yaml.Node) *yaml.Node {
	n, _ := getPath(root, "metadata", "annotations")
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	return n
}

func (imageUpdater) hold(f Files, loc Location, o HoldOptions) (AutomationEdit, error) {
	e := AutomationEdit{Held: append([]Held(nil), o.Held...)}
	names := loc.names()
	for _, p := range iuCandidates(f, loc) {
		src, err := readOptional(f, p)
		if err != nil {
			return AutomationEdit{}, err
		}
		if src == nil {
			continue
		}
		if bytes.Contains(src, []byte("kind: ImageUpdater")) {
			e.Warnings = append(e.Warnings, iuV1Warnings(p, src, names, o.ArgoApp)...)
		}
		if !bytes.Contains(src, []byte(iuImageList)) {
			continue
		}
		y, err := parseYAML(p, src)
		if err != nil {
			if loc.Layout == LayoutApplication {
				return AutomationEdit{}, err
			}
			continue // not ours to judge: a file the app does not read
		}
		tagDoc := -1
		if cleanPath(p) == loc.Path && loc.Layout == LayoutApplication {
			if t, err := findAppTarget(y, loc); err == nil {
				tagDoc = t.doc
			}
		}
		for d := range y.docs {
			root := y.root(d)
			if !isApplication(root) || !isApp(y, d, root, loc, o.ArgoApp, tagDoc) {
				continue
			}
			anns := annotations(root)
			if anns == nil {
				continue
			}
			il, _ := get(anns, iuImageList)
			list, ok := scalarString(il)
			if !ok {
				continue
			}
			name := appName(root)
			for _, ent := range parseImageList(list) {
				if !names.has(ent.image) {
					continue
				}
				if ent.alias == "" {
					e.Warnings = append(e.Warnings, fmt.Sprintf("NOT HELD: Argo CD Image Updater may still change %s in Application %s (%s): its image-list entry %s has no alias, so it can't be held for this image alone; give it one (%s=%s) and pin again, or stop the updater for this Application by hand", ent.image, name, p, ent.image, path.Base(ent.image), ent.image))
					continue
				}
				if err := iuHoldAlias(y, d, anns, ent.alias); err != nil {
					return AutomationEdit{}, err
				}
				e.Held = appendHeld(e.Held, Held{Tool: ToolImageUpdater, Path: cleanPath(p), Ref: name + "/" + ent.alias})
			}
		}
		if !y.changed() {
			continue
		}
		out, err := y.result()
		if err != nil {
			return AutomationEdit{}, err
		}
		e.Changes = append(e.Changes, Change{Path: p, Old: src, New: out})
	}
	return e, nil
}

// iuHoldAlias sets ALIAS.ignore-tags to "*" in the annotations anns of
// document d, and keeps the original in the held annotation; nothing when
// it is held already.
func iuHoldAlias(y *yfile, d int, anns *yaml.Node, alias string) error {
	key, held := iuPrefix+alias+".ignore-tags", iuHeld+alias+".ignore-tags"
	gpath := []any{"metadata", "annotations"}
	if idx, err := lookup(anns, held); err != nil || idx >= 0 {
		return err // held already (a pin before this one)
	}
	flow := isStyle(anns, yaml.FlowStyle)
	idx, err := lookup(anns, key)
	if err != nil {
		return err
	}
	was := iuAbsent
	if idx >= 0 {
		v := anns.Content[idx+1]
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s: %s is a %s, not a string", y.path, key, kindName(v))
		}
		s, e, err := y.scalarSpan(v, 0)
		if err != nil {
			return err
		}
		was = iuWas + string(y.src[s:e])
		if _, err := y.setScalar(d, appendPath(gpath, key), v, flow, iuIgnoreAll, modeQuoted); err != nil {
			return err
		}
	} else if err := y.insertEntry(d, gpath, anns, key, newScalar(iuIgnoreAll, true)); err != nil {
		return err
	}
	return y.insertEntry(d, gpath, anns, held, newScalar(was, false))
}

func (imageUpdater) release(f Files, held []Held) (AutomationEdit, error) {
	var e AutomationEdit
	byPath := map[string][]Held{}
	var paths []string
	for _, h := range held {
		if byPath[h.Path] == nil {
			paths = append(paths, h.Path)
		}
		byPath[h.Path] = append(byPath[h.Path], h)
	}
	for _, p := range paths {
		src, err := readOptional(f, p)
		if err != nil {
			return AutomationEdit{}, err
		}
		if src == nil {
			for _, h := range byPath[p] {
				e.Warnings = append(e.Warnings, fmt.Sprintf("%s: the file is gone, nothing to restore", h))
			}
			continue
		}
		y, err := parseYAML(p, src)
		if err != nil {
			return AutomationEdit{}, err
		}
		for _, h := range byPath[p] {
			app, alias, _ := strings.Cut(h.Ref, "/")
			ok, err := iuReleaseAlias(y, app, alias)
			if err != nil {
				return AutomationEdit{}, err
			}
			if !ok {
				e.Warnings = append(e.Warnings, fmt.Sprintf("%s: no held annotation %s%s.ignore-tags found (changed by hand?), so nothing was restored there", h, iuHeld, alias))
				continue
			}
			e.Held = append(e.Held, h)
		}
		if !y.changed() {
			continue
		}
		out, err := y.result()
		if err != nil {
			return AutomationEdit{}, err
		}
		e.Changes = append(e.Changes, Change{Path: p, Old: src, New: out})
	}
	return e, nil
}

// iuReleaseAlias restores ALIAS.ignore-tags of the Application app in y
// from its held annotation; false when there is none.
func iuReleaseAlias(y *yfile, app, alias string) (bool, error) {
	key, held := iuPrefix+alias+".ignore-tags", iuHeld+alias+".ignore-tags"
	gpath := []any{"metadata", "annotations"}
	for d := range y.docs {
		root := y.root(d)
		if !isApplication(root) || appName(root) != app {
			continue
		}
		anns := annotations(root)
		if anns == nil {
			continue
		}
		hi, err := lookup(anns, held)
		if err != nil || hi < 0 {
			if err != nil {
				return false, err
			}
			continue
		}
		was, _ := scalarString(anns.Content[hi+1])
		ki, err := lookup(anns, key)
		if err != nil {
			return false, err
		}
		switch {
		case was == iuAbsent && ki >= 0:
			if err := y.deleteEntry(d, gpath, anns, ki); err != nil {
				return false, err
			}
		case strings.HasPrefix(was, iuWas) && ki >= 0:
			raw := strings.TrimPrefix(was, iuWas)
			if err := y.setRaw(d, appendPath(gpath, key), anns.Content[ki+1], raw); err != nil {
				return false, err
			}
		case strings.HasPrefix(was, iuWas):
			raw := strings.TrimPrefix(was, iuWas)
			v, err := rawScalar(raw)
			if err != nil {
				return false, err
			}
			if err := y.insertEntry(d, gpath, anns, key, newScalar(v, false)); err != nil {
				return false, err
			}
		}
		if err := y.deleteEntry(d, gpath, anns, hi); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

// rawScalar decodes the source text of a scalar.
func rawScalar(raw string) (string, error) {
	var v struct {
		V string `yaml:"v"`
	}
	if err := yaml.Unmarshal([]byte("v: "+raw), &v); err != nil {
		return "", fmt.Errorf("held value %q: %w", raw, err)
	}
	return v.V, nil
}

// setRaw writes the scalar source text raw (quotes and all) in place of the
// scalar n (at generic path gpath of document doc).
func (y *yfile) setRaw(doc int, gpath []any, n *yaml.Node, raw string) error {
	v, err := rawScalar(raw)
	if err != nil {
		return err
	}
	s, e, err := y.scalarSpan(n, 0)
	if err != nil {
		return err
	}
	y.add(s, e, raw)
	y.muts = append(y.muts, mutation{doc: doc, path: gpath, op: mutSet, value: v})
	return nil
}

// iuV1Warnings names the ImageUpdater resources (Image Updater v1) in src
// that update one of names for the Argo CD Application argoApp (any
// Application when it is not known): shipbot does not hold them.
func iuV1Warnings(p string, src []byte, names imageNames, argoApp string) []string {
	docs, err := decodeValues(src)
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range docs {
		m, _ := d.(map[string]any)
		if m == nil || m["kind"] != "ImageUpdater" || !strings.HasPrefix(fmt.Sprint(m["apiVersion"]), "argocd-image-updater.argoproj.io/") {
			continue
		}
		meta, _ := m["metadata"].(map[string]any)
		spec, _ := m["spec"].(map[string]any)
		refs, _ := spec["applicationRefs"].([]any)
		for _, r := range refs {
			ref, _ := r.(map[string]any)
			pattern, _ := ref["namePattern"].(string)
			if argoApp != "" {
				if ok, err := path.Match(pattern, argoApp); err != nil || !ok {
					continue
				}
			}
			images, _ := ref["images"].([]any)
			for _, im := range images {
				img, _ := im.(map[string]any)
				name, _ := img["imageName"].(string)
				if ref, ok := parseImageRef(name); ok && names.has(ref.Name) {
					out = append(out, fmt.Sprintf("NOT HELD: the ImageUpdater %v (%s, applicationRefs namePattern %q) may still change %s: shipbot holds Image Updater's annotations only, and a name pattern may cover other apps; hold it by hand (commonUpdateSettings.ignoreTags) if it selects this app", meta["name"], p, pattern, ref.Name))
				}
			}
		}
	}
	return out
}
