package edit

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// pathStep is one step of a values path: a mapping key, or (index >= 0) an
// index into a sequence.
type pathStep struct {
	key   string
	index int // -1 for a key step
}

func (s pathStep) isIndex() bool { return s.index >= 0 }

// valuesPath is a parsed values path.
type valuesPath struct {
	text  string
	steps []pathStep
}

// ValidateValuesPath checks a values path (tagPath, annotationsPath,
// digestPath): seg(.seg)*, where a seg is a plain key (letters, digits, _
// and -), or a key quoted as "..." or '...' that may contain dots, followed by
// any number of [N] list indexes, e.g. server.extraContainers[0].image.tag
// or labels."app.kubernetes.io/version".
func ValidateValuesPath(p string) error {
	_, err := parseValuesPath(p)
	return err
}

// ValuesPathError is a values path that doesn't parse: Reason, at byte
// Offset of Path.
type ValuesPathError struct {
	Path   string
	Offset int
	Reason string
}

func (e *ValuesPathError) Error() string {
	return fmt.Sprintf("invalid values path %q at offset %d: %s", e.Path, e.Offset, e.Reason)
}

func plainKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// parseValuesPath parses a values path; see ValidateValuesPath.
func parseValuesPath(p string) (valuesPath, error) {
	bad := func(i int, format string, a ...any) (valuesPath, error) {
		return valuesPath{}, &ValuesPathError{Path: p, Offset: i, Reason: fmt.Sprintf(format, a...)}
	}
	if p == "" {
		return bad(0, "it is empty")
	}
	vp := valuesPath{text: p}
	i := 0
	for {
		// A key: quoted or plain.
		switch {
		case i < len(p) && (p[i] == '"' || p[i] == '\''):
			q := p[i]
			j := strings.IndexByte(p[i+1:], q)
			if j < 0 {
				return bad(i, "unterminated %c quote", q)
			}
			if j == 0 {
				return bad(i, "empty quoted key")
			}
			vp.steps = append(vp.steps, pathStep{key: p[i+1 : i+1+j], index: -1})
			i += j + 2
		default:
			j := i
			for j < len(p) && plainKeyByte(p[j]) {
				j++
			}
			if j == i {
				if i == len(p) || p[i] == '.' {
					return bad(i, "empty key")
				}
				return bad(i, "unexpected %q (quote keys with other characters: \"a.b\")", p[i])
			}
			vp.steps = append(vp.steps, pathStep{key: p[i:j], index: -1})
			i = j
		}
		// Any number of [N].
		for i < len(p) && p[i] == '[' {
			j := i + 1
			for j < len(p) && p[j] >= '0' && p[j] <= '9' {
				j++
			}
			if j == i+1 || j >= len(p) || p[j] != ']' {
				return bad(i, "a list index is [N] with N a number from 0")
			}
			n, err := strconv.Atoi(p[i+1 : j])
			if err != nil || n > 1<<20 {
				return bad(i, "list index %s is too large", p[i+1:j])
			}
			vp.steps = append(vp.steps, pathStep{index: n})
			i = j + 1
		}
		if i == len(p) {
			return vp, nil
		}
		if p[i] != '.' {
			return bad(i, "expected . or [ after a key, found %q", p[i])
		}
		i++
	}
}

// keys returns the keys of a path without indexes; ok is false if it has
// any index.
func (vp valuesPath) keys() (keys []string, ok bool) {
	for _, s := range vp.steps {
		if s.isIndex() {
			return nil, false
		}
		keys = append(keys, s.key)
	}
	return keys, true
}

// lastIndex is the position of the last index step, -1 if there is none.
func (vp valuesPath) lastIndex() int {
	for i := len(vp.steps) - 1; i >= 0; i-- {
		if vp.steps[i].isIndex() {
			return i
		}
	}
	return -1
}

// walk follows steps from n. A missing key (or a key below a value that
// isn't a mapping) gives nil and no error, as getPath does; an index below
// a value that isn't a sequence, or out of its range, is an ErrNotFound.
// gpath is the generic path of the node reached.
func walkSteps(n *yaml.Node, steps []pathStep) (node *yaml.Node, gpath []any, flow bool, err error) {
	for _, s := range steps {
		if n == nil {
			return nil, gpath, false, nil
		}
		if !s.isIndex() {
			v, err := get(n, s.key)
			if err != nil || v == nil {
				return nil, gpath, false, err
			}
			flow = isStyle(n, yaml.FlowStyle)
			gpath = append(gpath, s.key)
			n = v
			continue
		}
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.AliasNode {
				return nil, gpath, false, fmt.Errorf("%w: %s is an alias", errUnsupported, describe(gpath))
			}
			return nil, gpath, false, notFoundf("%s is a %s, not a list", describe(gpath), kindName(n))
		}
		if s.index >= len(n.Content) {
			return nil, gpath, false, notFoundf("index %d is out of range: %s has %d items", s.index, describe(gpath), len(n.Content))
		}
		flow = isStyle(n, yaml.FlowStyle)
		gpath = append(gpath, s.index)
		n = n.Content[s.index]
	}
	return n, gpath, flow, nil
}

// getValues returns the node at the path below root, nil if a key is
// missing; see walkSteps.
func getValues(root *yaml.Node, vp valuesPath) (*yaml.Node, error) {
	n, _, _, err := walkSteps(root, vp.steps)
	return n, err
}

// setValues sets the scalar at the path of document 0 of y, creating
// missing mapping keys after the last list index (never list items: what
// leads to an index must exist). It reports whether anything changed.
func (y *yfile) setValues(vp valuesPath, value string, mode scalarMode) (bool, error) {
	root := y.root(0)
	li := vp.lastIndex()
	if li < 0 {
		keys, _ := vp.keys()
		return y.setPath(0, nil, root, keys, value, mode)
	}
	if root == nil {
		return false, notFoundf("the values file is empty")
	}
	n, gpath, flow, err := walkSteps(root, vp.steps[:li+1])
	if err != nil {
		return false, err
	}
	if n == nil {
		return false, notFoundf("%s not found", describe(vp.stepsPath(li)))
	}
	rest := vp.steps[li+1:]
	if len(rest) == 0 {
		if n.Kind == yaml.AliasNode {
			return false, fmt.Errorf("%w: %s is an alias", errUnsupported, describe(gpath))
		}
		return y.setScalar(0, gpath, n, flow, value, mode)
	}
	if n.Kind != yaml.MappingNode {
		return false, fmt.Errorf("%s is a %s, not a mapping", describe(gpath), kindName(n))
	}
	keys := make([]string, len(rest))
	for i, s := range rest {
		keys[i] = s.key
	}
	return y.setPath(0, gpath, n, keys, value, mode)
}

// stepsPath is the generic path of the steps up to and including i.
func (vp valuesPath) stepsPath(i int) []any {
	var p []any
	for _, s := range vp.steps[:i+1] {
		if s.isIndex() {
			p = append(p, s.index)
		} else {
			p = append(p, s.key)
		}
	}
	return p
}
