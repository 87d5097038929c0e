package edit

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A planned change is checked by rendering: the app is rendered before and
// after the change (kustomize in-process, a chart in the repo with `helm
// template`, raw manifests as themselves), and the two renders are
// compared. An image change must make every container that runs the app's
// image run the new tag, and change nothing else; a restart must put the
// restart annotation on exactly the pod templates of the workloads that run
// the app's image (Argo Rollouts: spec.restartAt), and change nothing else.
// A change whose rendered effect is not that is refused (ErrWrongEffect),
// with the reason; where the app can't be rendered, Verification says why.

// RenderOptions says how to render an app to check a change.
type RenderOptions struct {
	// Helm is the path of the helm binary that renders charts in the repo;
	// empty: Helm layouts are not rendered.
	Helm string
	// Timeout bounds one `helm template` run (default 30s).
	Timeout time.Duration
	// KubeVersion is the Kubernetes version charts are rendered for, as
	// Argo CD renders for its cluster (default DefaultKubeVersion).
	KubeVersion string
}

// Want is what a change is meant to do to the rendered app.
type Want struct {
	// Image is the app's image name without tag or digest (default: the
	// Location's Image); Names are its other names (default: the
	// Location's Names).
	Image string
	Names []string
	// Tag (and Digest, when known) is the image every container running
	// the app must run after the change; "" when the change sets no tag.
	Tag, Digest string
	// Restart is the restart value the app's workloads must get; "" when
	// the change is no restart.
	Restart string
}

// Verification is what rendering showed.
type Verification struct {
	// Rendered is false when the app could not be rendered; Reason says why.
	Rendered bool
	// Renderer is what rendered: "kustomize v5.4.2 (in-process)", "helm
	// template", "manifests".
	Renderer string
	// Reason says why the app was not rendered (without a leading "not
	// rendered:").
	Reason string
	// Workloads are the objects ("Deployment/checkout") whose pod template
	// (or Rollout spec.restartAt) the change changed.
	Workloads []string
	// Before are the distinct tags the app's containers ran before the
	// change, as rendered ("" for an untagged image), sorted.
	Before []string
}

