package edit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// This file holds the byte-level editing machinery shared by the layouts.
//
// A yfile is one YAML file: its original bytes, its documents parsed into
// *yaml.Node trees, and an index of line starts. Edits never re-encode
// anything: a node's Line/Column (1-based, Column counted in runes, exactly as
// yaml.v3 reports them) is turned into a byte offset, the extent of the
// node's token(s) is measured in the original bytes, and only that range is
// replaced (a splice). New keys are rendered as new lines (block style) or as
// a flow fragment, with the indentation found in the file.
//
// Every edit also records its meaning as a mutation of the decoded generic
// value of the file (set a path, delete a key, append an item). Before a
// result is returned, the edited bytes are decoded again and compared with
// the original decoded value plus those mutations: if anything else changed,
// or the file no longer parses, the edit fails instead of returning bad YAML.

// errUnsupported marks input the splicer refuses to edit (valid YAML in a
// form it can't edit byte-minimally, e.g. a block scalar as the target).
var errUnsupported = errors.New("unsupported YAML formatting")

// yfile is one YAML file being edited.
type yfile struct {
	path   string
	src    []byte
	docs   []*yaml.Node // yaml.DocumentNode each, in order
	values []any        // the documents decoded into generic values
	lines  []int        // lines[i] is the byte offset where line i+1 starts

	nl      string // line break used for inserted lines: "\n" or "\r\n"
	step    int    // indentation step of nested block mappings
	seqOff  int    // indentation of a block sequence's dash relative to its key
	itemOff int    // offset of an item's content from its dash ("- " = 2)

	splices []splice
	muts    []mutation
}

// splice replaces src[start:end] with text.
type splice struct {
	start, end int
	text       string
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// parseYAML parses all documents of src. It fails for input that isn't
// valid YAML, that yaml.v3 can't decode into generic values (e.g. duplicate
// keys), or that isn't UTF-8.
func parseYAML(path string, src []byte) (*yfile, error) {
	if bytes.HasPrefix(src, []byte{0xFE, 0xFF}) || bytes.HasPrefix(src, []byte{0xFF, 0xFE}) {
		return nil, fmt.Errorf("%s: UTF-16 YAML is not supported", path)
	}
	if !utf8.Valid(src) {
		return nil, fmt.Errorf("%s: not valid UTF-8", path)
	}
	docs, err := decodeNodes(src)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	values, err := decodeValues(src)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if len(values) != len(docs) {
		return nil, fmt.Errorf("parse %s: document count mismatch", path)
	}
	y := &yfile{path: path, src: src, docs: docs, values: values, nl: "\n"}
	y.indexLines()
	if i := bytes.IndexByte(src, '\n'); i > 0 && src[i-1] == '\r' {
		y.nl = "\r\n"
	}
	y.detectIndent()
	return y, nil
}

// decodeNodes decodes every document of src into a node tree.
func decodeNodes(src []byte) (docs []*yaml.Node, err error) {
	defer recoverParser(&err)
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err == io.EOF {
			return docs, nil
		} else if err != nil {
			return nil, err
		}
		if n.Kind != yaml.DocumentNode || len(n.Content) != 1 {
			return nil, fmt.Errorf("unexpected document structure")
		}
		docs = append(docs, &n)
	}
}

// decodeValues decodes every document of src into generic values.
func decodeValues(src []byte) (vals []any, err error) {
	defer recoverParser(&err)
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			return vals, nil
		} else if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
}

// recoverParser turns a panic inside yaml.v3 into an error: environment
// repos hold arbitrary content and must not crash the bot.
func recoverParser(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("yaml parser failed: %v", r)
	}
}

// ---- positions -------------------------------------------------------------

// breakLen returns the length of the line break at b[i], 0 if none. It
// mirrors yaml.v3's notion of a break (CRLF, LF, CR, NEL, LS, PS).
func breakLen(b []byte, i int) int {
	switch b[i] {
	case '\n':
		return 1
	case '\r':
		if i+1 < len(b) && b[i+1] == '\n' {
			return 2
		}
		return 1
	case 0xC2:
		if i+1 < len(b) && b[i+1] == 0x85 {
			return 2
		}
	case 0xE2:
		if i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xA8 || b[i+2] == 0xA9) {
			return 3
		}
	}
	return 0
}

func (y *yfile) indexLines() {
	start := 0
	if bytes.HasPrefix(y.src, utf8BOM) {
		start = len(utf8BOM) // yaml.v3 drops a leading BOM before counting
	}
	y.lines = []int{start}
	for i := start; i < len(y.src); {
		if n := breakLen(y.src, i); n > 0 {
			i += n
			y.lines = append(y.lines, i)
			continue
		}
		i++
	}
}

var errPosition = fmt.Errorf("%w: node position outside the file", errUnsupported)

// pos converts a yaml.v3 line/column (1-based, column in runes) to a byte offset.
func (y *yfile) pos(line, col int) (int, error) {
	if line < 1 || line > len(y.lines) || col < 1 {
		return 0, errPosition
	}
	p := y.lines[line-1]
	for c := 1; c < col; c++ {
		if p >= len(y.src) || breakLen(y.src, p) > 0 {
			return 0, errPosition
		}
		_, w := utf8.DecodeRune(y.src[p:])
		p += w
	}
	return p, nil
}

// at is the byte offset where n starts (at its anchor or tag, if any).
func (y *yfile) at(n *yaml.Node) (int, error) { return y.pos(n.Line, n.Column) }

// lineOf returns the 0-based index of the line holding byte offset off.
func (y *yfile) lineOf(off int) int {
	return sort.Search(len(y.lines), func(i int) bool { return y.lines[i] > off }) - 1
}

