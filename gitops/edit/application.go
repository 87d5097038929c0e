package edit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"gopkg.in/yaml.v3"
)

// applicationLayout: the tag is in an Argo CD Application manifest.
type applicationLayout struct{}

func (applicationLayout) validate(loc Location) error {
	if loc.Path == "." || loc.Image == "" {
		return errors.New("application location needs the path of an Argo CD Application manifest and an image name")
	}
	_, err := parseValuesPath(loc.TagPath)
	return err
}

func (applicationLayout) inputs(_ Files, loc Location) ([]string, error) {
	return []string{loc.Path}, nil
}

// The application layout: the app's image tag is written in an Argo CD
// Application manifest in the environment repo (the app-of-apps layout), in
// one of its sources (spec.source, or one of spec.sources when the
// Application has several):
//
//   - spec.source.helm.parameters: the item named TagPath ("image.tag"),
//     its value. Argo CD passes parameters to Helm last, so they win over
//     valuesObject; a parameter is preferred when a source has both.
//   - spec.source.helm.valuesObject: the key at TagPath.
//   - spec.source.kustomize.images: a string naming the image, either
//     "registry/app:1.4.2" or "name=newname:1.4.2"; it matches when name or
//     newname is the app's image. A digest ("…:1.4.2@sha256:…") is a pin.
//
// Location.Path is the manifest file (one or several YAML documents; the
// non-Application documents are ignored); Location.Image is the app's image,
// used to find its kustomize images entry and to choose between sources that
// all carry TagPath (the one that also names the image wins).
//
// Nothing is added where absent: an Application that doesn't carry the tag is
// refused (ErrNotFound) with what was looked for. Restart is refused too
// (ErrNoPodTemplate): the Application has no pod template to annotate.

// ErrNoPodTemplate: the layout keeps no pod template, so a restart can't be
// written there. It wraps ErrNotFound.
var ErrNoPodTemplate = fmt.Errorf("no pod template in this layout: %w", ErrNotFound)

// appCarrier is what kind of field of an Application source holds the tag.
type appCarrier int

const (
	carrierParameter appCarrier = iota + 1
	carrierValuesObject
	carrierKustomizeImage
)

// appTarget is the field holding the app's tag in one Application document.
type appTarget struct {
	doc     int
	app     string // the Application's metadata.name, "" if unnamed
	carrier appCarrier
	node    *yaml.Node // the scalar: parameter value, values leaf, images string
	gpath   []any      // generic path of node in document doc
	flow    bool       // node sits inside a flow collection
	source  *yaml.Node // the source mapping, to see whether it names the image

	// Kustomize images only: "name=" (or "") and the image reference after it.
	prefix string
	ref    imageRef
}

// where describes the field for messages.
func (t appTarget) where(path string) string {
	if t.app == "" {
		return fmt.Sprintf("%s (%s)", path, describe(t.gpath))
	}
	return fmt.Sprintf("%s (Application %s, %s)", path, t.app, describe(t.gpath))
}

// readApplication reads and parses the Application manifest file.
func readApplication(f Files, p string) (*yfile, error) {
	b, err := f.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFoundf("Application manifest %s not found", p)
	}
	if err != nil {
		return nil, err
	}
	return parseYAML(p, b)
}

// isApplication reports whether root is an Argo CD Application document.
func isApplication(root *yaml.Node) bool {
	if root == nil || root.Kind != yaml.MappingNode {
		return false
	}
	k, _ := get(root, "kind")
	kind, _ := scalarString(k)
	a, _ := get(root, "apiVersion")
	api, _ := scalarString(a)
	return kind == "Application" && (api == "" || strings.HasPrefix(api, "argoproj.io/"))
}

