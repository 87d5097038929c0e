package edit

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// fluxSetters holds Flux's image automation. Flux's ImageUpdateAutomation
// writes the tag where a setter marker sits, a line comment on the field:
//
//	newTag: 1.4.2 # {"$imagepolicy": "flux-system:checkout:tag"}
//	image: registry.example.com/checkout:1.4.2 # {"$imagepolicy": "flux-system:checkout"}
//
// A marker names an ImagePolicy (NAMESPACE:NAME) and, optionally, the part
// of the image it writes (:tag, :name, :digest).
//
// The hold renames the marker's key, "$imagepolicy" becoming
// "$imagepolicy-held-by-shipbot": the automation no longer finds a marker
// on that field and leaves it alone, and every other field, of other apps
// and other environments (even those that follow the same ImagePolicy),
// keeps its marker. Pinning the ImagePolicy instead (spec.policy, or a
// filter that only matches the pinned tag) would stop it for every field
// that follows the policy: usually every environment of the app, since one
// policy tracks one image. Releasing renames the key back: the marker is
// byte for byte what it was.
//
// Which markers are the app's in this environment: those on the lines the
// pin's image edit changed (the app's tag field), and, in the same file,
// the other markers of the same ImagePolicy (the :name part of the same
// image). A file the edit did not change is not looked at.
type fluxSetters struct{}

const (
	fluxKey     = `"$imagepolicy"`
	fluxHeldKey = `"$imagepolicy-held-by-shipbot"`
)

// fluxMarker matches a marker, held or not, inside a comment: the key and
// the policy reference.
var fluxMarker = regexp.MustCompile(`\{\s*("\$imagepolicy(?:-held-by-shipbot)?")\s*:\s*"([^"\s]+)"\s*\}`)

func (fluxSetters) tool() string { return ToolFlux }

// fluxPolicy is the ImagePolicy a marker reference names: "ns:name" of
// "ns:name:tag".
func fluxPolicy(ref string) string {
	parts := strings.SplitN(ref, ":", 3)
	if len(parts) >= 2 {
		return parts[0] + ":" + parts[1]
	}
	return ref
}

// fluxMark is one marker found on a line.
type fluxMark struct {
	line       int
	start, end int // of the key, in the file
	held       bool
	policy     string
}

// fluxMarks returns the markers in the comments of src.
func fluxMarks(src []byte) []fluxMark {
	var out []fluxMark
	off := 0
	for i, line := range strings.SplitAfter(string(src), "\n") {
		if c := commentStart(line); c >= 0 {
			for _, m := range fluxMarker.FindAllStringSubmatchIndex(line[c:], -1) {
				key := line[c+m[2] : c+m[3]]
				out = append(out, fluxMark{
					line: i, start: off + c + m[2], end: off + c + m[3],
					held: key == fluxHeldKey, policy: fluxPolicy(line[c+m[4] : c+m[5]]),
				})
			}
		}
		off += len(line)
	}
	return out
}

// commentStart returns where the comment of a YAML line starts, -1 if it
// has none: a # at the start or after a blank, outside quotes.
func commentStart(line string) int {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				if quote == '\'' && i+1 < len(line) && line[i+1] == '\'' {
					i++ // '' in a single-quoted scalar
					continue
				}
				quote = 0
			} else if quote == '"' && c == '\\' {
				i++
			}
		case c == '#' && (i == 0 || isBlank(line[i-1])):
			return i
		case (c == '"' || c == '\'') && (i == 0 || strings.IndexByte(" \t[{,:-", line[i-1]) >= 0):
			quote = c
		}
	}
	return -1
}

// changedLines returns the indexes of the lines of after that an edit from
// before changed or added.
func changedLineSet(before, after []byte) map[int]bool {
	out := map[int]bool{}
	m := difflib.NewMatcher(strings.SplitAfter(string(before), "\n"), strings.SplitAfter(string(after), "\n"))
	for _, op := range m.GetOpCodes() {
		if op.Tag == 'r' || op.Tag == 'i' {
			for j := op.J1; j < op.J2; j++ {
				out[j] = true
			}
		}
	}
	return out
}

func (fluxSetters) hold(f Files, _ Location, o HoldOptions) (AutomationEdit, error) {
	e := AutomationEdit{Held: append([]Held(nil), o.Held...)}
	for _, c := range o.Changes {
		if c.New == nil || !yamlFile(c.Path) {
			continue
		}
		src, err := f.ReadFile(c.Path) // the file with the image edit
		if err != nil {
			return AutomationEdit{}, err
		}
		marks := fluxMarks(src)
		changed := changedLineSet(c.Old, src)
		policies := map[string]bool{}
		for _, m := range marks {
			if changed[m.line] {
				policies[m.policy] = true
			}
		}
		if len(policies) == 0 {
			continue
		}
		var b strings.Builder
		prev := 0
		for _, m := range marks {
			if !policies[m.policy] || m.held {
				continue
			}
			b.Write(src[prev:m.start])
			b.WriteString(fluxHeldKey)
			prev = m.end
		}
		b.Write(src[prev:])
		out := []byte(b.String())
		names := make([]string, 0, len(policies))
		for p := range policies {
			names = append(names, p)
		}
		sort.Strings(names)
		for _, p := range names {
			e.Held = appendHeld(e.Held, Held{Tool: ToolFlux, Path: cleanPath(c.Path), Ref: p})
		}
		if string(out) == string(src) {
			continue // held already
		}
		if err := sameValues(c.Path, src, out); err != nil {
			return AutomationEdit{}, err
		}
		e.Changes = append(e.Changes, Change{Path: c.Path, Old: src, New: out})
	}
	return e, nil
}

func (fluxSetters) release(f Files, held []Held) (AutomationEdit, error) {
	var e AutomationEdit
	byPath := map[string]map[string]bool{}
	var paths []string
	for _, h := range held {
		if byPath[h.Path] == nil {
			byPath[h.Path] = map[string]bool{}
			paths = append(paths, h.Path)
		}
		byPath[h.Path][h.Ref] = true
	}
	sort.Strings(paths)
	for _, p := range paths {
		src, err := readOptional(f, p)
		if err != nil {
			return AutomationEdit{}, err
		}
		found := map[string]bool{}
		var b strings.Builder
		prev := 0
		for _, m := range fluxMarks(src) {
			if !m.held || !byPath[p][m.policy] {
				continue
			}
			found[m.policy] = true
			b.Write(src[prev:m.start])
			b.WriteString(fluxKey)
			prev = m.end
		}
		b.Write(src[prev:])
		refs := make([]string, 0, len(byPath[p]))
		for r := range byPath[p] {
			refs = append(refs, r)
		}
		sort.Strings(refs)
		for _, r := range refs {
			h := Held{Tool: ToolFlux, Path: p, Ref: r}
			if !found[r] {
				e.Warnings = append(e.Warnings, fmt.Sprintf("%s: no held marker found (changed by hand?), so nothing was restored there; check the file's $imagepolicy markers", h))
				continue
			}
			e.Held = append(e.Held, h)
		}
		out := []byte(b.String())
		if string(out) == string(src) {
			continue
		}
		if err := sameValues(p, src, out); err != nil {
			return AutomationEdit{}, err
		}
		e.Changes = append(e.Changes, Change{Path: p, Old: src, New: out})
	}
	return e, nil
}