// nextLine returns the offset of the start of the line after the one
// holding off. eof is true when that line holds the end of a file that
// doesn't end with a line break (the offset is then len(src)).
func (y *yfile) nextLine(off int) (p int, eof bool) {
	l := y.lineOf(off)
	if l+1 < len(y.lines) {
		return y.lines[l+1], false
	}
	return len(y.src), true
}

// lineEnd returns the offset of the line break that ends line l (0-based),
// len(src) for a last line without one.
func (y *yfile) lineEnd(l int) int {
	e := len(y.src)
	if l+1 < len(y.lines) {
		e = y.lines[l+1]
	}
	for i := y.lines[l]; i < e; i++ {
		if breakLen(y.src, i) > 0 {
			return i
		}
	}
	return e
}

// lineStart returns the offset of the start of the line holding off.
func (y *yfile) lineStart(off int) int {
	l := y.lineOf(off)
	if l < 0 {
		return 0
	}
	return y.lines[l]
}

// column is the 0-based column of n, i.e. its indentation when it starts a
// line's content (a key, or a mapping after "- ").
func column(n *yaml.Node) int { return n.Column - 1 }

// ---- token extents -----------------------------------------------------------

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func isAnchorChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}

// skipProps skips an anchor and/or tag (and the blanks after them) at p.
func (y *yfile) skipProps(p int) int {
	b := y.src
	for p < len(b) && (b[p] == '&' || b[p] == '!') {
		if b[p] == '&' {
			p++
			for p < len(b) && isAnchorChar(b[p]) {
				p++
			}
		} else {
			for p < len(b) && !isBlank(b[p]) && breakLen(b, p) == 0 {
				p++
			}
		}
		for p < len(b) && isBlank(b[p]) {
			p++
		}
	}
	return p
}

// tokenStart is the offset of n's own token (after its anchor and tag).
func (y *yfile) tokenStart(n *yaml.Node) (int, error) {
	p, err := y.at(n)
	if err != nil {
		return 0, err
	}
	if n.Kind == yaml.AliasNode {
		return p, nil
	}
	return y.skipProps(p), nil
}

func isStyle(n *yaml.Node, s yaml.Style) bool { return n.Style&s != 0 }

// scalarSpan returns the byte range of a scalar's (or alias's) token,
// without its anchor or tag. An empty scalar (a key with no value) has
// start == end, at the position yaml.v3 reports for it (just after the
// colon in block context). parentIndent is the indentation of the block
// collection holding n; it is only used to find the end of block scalars.
func (y *yfile) scalarSpan(n *yaml.Node, parentIndent int) (start, end int, err error) {
	p, err := y.tokenStart(n)
	if err != nil {
		return 0, 0, err
	}
	b := y.src
	switch {
	case n.Kind == yaml.AliasNode:
		if p >= len(b) || b[p] != '*' {
			return 0, 0, errPosition
		}
		e := p + 1
		for e < len(b) && isAnchorChar(b[e]) {
			e++
		}
		return p, e, nil
	case n.Kind != yaml.ScalarNode:
		return 0, 0, fmt.Errorf("%w: not a scalar", errUnsupported)
	case isStyle(n, yaml.DoubleQuotedStyle):
		if p >= len(b) || b[p] != '"' {
			return 0, 0, errPosition
		}
		for i := p + 1; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return p, i + 1, nil
			}
		}
		return 0, 0, errPosition
	case isStyle(n, yaml.SingleQuotedStyle):
		if p >= len(b) || b[p] != '\'' {
			return 0, 0, errPosition
		}
		for i := p + 1; i < len(b); i++ {
			if b[i] == '\'' {
				if i+1 < len(b) && b[i+1] == '\'' {
					i++
					continue
				}
				return p, i + 1, nil
			}
		}
		return 0, 0, errPosition
	case isStyle(n, yaml.LiteralStyle|yaml.FoldedStyle):
		if p >= len(b) || (b[p] != '|' && b[p] != '>') {
			return 0, 0, errPosition
		}
		e, err := y.blockScalarEnd(p, parentIndent)
		return p, e, err
	case n.Value == "":
		return p, p, nil
	default:
		e, ok := matchPlain(b, p, n.Value)
		if !ok {
			return 0, 0, fmt.Errorf("%w: can't locate plain scalar %q", errUnsupported, n.Value)
		}
		return p, e, nil
	}
}

// matchPlain matches the plain scalar value v against src from i and
// returns the end of its text. Multi-line plain scalars are folded: one
// line break reads as a space, n+1 breaks as n newlines.
func matchPlain(src []byte, i int, v string) (int, bool) {
	j := 0
	for j < len(v) {
		if i < len(src) && src[i] == v[j] {
			i++
			j++
			continue
		}
		k := i
		for k < len(src) && isBlank(src[k]) {
			k++
		}
		breaks := 0
		for k < len(src) && (src[k] == '\n' || src[k] == '\r') {
			k += breakLen(src, k)
			breaks++
			for k < len(src) && isBlank(src[k]) {
				k++
			}
		}
		switch {
		case breaks == 0:
			return 0, false
		case breaks == 1:
			if v[j] != ' ' {
				return 0, false
			}
			j++
		default:
			for n := 0; n < breaks-1; n++ {
				if j >= len(v) || v[j] != '\n' {
					return 0, false
				}
				j++
			}
		}
		i = k
	}
	return i, true
}