// findAppTarget locates the field holding the app's tag in the file.
func findAppTarget(y *yfile, loc Location) (appTarget, error) {
	vp, err := parseValuesPath(loc.TagPath)
	if err != nil {
		return appTarget{}, err
	}
	var found []appTarget
	apps := 0
	for d := range y.docs {
		root := y.root(d)
		if !isApplication(root) {
			continue
		}
		apps++
		ts, err := appDocTargets(y, d, root, loc, vp)
		if err != nil {
			return appTarget{}, err
		}
		found = append(found, ts...)
	}
	switch {
	case apps == 0:
		return appTarget{}, notFoundf("%s holds no Argo CD Application (kind: Application)", y.path)
	case len(found) == 0:
		return appTarget{}, notFoundf("no source of the Application in %s carries the tag of %s: looked for a helm parameter named %s, helm.valuesObject.%s and a kustomize.images entry for %s; add one to the source that deploys the app (e.g. the helm parameter {name: %s, value: \"1.0.0\"}) or fix tagPath",
			y.path, loc.Image, loc.TagPath, loc.TagPath, loc.Image, loc.TagPath)
	case len(found) == 1:
		return found[0], nil
	}
	// Several sources carry TagPath: keep those that also name the image.
	var named []appTarget
	for _, t := range found {
		if t.carrier == carrierKustomizeImage || mentionsAny(t.source, loc.names()) {
			named = append(named, t)
		}
	}
	if len(named) == 1 {
		return named[0], nil
	}
	var where []string
	for _, t := range found {
		where = append(where, describe(t.gpath))
	}
	return appTarget{}, fmt.Errorf("%s has %d fields that may hold the tag of %s (%s) and not exactly one of their sources names the image: make tagPath or image point at one",
		y.path, len(found), loc.Image, strings.Join(where, ", "))
}

// appDocTargets returns the tag fields of one Application document, at most
// one per source.
func appDocTargets(y *yfile, d int, root *yaml.Node, loc Location, vp valuesPath) ([]appTarget, error) {
	name := ""
	if md, _ := get(root, "metadata"); md != nil && md.Kind == yaml.MappingNode {
		n, _ := get(md, "name")
		name, _ = scalarString(n)
	}
	spec, err := get(root, "spec")
	if err != nil || spec == nil || spec.Kind != yaml.MappingNode {
		return nil, err
	}
	type src struct {
		node  *yaml.Node
		gpath []any
	}
	var srcs []src
	// Argo CD uses spec.sources when it lists any, spec.source otherwise.
	if ss, err := get(spec, "sources"); err != nil {
		return nil, err
	} else if ss != nil && ss.Kind == yaml.SequenceNode && len(ss.Content) > 0 {
		for i, s := range ss.Content {
			srcs = append(srcs, src{s, []any{"spec", "sources", i}})
		}
	} else if s, err := get(spec, "source"); err != nil {
		return nil, err
	} else if s != nil {
		srcs = append(srcs, src{s, []any{"spec", "source"}})
	}
	var out []appTarget
	for _, s := range srcs {
		if s.node.Kind != yaml.MappingNode {
			continue
		}
		t, ok, err := sourceTarget(y, s.node, s.gpath, loc, vp)
		if err != nil {
			return nil, err
		}
		if ok {
			t.doc, t.app, t.source = d, name, s.node
			out = append(out, t)
		}
	}
	return out, nil
}

