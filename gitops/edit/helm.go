package edit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// helmLayout: the tag is a key of a Helm values file (or of a stack of
// them), the restart an annotation under the key the chart reads pod
// annotations from.
type helmLayout struct{}

func (helmLayout) validate(loc Location) error {
	if loc.Path == "." {
		return errors.New("helm location needs the path of a values file")
	}
	for _, p := range []string{loc.TagPath, loc.AnnotationsPath, loc.DigestPath} {
		if p == "" {
			continue
		}
		if _, err := parseValuesPath(p); err != nil {
			return err
		}
	}
	if n := len(loc.ValuesFiles); n > 0 && loc.ValuesFiles[n-1] != loc.Path {
		return fmt.Errorf("the values files of %s must end with it, the most specific file (Helm's order: the last wins); they end with %s", loc.Path, loc.ValuesFiles[n-1])
	}
	return nil
}

func (helmLayout) inputs(f Files, loc Location) ([]string, error) {
	overrides, err := overrideFiles(f, sourceDir(f, loc))
	if err != nil {
		return nil, err
	}
	return append(valuesStack(f, loc), overrides...), nil
}

// sourceDir is the directory an Argo CD Application renders the values
// with, where its parameter override files sit: the chart's directory in
// the repo, else the values file's.
func sourceDir(f Files, loc Location) string {
	if d := chartDir(f, loc); d != "" {
		return d
	}
	return path.Dir(loc.Path)
}

// chartDir returns the directory of the chart that renders loc's values:
// loc.Chart, else the values file's directory or chart/ beside it when it
// holds a Chart.yaml; "" when the chart isn't in the repo.
func chartDir(f Files, loc Location) string {
	if loc.Chart != "" {
		return cleanPath(loc.Chart)
	}
	dir := path.Dir(loc.Path)
	for _, d := range []string{dir, path.Join(dir, "chart")} {
		if _, err := f.ReadFile(path.Join(d, "Chart.yaml")); err == nil {
			return d
		}
	}
	return ""
}

// valuesStack returns the values files of loc in Helm's order, the last
// winning: the chart's own values.yaml when the chart is in the repo (Helm
// always reads it first), then ValuesFiles, or just Path.
func valuesStack(f Files, loc Location) []string {
	files := loc.ValuesFiles
	if len(files) == 0 {
		files = []string{loc.Path}
	}
	var stack []string
	if d := chartDir(f, loc); d != "" {
		cv := path.Join(d, "values.yaml")
		if _, err := f.ReadFile(cv); err == nil && !contains(files, cv) {
			stack = append(stack, cv)
		}
	}
	return append(stack, files...)
}

// stackValue is the effective value of a key through a values stack.
type stackValue struct {
	value string
	found bool   // set to a non-null scalar in some file
	from  string // the file that decided: the last that has the key
}

// stackGet reads the scalar at dotted through the stack as Helm merges it:
// the last file that has the key wins; a null there unsets it.
func stackGet(f Files, stack []string, dotted string) (stackValue, error) {
	vp, err := parseValuesPath(dotted)
	if err != nil {
		return stackValue{}, err
	}
	var sv stackValue
	for _, p := range stack {
		y, err := readValues(f, p)
		if err != nil {
			return stackValue{}, err
		}
		n, err := getValues(y.root(0), vp)
		if err != nil {
			return stackValue{}, fmt.Errorf("%s: %w", y.path, err)
		}
		if n == nil {
			continue
		}
		if isNull(n) {
			sv = stackValue{from: p}
			continue
		}
		v, ok := scalarString(n)
		if !ok {
			return stackValue{}, fmt.Errorf("%s in %s is a %s, not a scalar", dotted, y.path, kindName(n))
		}
		sv = stackValue{value: v, found: true, from: p}
	}
	return sv, nil
}

// parentIn reports whether the mapping holding the last key of dotted is
// in some file of the stack (a missing one means a wrong path).
func parentIn(f Files, stack []string, dotted string) (bool, error) {
	vp, err := parseValuesPath(dotted)
	if err != nil {
		return false, err
	}
	last := vp.steps[len(vp.steps)-1]
	for _, p := range stack {
		y, err := readValues(f, p)
		if err != nil {
			return false, err
		}
		parent := y.root(0)
		if len(vp.steps) > 1 {
			if parent, err = getValues(parent, valuesPath{text: vp.text, steps: vp.steps[:len(vp.steps)-1]}); err != nil {
				return false, fmt.Errorf("%s: %w", y.path, err)
			}
		}
		if parent != nil && (last.isIndex() || parent.Kind == yaml.MappingNode) {
			return true, nil
		}
	}
	return false, nil
}

