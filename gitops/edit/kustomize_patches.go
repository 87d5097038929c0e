package edit

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// A kustomize restart writes strategic-merge patches shipbot owns in the
// overlay and lists them under the kustomization's patches, one entry per
// workload, each targeting its workload by kind and name (and namespace when
// the resource sets one):
//
//	patches:
//	- path: shipbot-restart.yaml
//	  target:
//	    kind: Deployment
//	    name: checkout
//
// The workloads are found by reading the resources the overlay builds from
// as kustomize would see them: the overlay's resources, bases and components,
// followed through directories and files inside the repo (remote bases are
// not fetched), with container images rewritten by the images: newName of
// every kustomization on the way (see selectRestart for which kinds).
// An entry of the old blanket form (target: {kind: Deployment}, every
// Deployment of the overlay) is rewritten into the exact form in place.

// restartPatchFile is the patch that sets the pod-template annotation of
// the Deployments, StatefulSets and DaemonSets its entries target.
const restartPatchFile = "shipbot-restart.yaml"

// rolloutPatchFile is the patch that sets spec.restartAt of the Argo
// Rollouts its entries target.
const rolloutPatchFile = "shipbot-restart-rollout.yaml"

// restartPatch is the content of a new restart patch; %s is the quoted
// value. With a target, kustomize applies it to the targeted workload
// whatever its kind, keeping the workload's own kind and name.
const restartPatch = "# Managed by shipbot: bumping this annotation restarts the pods. Edit with `/ship restart`.\n" +
	`apiVersion: apps/v1
kind: Deployment
metadata:
  name: shipbot-restart ` + exactTargetComment + `
spec:
  template:
    metadata:
      annotations:
        ` + RestartAnnotation + `: %s
`

// rolloutPatch is the content of a new Rollout restart patch.
const rolloutPatch = "# Managed by shipbot: bumping restartAt makes Argo Rollouts restart the pods. Edit with `/ship restart`.\n" +
	`apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: shipbot-restart ` + exactTargetComment + `
spec:
  restartAt: %s
`

const (
	// blanketComment is what older shipbot versions wrote in the patch; it
	// is replaced when the patch's entries are made exact.
	blanketComment     = "# kustomize applies this patch to every Deployment of the overlay (see target)"
	exactTargetComment = "# kustomize applies this patch to the workloads its patches entries target (kind and name)"
)

// restartPatchKeys is where the annotation sits in the restart patch.
var restartPatchKeys = []string{"spec", "template", "metadata", "annotations", RestartAnnotation}

// shipbotPatch is one of the patch files shipbot owns.
type shipbotPatch struct {
	file    string
	keys    []string
	content string
	field   string // for messages
}

var (
	annotationPatch = shipbotPatch{restartPatchFile, restartPatchKeys, restartPatch, RestartAnnotation}
	restartAtPatch  = shipbotPatch{rolloutPatchFile, rolloutRestartKeys, rolloutPatch, "spec.restartAt"}
)

func patchFor(r *resource) shipbotPatch {
	if r.rollout() {
		return restartAtPatch
	}
	return annotationPatch
}

// ---- reading the resources ------------------------------------------------

// kresources reads the resources of an overlay.
type kresources struct {
	f     Files
	res   []*resource
	notes []string // what wasn't read, for messages
	seen  map[string]bool
}