// blockScalarEnd returns the end of the last content line of the literal or
// folded scalar whose indicator is at p (trailing blank lines excluded).
func (y *yfile) blockScalarEnd(p, parentIndent int) (int, error) {
	b := y.src
	// Header: indicator, optional chomping and indentation indicators.
	e := p + 1
	explicit, keep := 0, false
	for e < len(b) && (b[e] == '+' || b[e] == '-' || (b[e] >= '1' && b[e] <= '9')) {
		if b[e] >= '1' && b[e] <= '9' {
			explicit = int(b[e] - '0')
		}
		keep = keep || b[e] == '+'
		e++
	}
	end := e
	content := -1
	if explicit > 0 {
		content = max(parentIndent, 0) + explicit
	}
	for l := y.lineOf(p) + 1; l < len(y.lines); l++ {
		ls, le := y.lines[l], y.lineEnd(l)
		i := ls
		for i < le && b[i] == ' ' {
			i++
		}
		ind := i - ls
		for i < le && isBlank(b[i]) {
			i++
		}
		if i >= le {
			// A blank line: part of the value only with keep chomping (|+),
			// and only if it isn't the empty remainder after a final break.
			if keep && ls < len(b) {
				end = le
			}
			continue
		}
		if content < 0 {
			if ind <= parentIndent {
				break
			}
			content = ind
		}
		if ind < content {
			break
		}
		end = le
	}
	return end, nil
}

// blockIndent is the indentation of a block collection's entries: the column
// of a mapping's keys, or of a sequence's dashes.
func (y *yfile) blockIndent(n *yaml.Node) (int, error) {
	switch n.Kind {
	case yaml.MappingNode:
		if len(n.Content) == 0 {
			return 0, fmt.Errorf("%w: empty block mapping", errUnsupported)
		}
		return column(n.Content[0]), nil
	case yaml.SequenceNode:
		_, col, err := y.seqDash(n)
		return col, err
	}
	return -1, nil
}

// seqDash returns the offset and column of the first dash of a block sequence.
func (y *yfile) seqDash(n *yaml.Node) (off, col int, err error) {
	p, err := y.at(n)
	if err != nil {
		return 0, 0, err
	}
	if p < len(y.src) && y.src[p] == '-' {
		return p, column(n), nil
	}
	// The sequence has an anchor or tag: find the dash before its first item.
	if len(n.Content) > 0 {
		if q, err := y.at(n.Content[0]); err == nil {
			ls := y.lineStart(q)
			for i := q - 1; i >= ls; i-- {
				if y.src[i] == '-' {
					return i, utf8.RuneCount(y.src[ls:i]), nil
				}
				if !isBlank(y.src[i]) {
					break
				}
			}
		}
	}
	return 0, 0, fmt.Errorf("%w: can't find the dash of a sequence", errUnsupported)
}

// end returns the offset just after the last token of n. parentIndent is
// the indentation of the block collection holding n (-1 at the top level).
func (y *yfile) end(n *yaml.Node, parentIndent int) (int, error) {
	switch n.Kind {
	case yaml.ScalarNode, yaml.AliasNode:
		_, e, err := y.scalarSpan(n, parentIndent)
		return e, err
	case yaml.MappingNode, yaml.SequenceNode:
		if isStyle(n, yaml.FlowStyle) {
			p, err := y.tokenStart(n)
			if err != nil {
				return 0, err
			}
			if p >= len(y.src) || (y.src[p] != '{' && y.src[p] != '[') {
				// A single-pair mapping inside a flow sequence: [a: b].
				if len(n.Content) == 0 {
					return 0, errPosition
				}
				return y.end(n.Content[len(n.Content)-1], parentIndent)
			}
			from := p + 1
			if len(n.Content) > 0 {
				if from, err = y.end(n.Content[len(n.Content)-1], parentIndent); err != nil {
					return 0, err
				}
			}
			return y.flowClose(from)
		}
		if len(n.Content) == 0 {
			return 0, fmt.Errorf("%w: empty block collection", errUnsupported)
		}
		ind, err := y.blockIndent(n)
		if err != nil {
			return 0, err
		}
		return y.end(n.Content[len(n.Content)-1], ind)
	}
	return 0, fmt.Errorf("%w: unknown node kind", errUnsupported)
}

// flowClose finds the closing bracket of a flow collection, starting after
// its last entry: only blanks, line breaks, comments and one comma (or the
// colon of a trailing empty value) may come before it.
func (y *yfile) flowClose(from int) (int, error) {
	b := y.src
	for i := from; i < len(b); i++ {
		switch c := b[i]; {
		case c == '}' || c == ']':
			return i + 1, nil
		case c == '#':
			for i < len(b) && breakLen(b, i) == 0 {
				i++
			}
		case isBlank(c) || c == ',' || c == ':' || breakLen(b, i) > 0:
		default:
			return 0, fmt.Errorf("%w: can't find the end of a flow collection", errUnsupported)
		}
	}
	return 0, errPosition
}

// ---- lookups ----------------------------------------------------------------

// lookup finds key in mapping m. It returns the index of the key node in
// m.Content (-1 if absent). Only plain string keys match, as in the decoded
// value; a key defined twice is an error.
func lookup(m *yaml.Node, key string) (int, error) {
	found := -1
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind == yaml.ScalarNode && k.Value == key && k.ShortTag() == "!!str" {
			if found >= 0 {
				return -1, fmt.Errorf("key %q is defined twice (lines %d and %d)", key, m.Content[found].Line, k.Line)
			}
			found = i
		}
	}
	return found, nil
}

// get returns the value of key in mapping m, or nil.
func get(m *yaml.Node, key string) (*yaml.Node, error) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	i, err := lookup(m, key)
	if err != nil || i < 0 {
		return nil, err
	}
	return m.Content[i+1], nil
}

