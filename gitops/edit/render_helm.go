package edit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultKubeVersion is the Kubernetes version charts are rendered for
// when RenderOptions.KubeVersion is empty.
const DefaultKubeVersion = "1.31.0"

// helmRenderer names the helm renderer in Verification.Renderer.
const helmRenderer = "helm template"

// defaultRenderTimeout bounds one helm template run.
const defaultRenderTimeout = 30 * time.Second

// treeFiles is a Files that can list a directory tree, which rendering a
// Helm chart needs (its templates may sit in subdirectories, and ReadDir
// lists files only).
type treeFiles interface {
	Files
	// ReadTree returns the sorted repo paths of all the files under dir, at
	// any depth; an error wrapping fs.ErrNotExist if there are none.
	ReadTree(dir string) ([]string, error)
}

// ReadTree returns the sorted paths of all the files under dir.
func (m MapFiles) ReadTree(dir string) ([]string, error) {
	d := cleanPath(dir)
	prefix := d + "/"
	if d == "." {
		prefix = ""
	}
	var out []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, &fs.PathError{Op: "readtree", Path: dir, Err: fs.ErrNotExist}
	}
	sort.Strings(out)
	return out, nil
}

// changedTree is base with changes applied (withChanges) that still lists
// trees when base can.
type changedTree struct {
	Files
	base    Files
	changes []Change
}

func withChangesTree(base Files, changes []Change) Files {
	return changedTree{Files: withChanges(base, changes), base: base, changes: changes}
}

