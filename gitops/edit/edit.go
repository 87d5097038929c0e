// Package edit changes image tags and restart annotations in an environment
// repo's manifests with byte-minimal edits: only the bytes of the target
// field change; comments, key order, quoting, blank lines and indentation
// survive. It locates fields with yaml.v3 nodes and splices the original
// bytes; it never decodes and re-encodes a whole file.
package edit

import (
	"errors"
	"fmt"
	"sort"
)

// Layout is how an app's manifests are laid out for one environment.
type Layout string

const (
	LayoutKustomize Layout = "kustomize" // Path is an overlay directory holding kustomization.yaml
	LayoutHelm      Layout = "helm"      // Path is a Helm values file
	LayoutManifest  Layout = "manifest"  // Path is a directory of (or one) raw YAML manifest file(s)
	// LayoutApplication: Path is an Argo CD Application manifest whose
	// source(s) carry the tag (helm parameters or valuesObject, kustomize
	// images); see application.go.
	LayoutApplication Layout = "application"
)

// Valid reports whether l is a known layout.
func (l Layout) Valid() bool { return layoutOf(l) != nil }

// RestartAnnotation is the pod-template annotation a restart sets.
const RestartAnnotation = "shipbot.io/restartedAt"

// Location is where one app's image tag and pod template live for one
// environment, relative to the environment repo's root.
type Location struct {
	Layout Layout
	// Path is the overlay directory (kustomize), the values file (helm), or a
	// directory of, or a single, manifest file(s) (manifest).
	Path string
	// Image is the image name without tag or digest,
	// e.g. "registry.example.com/shop/checkout".
	Image string
	// TagPath is the dotted path of the tag in a Helm values file
	// (default "image.tag"). Helm only.
	TagPath string
	// AnnotationsPath is the dotted path of the pod annotations map in a Helm
	// values file (default "podAnnotations"). Helm only.
	AnnotationsPath string
	// DigestPath is the dotted path of the image digest in a Helm values
	// file (e.g. "image.digest"; default none). When set and it holds a
	// digest, a tag change updates or clears it (see SetImage). Helm only.
	DigestPath string
	// ValuesFiles is the stack of Helm values files of this environment in
	// Helm's order (-f a.yaml -f b.yaml: the last wins). The effective tag
	// is read through the whole stack; edits go to Path, the most specific
	// file, which must be the last one. Empty means just Path. Helm only.
	ValuesFiles []string
	// Chart is the directory of the Helm chart in the repo that renders
	// these values (default: the values file's directory, or chart/ beside
	// it, when it holds a Chart.yaml). Helm only; used to check and render.
	Chart string
	// Names are further names of the app's image: the names it had before
	// a registry move (history follows them) and the name a kustomize
	// images entry may know it by. Image stays the current one.
	Names []string
}

// Files reads the files of one tree (one commit of the environment repo).
type Files interface {
	// ReadFile returns the content of the file at a slash-separated path
	// relative to the repo root; an error wrapping fs.ErrNotExist if absent.
	ReadFile(path string) ([]byte, error)
	// ReadDir returns the sorted names of the regular files directly inside
	// dir (not subdirectories); an error wrapping fs.ErrNotExist if dir is
	// not a directory.
	ReadDir(dir string) ([]string, error)
}

// Change is the new content of one file. Old is nil for a file that is created.
type Change struct {
	Path string
	Old  []byte
	New  []byte
}

// Sentinel errors. Errors returned by this package wrap them; their
// messages say what was looked for and where.
var (
	// ErrNotFound: the target (image entry, values key, container) isn't there.
	ErrNotFound = errors.New("not found")
	// ErrUnchanged: the field already has the requested value.
	ErrUnchanged = errors.New("already has the requested value")
)

// sentinelError carries its own message and unwraps to a sentinel.
type sentinelError struct {
	msg string
	err error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.err }

func notFoundf(format string, a ...any) error {
	return &sentinelError{fmt.Sprintf(format, a...), ErrNotFound}
}

func unchangedf(format string, a ...any) error {
	return &sentinelError{fmt.Sprintf(format, a...), ErrUnchanged}
}

