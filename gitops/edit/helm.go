package edit

import (
	"errors"
	"fmt"
	"io/fs"

	"gopkg.in/yaml.v3"
)

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
	keys, err := splitPath(dotted)
	if err != nil {
		return "", false, err
	}
	n, err := getPath(y.root(0), keys...)
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

func helmCurrentTag(f Files, loc Location) (string, error) {
	y, err := readValues(f, loc.Path)
	if err != nil {
		return "", err
	}
	tag, found, err := helmGet(y, loc.TagPath)
	if err != nil {
		return "", err
	}
	if !found || tag == "" {
		return "", notFoundf("%s not found in %s", loc.TagPath, y.path)
	}
	return tag, nil
}

func helmSetTag(f Files, loc Location, tag string) ([]Change, error) {
	y, err := readValues(f, loc.Path)
	if err != nil {
		return nil, err
	}
	keys, _ := splitPath(loc.TagPath)
	changed, err := y.setPath(0, nil, y.root(0), keys, tag, modeTag)
	if err != nil {
		return nil, fmt.Errorf("set %s in %s: %w", loc.TagPath, y.path, err)
	}
	if !changed {
		return nil, unchangedf("%s in %s is already %s", loc.TagPath, y.path, tag)
	}
	return collect(y)
}

// restartKeys is the path of the restart annotation in a values file: the
// annotation key is one key, dots and all.
func restartKeys(loc Location) []string {
	keys, _ := splitPath(loc.AnnotationsPath)
	return append(keys, RestartAnnotation)
}

func helmCurrentRestart(f Files, loc Location) (string, error) {
	y, err := readValues(f, loc.Path)
	if err != nil {
		return "", err
	}
	n, err := getPath(y.root(0), restartKeys(loc)...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", y.path, err)
	}
	v, _ := scalarString(n)
	return v, nil
}

func helmSetRestart(f Files, loc Location, value string) ([]Change, error) {
	y, err := readValues(f, loc.Path)
	if err != nil {
		return nil, err
	}
	changed, err := y.setPath(0, nil, y.root(0), restartKeys(loc), value, modeQuoted)
	if err != nil {
		return nil, fmt.Errorf("set %s[%q] in %s: %w", loc.AnnotationsPath, RestartAnnotation, y.path, err)
	}
	if !changed {
		return nil, unchangedf("%s in %s is already %s", RestartAnnotation, y.path, value)
	}
	return collect(y)
}