// runningTags returns the distinct tags the containers of the app run in
// the rendered objects, sorted.
func runningTags(objs []*robj, names appNames) []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range objs {
		for _, c := range podContainers(o, o.obj) {
			if r, ok := names.ref(c.image); ok && !seen[r.Tag] {
				seen[r.Tag] = true
				out = append(out, r.Tag)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ErrWrongEffect: the rendered result of a change is not what was asked.
var ErrWrongEffect = errors.New("the rendered change is not what was asked")

// effectError is an ErrWrongEffect; noRestart is set when no pod template
// got the restart, so Verify can say where the layout puts it.
type effectError struct {
	msg       string // what happened
	expected  string // what was expected, "" if msg says it all
	noRestart bool
}

func (e *effectError) Error() string {
	if e.expected == "" {
		return e.msg
	}
	return e.msg + " (expected " + e.expected + ")"
}
func (e *effectError) Unwrap() error { return ErrWrongEffect }

// Verify renders the app at loc before and after changes and checks the
// effect. It returns Rendered false (and no error) when the app can't be
// rendered, or doesn't render before the change; an error wrapping
// ErrWrongEffect when the rendered effect is not want, or when the app no
// longer renders after the change.
func Verify(ctx context.Context, f Files, changes []Change, loc Location, want Want, opts RenderOptions) (Verification, error) {
	if want.Image == "" {
		want.Image = loc.Image
	}
	if len(want.Names) == 0 {
		want.Names = loc.Names
	}
	if want.Image == "" {
		return Verification{Reason: "the app's image name is not configured (image), so its containers can't be told apart"}, nil
	}
	if want.Tag == "" && want.Restart == "" {
		return Verification{}, errors.New("verify: the change sets no tag and no restart; nothing to check")
	}
	loc, l, err := normalize(loc)
	if err != nil {
		return Verification{}, err
	}
	r := l.renderer(ctx, f, loc, opts)
	if r.render == nil {
		return Verification{Renderer: r.name, Reason: r.reason}, nil
	}
	renderer, what, hint, render := r.name, r.what, r.hint, r.render
	before, err := render(f)
	if err != nil {
		if ctx.Err() != nil {
			return Verification{}, ctx.Err()
		}
		return Verification{Renderer: renderer, Reason: reasonOf(err)}, nil
	}
	after, err := render(withChangesTree(f, changes))
	if err != nil {
		if ctx.Err() != nil {
			return Verification{}, ctx.Err()
		}
		return Verification{Rendered: true, Renderer: renderer}, &effectError{msg: fmt.Sprintf("rendered with %s (%s): after the change the app no longer renders: %s", renderer, what, strings.TrimPrefix(err.Error(), "not rendered: "))}
	}
	v, err := checkEffect(before, after, want)
	v.Renderer = renderer
	var ee *effectError
	if errors.As(err, &ee) {
		e := &effectError{msg: fmt.Sprintf("rendered with %s (%s): %s", renderer, what, ee.msg), expected: ee.expected, noRestart: ee.noRestart}
		if ee.noRestart && hint != "" {
			e.msg += " — " + hint
			e.expected = ""
		}
		return v, e
	}
	return v, err
}

// reasonOf is the Reason of a render that failed.
func reasonOf(err error) string {
	s := err.Error()
	if errors.Is(err, ErrNotRendered) {
		return strings.TrimPrefix(s, "not rendered: ")
	}
	return "it doesn't render before the change: " + s
}

// manifestObjects "renders" raw manifests: the objects of the files the
// manifest layout reads.
func manifestObjects(f Files, loc Location) ([]map[string]any, error) {
	paths, err := manifestFiles(f, loc)
	if err != nil {
		return nil, err
	}
	var docs []map[string]any
	for _, p := range paths {
		b, err := f.ReadFile(p)
		if err != nil {
			return nil, err
		}
		d, err := decodeObjects(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		docs = append(docs, d...)
	}
	return docs, nil
}

// ---- checking the effect ------------------------------------------------------

// objKey identifies a rendered object across two renders.
type objKey struct {
	group, kind, namespace, name string
	n                            int // the n-th object with this identity (duplicates)
}

func (k objKey) String() string {
	s := k.kind + "/" + k.name
	if k.namespace != "" {
		s += " (namespace " + k.namespace + ")"
	}
	if k.n > 0 {
		s += fmt.Sprintf(" (#%d)", k.n+1)
	}
	return s
}

func keyOf(o map[string]any) objKey {
	var k objKey
	api, _ := o["apiVersion"].(string)
	if g, _, ok := strings.Cut(api, "/"); ok {
		k.group = g
	}
	k.kind, _ = o["kind"].(string)
	md, _ := o["metadata"].(map[string]any)
	k.name, _ = md["name"].(string)
	k.namespace, _ = md["namespace"].(string)
	return k
}

// robj is one rendered object, with a copy that the check strips of the
// fields the change may change.
type robj struct {
	key  objKey
	obj  map[string]any
	rest map[string]any
}

func indexObjects(docs []map[string]any) ([]*robj, map[objKey]*robj) {
	var list []*robj
	m := map[objKey]*robj{}
	for _, d := range docs {
		k := keyOf(d)
		for m[k] != nil {
			k.n++
		}
		o := &robj{key: k, obj: d, rest: copyValue(d).(map[string]any)}
		list = append(list, o)
		m[k] = o
	}
	return list, m
}

func (o *robj) rollout() bool { return o.key.kind == rolloutKindName && o.key.group == "argoproj.io" }

const rolloutKindName = "Rollout"

// renderedPodSpecs says where each kind that runs pods keeps its pod spec,
// and (templates) its pod template.
var renderedPodSpecs = map[string][]string{
	"Deployment":    {"spec", "template", "spec"},
	"StatefulSet":   {"spec", "template", "spec"},
	"DaemonSet":     {"spec", "template", "spec"},
	"ReplicaSet":    {"spec", "template", "spec"},
	"Job":           {"spec", "template", "spec"},
	"CronJob":       {"spec", "jobTemplate", "spec", "template", "spec"},
	"Pod":           {"spec"},
	rolloutKindName: {"spec", "template", "spec"},
}

// restartable are the kinds a restart restarts.
var restartable = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true, rolloutKindName: true}

// podSpecPath returns where o keeps its pod spec; nil if o runs no pods.
func (o *robj) podSpecPath() []string {
	if o.key.kind == rolloutKindName && !o.rollout() {
		return nil
	}
	return renderedPodSpecs[o.key.kind]
}

// templatePath returns where o keeps its pod template; nil if o has none.
func (o *robj) templatePath() []string {
	sp := o.podSpecPath()
	if len(sp) < 2 {
		return nil
	}
	return sp[:len(sp)-1]
}

// containerRef is one container's image field in a rendered object.
type containerRef struct {
	section string // "containers", "initContainers"
	index   int
	name    string
	image   string
}

func (c containerRef) String() string {
	if c.name != "" {
		return "container " + c.name
	}
	return fmt.Sprintf("%s[%d]", c.section, c.index)
}

// podContainers returns the image fields of the pod spec of v (o's layout).
func podContainers(o *robj, v map[string]any) []containerRef {
	sp := o.podSpecPath()
	if sp == nil {
		return nil
	}
	spec, _ := lookupKeys(v, sp).(map[string]any)
	var out []containerRef
	for _, section := range []string{"containers", "initContainers"} {
		items, _ := spec[section].([]any)
		for i, it := range items {
			c, _ := it.(map[string]any)
			img, _ := c["image"].(string)
			name, _ := c["name"].(string)
			out = append(out, containerRef{section: section, index: i, name: name, image: img})
		}
	}
	return out
}

// deleteImageField removes the image of container c from v.
func deleteImageField(o *robj, v map[string]any, c containerRef) {
	spec, _ := lookupKeys(v, o.podSpecPath()).(map[string]any)
	items, _ := spec[c.section].([]any)
	if c.index < len(items) {
		if m, ok := items[c.index].(map[string]any); ok {
			delete(m, "image")
		}
	}
}

// appNames is the set of names of the app's image.
type appNames map[string]bool

func (a appNames) ref(s string) (imageRef, bool) {
	r, ok := parseImageRef(s)
	return r, ok && a[r.Name]
}

// runsApp reports whether a container of o (as rendered in v) runs the app.
func (a appNames) runsApp(o *robj, v map[string]any) bool {
	for _, c := range podContainers(o, v) {
		if _, ok := a.ref(c.image); ok {
			return true
		}
	}
	return false
}

// checkEffect compares two renders of an app, before and after a change,
// with what the change is meant to do (see Verify). It is pure.
func checkEffect(before, after []map[string]any, want Want) (Verification, error) {
	v := Verification{Rendered: true}
	if want.Tag == "" && want.Restart == "" {
		return v, errors.New("nothing to check: the change sets no tag and no restart")
	}
	names := appNames{want.Image: true}
	for _, n := range want.Names {
		if n != "" {
			names[n] = true
		}
	}
	bList, bIdx := indexObjects(before)
	aList, aIdx := indexObjects(after)
	v.Before = runningTags(bList, names)
	var issues []string
	changed := map[objKey]bool{}

	// runs: the objects running the app after the change, Rollouts running
	// it through a workloadRef included; viaRollout: the workloads those
	// Rollouts run.
	runs := map[objKey]bool{}
	for _, o := range aList {
		runs[o.key] = names.runsApp(o, o.obj)
	}
	viaRollout := map[objKey]objKey{}
	for _, o := range aList {
		if !o.rollout() {
			continue
		}
		ref, _ := lookupKeys(o.obj, []string{"spec", "workloadRef"}).(map[string]any)
		name, _ := ref["name"].(string)
		if name == "" {
			continue
		}
		kind, _ := ref["kind"].(string)
		if kind == "" {
			kind = "Deployment"
		}
		for _, d := range aList {
			if d.key.kind == kind && d.key.name == name && (d.key.namespace == o.key.namespace || d.key.namespace == "" || o.key.namespace == "") && runs[d.key] {
				runs[o.key] = true
				viaRollout[d.key] = o.key
			}
		}
	}

	// The image change.
	var oldTags map[string]bool
	var wantRef imageRef
	if want.Tag != "" {
		oldTags = map[string]bool{}
		wantRef = imageRef{Name: want.Image, Tag: want.Tag, Digest: want.Digest}
		running := 0
		for _, a := range aList {
			b := bIdx[a.key]
			if b == nil {
				continue
			}
			bcs := podContainers(b, b.obj)
			for _, ac := range podContainers(a, a.obj) {
				var bc containerRef
				for _, c := range bcs {
					if c.section == ac.section && c.index == ac.index {
						bc = c
					}
				}
				aref, aApp := names.ref(ac.image)
				bref, bApp := names.ref(bc.image)
				if bApp && bref.Tag != "" {
					oldTags[bref.Tag] = true
				}
				switch {
				case aApp:
					running++
					if ac.image != bc.image {
						changed[a.key] = true
					}
					if issue := imageIssue(a.key, ac, aref, bref, bApp, want); issue != "" {
						issues = append(issues, issue)
					}
				case bApp:
					issues = append(issues, fmt.Sprintf("%s %s ran %s before and runs %s after", a.key, ac, bc.image, orNone(ac.image)))
				default:
					continue
				}
				deleteImageField(a, a.rest, ac)
				deleteImageField(b, b.rest, bc)
			}
		}
		if running == 0 {
			issues = append(issues, fmt.Sprintf("no container in the rendered output runs %s", want.Image))
		}
	}

	// The restart.
	noRestart := false
	if want.Restart != "" {
		var restarted []objKey
		lost := map[objKey]bool{}
		for _, a := range aList {
			b := bIdx[a.key]
			if b == nil {
				continue
			}
			bv, bok := restartOf(b, b.obj)
			av, aok := restartOf(a, a.obj)
			stripRestart(b, b.rest)
			stripRestart(a, a.rest)
			if bv == av && bok == aok {
				continue
			}
			restarted = append(restarted, a.key)
			changed[a.key] = true
			field := "the annotation " + RestartAnnotation
			if a.rollout() {
				field = "spec.restartAt"
			}
			switch {
			case !aok:
				issues = append(issues, fmt.Sprintf("%s lost %s, which restarts its pods too", a.key, field))
				lost[a.key] = true
			case av != want.Restart:
				issues = append(issues, fmt.Sprintf("%s got %s %q, not %q", a.key, field, av, want.Restart))
			}
		}
		if len(restarted) == 0 {
			noRestart = true
			issues = append(issues, fmt.Sprintf("no pod template got %s (nor any Rollout spec.restartAt)", RestartAnnotation))
		}
		hit := map[objKey]bool{}
		for _, k := range restarted {
			hit[k] = true
			switch {
			case lost[k]:
			case !restartable[k.kind]:
				issues = append(issues, fmt.Sprintf("the restart changes the pod template of %s, which a restart leaves alone", k))
			case !runs[k]:
				issues = append(issues, fmt.Sprintf("the restart also hits %s, which doesn't run %s", k, want.Image))
			case viaRollout[k] != objKey{}:
				issues = append(issues, fmt.Sprintf("the restart changes the pod template of %s, whose pods %s runs (spec.workloadRef): that starts a new rollout revision; the restart belongs in the Rollout's spec.restartAt", k, viaRollout[k]))
			}
		}
		for _, a := range aList {
			if noRestart || bIdx[a.key] == nil || !restartable[a.key.kind] || !runs[a.key] || hit[a.key] || viaRollout[a.key] != (objKey{}) {
				continue
			}
			if a.key.kind == rolloutKindName && !a.rollout() {
				continue
			}
			issues = append(issues, fmt.Sprintf("%s runs %s but was not restarted", a.key, want.Image))
		}
	}

	// Nothing else may differ.
	var other []string
	allow := func(p []any, x, y any) (bool, string) {
		if want.Tag == "" {
			return false, ""
		}
		xs, ok1 := x.(string)
		ys, ok2 := y.(string)
		if !ok1 || !ok2 {
			return false, ""
		}
		if r, ok := names.ref(xs); ok {
			if s, ok := names.ref(ys); ok && s.Tag == wantRef.Tag && s.Digest == wantRef.Digest && r.Tag != s.Tag {
				return true, "" // the app's image, as written elsewhere
			}
		}
		if oldTags[xs] && ys == want.Tag {
			if len(p) > 1 && p[0] == "spec" && p[1] == "selector" {
				return false, "the tag is part of the selector, which Kubernetes won't change on an existing object"
			}
			return true, "" // the tag, echoed (a version label, an env var)
		}
		return false, ""
	}
	for _, b := range bList {
		if aIdx[b.key] == nil {
			other = append(other, fmt.Sprintf("%s is gone", b.key))
		}
	}
	for _, a := range aList {
		b := bIdx[a.key]
		if b == nil {
			other = append(other, fmt.Sprintf("%s is new", a.key))
			continue
		}
		var diffs []string
		diffValues(b.rest, a.rest, nil, allow, &diffs, 4)
		for _, d := range diffs {
			other = append(other, a.key.String()+" "+d)
		}
	}
	if len(other) > 0 {
		const show = 4
		s := "other changes in the rendered output: " + strings.Join(firstN(other, show), "; ")
		if len(other) > show {
			s += fmt.Sprintf(" (and %d more)", len(other)-show)
		}
		issues = append(issues, s)
	}

	for _, o := range aList {
		if changed[o.key] {
			v.Workloads = append(v.Workloads, o.key.String())
		}
	}
	if len(issues) == 0 {
		return v, nil
	}
	var expected []string
	if want.Tag != "" {
		expected = append(expected, fmt.Sprintf("every container running %s to run %s", want.Image, wantRef))
	}
	if want.Restart != "" {
		expected = append(expected, fmt.Sprintf("exactly the workloads running %s to get %s %q", want.Image, RestartAnnotation, want.Restart))
	}
	msg := strings.Join(firstN(issues, 4), "; ")
	if len(issues) > 4 {
		msg += fmt.Sprintf(" (and %d more)", len(issues)-4)
	}
	return v, &effectError{msg: msg, expected: strings.Join(expected, ", and ") + ", and nothing else to change", noRestart: noRestart}
}

// imageIssue checks one container that runs the app after the change.
func imageIssue(k objKey, c containerRef, after, before imageRef, beforeApp bool, want Want) string {
	switch {
	case after.Tag != want.Tag && beforeApp && before.Tag == after.Tag && before.Digest == after.Digest:
		return fmt.Sprintf("%s %s still runs %s, not %s", k, c, c.image, want.Tag)
	case after.Tag != want.Tag:
		return fmt.Sprintf("%s %s runs %s, not %s", k, c, c.image, want.Tag)
	case want.Digest != "" && after.Digest != want.Digest:
		return fmt.Sprintf("%s %s runs %s, not pinned to %s", k, c, c.image, want.Digest)
	case want.Digest == "" && after.Digest != "":
		s := fmt.Sprintf("%s %s runs %s: the digest decides what runs, and no digest was given for %s", k, c, c.image, want.Tag)
		if beforeApp && before.Digest == after.Digest && before.Tag != after.Tag {
			s += fmt.Sprintf(" (it is the digest of %s, which ran before: the new tag would not run)", orNone(before.Tag))
		}
		return s
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// restartOf reads the restart of o as rendered in v: a Rollout's
// spec.restartAt, or the restart annotation of its pod template.
func restartOf(o *robj, v map[string]any) (string, bool) {
	if o.rollout() {
		if s, ok := lookupKeys(v, []string{"spec", "restartAt"}).(string); ok {
			return s, true
		}
	}
	tp := o.templatePath()
	if tp == nil {
		return "", false
	}
	ann, _ := lookupKeys(v, append(append([]string(nil), tp...), "metadata", "annotations")).(map[string]any)
	s, ok := ann[RestartAnnotation]
	if !ok {
		return "", false
	}
	return fmt.Sprint(s), true
}

// stripRestart removes the restart fields from v (and the maps they leave
// empty: an empty annotations map and none are alike).
func stripRestart(o *robj, v map[string]any) {
	if o.rollout() {
		if spec, ok := v["spec"].(map[string]any); ok {
			delete(spec, "restartAt")
		}
	}
	tp := o.templatePath()
	if tp == nil {
		return
	}
	tmpl, _ := lookupKeys(v, tp).(map[string]any)
	md, _ := tmpl["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	if ann == nil {
		return
	}
	delete(ann, RestartAnnotation)
	if len(ann) == 0 {
		delete(md, "annotations")
	}
	if len(md) == 0 {
		delete(tmpl, "metadata")
	}
}

func lookupKeys(v any, keys []string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = copyValue(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = copyValue(x)
		}
		return s
	}
	return v
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// diffValues appends to out (up to limit entries) the differences between
// a and b at path p, as "FIELD: OLD → NEW". allow may accept a scalar
// difference, or explain it.
func diffValues(a, b any, p []any, allow func(p []any, a, b any) (bool, string), out *[]string, limit int) {
	if len(*out) >= limit {
		return
	}
	switch am := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := make([]string, 0, len(am)+len(bm))
		for k := range am {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			x, inA := am[k]
			y, inB := bm[k]
			q := append(append([]any(nil), p...), k)
			switch {
			case !inA:
				*out = append(*out, fmt.Sprintf("%s: added (%s)", fieldPath(q), shortValue(y)))
			case !inB:
				*out = append(*out, fmt.Sprintf("%s: removed (was %s)", fieldPath(q), shortValue(x)))
			default:
				diffValues(x, y, q, allow, out, limit)
			}
			if len(*out) >= limit {
				return
			}
		}
		return
	case []any:
		bs, ok := b.([]any)
		if !ok {
			break
		}
		for i := 0; i < len(am) || i < len(bs); i++ {
			q := append(append([]any(nil), p...), i)
			switch {
			case i >= len(am):
				*out = append(*out, fmt.Sprintf("%s: added (%s)", fieldPath(q), shortValue(bs[i])))
			case i >= len(bs):
				*out = append(*out, fmt.Sprintf("%s: removed (was %s)", fieldPath(q), shortValue(am[i])))
			default:
				diffValues(am[i], bs[i], q, allow, out, limit)
			}
			if len(*out) >= limit {
				return
			}
		}
		return
	}
	if reflect.DeepEqual(a, b) {
		return
	}
	if ok, why := allow(p, a, b); ok {
		return
	} else if why != "" {
		sa, sb := shortPair(a, b)
		*out = append(*out, fmt.Sprintf("%s: %s → %s: %s", fieldPath(p), sa, sb, why))
		return
	}
	sa, sb := shortPair(a, b)
	*out = append(*out, fmt.Sprintf("%s: %s → %s", fieldPath(p), sa, sb))
}

// fieldPath renders a path as spec.template.metadata.annotations["a/b"].
func fieldPath(p []any) string {
	var b strings.Builder
	for _, s := range p {
		switch s := s.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		case string:
			if plainField(s) {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(s)
			} else {
				fmt.Fprintf(&b, "[%s]", strconv.Quote(s))
			}
		}
	}
	if b.Len() == 0 {
		return "(the object)"
	}
	return b.String()
}

func plainField(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlnum(c) || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// shortValue renders a value for a message.
// shortPair shows two values for a message; long strings that share a
// beginning (an image's registry and repository) are shown from where they
// differ, so that the difference is what is read.
func shortPair(a, b any) (string, string) {
	as, aok := a.(string)
	bs, bok := b.(string)
	if !aok || !bok || (len(as) <= 40 && len(bs) <= 40) {
		return shortValue(a), shortValue(b)
	}
	i := 0
	for i < len(as) && i < len(bs) && as[i] == bs[i] {
		i++
	}
	// Back to the start of the path element or tag that differs.
	if j := strings.LastIndexAny(as[:i], "/:@"); j >= 0 {
		i = j
	}
	if i < 10 {
		return shortValue(a), shortValue(b)
	}
	return shortValue("…" + as[i:]), shortValue("…" + bs[i:])
}

func shortValue(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		s = "null"
	case string:
		s = strconv.Quote(v)
	case map[string]any:
		s = fmt.Sprintf("a mapping of %d keys", len(v))
	case []any:
		s = fmt.Sprintf("a list of %d items", len(v))
	default:
		s = fmt.Sprint(v)
	}
	if r := []rune(s); len(r) > 60 {
		s = string(r[:57]) + "…"
	}
	return s
}