// sourceTarget finds the tag field of one source.
func sourceTarget(y *yfile, src *yaml.Node, base []any, loc Location, vp valuesPath) (appTarget, bool, error) {
	fail := func(err error) (appTarget, bool, error) {
		return appTarget{}, false, fmt.Errorf("%s (%s): %w", y.path, describe(base), err)
	}
	if helm, err := get(src, "helm"); err != nil {
		return fail(err)
	} else if helm != nil && helm.Kind == yaml.MappingNode {
		hpath := appendPath(base, "helm")
		params, err := get(helm, "parameters")
		if err != nil {
			return fail(err)
		}
		if params != nil && params.Kind == yaml.SequenceNode {
			var hit *appTarget
			for i, it := range params.Content {
				if it.Kind != yaml.MappingNode {
					continue
				}
				n, err := get(it, "name")
				if err != nil {
					return fail(err)
				}
				if pn, _ := scalarString(n); pn != loc.TagPath {
					continue
				}
				ipath := appendPath(appendPath(hpath, "parameters"), i)
				if hit != nil {
					return fail(fmt.Errorf("parameter %s is listed twice (%s and %s)", loc.TagPath, describe(hit.gpath[:len(hit.gpath)-1]), describe(ipath)))
				}
				v, err := get(it, "value")
				if err != nil {
					return fail(err)
				}
				if v == nil || v.Kind != yaml.ScalarNode {
					return fail(fmt.Errorf("parameter %s (%s) has no scalar value", loc.TagPath, describe(ipath)))
				}
				hit = &appTarget{carrier: carrierParameter, node: v, gpath: appendPath(ipath, "value"), flow: isStyle(it, yaml.FlowStyle) || isStyle(params, yaml.FlowStyle)}
			}
			if hit != nil {
				return *hit, true, nil
			}
		}
		vo, err := get(helm, "valuesObject")
		if err != nil {
			return fail(err)
		}
		if vo != nil && vo.Kind == yaml.MappingNode {
			n, rel, flow, err := walkSteps(vo, vp.steps)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return fail(err)
			}
			if err == nil && n != nil {
				gpath := appendPath(hpath, "valuesObject")
				for _, k := range rel {
					gpath = appendPath(gpath, k)
				}
				if n.Kind != yaml.ScalarNode {
					return fail(fmt.Errorf("%s is a %s, not a scalar", describe(gpath), kindName(n)))
				}
				return appTarget{carrier: carrierValuesObject, node: n, gpath: gpath, flow: flow || isStyle(vo, yaml.FlowStyle)}, true, nil
			}
		}
	}
	kust, err := get(src, "kustomize")
	if err != nil {
		return fail(err)
	}
	if kust == nil || kust.Kind != yaml.MappingNode {
		return appTarget{}, false, nil
	}
	images, err := get(kust, "images")
	if err != nil {
		return fail(err)
	}
	if images == nil || images.Kind != yaml.SequenceNode {
		return appTarget{}, false, nil
	}
	var hit *appTarget
	for i, it := range images.Content {
		s, ok := scalarString(it)
		if !ok {
			continue
		}
		prefix, ref, ok := parseKustomizeImageArg(s)
		if !ok {
			continue
		}
		old := strings.TrimSuffix(prefix, "=")
		if names := loc.names(); !names.has(ref.Name) && (prefix == "" || !names.has(old)) {
			continue
		}
		gpath := appendPath(appendPath(appendPath(base, "kustomize"), "images"), i)
		if hit != nil {
			return fail(fmt.Errorf("image %s is listed twice (%s and %s)", loc.Image, describe(hit.gpath), describe(gpath)))
		}
		hit = &appTarget{carrier: carrierKustomizeImage, node: it, gpath: gpath, flow: isStyle(images, yaml.FlowStyle), prefix: prefix, ref: ref}
	}
	if hit == nil {
		return appTarget{}, false, nil
	}
	return *hit, true, nil
}

// parseKustomizeImageArg parses an Argo CD kustomize image override,
// "[name=]newname[:tag][@digest]". prefix is "name=" or "".
func parseKustomizeImageArg(s string) (prefix string, ref imageRef, ok bool) {
	if old, rest, found := strings.Cut(s, "="); found {
		if !validName(old) {
			return "", imageRef{}, false
		}
		prefix, s = old+"=", rest
	}
	ref, ok = parseImageRef(s)
	return prefix, ref, ok
}

// mentions reports whether some scalar below n is exactly s.
func mentions(n *yaml.Node, s string) bool {
	if n == nil {
		return false
	}
	if n.Kind == yaml.ScalarNode {
		return n.Value == s
	}
	for _, c := range n.Content {
		if mentions(c, s) {
			return true
		}
	}
	return false
}

// mentionsAny reports whether n mentions any of the names.
func mentionsAny(n *yaml.Node, names imageNames) bool {
	for _, s := range names {
		if mentions(n, s) {
			return true
		}
	}
	return false
}