// isRemote reports whether a resources entry names a remote base (a URL or
// a go-getter style repository) rather than a path in the repo.
func isRemote(s string) bool {
	for _, p := range []string{"git@", "git::", "github.com/", "gitlab.com/", "bitbucket.org/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return strings.Contains(s, "://") || strings.Contains(s, "?ref=") || strings.Contains(s, "?version=")
}

// imageRenames returns the images: entries of a kustomization that rename
// an image (name -> newName).
func imageRenames(y *yfile) map[string]string {
	m := map[string]string{}
	images, _ := get(y.root(0), "images")
	if images == nil || images.Kind != yaml.SequenceNode {
		return m
	}
	for _, it := range images.Content {
		n, _ := get(it, "name")
		nn, _ := get(it, "newName")
		name, ok1 := scalarString(n)
		newName, ok2 := scalarString(nn)
		if ok1 && ok2 {
			m[name] = newName
		}
	}
	return m
}

// walk reads the kustomization in dir (y, already parsed) and what it lists.
// renames are the rewrites of the kustomizations that include dir.
// kusts are those kustomizations, innermost first.
func (b *kresources) walk(dir string, y *yfile, renames []map[string]string, kusts []*yfile) error {
	if b.seen[dir] {
		return nil
	}
	b.seen[dir] = true
	renames = append([]map[string]string{imageRenames(y)}, renames...)
	kusts = append([]*yfile{y}, kusts...)
	root := y.root(0)
	for _, key := range []string{"resources", "bases", "components"} {
		seq, err := get(root, key)
		if err != nil {
			return fmt.Errorf("%s: %w", y.path, err)
		}
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for _, it := range seq.Content {
			s, ok := scalarString(it)
			if !ok {
				continue
			}
			if isRemote(s) {
				b.notes = append(b.notes, fmt.Sprintf("the remote base %s was not read", s))
				continue
			}
			p := path.Join(dir, s)
			if p == ".." || strings.HasPrefix(p, "../") {
				b.notes = append(b.notes, fmt.Sprintf("%s (in %s) is outside the repo", s, y.path))
				continue
			}
			// A file first: reading p/kustomization.yaml when p is a file
			// is not an fs.ErrNotExist in every Files.
			data, err := b.f.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				ky, kerr := readKustomization(b.f, p)
				switch {
				case kerr == nil:
					if err := b.walk(p, ky, renames, kusts); err != nil {
						return err
					}
				case errors.Is(kerr, ErrNotFound):
					b.notes = append(b.notes, fmt.Sprintf("%s (in %s) is not in the repo", p, y.path))
				default:
					return kerr
				}
				continue
			}
			if err != nil {
				return err
			}
			ry, err := parseYAML(p, data)
			if err != nil {
				return err
			}
			for d := range ry.docs {
				r, err := readResource(ry, d)
				if err != nil {
					return err
				}
				if r != nil {
					r.renames, r.kusts = renames, kusts
					b.res = append(b.res, r)
				}
			}
		}
	}
	return nil
}

// kustomizeRestartTargets returns the workloads of the overlay a restart
// rolls, and every resource the overlay builds; ErrNoWorkload if no
// workload runs the image.
func kustomizeRestartTargets(f Files, loc Location, y *yfile) (targets, all []*resource, err error) {
	b := &kresources{f: f, seen: map[string]bool{}}
	if err := b.walk(loc.Path, y, nil, nil); err != nil {
		return nil, nil, err
	}
	sel, err := selectRestart(b.res, loc.names())
	if err != nil {
		return nil, nil, err
	}
	if len(sel.targets) == 0 {
		return nil, b.res, sel.noWorkload(loc.Path, loc.Image, b.notes)
	}
	return sel.targets, b.res, nil
}

// ---- the patches entries ------------------------------------------------------

// patchEntry is an entry of the kustomization's patches that applies one of
// shipbot's patch files.
type patchEntry struct {
	idx    int
	item   *yaml.Node
	file   string
	target *yaml.Node // nil if the entry has no target
}

// wantEntry is the exact entry for one workload.
type wantEntry struct {
	patch                 shipbotPatch
	kind, name, namespace string
	desc                  string
}

func (w wantEntry) targetFields() map[string]string {
	m := map[string]string{"kind": w.kind, "name": w.name}
	if w.namespace != "" {
		m["namespace"] = w.namespace
	}
	return m
}

func (w wantEntry) targetNode() *newNode {
	kv := []any{"kind", newScalar(w.kind, false), "name", newScalar(w.name, false)}
	if w.namespace != "" {
		kv = append(kv, "namespace", newScalar(w.namespace, false))
	}
	return newMap(kv...)
}

// exact reports whether e applies w's patch to exactly w's workload.
func (e patchEntry) exact(w wantEntry) bool {
	return e.file == w.patch.file && e.targets(w)
}