// getPath walks keys from m through nested mappings. It returns nil (and no
// error) if a key is missing or a value on the way isn't a mapping.
func getPath(m *yaml.Node, keys ...string) (*yaml.Node, error) {
	n := m
	for _, k := range keys {
		v, err := get(n, k)
		if err != nil || v == nil {
			return nil, err
		}
		n = v
	}
	return n, nil
}

// hasMergeKey reports whether mapping m has a merge key (<<: *anchor),
// whose keys the node walk doesn't see.
func hasMergeKey(m *yaml.Node) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].ShortTag() == "!!merge" {
			return true
		}
	}
	return false
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// scalarString returns the string value of a scalar node; ok is false for
// anything else (mappings, sequences, aliases, nulls).
func scalarString(n *yaml.Node) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || isNull(n) {
		return "", false
	}
	return n.Value, true
}

// root returns the top node of document i, nil if the document is empty or
// missing.
func (y *yfile) root(i int) *yaml.Node {
	if i >= len(y.docs) {
		return nil
	}
	r := y.docs[i].Content[0]
	if isNull(r) && r.Value == "" && r.Style == 0 {
		return nil
	}
	return r
}

// ---- new content -------------------------------------------------------------

// newNode is content to insert: a scalar, a mapping or a sequence.
type newNode struct {
	kind  yaml.Kind
	value string // scalar
	quote bool   // scalar: always double-quoted
	keys  []string
	vals  []*newNode
	items []*newNode
}

func newScalar(v string, quote bool) *newNode {
	return &newNode{kind: yaml.ScalarNode, value: v, quote: quote}
}

// newMap builds a mapping from alternating keys (string) and values (*newNode).
func newMap(kv ...any) *newNode {
	n := &newNode{kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		n.keys = append(n.keys, kv[i].(string))
		n.vals = append(n.vals, kv[i+1].(*newNode))
	}
	return n
}

func newSeq(items ...*newNode) *newNode { return &newNode{kind: yaml.SequenceNode, items: items} }

// nest wraps leaf in mappings keyed by keys, outermost first.
func nest(keys []string, leaf *newNode) *newNode {
	for i := len(keys) - 1; i >= 0; i-- {
		leaf = newMap(keys[i], leaf)
	}
	return leaf
}

// generic is the decoded value of the new content.
func (n *newNode) generic() any {
	switch n.kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i, k := range n.keys {
			m[k] = n.vals[i].generic()
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.items))
		for i, it := range n.items {
			s[i] = it.generic()
		}
		return s
	}
	return n.value
}

func (n *newNode) scalarText(flow bool) string {
	if !n.quote && plainOK(n.value, flow) {
		return n.value
	}
	return doubleQuote(n.value)
}

func keyText(k string, flow bool) string {
	if plainOK(k, flow) {
		return k
	}
	return doubleQuote(k)
}

