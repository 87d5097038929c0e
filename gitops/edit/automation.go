package edit

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Third-party image automation writes an app's tag on its own: Argo CD Image
// Updater (annotations on the Application) and Flux's image automation
// (setter markers next to the tag). A pin (a rollback) holds it back in
// git, in the commit of the pin, for the one app in the one environment,
// and the unpin restores it byte for byte. Each tool is one
// implementation, in its own file, behind automation:
// automation_imageupdater.go, automation_flux.go. A tool changes only the
// configuration that refers to the app's image in that environment and
// leaves everything else byte-identical; what it holds carries what it
// needs to restore it (a held annotation, a held marker), so the unpin
// reads the repo, not a copy.

// Tools whose automation a pin holds.
const (
	ToolImageUpdater = "argocd-image-updater"
	ToolFlux         = "flux"
)

// Held is one piece of automation a pin holds back: which tool, in which
// file, and what (an Application and image alias, a Flux ImagePolicy).
type Held struct {
	Tool string `yaml:"tool"`
	Path string `yaml:"path"`
	// Ref is "APPLICATION/ALIAS" for the Image Updater (the Application's
	// metadata.name, the image's alias), "NAMESPACE:POLICY" for Flux.
	Ref string `yaml:"ref"`
}

// String is the held automation as a plan and a commit say it.
func (h Held) String() string {
	switch h.Tool {
	case ToolImageUpdater:
		app, alias, _ := strings.Cut(h.Ref, "/")
		return fmt.Sprintf("Argo CD Image Updater for image %s of Application %s (%s)", alias, app, h.Path)
	case ToolFlux:
		return fmt.Sprintf("Flux image automation of ImagePolicy %s (%s)", h.Ref, h.Path)
	}
	return fmt.Sprintf("%s %s (%s)", h.Tool, h.Ref, h.Path)
}

// HoldOptions say what a hold is about.
type HoldOptions struct {
	// Changes is the image edit the pin goes with (the rollback's): the
	// automation is held on top of it, and the fields it changed are the
	// app's tag in this environment.
	Changes []Change
	// ArgoApp is the name of the app's Argo CD Application in this
	// environment ("" = not configured): an Application elsewhere in the
	// repo with that name is the app's.
	ArgoApp string
	// Held is what an earlier pin of the app holds already: kept.
	Held []Held
}

// AutomationEdit is what holding or releasing automation changes.
type AutomationEdit struct {
	// Changes are on top of HoldOptions.Changes (Old is the content with
	// them applied); MergeChanges joins the two.
	Changes []Change
	// Held is everything the pin holds after the edit (hold), or what was
	// restored (release).
	Held []Held
	// Warnings are automation found and not held or not restored: the
	// plan says them loudly.
	Warnings []string
}

// automation is one image automation tool.
type automation interface {
	tool() string
	// hold returns the changes that stop the tool from changing the tag
	// of the app at loc in f, and what it holds (also what was held
	// already).
	hold(f Files, loc Location, o HoldOptions) (AutomationEdit, error)
	// release restores what held (all of this tool) holds in f.
	release(f Files, held []Held) (AutomationEdit, error)
}

// automations are the tools a pin holds, in order.
func automations() []automation {
	return []automation{imageUpdater{}, fluxSetters{}}
}

// HoldAutomation returns the changes, on top of o.Changes, that hold back
// every image automation of the app at loc in f: nothing when the app has
// none (a pin is then just its record).
func HoldAutomation(f Files, loc Location, o HoldOptions) (AutomationEdit, error) {
	loc, _, err := normalize(loc)
	if err != nil {
		return AutomationEdit{}, err
	}
	cur := withChangesTree(f, o.Changes)
	var out AutomationEdit
	for _, a := range automations() {
		ho := o
		ho.Held = heldBy(o.Held, a.tool())
		e, err := a.hold(cur, loc, ho)
		if err != nil {
			return AutomationEdit{}, fmt.Errorf("hold %s: %w", a.tool(), err)
		}
		out.Changes = MergeChanges(out.Changes, e.Changes)
		out.Held = appendHeld(out.Held, e.Held...)
		out.Warnings = append(out.Warnings, e.Warnings...)
		cur = withChangesTree(cur, e.Changes)
	}
	if err := checkRelease(withChangesTree(f, o.Changes), cur, out, o.Held); err != nil {
		return AutomationEdit{}, err
	}
	return out, nil
}

