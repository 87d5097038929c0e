package stack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/shipbot/shipbot/deploy/local/images"
)

// Envs of the demo env repo, in promotion order.
var Envs = []string{"dev", "staging", "prod"}

// DemoApps are one Application per demo app and env, named APP-ENV (the
// demo config names checkout-prod as argoApp; the rest are discovered).
// dev and staging sync automatically; prod is manual, as many teams run it:
// shipbot syncs prod itself (argo.syncManual: true), so both paths of the
// watcher run against the real server.
func DemoApps() []App {
	var apps []App
	for _, env := range Envs {
		auto := env != "prod"
		apps = append(apps,
			App{Name: "checkout-" + env, Path: "apps/checkout/overlays/" + env, Namespace: "checkout-" + env, Automated: auto},
			App{Name: "payments-" + env, Path: "apps/payments/chart", Values: []string{"../values-" + env + ".yaml"}, Namespace: "payments-" + env, Automated: auto},
			App{Name: "search-" + env, Path: "apps/search/" + env, Namespace: "search-" + env, Automated: auto},
		)
	}
	return apps
}

// CrashImage is a payments release that exits 1 on start (a
// CrashLoopBackOff), pushed beside the images of the demo's history.
const CrashImage = "registry.example.com/shop/payments:2.8.0-crashloop"

// DemoImages are the images the demo apps need: every image and tag that
// appears anywhere in the env repo's history (every rollback target runs),
// plus CrashImage. A made-up tag has no image: pods pulling it fail with
// ErrImagePull / ImagePullBackOff, as in a real cluster.
func DemoImages(ctx context.Context, repo string) ([]images.Image, error) {
	refs, err := historyImages(ctx, repo)
	if err != nil {
		return nil, err
	}
	out := []images.Image{{Ref: CrashImage, Args: []string{"-crash"}}}
	for _, r := range refs {
		out = append(out, images.Image{Ref: r})
	}
	return out, nil
}

// historyImages reads every blob of repo and returns the image references
// in it, sorted: `image: NAME:TAG` (raw manifests), and a name
// (`- name: NAME` in a kustomization's images, `repository: NAME` in Helm
// values) followed by its tag (`newTag: TAG`, `tag: TAG`).
func historyImages(ctx context.Context, repo string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", repo, "cat-file", "--batch-all-objects", "--batch")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	r := bufio.NewReader(out)
	for {
		hdr, err := r.ReadString('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		f := strings.Fields(hdr)
		if len(f) != 3 {
			return nil, fmt.Errorf("stack: git cat-file: %q", hdr)
		}
		size, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, err
		}
		body := make([]byte, size+1) // the object and a newline
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		if f[1] == "blob" {
			for _, ref := range imageRefs(string(body[:size])) {
				seen[ref] = true
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("stack: git cat-file in %s: %w: %s", repo, err, errb.String())
	}
	refs := make([]string, 0, len(seen))
	for r := range seen {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	if len(refs) == 0 {
		return nil, fmt.Errorf("stack: no image references in %s", repo)
	}
	return refs, nil
}

// imageRefs finds the image references in one YAML file (see
// historyImages).
func imageRefs(y string) []string {
	var refs []string
	name := ""
	for _, l := range strings.Split(y, "\n") {
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(l), "- "), ":")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"'`)
		if v == "" || strings.Contains(v, "{{") {
			continue
		}
		switch k {
		case "image":
			if n, t := splitRef(v); t != "" {
				refs = append(refs, n+":"+t)
			}
		case "name", "repository":
			name = ""
			if strings.Contains(v, "/") {
				name = v
			}
		case "newTag", "tag":
			if name != "" {
				refs = append(refs, name+":"+v)
			}
		}
	}
	return refs
}

// splitRef splits NAME:TAG (a port in NAME is not a tag).
func splitRef(ref string) (name, tag string) {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// Demo is a demo directory made by `shipbot demo`, with a config that
// points shipbot at the local Argo CD.
type Demo struct {
	Dir    string // the demo directory
	Repo   string // the bare env repo in it
	Config string // shipbot-argocd.yaml: the demo config plus an argo: section
}

// SetupDemo creates the demo directory with the shipbot binary itself
// (`shipbot demo --dir DIR` with no input: it seeds the repo, key, config
// and policy, then exits), so the env repo is exactly the demo's.
func SetupDemo(ctx context.Context, shipbot, dir string) (*Demo, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, shipbot, "demo", "--dir", dir)
	cmd.Stdin = bytes.NewReader(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("stack: shipbot demo: %w: %s", err, out)
	}
	return &Demo{Dir: dir, Repo: filepath.Join(dir, "env.git"), Config: filepath.Join(dir, "shipbot-argocd.yaml")}, nil
}

// WriteConfig writes the demo's config with an argo: section for s: the
// local argocd-server over plain HTTP, the shipbot account's token, and
// syncManual so shipbot syncs the prod apps itself.
func (d *Demo) WriteConfig(s *Stack, timeout string) error {
	return d.WriteConfigTo(d.Config, "cache", s, timeout, true)
}

// WriteConfigTo writes a config like WriteConfig to path, with its own
// cache directory for shipbot's clone (two shipbot processes never share
// one) and syncManual as given.
func (d *Demo) WriteConfigTo(path, cacheDir string, s *Stack, timeout string, syncManual bool) error {
	base, err := os.ReadFile(filepath.Join(d.Dir, "shipbot.yaml"))
	if err != nil {
		return err
	}
	if bytes.Contains(base, []byte("\nargo:")) {
		return fmt.Errorf("stack: %s already has an argo: section", filepath.Join(d.Dir, "shipbot.yaml"))
	}
	if cacheDir != "cache" {
		base = bytes.Replace(base, []byte("cacheDir: cache "), []byte("cacheDir: "+cacheDir+" "), 1)
	}
	var b strings.Builder
	b.Write(base)
	fmt.Fprintf(&b, `
# Added by deploy/local: the local Argo CD (inside the harness's network namespace).
argo:
  server: %s
  tokenFile: %s
  syncManual: %t        # true: shipbot syncs apps without automated sync (prod) to its commit
  timeout: %s
`, ArgoURL, s.TokenFile, syncManual, timeout)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