// flow renders n in flow style.
func (n *newNode) flow() string {
	switch n.kind {
	case yaml.MappingNode:
		parts := make([]string, len(n.keys))
		for i, k := range n.keys {
			parts[i] = keyText(k, true) + ": " + n.vals[i].flow()
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case yaml.SequenceNode:
		parts := make([]string, len(n.items))
		for i, it := range n.items {
			parts[i] = it.flow()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return n.scalarText(true)
}

// entryLines renders "key: value" in block style at indent.
func (y *yfile) entryLines(key string, v *newNode, indent int) []string {
	head := strings.Repeat(" ", indent) + keyText(key, false) + ":"
	switch v.kind {
	case yaml.MappingNode:
		if len(v.keys) == 0 {
			return []string{head + " {}"}
		}
		lines := []string{head}
		for i, k := range v.keys {
			lines = append(lines, y.entryLines(k, v.vals[i], indent+y.step)...)
		}
		return lines
	case yaml.SequenceNode:
		if len(v.items) == 0 {
			return []string{head + " []"}
		}
		lines := []string{head}
		for _, it := range v.items {
			lines = append(lines, y.itemLines(it, indent+y.seqOff, y.itemOff)...)
		}
		return lines
	}
	return []string{head + " " + v.scalarText(false)}
}

// itemLines renders a sequence item in block style with its dash at column
// dash and its content at dash+off.
func (y *yfile) itemLines(v *newNode, dash, off int) []string {
	prefix := strings.Repeat(" ", dash) + "-" + strings.Repeat(" ", off-1)
	if v.kind == yaml.MappingNode && len(v.keys) > 0 {
		var lines []string
		for i, k := range v.keys {
			lines = append(lines, y.entryLines(k, v.vals[i], dash+off)...)
		}
		lines[0] = prefix + lines[0][dash+off:]
		return lines
	}
	if v.kind == yaml.ScalarNode {
		return []string{prefix + v.scalarText(false)}
	}
	return []string{prefix + v.flow()}
}

// detectIndent finds the file's indentation habits from its first nested
// block mapping and first block sequence under a key.
func (y *yfile) detectIndent() {
	step, seqOff, itemOff := -1, -1, -1
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		if depth > 100 || (step > 0 && seqOff >= 0 && itemOff > 0) {
			return
		}
		if n.Kind == yaml.MappingNode && !isStyle(n, yaml.FlowStyle) {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if isStyle(v, yaml.FlowStyle) || len(v.Content) == 0 {
					continue
				}
				switch v.Kind {
				case yaml.MappingNode:
					if step < 0 && v.Content[0].Line > k.Line && column(v.Content[0]) > column(k) {
						step = column(v.Content[0]) - column(k)
					}
				case yaml.SequenceNode:
					if _, col, err := y.seqDash(v); err == nil && seqOff < 0 && v.Line > k.Line && col >= column(k) {
						seqOff = col - column(k)
					}
				}
			}
		}
		if n.Kind == yaml.SequenceNode && !isStyle(n, yaml.FlowStyle) && itemOff < 0 {
			if _, col, err := y.seqDash(n); err == nil {
				if it := n.Content[0]; it.Kind == yaml.MappingNode && !isStyle(it, yaml.FlowStyle) && it.Line == n.Line && column(it) > col {
					itemOff = column(it) - col
				}
			}
		}
		for _, c := range n.Content {
			walk(c, depth+1)
		}
	}
	for _, d := range y.docs {
		walk(d, 0)
	}
	if step <= 0 || step > 8 {
		step = 2
	}
	if seqOff < 0 || seqOff > 8 {
		seqOff = step
	}
	if itemOff < 2 || itemOff > 8 {
		itemOff = 2
	}
	y.step, y.seqOff, y.itemOff = step, seqOff, itemOff
}

// ---- edits -------------------------------------------------------------------

func (y *yfile) add(start, end int, text string) {
	y.splices = append(y.splices, splice{start, end, text})
}

func (y *yfile) changed() bool { return len(y.splices) > 0 }

// insertLines inserts rendered block lines for an entry at indentation
// indent, after the line holding off (the end of the collection's content).
// Comment lines right below that are indented deeper than indent belong to
// the content above and stay above the new lines.
func (y *yfile) insertLines(off, indent int, lines []string) {
	l := y.lineOf(off) + 1
	for l < len(y.lines) && y.commentLine(l, indent) {
		l++
	}
	text := strings.Join(lines, y.nl)
	if l < len(y.lines) {
		y.add(y.lines[l], y.lines[l], text+y.nl)
		return
	}
	// The file ends without a line break after line l-1.
	y.add(len(y.src), len(y.src), y.nl+text)
}

// commentLine reports whether line l holds only a comment indented by more
// than indent spaces.
func (y *yfile) commentLine(l, indent int) bool {
	i, e := y.lines[l], y.lineEnd(l)
	for i < e && y.src[i] == ' ' {
		i++
	}
	return i < e && y.src[i] == '#' && i-y.lines[l] > indent
}

// appendToFile adds a top-level "key: value" to a file without documents
// (empty, or only comments) or whose only document is empty.
func (y *yfile) appendToFile(key string, v *newNode) error {
	if len(y.docs) > 1 {
		return fmt.Errorf("%w: %s has an empty first document", errUnsupported, y.path)
	}
	text := strings.Join(y.entryLines(key, v, 0), y.nl) + y.nl
	if n := len(y.src); n > 0 && breakLen(y.src, n-1) == 0 {
		text = y.nl + text
	}
	y.add(len(y.src), len(y.src), text)
	y.muts = append(y.muts, mutation{doc: 0, path: []any{key}, op: mutSet, value: v.generic()})
	return nil
}

// scalarMode says how a scalar value is written.
type scalarMode int

const (
	// modeTag keeps the existing quoting; a plain value stays plain if it
	// reads back as the same string, else it becomes double-quoted.
	modeTag scalarMode = iota
	// modeQuoted always quotes: double quotes, or single quotes if the
	// existing value used them.
	modeQuoted
)

// setScalar replaces the value of the scalar n (at generic path gpath of
// document doc) with value. flow says whether n is inside a flow collection.
// It reports whether anything changed.
func (y *yfile) setScalar(doc int, gpath []any, n *yaml.Node, flow bool, value string, mode scalarMode) (bool, error) {
	if n.Kind != yaml.ScalarNode {
		return false, fmt.Errorf("%s is not a scalar", describe(gpath))
	}
	if isStyle(n, yaml.LiteralStyle|yaml.FoldedStyle) {
		return false, fmt.Errorf("%w: %s is a block scalar", errUnsupported, describe(gpath))
	}
	single := isStyle(n, yaml.SingleQuotedStyle) && singleQuotable(value)
	quoted := isStyle(n, yaml.DoubleQuotedStyle) || single
	var text string
	switch {
	case single:
		text = singleQuote(value)
	case quoted || mode == modeQuoted || !plainOK(value, flow):
		text = doubleQuote(value)
	default:
		text = value
	}
	if !isNull(n) && n.Value == value && (quoted || (mode == modeTag && plainOK(value, flow))) {
		return false, nil
	}
	s, e, err := y.scalarSpan(n, 0)
	if err != nil {
		return false, err
	}
	if s == e {
		text = y.emptyPrefix(s) + text
	}
	y.add(s, e, text)
	y.muts = append(y.muts, mutation{doc: doc, path: gpath, op: mutSet, value: value})
	return true, nil
}

// emptyPrefix is what must precede a value written where an empty value is.
func (y *yfile) emptyPrefix(p int) string {
	i := p - 1
	for i >= 0 && isBlank(y.src[i]) {
		i--
	}
	switch {
	case i >= 0 && y.src[i] == ':' && i == p-1:
		return " "
	case i >= 0 && y.src[i] == ':':
		return ""
	}
	return ": " // a key without colon in a flow mapping: {a}
}

// setPath sets keys (nested mapping keys below the mapping m, at generic
// path base of document doc) to the scalar value, creating what's missing.
// m may be nil for an empty document. It reports whether anything changed.
func (y *yfile) setPath(doc int, base []any, m *yaml.Node, keys []string, value string, mode scalarMode) (bool, error) {
	leaf := newScalar(value, mode == modeQuoted)
	if m == nil {
		return true, y.appendToFile(keys[0], nest(keys[1:], leaf))
	}
	gpath := append([]any(nil), base...)
	for i, k := range keys {
		if m.Kind != yaml.MappingNode {
			return false, fmt.Errorf("%s is not a mapping", describe(gpath))
		}
		idx, err := lookup(m, k)
		if err != nil {
			return false, fmt.Errorf("%s: %w", describe(gpath), err)
		}
		if idx < 0 {
			if hasMergeKey(m) {
				return false, fmt.Errorf("%w: %s has a merge key (<<) that may define %s", errUnsupported, describe(gpath), k)
			}
			return true, y.insertEntry(doc, gpath, m, k, nest(keys[i+1:], leaf))
		}
		gpath = append(gpath, k)
		v := m.Content[idx+1]
		last := i == len(keys)-1
		switch {
		case last && v.Kind == yaml.ScalarNode:
			return y.setScalar(doc, gpath, v, isStyle(m, yaml.FlowStyle), value, mode)
		case !last && isNull(v):
			return true, y.fillNull(doc, gpath, m, idx, nest(keys[i+1:], leaf))
		case v.Kind == yaml.AliasNode:
			return false, fmt.Errorf("%w: %s is an alias", errUnsupported, describe(gpath))
		case last:
			return false, fmt.Errorf("%s is a %s, not a scalar", describe(gpath), kindName(v))
		case v.Kind != yaml.MappingNode:
			return false, fmt.Errorf("%s is a %s, not a mapping", describe(gpath), kindName(v))
		}
		m = v
	}
	return false, nil
}

// insertEntry adds key: v to the mapping m (at generic path gpath).
func (y *yfile) insertEntry(doc int, gpath []any, m *yaml.Node, key string, v *newNode) error {
	y.muts = append(y.muts, mutation{doc: doc, path: appendPath(gpath, key), op: mutSet, value: v.generic()})
	if isStyle(m, yaml.FlowStyle) {
		p, err := y.tokenStart(m)
		if err != nil {
			return err
		}
		if p >= len(y.src) || y.src[p] != '{' {
			return fmt.Errorf("%w: %s is a single-pair flow mapping", errUnsupported, describe(gpath))
		}
		entry := keyText(key, true) + ": " + v.flow()
		if len(m.Content) == 0 {
			y.add(p+1, p+1, entry)
			return nil
		}
		e, err := y.end(m.Content[len(m.Content)-1], 0)
		if err != nil {
			return err
		}
		y.add(e, e, ", "+entry)
		return nil
	}
	ind, err := y.blockIndent(m)
	if err != nil {
		return err
	}
	e, err := y.end(m, ind)
	if err != nil {
		return err
	}
	y.insertLines(e, ind, y.entryLines(key, v, ind))
	return nil
}

// fillNull replaces the null value of the entry at index idx of mapping m
// (its generic path is gpath) with the collection v.
func (y *yfile) fillNull(doc int, gpath []any, m *yaml.Node, idx int, v *newNode) error {
	k, n := m.Content[idx], m.Content[idx+1]
	y.muts = append(y.muts, mutation{doc: doc, path: gpath, op: mutSet, value: v.generic()})
	start, err := y.at(n)
	if err != nil {
		return err
	}
	_, e, err := y.scalarSpan(n, 0)
	if err != nil {
		return err
	}
	if isStyle(m, yaml.FlowStyle) {
		text := v.flow()
		if start == e {
			text = y.emptyPrefix(start) + text
		}
		y.add(start, e, text)
		return nil
	}
	// Block: drop the null token (e.g. "~"), keep any comment, and write the
	// collection on the following lines.
	i := start - 1
	for i >= 0 && isBlank(y.src[i]) {
		i--
	}
	if i < 0 || y.src[i] != ':' || y.lineOf(i) != y.lineOf(e) {
		return fmt.Errorf("%w: value of %s is not on the line of its key", errUnsupported, describe(gpath))
	}
	if e > i+1 {
		y.add(i+1, e, "")
	}
	ind := column(k)
	var lines []string
	switch v.kind {
	case yaml.MappingNode:
		for j, kk := range v.keys {
			lines = append(lines, y.entryLines(kk, v.vals[j], ind+y.step)...)
		}
	case yaml.SequenceNode:
		for _, it := range v.items {
			lines = append(lines, y.itemLines(it, ind+y.seqOff, y.itemOff)...)
		}
	default:
		return fmt.Errorf("%w: fill with a scalar", errUnsupported)
	}
	y.insertLines(e, ind, lines)
	return nil
}

// appendItem appends item to the sequence seq (at generic path gpath).
func (y *yfile) appendItem(doc int, gpath []any, seq *yaml.Node, item *newNode) error {
	y.muts = append(y.muts, mutation{doc: doc, path: gpath, op: mutAppend, value: item.generic()})
	if isStyle(seq, yaml.FlowStyle) {
		p, err := y.tokenStart(seq)
		if err != nil {
			return err
		}
		if p >= len(y.src) || y.src[p] != '[' {
			return errPosition
		}
		if len(seq.Content) == 0 {
			y.add(p+1, p+1, item.flow())
			return nil
		}
		e, err := y.end(seq.Content[len(seq.Content)-1], 0)
		if err != nil {
			return err
		}
		y.add(e, e, ", "+item.flow())
		return nil
	}
	dashOff, dash, err := y.seqDash(seq)
	if err != nil {
		return err
	}
	off := y.itemOff
	if first := seq.Content[0]; first.Kind == yaml.MappingNode && column(first) > dash {
		if p, err := y.at(first); err == nil && y.lineOf(p) == y.lineOf(dashOff) {
			off = column(first) - dash
		}
	}
	e, err := y.end(seq, dash)
	if err != nil {
		return err
	}
	y.insertLines(e, dash, y.itemLines(item, dash, off))
	return nil
}

// deleteEntry removes the entry at index idx of mapping m (at generic path
// gpath), with its line when it has one of its own.
func (y *yfile) deleteEntry(doc int, gpath []any, m *yaml.Node, idx int) error {
	k, v := m.Content[idx], m.Content[idx+1]
	y.muts = append(y.muts, mutation{doc: doc, path: appendPath(gpath, k.Value), op: mutDelete})
	ks, err := y.at(k)
	if err != nil {
		return err
	}
	nextKey := -1
	if idx+2 < len(m.Content) {
		if nextKey, err = y.at(m.Content[idx+2]); err != nil {
			return err
		}
	}
	if isStyle(m, yaml.FlowStyle) {
		ve, err := y.end(v, 0)
		if err != nil {
			return err
		}
		start, end := ks, ve
		switch {
		case idx > 0:
			if start, err = y.end(m.Content[idx-1], 0); err != nil {
				return err
			}
		case nextKey >= 0:
			end = nextKey
		}
		if hasComment(y.src[start:end]) {
			return fmt.Errorf("%w: a comment inside the flow mapping at %s", errUnsupported, describe(gpath))
		}
		y.add(start, end, "")
		return nil
	}
	ind, err := y.blockIndent(m)
	if err != nil {
		return err
	}
	ve, err := y.end(v, ind)
	if err != nil {
		return err
	}
	ls := y.lineStart(ks)
	if strings.Trim(string(y.src[ls:ks]), " ") == "" {
		// The entry starts its line: remove its lines.
		p, eof := y.nextLine(ve)
		if eof && ls > 0 {
			ls = y.lineEnd(y.lineOf(ls) - 1) // also drop the break before it
		}
		y.add(ls, p, "")
		return nil
	}
	if nextKey < 0 {
		return fmt.Errorf("%w: can't remove %s", errUnsupported, describe(appendPath(gpath, k.Value)))
	}
	// The entry follows a dash ("- digest: …"): pull the next key up to the
	// dash, unless comments sit in between; then leave the dash alone on its
	// line ("-" followed by the mapping on the next lines is valid YAML).
	le := y.lineEnd(y.lineOf(ve))
	if !hasComment(y.src[le:nextKey]) {
		y.add(ks, nextKey, "")
		return nil
	}
	for ks > ls && isBlank(y.src[ks-1]) {
		ks--
	}
	y.add(ks, le, "")
	return nil
}

// hasComment reports whether b (YAML text outside quoted scalars) holds a
// comment: a # at the start or after a blank or line break.
func hasComment(b []byte) bool {
	for i, c := range b {
		if c == '#' && (i == 0 || isBlank(b[i-1]) || b[i-1] == '\n' || b[i-1] == '\r') {
			return true
		}
	}
	return false
}

// result applies the splices and verifies the outcome: it must decode, and
// its decoded value must equal the original's with the recorded mutations
// applied, and nothing else changed.
func (y *yfile) result() ([]byte, error) {
	sp := append([]splice(nil), y.splices...)
	sort.SliceStable(sp, func(i, j int) bool {
		if sp[i].start != sp[j].start {
			return sp[i].start < sp[j].start
		}
		return sp[i].end < sp[j].end
	})
	var out bytes.Buffer
	prev := 0
	for _, s := range sp {
		if s.start < prev || s.end < s.start || s.end > len(y.src) {
			return nil, fmt.Errorf("edit %s: overlapping edits", y.path)
		}
		out.Write(y.src[prev:s.start])
		out.WriteString(s.text)
		prev = s.end
	}
	out.Write(y.src[prev:])
	res := out.Bytes()

	got, err := decodeValues(res)
	if err != nil {
		return nil, fmt.Errorf("edit %s: the edited file would not parse (%v); left unchanged", y.path, err)
	}
	want, err := decodeValues(y.src) // fresh copy: mutations change it
	if err != nil {
		return nil, err
	}
	for _, m := range y.muts {
		if want, err = m.apply(want); err != nil {
			return nil, fmt.Errorf("edit %s: %w", y.path, err)
		}
	}
	if !equalValues(want, got) {
		return nil, fmt.Errorf("edit %s: %w: the edit would change more than its target (YAML anchors or aliases?); file left unchanged", y.path, errUnsupported)
	}
	return res, nil
}

// ---- semantic model ------------------------------------------------------

type mutOp int

const (
	mutSet mutOp = iota
	mutDelete
	mutAppend
)

// mutation is the meaning of an edit on the decoded documents: path holds
// string keys and int sequence indexes.
type mutation struct {
	doc   int
	path  []any
	op    mutOp
	value any
}

func (m mutation) apply(docs []any) ([]any, error) {
	for len(docs) <= m.doc {
		docs = append(docs, nil)
	}
	v, err := mutate(docs[m.doc], m.path, m)
	if err != nil {
		return nil, err
	}
	docs[m.doc] = v
	return docs, nil
}

func mutate(v any, path []any, m mutation) (any, error) {
	if len(path) == 0 {
		switch m.op {
		case mutSet:
			return m.value, nil
		case mutAppend:
			switch s := v.(type) {
			case nil:
				return []any{m.value}, nil
			case []any:
				return append(s, m.value), nil
			}
		}
		return nil, fmt.Errorf("model: can't apply edit to %T", v)
	}
	switch k := path[0].(type) {
	case string:
		if len(path) == 1 && m.op == mutDelete {
			switch mm := v.(type) {
			case map[string]any:
				delete(mm, k)
			case map[any]any:
				delete(mm, k)
			}
			return v, nil
		}
		switch mm := v.(type) {
		case nil:
			c, err := mutate(nil, path[1:], m)
			return map[string]any{k: c}, err
		case map[string]any:
			c, err := mutate(mm[k], path[1:], m)
			mm[k] = c
			return mm, err
		case map[any]any:
			c, err := mutate(mm[k], path[1:], m)
			mm[k] = c
			return mm, err
		}
	case int:
		if s, ok := v.([]any); ok && k >= 0 && k < len(s) {
			c, err := mutate(s[k], path[1:], m)
			s[k] = c
			return s, err
		}
	}
	return nil, fmt.Errorf("model: path %v doesn't fit %T", path, v)
}

// equalValues compares decoded values (NaN equals NaN).
func equalValues(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equalValues(xv, yv) {
				return false
			}
		}
		return true
	case map[any]any:
		y, ok := b.(map[any]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equalValues(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValues(x[i], y[i]) {
				return false
			}
		}
		return true
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || (x != x && y != y))
	}
	return reflect.DeepEqual(a, b)
}

