package edit

import (
	"errors"
	"fmt"
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
	loc, l, err := normalize(loc)
	if err != nil {
		return ImageEdit{}, err
	}
	if err := opts.Validate(); err != nil {
		return ImageEdit{}, err
	}
	e, err := l.setImage(f, loc, opts)
	if err != nil {
		return ImageEdit{}, err
	}
	// Read the result back through the layout as a last check.
	if got, err := l.currentTag(withChanges(f, e.Changes), loc); err != nil || got != opts.Tag {
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
