package edit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizeRenderer names the in-process renderer in Verification.Renderer:
// sigs.k8s.io/kustomize/api v0.17.2 is the library of kustomize v5.4.2, the
// one Argo CD 2.14 builds with (a newer one would also move the k8s.io
// modules of the tool module that builds the local Argo CD).
const kustomizeRenderer = "kustomize v5.4.2 (in-process)"

// kustomizeMu serializes in-process kustomize runs: kyaml keeps the OpenAPI
// schema a kustomization selects (openapi:) in package globals.
var kustomizeMu sync.Mutex

// renderKustomize renders the kustomization directory dir of the repo
// in-process, as `kustomize build dir` would, and returns its objects.
//
// Only the files the kustomization (and every kustomization it includes)
// references are copied into an in-memory file system, so kustomize can
// read nothing but the repo: a remote base, a path outside the repo, a
// helmCharts entry or a reference to something that isn't in the repo is
// refused with ErrNotRendered before kustomize runs (it would otherwise
// clone or download). Plugins are builtins only: no exec or container
// functions run.
func renderKustomize(ctx context.Context, f Files, dir string) ([]map[string]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir = cleanPath(dir)
	if escapes(dir) {
		return nil, notRenderedf("not rendered: %s is outside the repo", dir)
	}
	c := &kcopier{f: f, fs: filesys.MakeFsInMemory(), files: map[string]bool{}, dirs: map[string]bool{}}
	if err := c.kustomization(dir, ""); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	// The file system holds the repo's referenced files and nothing else, so
	// a file a kustomization loads from outside its own directory (which
	// `kustomize build` refuses by default and Argo CD often allows) is
	// still one of the repo's: render it rather than fail on the restriction.
	opts.LoadRestrictions = types.LoadRestrictionsNone
	opts.PluginConfig = types.DisabledPluginConfig()

	type result struct {
		docs []map[string]any
		err  error
	}
	done := make(chan result, 1)
	go func() {
		kustomizeMu.Lock()
		defer kustomizeMu.Unlock()
		docs, err := runKustomize(opts, c.fs, "/"+dir)
		done <- result{docs, err}
	}()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("kustomize build %s: %w", dir, r.err)
		}
		return r.docs, nil
	}
}

func runKustomize(opts *krusty.Options, fsys filesys.FileSystem, dir string) (docs []map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kustomize failed: %v", r)
		}
	}()
	m, err := krusty.MakeKustomizer(opts).Run(fsys, dir)
	if err != nil {
		return nil, err
	}
	for _, r := range m.Resources() {
		// The object as kustomize holds it (no detour through JSON and
		// back, which AsYaml takes).
		o, err := r.Map()
		if err != nil {
			return nil, err
		}
		docs = append(docs, o)
	}
	return docs, nil
}

// decodeObjects decodes a multi-document YAML stream of Kubernetes objects,
// skipping empty documents.
func decodeObjects(b []byte) ([]map[string]any, error) {
	vals, err := decodeValues(b)
	if err != nil {
		return nil, err
	}
	var docs []map[string]any
	for i, v := range vals {
		switch v := v.(type) {
		case nil:
		case map[string]any:
			docs = append(docs, v)
		default:
			return nil, fmt.Errorf("document %d is a %T, not an object", i+1, v)
		}
	}
	return docs, nil
}

// ErrNotRendered: the app can't be rendered here (a remote base, a chart
// whose dependencies aren't in the repo, no helm binary, ...). It is not a
// fault of the change: Verify reports it in Verification.Reason.
var ErrNotRendered = errors.New("not rendered")

func notRenderedf(format string, a ...any) error {
	return &sentinelError{fmt.Sprintf(format, a...), ErrNotRendered}
}

// escapes reports whether a cleaned repo-relative path leaves the repo.
func escapes(p string) bool {
	return p == ".." || strings.HasPrefix(p, "../")
}

