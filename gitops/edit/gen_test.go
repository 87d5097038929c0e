package edit

import (
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// The generated-format tests render random trees with random (valid)
// formatting: indentation widths, indentless or indented sequences, flow and
// block collections, quoting styles, comments at odd indentations, blank
// lines, block scalars with every chomping mode, empty and ~ nulls, CRLF,
// a missing final newline. Each edit must succeed (or fail for a reason
// that isn't "unsupported formatting"), and its result must decode to the
// model's expectation (the same models as the fuzz targets).

// gnode is a generated tree node.
type gnode struct {
	kind  byte // 's' scalar, 'n' null, 'm' mapping, 'q' sequence, 'b' multi-line string
	value string
	plain bool // the scalar may be written plain
	keys  []string
	vals  []*gnode
	items []*gnode
}

func gs(v string) *gnode          { return &gnode{kind: 's', value: v, plain: plainVocab[v]} }
func gnull() *gnode               { return &gnode{kind: 'n'} }
func gseq(items ...*gnode) *gnode { return &gnode{kind: 'q', items: items} }

func gmap(kv ...any) *gnode {
	n := &gnode{kind: 'm'}
	for i := 0; i+1 < len(kv); i += 2 {
		n.keys = append(n.keys, kv[i].(string))
		n.vals = append(n.vals, kv[i+1].(*gnode))
	}
	return n
}

// plainVocab lists scalars known to read back as themselves when plain.
var plainVocab = map[string]bool{
	"1.4.1": true, "x": true, "registry.example.com/checkout": true, "checkout": true,
	"a b c": true, "IfNotPresent": true, "Deployment": true, "shipbot-restart.yaml": true,
	"../base": true, "other.yaml": true, "registry.example.com/checkout:1.4.1": true,
	"registry.example.com/other:2": true, "localhost:5000/checkout:2": true, "apps/v1": true,
	"enabled": true, "app": true, "web": true, "argoproj.io/v1alpha1": true,
}

var scalarVocab = []string{"1.4.1", "x", "a b c", "IfNotPresent", "1.10", "true", "it's", `say "hi"`, "", "#hash", "a: b", "[x]"}

type gen struct {
	r      *rand.Rand
	ind    int // indentation step
	seqOff int // dash indentation relative to the key
	itmOff int // item content offset from the dash (2 or 4)
	// lastBlock is set while the last thing written is a block scalar's
	// content: the file must then keep its final line break (a value can't
	// follow a clip-chomped scalar on the last line without changing it).
	lastBlock bool
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) scalarText(n *gnode, flow bool) string {
	switch {
	case n.plain && !(flow && strings.ContainsAny(n.value, ":,[]{}#")) && g.chance(0.6):
		return n.value
	case g.chance(0.5) && !strings.ContainsAny(n.value, "\n"):
		return "'" + strings.ReplaceAll(n.value, "'", "''") + "'"
	}
	return fmt.Sprintf("%q", n.value)
}

func (g *gen) key(k string, flow bool) string {
	if g.chance(0.15) {
		return fmt.Sprintf("%q", k)
	}
	if strings.ContainsAny(k, " #:") || (flow && strings.ContainsAny(k, ",[]{}")) {
		return fmt.Sprintf("%q", k)
	}
	return k
}

// flow renders n in flow style on one or more lines (continuation lines at cont).
func (g *gen) flow(n *gnode, cont int) string {
	sep := ", "
	if g.chance(0.2) {
		sep = ",\n" + strings.Repeat(" ", cont)
	}
	switch n.kind {
	case 'm':
		parts := make([]string, len(n.keys))
		for i, k := range n.keys {
			parts[i] = g.key(k, true) + ": " + g.flow(n.vals[i], cont)
			if n.vals[i].kind == 'n' && g.chance(0.5) {
				parts[i] = g.key(k, true) + ":"
			}
		}
		tail := ""
		if len(parts) > 0 && g.chance(0.15) {
			tail = ","
		}
		return "{" + strings.Join(parts, sep) + tail + "}"
	case 'q':
		parts := make([]string, len(n.items))
		for i, it := range n.items {
			parts[i] = g.flow(it, cont)
		}
		return "[" + strings.Join(parts, sep) + "]"
	case 'n':
		if g.chance(0.5) {
			return "~"
		}
		return "null"
	case 'b':
		return fmt.Sprintf("%q", n.value)
	}
	return g.scalarText(n, true)
}

func (g *gen) comment(b *strings.Builder, maxIndent int) {
	if g.chance(0.15) {
		fmt.Fprintf(b, "%s# note %d\n", strings.Repeat(" ", g.r.Intn(maxIndent+1)), g.r.Intn(100))
	}
	if g.chance(0.1) {
		b.WriteString("\n")
	}
}

func (g *gen) trailing() string {
	if g.chance(0.2) {
		return "   # trailing"
	}
	return ""
}

// value renders the value of an entry whose key (or dash) is at indent
// ind; head is the text before it on its line ("key:" or "-").
func (g *gen) value(b *strings.Builder, head string, n *gnode, ind int) {
	child := ind + g.ind
	g.lastBlock = false
	switch {
	case n.kind == 'n':
		switch g.r.Intn(3) {
		case 0:
			b.WriteString(head + g.trailing() + "\n")
		case 1:
			b.WriteString(head + " ~" + g.trailing() + "\n")
		default:
			b.WriteString(head + " null\n")
		}
	case n.kind == 's':
		b.WriteString(head + " " + g.scalarText(n, false) + g.trailing() + "\n")
	case n.kind == 'b':
		chomp := []string{"|", "|-", "|+", ">", ">-"}[g.r.Intn(5)]
		b.WriteString(head + " " + chomp + "\n")
		for _, l := range strings.Split(n.value, "\n") {
			b.WriteString(strings.Repeat(" ", child) + l + "\n")
		}
		if strings.HasSuffix(chomp, "+") {
			b.WriteString(strings.Repeat("\n", g.r.Intn(3)))
		}
		g.lastBlock = true
		if g.chance(0.3) { // a comment that ends the scalar
			fmt.Fprintf(b, "%s# after block\n", strings.Repeat(" ", g.r.Intn(ind+1)))
			g.lastBlock = false
		}
	case (n.kind == 'm' && len(n.keys) == 0) || (n.kind == 'q' && len(n.items) == 0) || g.chance(0.2):
		b.WriteString(head + " " + g.flow(n, child) + g.trailing() + "\n")
	case n.kind == 'm':
		b.WriteString(head + g.trailing() + "\n")
		g.block(b, n, child)
	case n.kind == 'q':
		b.WriteString(head + g.trailing() + "\n")
		dash := ind + g.seqOff
		if strings.HasPrefix(strings.TrimLeft(head, " "), "-") {
			dash = child
		}
		g.items(b, n, dash)
	}
}

// block renders the entries of mapping n at indent ind.
func (g *gen) block(b *strings.Builder, n *gnode, ind int) {
	for i, k := range n.keys {
		g.comment(b, ind+g.ind)
		g.value(b, strings.Repeat(" ", ind)+g.key(k, false)+":", n.vals[i], ind)
	}
}

// items renders the items of sequence n with dashes at dash.
func (g *gen) items(b *strings.Builder, n *gnode, dash int) {
	for _, it := range n.items {
		g.comment(b, dash)
		prefix := strings.Repeat(" ", dash) + "-" + strings.Repeat(" ", g.itmOff-1)
		if it.kind == 'm' && len(it.keys) > 0 && !g.chance(0.15) {
			// First entry on the dash line, the rest aligned with it.
			var sub strings.Builder
			g.block(&sub, it, dash+g.itmOff)
			s := sub.String()
			first := strings.Repeat(" ", dash+g.itmOff)
			i := strings.Index(s, first+g.keyPrefix(s, dash+g.itmOff))
			if i < 0 {
				i = 0
			}
			b.WriteString(s[:i]) // comments before the first key
			b.WriteString(prefix + s[i+dash+g.itmOff:])
			continue
		}
		if it.kind == 's' || it.kind == 'n' {
			b.WriteString(prefix + g.flow(it, dash+g.itmOff) + "\n")
			continue
		}
		b.WriteString(prefix + g.flow(it, dash+g.itmOff) + g.trailing() + "\n")
	}
}

// keyPrefix returns the first character of the first key line in s
// (at indent ind), used to skip leading comment and blank lines.
func (g *gen) keyPrefix(s string, ind int) string {
	for _, l := range strings.SplitAfter(s, "\n") {
		t := strings.TrimLeft(l, " ")
		if t == "\n" || t == "" || strings.HasPrefix(t, "#") || len(l)-len(t) != ind {
			continue
		}
		return t[:1]
	}
	return ""
}

// doc renders a document whose root is the mapping n.
func (g *gen) doc(n *gnode) string {
	var b strings.Builder
	if g.chance(0.2) {
		b.WriteString("# generated\n")
	}
	if g.chance(0.2) {
		b.WriteString("---\n")
	}
	if len(n.keys) == 0 {
		b.WriteString("{}\n")
	} else {
		g.block(&b, n, 0)
	}
	return b.String()
}

func (g *gen) finish(s string) string {
	if g.chance(0.1) {
		s += "# the end\n"
		g.lastBlock = false
	}
	if g.chance(0.15) && !g.lastBlock {
		s = strings.TrimSuffix(s, "\n")
	}
	if g.chance(0.1) {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	return s
}

func newGen(seed int64) *gen {
	r := rand.New(rand.NewSource(seed))
	g := &gen{r: r, ind: []int{2, 2, 3, 4}[r.Intn(4)], itmOff: []int{2, 2, 4}[r.Intn(3)]}
	g.seqOff = []int{0, g.ind}[r.Intn(2)]
	return g
}

// ---- trees ----

func (g *gen) scalar() *gnode {
	if g.chance(0.1) {
		return &gnode{kind: 'b', value: "line one\n  indented\nline three"}
	}
	return gs(scalarVocab[g.r.Intn(len(scalarVocab))])
}

// filler is a random value for a key that isn't a target.
func (g *gen) filler(depth int) *gnode {
	switch x := g.r.Intn(10); {
	case x < 4 || depth > 2:
		return g.scalar()
	case x < 5:
		return gnull()
	case x < 8:
		m := gmap()
		for i, n := 0, g.r.Intn(4); i < n; i++ {
			m.keys = append(m.keys, fmt.Sprintf("k%d", i))
			m.vals = append(m.vals, g.filler(depth+1))
		}
		return m
	default:
		s := gseq()
		for i, n := 0, g.r.Intn(3); i < n; i++ {
			s.items = append(s.items, g.filler(depth+1))
		}
		return s
	}
}

// shuffled adds filler keys to m and shuffles its entries.
func (g *gen) shuffled(m *gnode, depth int) *gnode {
	for i, n := 0, g.r.Intn(3); i < n; i++ {
		m.keys = append(m.keys, fmt.Sprintf("extra%d", i))
		m.vals = append(m.vals, g.filler(depth))
	}
	g.r.Shuffle(len(m.keys), func(i, j int) {
		m.keys[i], m.keys[j] = m.keys[j], m.keys[i]
		m.vals[i], m.vals[j] = m.vals[j], m.vals[i]
	})
	return m
}

func (g *gen) maybe(p float64, kv ...any) []any {
	if g.chance(p) {
		return kv
	}
	return nil
}

func (g *gen) helmTree() *gnode {
	tag := []*gnode{gs("1.4.1"), gs("1.10"), gnull(), gs("x")}[g.r.Intn(4)]
	image := []*gnode{gnull(), gmap(), g.shuffled(gmap(append(g.maybe(0.5, "repository", gs("registry.example.com/checkout")), g.maybe(0.7, "tag", tag)...)...), 1)}[g.r.Intn(3)]
	ann := []*gnode{gnull(), gmap(), g.shuffled(gmap(append(g.maybe(0.5, "prometheus.io/scrape", gs("true")), g.maybe(0.3, RestartAnnotation, gs("2026-01-01T00:00:00Z"))...)...), 1)}[g.r.Intn(3)]
	return g.shuffled(gmap(append(g.maybe(0.8, "image", image), g.maybe(0.7, "podAnnotations", ann)...)...), 0)
}

func (g *gen) kustomizeTree() *gnode {
	entry := func(name string) *gnode {
		return g.shuffled(gmap(append(append(append([]any{"name", gs(name)},
			g.maybe(0.7, "newTag", []*gnode{gs("1.4.1"), gs("1.10"), gnull()}[g.r.Intn(3)])...),
			g.maybe(0.3, "newName", gs("registry.example.com/other:2"))...),
			g.maybe(0.3, "digest", gs("sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c"))...)...), 2)
	}
	images := gseq()
	for _, name := range []string{"registry.example.com/other:2", "registry.example.com/checkout", "x"} {
		if g.chance(0.5) {
			images.items = append(images.items, entry(name))
		}
	}
	patches := gseq()
	for _, p := range []string{"other.yaml", restartPatchFile} {
		if g.chance(0.4) {
			patches.items = append(patches.items, gmap("path", gs(p), "target", gmap("kind", gs("Deployment"))))
		}
	}
	var kv []any
	kv = append(kv, g.maybe(0.8, "resources", gseq(gs("../base"), gs("other.yaml")))...)
	kv = append(kv, g.maybe(0.7, "images", []*gnode{images, gnull()}[g.r.Intn(2)])...)
	kv = append(kv, g.maybe(0.6, "patches", []*gnode{patches, gnull()}[g.r.Intn(2)])...)
	return g.shuffled(gmap(kv...), 0)
}

func (g *gen) container() *gnode {
	img := []string{"registry.example.com/checkout:1.4.1", "registry.example.com/other:2", "localhost:5000/checkout:2",
		"registry.example.com/checkout@sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c"}[g.r.Intn(4)]
	return g.shuffled(gmap("name", gs("app"), "image", gs(img)), 3)
}

func (g *gen) manifestDoc() *gnode {
	kind := []string{"Deployment", "StatefulSet", "CronJob", "Service", "Job", "DaemonSet", "Rollout", "ReplicaSet"}[g.r.Intn(8)]
	podSpec := gmap("containers", gseq(g.container()))
	if g.chance(0.5) {
		podSpec.items = nil
		podSpec.keys = append(podSpec.keys, "initContainers")
		podSpec.vals = append(podSpec.vals, gseq(g.container(), g.container()))
	}
	tmpl := gmap(append(g.maybe(0.6, "metadata", []*gnode{gmap("labels", gmap("app", gs("web"))), gmap("annotations", gmap("a", gs("x"))), gnull()}[g.r.Intn(3)]), "spec", g.shuffled(podSpec, 3))...)
	var spec *gnode
	switch kind {
	case "CronJob":
		spec = gmap("jobTemplate", gmap("spec", gmap("template", g.shuffled(tmpl, 3))))
	case "Service":
		spec = gmap("ports", gseq(gmap("port", gs("x"))))
	default:
		spec = gmap("template", g.shuffled(tmpl, 2))
	}
	apiVersion := "apps/v1"
	if kind == "Rollout" {
		apiVersion = "argoproj.io/v1alpha1"
	}
	return g.shuffled(gmap("apiVersion", gs(apiVersion), "kind", gs(kind), "metadata", gmap("name", gs("web")), "spec", g.shuffled(spec, 1)), 0)
}

// ---- the tests ----

// acceptable reports whether err is a legitimate refusal for generated
// input (a value of the wrong kind, no match, nothing to do); unsupported
// formatting or a failed self-check is not.
func acceptable(err error) bool {
	if err == nil || errors.Is(err, ErrUnchanged) || errors.Is(err, ErrNotFound) {
		return true
	}
	if errors.Is(err, errUnsupported) {
		return false
	}
	return !strings.Contains(err.Error(), "after the edit")
}

// genRuns is how many random files each generated-format test edits;
// raise it to hunt for bugs: go test -run Generated -gen.runs 100000
var genRuns = flag.Int64("gen.runs", 1500, "files per generated-format test")

func TestGeneratedHelm(t *testing.T) {
	ok := 0
	for seed := int64(0); seed < *genRuns; seed++ {
		g := newGen(seed)
		src := []byte(g.finish(g.doc(g.helmTree())))
		if _, err := decodeDocs(src); err != nil {
			t.Fatalf("seed %d: generator wrote invalid YAML (%v):\n%s", seed, err, src)
		}
		files := MapFiles{"values.yaml": src}
		for _, op := range []string{"tag", "restart"} {
			loc := Location{Layout: LayoutHelm, Path: "values.yaml"}
			var changes []Change
			var err error
			var model func([]any) []any
			if op == "tag" {
				changes, err = SetTag(files, loc, "1.4.2")
				model = func(d []any) []any { d[0] = setKeys(d[0], []string{"image", "tag"}, "1.4.2"); return d }
			} else {
				changes, err = SetRestart(files, loc, fuzzRestartValue)
				model = func(d []any) []any {
					d[0] = setKeys(d[0], []string{"podAnnotations", RestartAnnotation}, fuzzRestartValue)
					return d
				}
			}
			if !acceptable(err) {
				t.Fatalf("seed %d %s: %v\n%s", seed, op, err, src)
			}
			if err != nil {
				continue
			}
			ok++
			checkEdit(t, src, onlyChange(t, changes, "values.yaml").New, model)
		}
	}
	t.Logf("%d of %d edits succeeded", ok, 2**genRuns)
}

func TestGeneratedKustomize(t *testing.T) {
	ok := 0
	const image = "registry.example.com/checkout"
	for seed := int64(0); seed < *genRuns; seed++ {
		g := newGen(seed)
		src := []byte(g.finish(g.doc(g.kustomizeTree())))
		if _, err := decodeDocs(src); err != nil {
			t.Fatalf("seed %d: generator wrote invalid YAML (%v):\n%s", seed, err, src)
		}
		files := MapFiles{"o/kustomization.yaml": src}
		loc := Location{Layout: LayoutKustomize, Path: "o", Image: image}
		changes, err := SetTag(files, loc, "1.4.2")
		if !acceptable(err) {
			t.Fatalf("seed %d tag: %v\n%s", seed, err, src)
		}
		if err == nil {
			ok++
			checkEdit(t, src, onlyChange(t, changes, "o/kustomization.yaml").New, func(docs []any) []any {
				images, _ := mget(docs[0], "images").([]any)
				for _, it := range images {
					if mget(it, "name") == image {
						mset(it, "newTag", "1.4.2")
						mdelete(it, "digest")
						return docs
					}
				}
				docs[0] = mset(docs[0], "images", append(images, map[string]any{"name": image, "newTag": "1.4.2"}))
				return docs
			})
		}
		// The restart, with the bases the overlay may list.
		rfiles := fuzzOverlay(src, nil)
		rloc := Location{Layout: LayoutKustomize, Path: fuzzOverlayDir, Image: image}
		changes, err = SetRestart(rfiles, rloc, fuzzRestartValue)
		if !acceptable(err) {
			t.Fatalf("seed %d restart: %v\n%s", seed, err, src)
		}
		if err != nil {
			continue
		}
		ok++
		checkKustomizeRestart(t, rloc, rfiles, changes)
	}
	t.Logf("%d of %d edits succeeded", ok, 2**genRuns)
}

func TestGeneratedManifest(t *testing.T) {
	ok := 0
	const image = "registry.example.com/checkout"
	for seed := int64(0); seed < *genRuns; seed++ {
		g := newGen(seed)
		var docs []string
		for i, n := 0, 1+g.r.Intn(3); i < n; i++ {
			docs = append(docs, strings.TrimPrefix(g.doc(g.manifestDoc()), "---\n"))
		}
		src := []byte(g.finish(strings.Join(docs, "---\n")))
		if _, err := decodeDocs(src); err != nil {
			t.Fatalf("seed %d: generator wrote invalid YAML (%v):\n%s", seed, err, src)
		}
		files := MapFiles{"m.yaml": src}
		loc := Location{Layout: LayoutManifest, Path: "m.yaml", Image: image}
		changes, err := SetTag(files, loc, "1.4.2")
		if !acceptable(err) {
			t.Fatalf("seed %d tag: %v\n%s", seed, err, src)
		}
		if err == nil {
			ok++
			checkEdit(t, src, onlyChange(t, changes, "m.yaml").New, func(docs []any) []any {
				modelWorkloads(docs, image, func(_ any, cs []any) {
					for _, c := range cs {
						mset(c, "image", image+":1.4.2")
					}
				})
				return docs
			})
		}
		changes, err = SetRestart(files, loc, fuzzRestartValue)
		if !acceptable(err) {
			t.Fatalf("seed %d restart: %v\n%s", seed, err, src)
		}
		if err != nil {
			continue
		}
		ok++
		checkEdit(t, src, onlyChange(t, changes, "m.yaml").New, func(docs []any) []any {
			return modelRestart(docs, image, fuzzRestartValue)
		})
	}
	t.Logf("%d of %d edits succeeded", ok, 2**genRuns)
}