// ---- scalars -------------------------------------------------------------------

// plainOK reports whether s can be written as a plain scalar and still be
// read back as the same string, both by YAML 1.2 (yaml.v3) and by the YAML
// 1.1 resolvers of the tools that read manifests (helm, kustomize, kubectl
// via go-yaml v2). flow forbids characters that end a plain scalar in flow
// context.
func plainOK(s string, flow bool) bool {
	if s == "" || s[len(s)-1] == ':' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '/':
		case i > 0 && strings.IndexByte("-+=@~", c) >= 0:
		case i > 0 && c == ':' && !flow:
		default:
			return false
		}
	}
	if yaml11NonString(s) {
		return false
	}
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return false
	}
	str, ok := v.(string)
	return ok && str == s
}

var yaml11Words = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true,
	"n": true, "N": true, "no": true, "No": true, "NO": true,
	"true": true, "True": true, "TRUE": true, "false": true, "False": true, "FALSE": true,
	"on": true, "On": true, "ON": true, "off": true, "Off": true, "OFF": true,
	"null": true, "Null": true, "NULL": true, "~": true,
	".inf": true, ".Inf": true, ".INF": true, "+.inf": true, "+.Inf": true, "+.INF": true,
	"-.inf": true, "-.Inf": true, "-.INF": true, ".nan": true, ".NaN": true, ".NAN": true,
}

