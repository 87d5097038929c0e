package edit

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// A tag change and the digest pins of the app's image:
//
//   - Where the image is pinned by digest (a kustomize images entry's
//     digest:, an image reference "name:tag@sha256:…", a Helm value at
//     DigestPath), the pin is never dropped silently: with the new tag's
//     digest (SetImageOptions.Digest) the pin is kept and updated to it; without
//     it the pin is removed, because the old digest names the old image
//     whatever the tag says, and the removal is reported as a PinChange the
//     plan shows.
//   - Where the image isn't pinned, no pin is added: pinning is the repo's
//     choice, not a side effect of a tag change.

// ErrNoTag: the tag isn't written where the layout keeps it, so the image
// runs a default the edit can't see (Kubernetes pulls "latest" for an
// untagged image; a Helm chart usually falls back to its appVersion). The
// message says which. SetTag and SetImage write the tag there. It wraps
// ErrNotFound.
var ErrNoTag = fmt.Errorf("no tag written: %w", ErrNotFound)

func noTagf(format string, a ...any) error {
	return &sentinelError{fmt.Sprintf(format, a...), ErrNoTag}
}

// SetImageOptions says what SetImage writes.
type SetImageOptions struct {
	// Tag is the new tag (OCI tag grammar). Required.
	Tag string
	// Digest is the digest the registry gives for Tag ("sha256:…"), if
	// known. Where the image is pinned by digest, the pin is updated to it;
	// without it the pin is removed (and reported). It never adds a pin.
	Digest string
}

// Validate checks the options.
func (o SetImageOptions) Validate() error {
	if o.Tag == "" {
		return errors.New("empty tag")
	}
	if o.Digest != "" && !validDigest(o.Digest) {
		return fmt.Errorf("invalid digest %q", o.Digest)
	}
	return nil
}

// PinChange is what a tag change did to one digest pin.
type PinChange struct {
	Where string // file and field, e.g. "apps/x/kustomization.yaml (images[0].digest)"
	Old   string // the digest the pin held
	New   string // the digest it holds now; "" if the pin was removed
}

// Dropped reports whether the pin was removed.
func (p PinChange) Dropped() bool { return p.New == "" }

// String is the sentence a plan shows.
func (p PinChange) String() string {
	if p.Dropped() {
		return fmt.Sprintf("digest %s dropped at %s: the new tag is not pinned (its digest was not resolved)", p.Old, p.Where)
	}
	return fmt.Sprintf("digest pin at %s updated: %s -> %s", p.Where, p.Old, p.New)
}

// ImageEdit is the result of SetImage.
type ImageEdit struct {
	Changes []Change
	// Pins are the digest pins the edit updated or removed, in file order;
	// empty when the image isn't pinned.
	Pins []PinChange
}

// Notes returns one sentence per pin change, for the plan.
func (e ImageEdit) Notes() []string {
	var out []string
	for _, p := range e.Pins {
		out = append(out, p.String())
	}
	return out
}

// SetImage returns the changes that deploy opts.Tag at loc and what they do
// to digest pins (see above). Like SetTag, it fails with ErrUnchanged if
// loc already deploys the tag (and, where pinned, the digest), with
// ErrNotFound if the target isn't there.
func SetImage(f Files, loc Location, opts SetImageOptions) (ImageEdit, error) {
	loc, err := normalize(loc)
	if err != nil {
		return ImageEdit{}, err
	}
	if err := opts.Validate(); err != nil {
		return ImageEdit{}, err
	}
	if loc.Layout == LayoutHelm && loc.DigestPath != "" {
		if _, err := splitPath(loc.DigestPath); err != nil {
			return ImageEdit{}, err
		}
	}
	var e ImageEdit
	switch loc.Layout {
	case LayoutKustomize:
		e, err = kustomizeSetImage(f, loc, opts)
	case LayoutHelm:
		e, err = helmSetImage(f, loc, opts)
	case LayoutApplication:
		e, err = applicationSetImage(f, loc, opts)
	default:
		e, err = manifestSetImage(f, loc, opts)
	}
	if err != nil {
		return ImageEdit{}, err
	}
	after := withChanges(f, e.Changes)
	if got, err := CurrentTag(after, loc); err != nil || got != opts.Tag {
		return ImageEdit{}, fmt.Errorf("after the edit the tag at %s reads %q (%v), not %q; not applying", loc.Path, got, err, opts.Tag)
	}
	for _, p := range e.Pins {
		if p.New != "" && p.New != opts.Digest {
			return ImageEdit{}, fmt.Errorf("after the edit the pin at %s holds %s, not %s; not applying", p.Where, p.New, opts.Digest)
		}
	}
	return e, nil
}

// pinFor returns the pin change of a field holding old when the new tag's
// digest is digest; ok is false when the field isn't a pin.
func pinFor(where, old, digest string) (p PinChange, ok bool) {
	if old == "" {
		return PinChange{}, false
	}
	return PinChange{Where: where, Old: old, New: digest}, true
}

// ---- kustomize ---------------------------------------------------------------

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
		imgs, err := r.images(loc.Image)
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
	images, _, entry, err := findImageEntry(y, loc.Image)
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

// kustomizeSetImage does what `kustomize edit set image NAME=NAME:TAG[@DIGEST]`
// does: set newTag on the entry (keeping newName), or add an entry; a
// digest pin (on the entry, or on the image the base runs) is updated or
// removed and reported.
func kustomizeSetImage(f Files, loc Location, opts SetImageOptions) (ImageEdit, error) {
	y, err := readKustomization(f, loc.Path)
	if err != nil {
		return ImageEdit{}, err
	}
	images, keyIdx, entry, err := findImageEntry(y, loc.Image)
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

// unchangedPinsOut drops the pins an edit left as they were.
func unchangedPinsOut(pins []PinChange) []PinChange {
	var out []PinChange
	for _, p := range pins {
		if p.Old != p.New {
			out = append(out, p)
		}
	}
	return out
}