// targets reports whether e's target is exactly w's workload, whatever
// the file.
func (e patchEntry) targets(w wantEntry) bool {
	if e.target == nil || e.target.Kind != yaml.MappingNode {
		return false
	}
	want := w.targetFields()
	if len(e.target.Content) != 2*len(want) {
		return false
	}
	for i := 0; i+1 < len(e.target.Content); i += 2 {
		v, ok := scalarString(e.target.Content[i+1])
		if !ok || want[e.target.Content[i].Value] != v {
			return false
		}
	}
	return true
}

// foreign reports whether e targets, by kind and name, a workload of the
// build that is not one of ours: another app's restart entry.
// An entry of the old blanket form (a target with a kind and no name) that
// reaches a workload of that kind which is not ours is foreign too:
// narrowing it would take the annotation off that workload, which rolls
// its pods; it is left as it is, and this app's own entries, appended
// after it, win for the app's workloads.
func (e patchEntry) foreign(ours []wantEntry, all []*resource, exists func(file string) bool) bool {
	for _, w := range ours {
		if e.targets(w) {
			return false
		}
	}
	ourWorkload := func(r *resource) bool {
		for _, w := range ours {
			if w.kind == r.kind && w.name == r.name && w.namespace == r.namespace {
				return true
			}
		}
		return false
	}
	blanketKind := ""
	if e.target != nil && e.target.Kind == yaml.MappingNode {
		kn, _ := get(e.target, "kind")
		nn, _ := get(e.target, "name")
		kind, _ := scalarString(kn)
		// A blanket entry whose patch file is missing applies nothing
		// (the overlay doesn't build): narrowing it rolls no one else.
		if name, _ := scalarString(nn); name == "" && exists(e.file) {
			blanketKind = kind
		}
	}
	for _, r := range all {
		if e.targets(wantEntry{kind: r.kind, name: r.name, namespace: r.namespace}) {
			return true
		}
		if blanketKind != "" && r.kind == blanketKind && restartKinds[r.kind] && !ourWorkload(r) {
			return true
		}
	}
	return false
}

// restartKinds are the kinds whose pod template a restart annotation rolls.
var restartKinds = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true}

func (e patchEntry) String() string {
	if e.target == nil {
		return fmt.Sprintf("patches[%d] (%s, no target)", e.idx, e.file)
	}
	var parts []string
	for i := 0; i+1 < len(e.target.Content); i += 2 {
		v, _ := scalarString(e.target.Content[i+1])
		parts = append(parts, e.target.Content[i].Value+": "+v)
	}
	return fmt.Sprintf("patches[%d] (%s, target {%s})", e.idx, e.file, strings.Join(parts, ", "))
}

// shipbotFile returns which of shipbot's patch files p names, "" if none:
// the overlay's shared ones (restartPatchFile, rolloutPatchFile) or an
// app's own (shipbot-restart.<app>.yaml, shipbot-restart-rollout.<app>.yaml).
func shipbotFile(p string) string {
	c := path.Clean(p)
	if c == restartPatchFile || c == rolloutPatchFile {
		return c
	}
	if path.Dir(c) != "." || !strings.HasSuffix(c, ".yaml") {
		return ""
	}
	for _, prefix := range []string{"shipbot-restart-rollout.", "shipbot-restart."} {
		if slug, ok := strings.CutPrefix(strings.TrimSuffix(c, ".yaml"), prefix); ok && validSlug(slug) {
			return c
		}
	}
	return ""
}

// patchOfFile returns the patch a shipbot file holds.
func patchOfFile(file string) shipbotPatch {
	p := annotationPatch
	if strings.HasPrefix(file, "shipbot-restart-rollout") {
		p = restartAtPatch
	}
	p.file = file
	return p
}

// ownFile is the app's own patch file of the kind of p: used when the
// overlay's shared file already restarts another app's workloads, so that
// bumping it would restart them too.
func ownFile(p shipbotPatch, image string) string {
	return strings.TrimSuffix(p.file, ".yaml") + "." + slug(image) + ".yaml"
}

// slug is the last path element of an image name, as a file name part.
func slug(image string) string {
	s := image[strings.LastIndex(image, "/")+1:]
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "app"
	}
	return b.String()
}