// readValues reads and parses a Helm values file. Only its first document
// is used.
func readValues(f Files, p string) (*yfile, error) {
	b, err := f.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFoundf("values file %s not found", p)
	}
	if err != nil {
		return nil, err
	}
	y, err := parseYAML(p, b)
	if err != nil {
		return nil, err
	}
	if r := y.root(0); r != nil && r.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s is not a mapping of values", p)
	}
	return y, nil
}

// helmGet reads the scalar at the dotted path keys of the values file.
// found is false if the key (or a mapping on the way) is missing or null.
func helmGet(y *yfile, dotted string) (value string, found bool, err error) {
	vp, err := parseValuesPath(dotted)
	if err != nil {
		return "", false, err
	}
	n, err := getValues(y.root(0), vp)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", y.path, err)
	}
	if n == nil || isNull(n) {
		return "", false, nil
	}
	v, ok := scalarString(n)
	if !ok {
		return "", false, fmt.Errorf("%s in %s is a %s, not a scalar", dotted, y.path, kindName(n))
	}
	return v, true, nil
}

func (helmLayout) currentTag(f Files, loc Location) (string, error) {
	if tag, ok, err := overrideTag(f, sourceDir(f, loc), loc); ok || err != nil {
		return tag, err
	}
	stack := valuesStack(f, loc)
	sv, err := stackGet(f, stack, loc.TagPath)
	if err != nil {
		return "", err
	}
	if tag, _, ok := tagDigest(sv.value); ok && tag != "" {
		return tag, nil
	}
	if _, _, ok := tagDigest(sv.value); !ok && sv.found && sv.value != "" {
		return sv.value, nil
	}
	// The key is empty or not set: the chart's default applies. A mapping
	// missing from every file is a wrong tagPath.
	ok, err := parentIn(f, stack, loc.TagPath)
	if err != nil {
		return "", err
	}
	where := strings.Join(stack, ", ")
	if !ok {
		return "", notFoundf("%s not found in %s", loc.TagPath, where)
	}
	state := "is not set in " + where
	if sv.found {
		state = "is empty in " + sv.from
	} else if sv.from != "" {
		state = "is not set in " + sv.from // null
	}
	return "", noTagf("%s %s: the chart's default tag applies%s", loc.TagPath, state, chartAppVersion(f, loc))
}

// chartAppVersion describes the appVersion of the chart next to the values
// file, "" if there is none in the repo.
func chartAppVersion(f Files, loc Location) string {
	d := chartDir(f, loc)
	if d == "" {
		return ""
	}
	b, err := f.ReadFile(path.Join(d, "Chart.yaml"))
	if err != nil {
		return ""
	}
	var c struct {
		AppVersion string `yaml:"appVersion"`
	}
	if yaml.Unmarshal(b, &c) != nil || c.AppVersion == "" {
		return ""
	}
	return fmt.Sprintf(" (usually its appVersion, %s in %s)", c.AppVersion, path.Join(d, "Chart.yaml"))
}