// checkRelease refuses a hold that its release would not undo byte for
// byte: releasing what the hold newly holds, on the tree after it (after),
// must give back every file it changed as it was (before).
func checkRelease(before, after Files, hold AutomationEdit, already []Held) error {
	var fresh []Held
	for _, h := range hold.Held {
		if len(appendHeld(already, h)) > len(already) {
			fresh = append(fresh, h)
		}
	}
	rel, err := ReleaseAutomation(after, fresh)
	if err != nil {
		return fmt.Errorf("the hold could not be undone: %w", err)
	}
	back := withChanges(after, rel.Changes)
	for _, c := range hold.Changes {
		want, err := before.ReadFile(c.Path)
		if err != nil {
			return err
		}
		got, err := back.ReadFile(c.Path)
		if err != nil || string(got) != string(want) {
			return fmt.Errorf("%w: holding the automation in %s could not be undone byte for byte; not holding it", errUnsupported, c.Path)
		}
	}
	return nil
}

// ReleaseAutomation returns the changes that restore what held holds in f,
// exactly as it was before the hold.
func ReleaseAutomation(f Files, held []Held) (AutomationEdit, error) {
	var out AutomationEdit
	cur := f
	known := map[string]bool{}
	for _, a := range automations() {
		known[a.tool()] = true
		mine := heldBy(held, a.tool())
		if len(mine) == 0 {
			continue
		}
		e, err := a.release(cur, mine)
		if err != nil {
			return AutomationEdit{}, fmt.Errorf("release %s: %w", a.tool(), err)
		}
		out.Changes = MergeChanges(out.Changes, e.Changes)
		out.Held = append(out.Held, e.Held...)
		out.Warnings = append(out.Warnings, e.Warnings...)
		cur = withChanges(cur, e.Changes)
	}
	for _, h := range held {
		if !known[h.Tool] {
			out.Warnings = append(out.Warnings, fmt.Sprintf("%s: unknown automation tool %q, not restored", h, h.Tool))
		}
	}
	return out, nil
}

// MergeChanges returns first followed by then, where then was computed on
// the tree first leaves: a file both change gets first's Old and then's
// New. Sorted by path.
func MergeChanges(first, then []Change) []Change {
	out := append([]Change(nil), first...)
	for _, c := range then {
		merged := false
		for i := range out {
			if cleanPath(out[i].Path) == cleanPath(c.Path) {
				out[i].New = c.New
				merged = true
				break
			}
		}
		if !merged {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func heldBy(held []Held, tool string) []Held {
	var out []Held
	for _, h := range held {
		if h.Tool == tool {
			out = append(out, h)
		}
	}
	return out
}

// appendHeld appends the held not in list yet.
func appendHeld(list []Held, more ...Held) []Held {
	for _, h := range more {
		dup := false
		for _, x := range list {
			if x == h {
				dup = true
				break
			}
		}
		if !dup {
			list = append(list, h)
		}
	}
	return list
}

// yamlFile reports whether p is a YAML file by its name.
func yamlFile(p string) bool {
	ext := strings.ToLower(path.Ext(p))
	return ext == ".yaml" || ext == ".yml"
}

// readOptional reads p; nil without error when it does not exist.
func readOptional(f Files, p string) ([]byte, error) {
	b, err := f.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// sameValues checks that an edit of a YAML file changed no value (only
// comments): the safety net of edits that touch comments only.
func sameValues(p string, before, after []byte) error {
	a, err := decodeValues(before)
	if err != nil {
		return fmt.Errorf("parse %s: %w", p, err)
	}
	b, err := decodeValues(after)
	if err != nil {
		return fmt.Errorf("edit %s: the edited file would not parse (%v); left unchanged", p, err)
	}
	if !equalValues(a, b) {
		return fmt.Errorf("edit %s: %w: the edit would change a value, not only a comment; file left unchanged", p, errUnsupported)
	}
	return nil
}