const (
	defaultTagPath         = "image.tag"
	defaultAnnotationsPath = "podAnnotations"
)

// normalize validates loc, fills in defaults and returns its layout.
func normalize(loc Location) (Location, layout, error) {
	l := layoutOf(loc.Layout)
	if l == nil {
		return loc, nil, fmt.Errorf("unknown layout %q", loc.Layout)
	}
	loc.Path = cleanPath(loc.Path)
	if len(loc.ValuesFiles) > 0 {
		vf := make([]string, len(loc.ValuesFiles))
		for i, p := range loc.ValuesFiles {
			vf[i] = cleanPath(p)
		}
		loc.ValuesFiles = vf
	}
	if loc.TagPath == "" {
		loc.TagPath = defaultTagPath
	}
	if loc.AnnotationsPath == "" {
		loc.AnnotationsPath = defaultAnnotationsPath
	}
	if err := l.validate(loc); err != nil {
		return loc, nil, err
	}
	return loc, l, nil
}

// needImage is the validation of the layouts that find the app by its
// image name.
func needImage(loc Location) error {
	if loc.Image == "" {
		return fmt.Errorf("%s location needs an image name", loc.Layout)
	}
	return nil
}

// CurrentTag returns the image tag deployed at loc.
func CurrentTag(f Files, loc Location) (string, error) {
	loc, l, err := normalize(loc)
	if err != nil {
		return "", err
	}
	return l.currentTag(f, loc)
}

// SetTag returns the changes that deploy tag at loc: SetImage without a
// digest. The tag must already be valid (OCI tag grammar). It fails with
// ErrUnchanged if loc already deploys tag, and with ErrNotFound if the
// target isn't there.
func SetTag(f Files, loc Location, tag string) ([]Change, error) {
	e, err := SetImage(f, loc, SetImageOptions{Tag: tag})
	return e.Changes, err
}

// CurrentRestart returns the restart annotation's value at loc, "" (and no
// error) if there is none yet.
func CurrentRestart(f Files, loc Location) (string, error) {
	loc, l, err := normalize(loc)
	if err != nil {
		return "", err
	}
	return l.currentRestart(f, loc)
}

// SetRestart returns the changes that restart exactly the app's workloads
// at loc with value, an RFC 3339 timestamp: the Deployments, StatefulSets
// and DaemonSets running loc.Image get the pod-template annotation
// RestartAnnotation, Argo Rollouts get spec.restartAt (kustomize: through
// patches targeting each workload by kind and name; see workload.go).
// ReplicaSets, Jobs, CronJobs and Pods are never touched; when nothing else
// runs the image it fails with ErrNoWorkload. Helm: the annotation is set
// under AnnotationsPath, refused with ErrNotRead when the chart next to the
// values file is known never to read that key.
func SetRestart(f Files, loc Location, value string) ([]Change, error) {
	loc, l, err := normalize(loc)
	if err != nil {
		return nil, err
	}
	if value == "" {
		return nil, errors.New("empty restart value")
	}
	changes, err := l.setRestart(f, loc, value)
	if err != nil {
		return nil, err
	}
	if got, err := l.currentRestart(withChanges(f, changes), loc); err != nil || got != value {
		return nil, fmt.Errorf("after the edit the restart annotation at %s reads %q (%v), not %q; not applying", loc.Path, got, err, value)
	}
	return changes, nil
}

// Inputs returns the sorted repo paths whose content determines the tag
// and the restart annotation of loc (files that may not exist yet, like
// the kustomize restart patch, included).
func Inputs(f Files, loc Location) ([]string, error) {
	loc, l, err := normalize(loc)
	if err != nil {
		return nil, err
	}
	paths, err := l.inputs(f, loc)
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	return paths, nil
}

// collect turns the edited files into changes, sorted by path.
func collect(files ...*yfile) ([]Change, error) {
	var changes []Change
	for _, y := range files {
		if !y.changed() {
			continue
		}
		out, err := y.result()
		if err != nil {
			return nil, err
		}
		changes = append(changes, Change{Path: y.path, Old: y.src, New: out})
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes, nil
}