// setImage sets the tag at TagPath, adding the key when absent, and
// updates or clears a digest held at DigestPath.
func (helmLayout) setImage(f Files, loc Location, opts SetImageOptions) (ImageEdit, error) {
	if e, ok, err := setOverride(f, sourceDir(f, loc), loc, opts); ok || err != nil {
		return e, err
	}
	vp, err := parseValuesPath(loc.TagPath)
	if err != nil {
		return ImageEdit{}, err
	}
	y, err := readValues(f, loc.Path)
	if err != nil {
		return ImageEdit{}, err
	}
	orig := y.src
	// A digest riding in the tag ("1.4.2@sha256:…", which charts render
	// as repository:tag) is a pin: kept with the new tag's digest, or
	// dropped and said.
	value := opts.Tag
	var pins []PinChange
	cur, _ := stackGet(f, valuesStack(f, loc), loc.TagPath) // setValues says what is wrong
	if _, digest, ok := tagDigest(cur.value); ok {
		if opts.Digest != "" {
			value += "@" + opts.Digest
		}
		if digest != opts.Digest {
			pins = append(pins, PinChange{Where: fmt.Sprintf("%s (%s)", cur.from, loc.TagPath), Old: digest, New: opts.Digest})
		}
	}
	changed, err := y.setValues(vp, value, modeTag)
	if err != nil {
		return ImageEdit{}, fmt.Errorf("set %s in %s: %w", loc.TagPath, y.path, err)
	}
	if loc.DigestPath == "" {
		loc.DigestPath = siblingDigest(f, loc)
	}
	if loc.DigestPath != "" {
		// The digest in effect may come from a less specific file; the
		// override written to loc.Path keeps the pair consistent.
		sv, err := stackGet(f, valuesStack(f, loc), loc.DigestPath)
		if err != nil {
			return ImageEdit{}, err
		}
		old := sv.value
		if p, ok := pinFor(fmt.Sprintf("%s (%s)", sv.from, loc.DigestPath), old, opts.Digest); ok && old != opts.Digest {
			if sv.from != y.path {
				p.Where += ", overridden in " + y.path
			}
			dp, _ := parseValuesPath(loc.DigestPath)
			if changed {
				// The tag edit may have added the mapping the digest goes
				// into: edit the result, so that it is found.
				if y, err = reparse(y); err != nil {
					return ImageEdit{}, err
				}
			}
			if _, err := y.setValues(dp, opts.Digest, modeTag); err != nil {
				return ImageEdit{}, fmt.Errorf("set %s in %s: %w", loc.DigestPath, y.path, err)
			}
			changed = true
			pins = append(pins, p)
		}
	}
	if !changed {
		return ImageEdit{}, unchangedf("%s in %s is already %s", loc.TagPath, y.path, opts.Tag)
	}
	changes, err := collect(y)
	if err != nil {
		return ImageEdit{}, err
	}
	for i := range changes {
		changes[i].Old = orig
	}
	return ImageEdit{Changes: changes, Pins: pins}, nil
}

// siblingDigest returns the path of a digest the values hold beside the tag
// (image.digest next to image.tag) when digestPath isn't configured: charts
// that have one render name@digest, so a tag change must keep it
// consistent too. "" when there is none.
func siblingDigest(f Files, loc Location) string {
	vp, err := parseValuesPath(loc.TagPath)
	if err != nil || len(vp.steps) == 0 {
		return ""
	}
	if last := vp.steps[len(vp.steps)-1]; last.isIndex() || strings.ContainsAny(last.key, `."`) {
		return ""
	}
	i := strings.LastIndex(vp.text, ".")
	candidate := "digest"
	if i >= 0 {
		candidate = vp.text[:i] + ".digest"
	}
	if parseValuesPathOK(candidate) {
		if sv, err := stackGet(f, valuesStack(f, loc), candidate); err == nil && sv.found && validDigest(sv.value) {
			return candidate
		}
	}
	return ""
}

func parseValuesPathOK(p string) bool {
	_, err := parseValuesPath(p)
	return err == nil
}

// tagDigest splits a tag value that carries a digest ("1.4.2@sha256:…");
// ok is false when it carries none.
func tagDigest(v string) (tag, digest string, ok bool) {
	tag, digest, found := strings.Cut(v, "@")
	if !found || !validDigest(digest) {
		return "", "", false
	}
	return tag, digest, true
}

// reparse returns a file holding y's edited content, to edit it further.
func reparse(y *yfile) (*yfile, error) {
	out, err := y.result()
	if err != nil {
		return nil, err
	}
	return parseYAML(y.path, out)
}

// restartPath is the path of the restart annotation in a values file: the
// annotation key is one key, dots and all.
func restartPath(loc Location) (valuesPath, error) {
	vp, err := parseValuesPath(loc.AnnotationsPath)
	if err != nil {
		return valuesPath{}, err
	}
	vp.steps = append(vp.steps, pathStep{key: RestartAnnotation, index: -1})
	return vp, nil
}

func (helmLayout) currentRestart(f Files, loc Location) (string, error) {
	vp, err := restartPath(loc)
	if err != nil {
		return "", err
	}
	var v string
	for _, p := range valuesStack(f, loc) {
		y, err := readValues(f, p)
		if err != nil {
			return "", err
		}
		n, err := getValues(y.root(0), vp)
		if err != nil {
			return "", fmt.Errorf("%s: %w", y.path, err)
		}
		if n != nil {
			v, _ = scalarString(n)
		}
	}
	return v, nil
}