// tag returns the tag the target holds.
func (t appTarget) tag() string {
	if t.carrier == carrierKustomizeImage {
		return t.ref.Tag
	}
	v, _ := scalarString(t.node)
	return v
}

func (applicationLayout) currentTag(f Files, loc Location) (string, error) {
	y, err := readApplication(f, loc.Path)
	if err != nil {
		return "", err
	}
	t, err := findAppTarget(y, loc)
	if err != nil {
		return "", err
	}
	return targetTag(y, t, loc)
}

// targetTag is the tag a source's field holds; ErrNoTag when it holds none.
func targetTag(y *yfile, t appTarget, loc Location) (string, error) {
	if tag := t.tag(); tag != "" {
		return tag, nil
	}
	if t.carrier == carrierKustomizeImage {
		if t.ref.Digest != "" {
			return "", noTagf("image %q has no tag at %s (it is pinned by digest %s)", loc.Image, t.where(y.path), t.ref.Digest)
		}
		return "", noTagf("image %q has no tag at %s (Kubernetes pulls %s:latest)", loc.Image, t.where(y.path), t.ref.Name)
	}
	return "", noTagf("%s is empty at %s: the chart's default tag applies", loc.TagPath, t.where(y.path))
}

// setImage writes the tag where the Application keeps it. A
// kustomize images string pinned by digest keeps its pin consistent: it
// takes opts.Digest, or loses the pin (reported) when that isn't known.
func (applicationLayout) setImage(f Files, loc Location, opts SetImageOptions) (ImageEdit, error) {
	y, err := readApplication(f, loc.Path)
	if err != nil {
		return ImageEdit{}, err
	}
	t, err := findAppTarget(y, loc)
	if err != nil {
		return ImageEdit{}, err
	}
	return setTarget(y, t, opts)
}

// setTarget writes opts.Tag into a source's field (see setImage).
func setTarget(y *yfile, t appTarget, opts SetImageOptions) (ImageEdit, error) {
	value := opts.Tag
	var pins []PinChange
	if t.carrier == carrierKustomizeImage {
		ref := t.ref
		ref.Tag = opts.Tag
		if p, ok := pinFor(t.where(y.path), t.ref.Digest, opts.Digest); ok && t.ref.Digest != opts.Digest {
			ref.Digest = opts.Digest
			pins = append(pins, p)
		}
		value = t.prefix + ref.String()
	}
	changed, err := y.setScalar(t.doc, t.gpath, t.node, t.flow, value, modeTag)
	if err != nil {
		return ImageEdit{}, fmt.Errorf("set the tag at %s: %w", t.where(y.path), err)
	}
	if !changed {
		return ImageEdit{}, unchangedf("the tag at %s is already %s", t.where(y.path), opts.Tag)
	}
	changes, err := collect(y)
	if err != nil {
		return ImageEdit{}, err
	}
	return ImageEdit{Changes: changes, Pins: pins}, nil
}

// currentRestart: an Application holds no restart annotation.
func (applicationLayout) currentRestart(f Files, loc Location) (string, error) {
	if _, err := readApplication(f, loc.Path); err != nil {
		return "", err
	}
	return "", nil
}

// setRestart refuses: there is no pod template in an
// Application, and writing one of its fields would not restart pods.
func (applicationLayout) setRestart(_ Files, loc Location, _ string) ([]Change, error) {
	return nil, &sentinelError{fmt.Sprintf("restart isn't expressible in the application layout: the Argo CD Application %s holds no pod template; to restart the app, configure its environment with the layout of the manifests the Application deploys (kustomize overlay, helm values file or manifest directory), or restart it from Argo CD",
		loc.Path), ErrNoPodTemplate}
}

// renderer: Argo CD renders an Application's source; shipbot doesn't.
func (applicationLayout) renderer(_ context.Context, _ Files, loc Location, _ RenderOptions) appRenderer {
	return appRenderer{reason: fmt.Sprintf("%s is an Argo CD Application: the app is rendered by Argo CD from the Application's source, which shipbot doesn't render", loc.Path)}
}