func (c changedTree) ReadTree(dir string) ([]string, error) {
	paths, err := listTree(c.base, dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	d := cleanPath(dir)
	set := map[string]bool{}
	for _, p := range paths {
		set[p] = true
	}
	for _, ch := range c.changes {
		p := cleanPath(ch.Path)
		if d != "." && !strings.HasPrefix(p, d+"/") {
			continue
		}
		set[p] = ch.New != nil
	}
	var out []string
	for p, ok := range set {
		if ok {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, &fs.PathError{Op: "readtree", Path: dir, Err: fs.ErrNotExist}
	}
	sort.Strings(out)
	return out, nil
}

// listTree lists the files under dir; ErrNotRendered when f can't list trees.
func listTree(f Files, dir string) ([]string, error) {
	t, ok := f.(treeFiles)
	if !ok {
		return nil, notRenderedf("not rendered: this repo reader can't list the files of %s (the chart's templates may be in subdirectories)", dir)
	}
	return t.ReadTree(dir)
}

// renderHelm renders the chart in the repo directory chartDir with the
// values files (repo paths, in Helm's order) by running `helm template`
// (opts.Helm) on a copy of them in a temporary directory, and returns the
// rendered objects. It never touches the network: a chart whose
// dependencies are not vendored under its charts/ directory is not
// rendered (ErrNotRendered).
func renderHelm(ctx context.Context, f Files, chart string, valuesFiles []string, opts RenderOptions) ([]map[string]any, error) {
	if opts.Helm == "" {
		return nil, notRenderedf("not rendered: no helm binary configured (render.helm)")
	}
	chart = cleanPath(chart)
	if escapes(chart) {
		return nil, notRenderedf("not rendered: the chart directory %s is outside the repo", chart)
	}
	meta, err := f.ReadFile(path.Join(chart, "Chart.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notRenderedf("not rendered: there is no chart in %s (no Chart.yaml)", chart)
	}
	if err != nil {
		return nil, err
	}
	paths, err := listTree(f, chart)
	if err != nil {
		return nil, err
	}
	if err := checkVendored(f, chart, meta, paths); err != nil {
		return nil, err
	}

	tmp, err := os.MkdirTemp("", "shipbot-render-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	repo := filepath.Join(tmp, "repo")
	write := func(p string) error {
		b, err := f.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(repo, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}
	for _, p := range paths {
		if err := write(p); err != nil {
			return nil, err
		}
	}
	kube := opts.KubeVersion
	if kube == "" {
		kube = DefaultKubeVersion
	}
	// helm template's own default Kubernetes version is old: charts that
	// declare a kubeVersion, or test .Capabilities, render as on a
	// cluster of this version.
	args := []string{"template", "shipbot-render", filepath.Join(repo, filepath.FromSlash(chart)), "--include-crds", "--kube-version", kube}
	for _, v := range valuesFiles {
		v = cleanPath(v)
		if escapes(v) {
			return nil, notRenderedf("not rendered: the values file %s is outside the repo", v)
		}
		if err := write(v); errors.Is(err, fs.ErrNotExist) {
			return nil, notRenderedf("not rendered: the values file %s is not in the repo", v)
		} else if err != nil {
			return nil, err
		}
		args = append(args, "-f", filepath.Join(repo, filepath.FromSlash(v)))
	}

	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultRenderTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, opts.Helm, args...)
	cmd.Dir = tmp
	// Helm's own state in the temporary directory: no repositories, no
	// plugins, no registry credentials of the host.
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(tmp, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(tmp, "config"),
		"HELM_DATA_HOME="+filepath.Join(tmp, "data"),
		"HELM_PLUGINS="+filepath.Join(tmp, "plugins"),
		"HELM_REGISTRY_CONFIG="+filepath.Join(tmp, "registry.json"),
		"HELM_REPOSITORY_CONFIG="+filepath.Join(tmp, "repositories.yaml"),
		"HELM_REPOSITORY_CACHE="+filepath.Join(tmp, "repository"),
		"KUBECONFIG="+filepath.Join(tmp, "kubeconfig"),
	)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("helm template %s: timed out after %s", chart, timeout)
		}
		msg := strings.ReplaceAll(lastLines(stderr.String(), 5, 800), repo+string(filepath.Separator), "")
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("helm template %s: %s", chart, msg)
	}
	docs, err := decodeObjects(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("helm template %s: reading its output: %w", chart, err)
	}
	return docs, nil
}

// checkVendored refuses a chart whose dependencies (Chart.yaml, or
// requirements.yaml of apiVersion v1 charts) are not under its charts/
// directory in the repo: helm would have to fetch them.
func checkVendored(f Files, chartDir string, meta []byte, paths []string) error {
	type dep struct {
		Name       string `yaml:"name"`
		Version    string `yaml:"version"`
		Repository string `yaml:"repository"`
	}
	var c struct {
		Dependencies []dep `yaml:"dependencies"`
	}
	if err := yaml.Unmarshal(meta, &c); err != nil {
		return notRenderedf("not rendered: %s/Chart.yaml: %v", chartDir, err)
	}
	if b, err := f.ReadFile(path.Join(chartDir, "requirements.yaml")); err == nil {
		var r struct {
			Dependencies []dep `yaml:"dependencies"`
		}
		if yaml.Unmarshal(b, &r) == nil {
			c.Dependencies = append(c.Dependencies, r.Dependencies...)
		}
	}
	vendored := map[string]bool{} // names of directories and archives under charts/
	prefix := chartDir + "/charts/"
	for _, p := range paths {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		first, _, sub := strings.Cut(rest, "/")
		if sub {
			vendored[first] = true
		} else if strings.HasSuffix(first, ".tgz") {
			vendored[strings.TrimSuffix(first, ".tgz")] = true
		}
	}
	var missing []string
	for _, d := range c.Dependencies {
		if d.Name == "" {
			continue
		}
		found := vendored[d.Name] || vendored[d.Name+"-"+d.Version]
		for v := range vendored {
			found = found || strings.HasPrefix(v, d.Name+"-")
		}
		if !found {
			m := d.Name
			if d.Repository != "" {
				m += " from " + d.Repository
			}
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return notRenderedf("not rendered: the chart's dependencies are not in the repo (%s not under %s/charts/; shipbot renders without fetching)", strings.Join(missing, ", "), chartDir)
	}
	return nil
}

// lastLines returns the last n non-empty lines of s, at most limit bytes.
func lastLines(s string, n, limit int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := strings.Join(lines, "\n")
	if len(out) > limit {
		out = "…" + out[len(out)-limit:]
	}
	return out
}