// remoteUser is the user@ of an scp-style git address (git@host:org/repo).
var remoteUser = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*@`)

// isRemoteRef reports whether a kustomization reference names something
// outside the repo that kustomize would clone or download: a URL, an
// scp-style or go-getter style git address, or a GitHub path.
func isRemoteRef(s string) bool {
	l := strings.ToLower(s)
	if strings.Contains(l, "://") || strings.HasPrefix(l, "git::") || remoteUser.MatchString(s) {
		return true
	}
	for _, p := range []string{"github.com/", "github.com:", "gitlab.com/", "bitbucket.org/"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return strings.Contains(l, "?ref=") || strings.Contains(l, "?version=") || strings.Contains(l, "_git/")
}

// kcopier copies the files a kustomization references into an in-memory
// file system, following kustomizations into the directories they include.
type kcopier struct {
	f     Files
	fs    filesys.FileSystem
	files map[string]bool // copied files
	dirs  map[string]bool // kustomization directories done
}

func (c *kcopier) copyFile(p string, b []byte) error {
	if c.files[p] {
		return nil
	}
	c.files[p] = true
	return c.fs.WriteFile("/"+p, b)
}

// read reads the repo file p; ok is false if there is no such file.
func (c *kcopier) read(p string) (b []byte, ok bool, err error) {
	b, err = c.f.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// kustomization copies the kustomization in dir and everything it
// references; from is the kustomization that included it, for messages.
func (c *kcopier) kustomization(dir, from string) error {
	if c.dirs[dir] {
		return nil
	}
	c.dirs[dir] = true
	var kpath string
	var src []byte
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		p := path.Join(dir, n)
		b, ok, err := c.read(p)
		if err != nil {
			return err
		}
		if ok {
			kpath, src = p, b
			break
		}
	}
	if kpath == "" {
		if from == "" {
			return notRenderedf("not rendered: there is no kustomization.yaml in %s", dir)
		}
		return notRenderedf("not rendered: %s includes %s, which holds no kustomization.yaml in the repo", from, dir)
	}
	if err := c.copyFile(kpath, src); err != nil {
		return err
	}
	var k map[string]any
	if err := yaml.Unmarshal(src, &k); err != nil {
		// kustomize reports it, with its own words.
		return nil
	}
	for _, key := range []string{"helmCharts", "helmChartInflationGenerator", "helmGlobals"} {
		if k[key] != nil {
			return notRenderedf("not rendered: the kustomization in %s uses %s, which runs helm with charts from outside the repo (shipbot renders only what is in the repo)", dir, key)
		}
	}
	r := krefs{dir: dir, kpath: kpath}
	// Directories (kustomizations) or files.
	for _, key := range []string{"resources", "bases", "components", "generators", "transformers", "validators"} {
		for _, s := range yamlStrings(k[key]) {
			inline := key != "resources" && key != "bases" && key != "components" && strings.Contains(s, "\n")
			if !inline {
				r.add(s, key, refFileOrDir)
			}
		}
	}
	// Files.
	for _, key := range []string{"crds", "configurations"} {
		for _, s := range yamlStrings(k[key]) {
			r.add(s, key, refFile)
		}
	}
	for _, s := range yamlStrings(k["patchesStrategicMerge"]) {
		// An entry is a file, or an inline patch.
		if !strings.Contains(s, "\n") {
			r.add(s, "patchesStrategicMerge", refFileOrInline)
		}
	}
	for _, key := range []string{"patches", "patchesJson6902", "replacements"} {
		for _, e := range yamlMaps(k[key]) {
			if p, ok := e["path"].(string); ok && p != "" {
				r.add(p, key+"[].path", refFile)
			}
		}
	}
	for _, key := range []string{"configMapGenerator", "secretGenerator"} {
		for _, e := range yamlMaps(k[key]) {
			for _, s := range yamlStrings(e["files"]) {
				if _, p, ok := strings.Cut(s, "="); ok {
					s = p
				}
				r.add(s, key+"[].files", refFileOrFiles)
			}
			for _, s := range yamlStrings(e["envs"]) {
				r.add(s, key+"[].envs", refFile)
			}
			if s, ok := e["env"].(string); ok && s != "" {
				r.add(s, key+"[].env", refFile)
			}
		}
	}
	if m, ok := k["openapi"].(map[string]any); ok {
		if p, ok := m["path"].(string); ok && p != "" {
			r.add(p, "openapi.path", refFile)
		}
	}
	for _, ref := range r.refs {
		if err := c.ref(r, ref); err != nil {
			return err
		}
	}
	return nil
}

type refKind int

const (
	refFile         refKind = iota // a file
	refFileOrDir                   // a file, or a directory holding a kustomization
	refFileOrInline                // a file, or (when there's no such file) inline content
	refFileOrFiles                 // a file, or a directory of files
)

type kref struct {
	s, key string
	kind   refKind
}

// krefs are the references of one kustomization.
type krefs struct {
	dir, kpath string
	refs       []kref
}

func (r *krefs) add(s, key string, kind refKind) {
	r.refs = append(r.refs, kref{strings.TrimSpace(s), key, kind})
}

func (c *kcopier) ref(r krefs, ref kref) error {
	if ref.s == "" {
		return nil
	}
	if isRemoteRef(ref.s) {
		if ref.key == "resources" || ref.key == "bases" || ref.key == "components" {
			return notRenderedf("not rendered: the kustomization in %s uses the remote base %s (shipbot renders only what is in the repo)", r.dir, ref.s)
		}
		return notRenderedf("not rendered: the kustomization in %s reads %s from %s (shipbot renders only what is in the repo)", r.dir, ref.key, ref.s)
	}
	if path.IsAbs(ref.s) {
		return notRenderedf("not rendered: %s in %s is the absolute path %s, not a path in the repo", ref.key, r.kpath, ref.s)
	}
	p := path.Join(r.dir, ref.s)
	if escapes(p) {
		return notRenderedf("not rendered: %s in %s names %s, which is outside the repo", ref.key, r.kpath, ref.s)
	}
	b, ok, err := c.read(p)
	if err != nil {
		return err
	}
	if ok {
		return c.copyFile(p, b)
	}
	switch ref.kind {
	case refFileOrInline:
		return nil
	case refFileOrDir:
		if _, err := c.f.ReadDir(p); err == nil {
			return c.kustomization(p, r.kpath)
		}
	case refFileOrFiles:
		if names, err := c.f.ReadDir(p); err == nil && len(names) > 0 {
			sort.Strings(names)
			for _, n := range names {
				q := path.Join(p, n)
				b, ok, err := c.read(q)
				if err != nil {
					return err
				}
				if ok {
					if err := c.copyFile(q, b); err != nil {
						return err
					}
				}
			}
			return nil
		}
	}
	return notRenderedf("not rendered: %s in %s names %s, which is not in the repo", ref.key, r.kpath, p)
}

// yamlStrings returns the strings of a YAML sequence value (a lone string too).
func yamlStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, it := range v {
			if s, ok := it.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// yamlMaps returns the mappings of a YAML sequence value.
func yamlMaps(v any) []map[string]any {
	items, _ := v.([]any)
	var out []map[string]any
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