func validSlug(s string) bool {
	return s != "" && s == slug(s)
}

// shipbotEntries returns the entries of patches that apply shipbot's files.
func shipbotEntries(y *yfile) ([]patchEntry, error) {
	seq, err := get(y.root(0), "patches")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", y.path, err)
	}
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil, nil
	}
	var out []patchEntry
	for i, it := range seq.Content {
		pn, err := get(it, "path")
		if err != nil {
			return nil, fmt.Errorf("%s: patches[%d]: %w", y.path, i, err)
		}
		p, _ := scalarString(pn)
		file := shipbotFile(p)
		if file == "" {
			continue
		}
		tn, err := get(it, "target")
		if err != nil {
			return nil, fmt.Errorf("%s: patches[%d]: %w", y.path, i, err)
		}
		out = append(out, patchEntry{idx: i, item: it, file: file, target: tn})
	}
	return out, nil
}

// strategicMergeListed returns the shipbot files the legacy
// patchesStrategicMerge lists.
func strategicMergeListed(y *yfile) ([]string, error) {
	seq, err := get(y.root(0), "patchesStrategicMerge")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", y.path, err)
	}
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil, nil
	}
	var out []string
	for _, it := range seq.Content {
		if p, ok := scalarString(it); ok && shipbotFile(p) != "" {
			out = append(out, shipbotFile(p))
		}
	}
	return out, nil
}

// retarget rewrites the stale entry e into the exact entry w.
func retarget(y *yfile, e patchEntry, w wantEntry) error {
	gp := []any{"patches", e.idx}
	if e.item.Kind != yaml.MappingNode {
		return fmt.Errorf("patches[%d] is not a mapping", e.idx)
	}
	if e.file != w.patch.file {
		if _, err := y.setPath(0, gp, e.item, []string{"path"}, w.patch.file, modeTag); err != nil {
			return err
		}
	}
	if e.target == nil {
		return y.insertEntry(0, gp, e.item, "target", w.targetNode())
	}
	if isNull(e.target) {
		ti, err := lookup(e.item, "target")
		if err != nil {
			return err
		}
		return y.fillNull(0, gp, e.item, ti, w.targetNode())
	}
	if e.target.Kind != yaml.MappingNode {
		return fmt.Errorf("patches[%d].target is a %s, not a mapping", e.idx, kindName(e.target))
	}
	tp := append(gp, "target")
	want := w.targetFields()
	// Drop what doesn't belong in an exact target (labelSelector, group,
	// version, a namespace the resource doesn't set), last first so the
	// indexes stay valid.
	for i := len(e.target.Content) - 2; i >= 0; i -= 2 {
		if _, ok := want[e.target.Content[i].Value]; !ok {
			if err := y.deleteEntry(0, tp, e.target, i); err != nil {
				return err
			}
		}
	}
	for _, k := range []string{"kind", "name", "namespace"} {
		if v, ok := want[k]; ok {
			if _, err := y.setPath(0, tp, e.target, []string{k}, v, modeTag); err != nil {
				return err
			}
		}
	}
	return nil
}

// addEntries appends new exact entries to the kustomization's patches.
func addEntries(y *yfile, ws []wantEntry) error {
	var items []*newNode
	for _, w := range ws {
		items = append(items, newMap("path", newScalar(w.patch.file, false), "target", w.targetNode()))
	}
	root := y.root(0)
	if root == nil {
		return y.appendToFile("patches", newSeq(items...))
	}
	k, err := lookup(root, "patches")
	if err != nil {
		return err
	}
	if k < 0 {
		if hasMergeKey(root) {
			return fmt.Errorf("%w: the kustomization has a merge key (<<)", errUnsupported)
		}
		return y.insertEntry(0, nil, root, "patches", newSeq(items...))
	}
	switch v := root.Content[k+1]; {
	case isNull(v):
		return y.fillNull(0, []any{"patches"}, root, k, newSeq(items...))
	case v.Kind == yaml.SequenceNode:
		for _, it := range items {
			if err := y.appendItem(0, []any{"patches"}, v, it); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("patches is a %s, not a list", kindName(v))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