// yaml11NonString reports whether a YAML 1.1 resolver may read the plain
// scalar s as something other than a string (bool, null, int in any base,
// float, sexagesimal number, timestamp). It errs on the side of "yes".
func yaml11NonString(s string) bool {
	if yaml11Words[s] {
		return true
	}
	t := strings.ReplaceAll(s, "_", "")
	if t == "" {
		return true
	}
	if t[0] == '+' || t[0] == '-' {
		t = t[1:]
	}
	if t == "" {
		return false
	}
	isDigits := func(x string, ok func(byte) bool) bool {
		if x == "" {
			return false
		}
		for i := 0; i < len(x); i++ {
			if !ok(x[i]) {
				return false
			}
		}
		return true
	}
	dec := func(c byte) bool { return c >= '0' && c <= '9' }
	hex := func(c byte) bool { return dec(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
	lower := strings.ToLower(t)
	switch {
	case isDigits(t, dec): // decimal or octal int
		return true
	case strings.HasPrefix(lower, "0x") && isDigits(t[2:], hex):
		return true
	case (strings.HasPrefix(lower, "0b") || strings.HasPrefix(lower, "0o")) && isDigits(t[2:], dec):
		return true
	}
	// Sexagesimal: 1:20, 190:20:30.15
	if dec(t[0]) && strings.Contains(t, ":") {
		parts := strings.Split(t, ":")
		ok := true
		for i, p := range parts {
			if i == len(parts)-1 {
				p, _, _ = strings.Cut(p, ".")
			}
			if !isDigits(p, dec) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	// Float: 1.5, .5, 1., 1e3, 1.5e-3
	mant, exp, hasExp := strings.Cut(lower, "e")
	expOK := true
	if hasExp {
		e := strings.TrimLeft(exp, "+-")
		expOK = len(exp)-len(e) <= 1 && isDigits(e, dec)
	}
	ip, fp, hasDot := strings.Cut(mant, ".")
	if expOK && (ip == "" || isDigits(ip, dec)) && (fp == "" || isDigits(fp, dec)) && (ip != "" || fp != "") && (hasDot || hasExp) {
		return true
	}
	// Timestamp: 2001-12-14, 2001-12-14t21:59:43.10-05:00
	if len(t) >= 8 && isDigits(t[:4], dec) && t[4] == '-' {
		return true
	}
	return false
}

// doubleQuote renders s as a YAML double-quoted scalar.
func doubleQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0):
			fmt.Fprintf(&b, `\x%02X`, r)
		case r == 0x2028 || r == 0x2029 || r == 0xFEFF || r >= 0xFFFE && r <= 0xFFFF:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func singleQuotable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) || r == 0x2028 || r == 0x2029 || r == 0xFEFF {
			return false
		}
	}
	return s != "" && s[0] != ' ' && s[len(s)-1] != ' '
}

func singleQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ---- descriptions ------------------------------------------------------------

func appendPath(p []any, k any) []any {
	return append(append([]any(nil), p...), k)
}

// describe renders a generic path for messages: spec.template.metadata, images[2].newTag.
func describe(p []any) string {
	if len(p) == 0 {
		return "the document"
	}
	var b strings.Builder
	for i, e := range p {
		switch e := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", e)
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e)
		}
	}
	return b.String()
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	case yaml.AliasNode:
		return "alias"
	}
	if isNull(n) {
		return "null"
	}
	return "scalar"
}