func (helmLayout) setRestart(f Files, loc Location, value string) ([]Change, error) {
	y, err := readValues(f, loc.Path)
	if err != nil {
		return nil, err
	}
	if err := checkChartReads(f, loc); err != nil {
		return nil, err
	}
	vp, err := restartPath(loc)
	if err != nil {
		return nil, err
	}
	changed, err := y.setValues(vp, value, modeQuoted)
	if err != nil {
		return nil, fmt.Errorf("set %s[%q] in %s: %w", loc.AnnotationsPath, RestartAnnotation, y.path, err)
	}
	if !changed {
		return nil, unchangedf("%s in %s is already %s", RestartAnnotation, y.path, value)
	}
	return collect(y)
}

// ErrNotRead: the chart next to a Helm values file never reads the values
// key a restart would set, so the restart would change nothing. It wraps
// ErrNotFound.
var ErrNotRead = fmt.Errorf("the chart doesn't read the key: %w", ErrNotFound)

// workloadKindRE finds a workload a chart template renders.
var workloadKindRE = regexp.MustCompile(`(?m)^\s*kind:\s*["']?(Deployment|StatefulSet|DaemonSet|Rollout)\b`)

// checkChartReads is the check of a Helm restart that needs no rendering:
// when the chart is in the repo next to the values file (the values file in
// the chart's directory, or a chart/ directory beside it), has no
// dependencies, and its templates directory renders a workload, some
// template must mention the last key of AnnotationsPath; otherwise setting
// it would change no pod template, and the restart is refused (ErrNotRead).
// Anything it can't judge cheaply (no chart found, subcharts or library
// charts, templates only in subdirectories) passes: the restart is written
// as before.
func checkChartReads(f Files, loc Location) error {
	chart := chartDir(f, loc)
	if chart == "" {
		return nil
	}
	meta, err := f.ReadFile(path.Join(chart, "Chart.yaml"))
	if err != nil {
		return nil
	}
	var c struct {
		Dependencies []any `yaml:"dependencies"`
	}
	if yaml.Unmarshal(meta, &c) != nil || len(c.Dependencies) > 0 {
		return nil
	}
	if names, err := f.ReadDir(path.Join(chart, "charts")); err == nil && len(names) > 0 {
		return nil
	}
	tdir := path.Join(chart, "templates")
	names, err := f.ReadDir(tdir)
	if err != nil {
		return nil
	}
	vp, err := parseValuesPath(loc.AnnotationsPath)
	if err != nil {
		return nil
	}
	var key []byte
	for i := len(vp.steps) - 1; i >= 0 && key == nil; i-- {
		if !vp.steps[i].isIndex() {
			key = []byte(vp.steps[i].key)
		}
	}
	workload := false
	for _, n := range names {
		b, err := f.ReadFile(path.Join(tdir, n))
		if err != nil {
			return nil
		}
		if bytes.Contains(b, key) {
			return nil
		}
		workload = workload || workloadKindRE.Match(b)
	}
	if !workload {
		return nil
	}
	return &sentinelError{fmt.Sprintf("the chart in %s never reads %s (no template in %s mentions %q), so setting it would restart nothing: set annotationsPath to the values key its pod template's annotations come from",
		chart, loc.AnnotationsPath, tdir, key), ErrNotRead}
}

// renderer renders the chart in the repo with the helm binary, through the
// values stack.
func (helmLayout) renderer(ctx context.Context, f Files, loc Location, opts RenderOptions) appRenderer {
	chart := chartDir(f, loc)
	if chart == "" {
		return appRenderer{name: helmRenderer, reason: fmt.Sprintf("no chart in the repo for %s (no Chart.yaml beside it or in chart/; set chart to the chart's directory)", loc.Path)}
	}
	values := loc.ValuesFiles
	if len(values) == 0 {
		values = []string{loc.Path}
	}
	return appRenderer{
		name:   helmRenderer,
		what:   "the chart in " + chart + " with " + strings.Join(values, ", "),
		hint:   fmt.Sprintf("the chart in %s never reads %s: set annotationsPath to the values key its pod template's annotations come from", chart, loc.AnnotationsPath),
		render: func(t Files) ([]map[string]any, error) { return renderHelm(ctx, t, chart, values, opts) },
	}
}
