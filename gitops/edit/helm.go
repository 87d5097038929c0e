package edit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"

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
	return nil
}

func (helmLayout) inputs(_ Files, loc Location) ([]string, error) {
	return []string{loc.Path}, nil
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
	y, err := readValues(f, loc.Path)
	if err != nil {
		return "", err
	}
	tag, found, err := helmGet(y, loc.TagPath)
	if err != nil {
		return "", err
	}
	if found && tag != "" {
		return tag, nil
	}
	// The key is empty, or absent from a mapping that is there: the chart's
	// default applies. A missing mapping is a wrong tagPath.
	vp, _ := parseValuesPath(loc.TagPath)
	parent := y.root(0)
	last := vp.steps[len(vp.steps)-1]
	if len(vp.steps) > 1 {
		if parent, err = getValues(parent, valuesPath{text: vp.text, steps: vp.steps[:len(vp.steps)-1]}); err != nil {
			return "", fmt.Errorf("%s: %w", y.path, err)
		}
	}
	if parent == nil || (!last.isIndex() && parent.Kind != yaml.MappingNode) {
		return "", notFoundf("%s not found in %s", loc.TagPath, y.path)
	}
	state := "is empty"
	if !found {
		state = "is not set"
	}
	return "", noTagf("%s %s in %s: the chart's default tag applies%s", loc.TagPath, state, y.path, chartAppVersion(f, loc))
}

// chartAppVersion describes the appVersion of the chart next to the values
// file, "" if there is none in the repo.
func chartAppVersion(f Files, loc Location) string {
	dir := path.Dir(loc.Path)
	for _, d := range []string{dir, path.Join(dir, "chart")} {
		b, err := f.ReadFile(path.Join(d, "Chart.yaml"))
		if err != nil {
			continue
		}
		var c struct {
			AppVersion string `yaml:"appVersion"`
		}
		if yaml.Unmarshal(b, &c) != nil || c.AppVersion == "" {
			return ""
		}
		return fmt.Sprintf(" (usually its appVersion, %s in %s)", c.AppVersion, path.Join(d, "Chart.yaml"))
	}
	return ""
}

// setImage sets the tag at TagPath, adding the key when absent, and
// updates or clears a digest held at DigestPath.
func (helmLayout) setImage(f Files, loc Location, opts SetImageOptions) (ImageEdit, error) {
	vp, err := parseValuesPath(loc.TagPath)
	if err != nil {
		return ImageEdit{}, err
	}
	y, err := readValues(f, loc.Path)
	if err != nil {
		return ImageEdit{}, err
	}
	changed, err := y.setValues(vp, opts.Tag, modeTag)
	if err != nil {
		return ImageEdit{}, fmt.Errorf("set %s in %s: %w", loc.TagPath, y.path, err)
	}
	var pins []PinChange
	if loc.DigestPath != "" {
		old, _, err := helmGet(y, loc.DigestPath)
		if err != nil {
			return ImageEdit{}, err
		}
		if p, ok := pinFor(fmt.Sprintf("%s (%s)", y.path, loc.DigestPath), old, opts.Digest); ok && old != opts.Digest {
			dp, _ := parseValuesPath(loc.DigestPath)
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
	return ImageEdit{Changes: changes, Pins: pins}, nil
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
	y, err := readValues(f, loc.Path)
	if err != nil {
		return "", err
	}
	vp, err := restartPath(loc)
	if err != nil {
		return "", err
	}
	n, err := getValues(y.root(0), vp)
	if err != nil {
		return "", fmt.Errorf("%s: %w", y.path, err)
	}
	v, _ := scalarString(n)
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
	dir := path.Dir(loc.Path)
	chart := ""
	var meta []byte
	for _, d := range []string{dir, path.Join(dir, "chart")} {
		if b, err := f.ReadFile(path.Join(d, "Chart.yaml")); err == nil {
			chart, meta = d, b
			break
		}
	}
	if chart == "" {
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
