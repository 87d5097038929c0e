package argo

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
)

// FinderOptions configure a Finder.
type FinderOptions struct {
	// RepoURL is the environment repo shipbot commits to.
	RepoURL string
	// Branch is the branch shipbot commits to (default main). An app whose
	// targetRevision is HEAD or empty is taken to follow this branch.
	Branch string
	// CacheTTL is how long a listing of all apps is reused (default 1m).
	// A target that matches nothing is looked up once more in a fresh list.
	CacheTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Validate fills defaults and checks the options.
func (o *FinderOptions) Validate() error {
	if o.RepoURL == "" {
		return errors.New("argo: finder: no environment repo URL")
	}
	if o.Branch == "" {
		o.Branch = "main"
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Finder finds the Argo CD Application that deploys a target from the
// environment repo. It is safe for concurrent use.
type Finder struct {
	list func(context.Context) ([]Application, error)
	opts FinderOptions
	repo string // normalised RepoURL

	mu      sync.Mutex
	apps    []Application
	fetched time.Time
}

// NewFinder makes a Finder that lists apps through c.
func NewFinder(c *Client, o FinderOptions) (*Finder, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Finder{list: c.List, opts: o, repo: normalizeRepo(o.RepoURL)}, nil
}

// Match is an app that deploys a target, and which of its sources reads
// the environment repo.
type Match struct {
	App Application
	// Source is the index in spec.sources of the environment repo's source,
	// or -1 for a single-source app.
	Source int
}

// Find returns the one app that deploys t: its repoURL (normalised) is the
// environment repo, its targetRevision the branch (or HEAD), and its path
// the target's path — for Helm, one of its valueFiles is the target's
// values file, or its path is the file's directory and the file is the
// chart's values.yaml. None or several matches are errors for the chat
// user (*gitops.UserError wrapping ErrNoApp or ErrAmbiguousApp).
func (f *Finder) Find(ctx context.Context, t gitops.Target) (Match, error) {
	apps, fresh, err := f.cached(ctx, false)
	if err != nil {
		return Match{}, err
	}
	found := f.matches(apps, t)
	if len(found) == 0 && !fresh {
		// The app may be newer than the cached list.
		if apps, _, err = f.cached(ctx, true); err != nil {
			return Match{}, err
		}
		found = f.matches(apps, t)
	}
	where := fmt.Sprintf("%s from %s (branch %s)", t.Path, f.opts.RepoURL, f.opts.Branch)
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Match{}, &gitops.UserError{
			Message: fmt.Sprintf("no Argo CD Application deploys %s; set argoApp for %s in %s in shipbot.yaml", where, t.App, t.Env),
			Err:     ErrNoApp,
		}
	}
	names := make([]string, len(found))
	for i, m := range found {
		names[i] = refOf(&m.App)
	}
	sort.Strings(names)
	return Match{}, &gitops.UserError{
		Message: fmt.Sprintf("several Argo CD Applications deploy %s: %s; set argoApp for %s in %s in shipbot.yaml to the one to watch",
			where, strings.Join(names, ", "), t.App, t.Env),
		Err: ErrAmbiguousApp,
	}
}

// Source returns which source of app reads the environment repo for t:
// -1 for a single-source app; for a multi-source app the source that
// deploys t, else the only source from the environment repo.
func (f *Finder) Source(app *Application, t gitops.Target) (int, error) {
	if !app.MultiSource() {
		return -1, nil
	}
	if i, ok := f.deploys(app, t); ok {
		return i, nil
	}
	only := -1
	for i, s := range app.Spec.Sources {
		if normalizeRepo(s.RepoURL) == f.repo {
			if only >= 0 {
				only = -2
				break
			}
			only = i
		}
	}
	if only >= 0 {
		return only, nil
	}
	return 0, &gitops.UserError{
		Message: fmt.Sprintf("Argo CD Application %s has several sources and shipbot can't tell which one is %s at %s", refOf(app), f.opts.RepoURL, t.Path),
		Err:     ErrNoApp,
	}
}

// cached returns the app list, listing again when it expired or reload.
// fresh says whether the list was fetched by this call.
func (f *Finder) cached(ctx context.Context, reload bool) (apps []Application, fresh bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.opts.Now()
	if !reload && f.apps != nil && now.Sub(f.fetched) < f.opts.CacheTTL {
		return f.apps, false, nil
	}
	apps, err = f.list(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("list Argo CD applications: %w", err)
	}
	if apps == nil {
		apps = []Application{}
	}
	f.apps, f.fetched = apps, now
	return apps, true, nil
}

func (f *Finder) matches(apps []Application, t gitops.Target) []Match {
	var found []Match
	for i := range apps {
		if src, ok := f.deploys(&apps[i], t); ok {
			found = append(found, Match{App: apps[i], Source: src})
		}
	}
	return found
}

// deploys reports whether app deploys t from the environment repo's branch,
// and through which source.
func (f *Finder) deploys(app *Application, t gitops.Target) (int, bool) {
	target := cleanPath(t.Path)
	sources := app.SourceList()
	index := func(i int) int {
		if app.MultiSource() {
			return i
		}
		return -1
	}
	for i, s := range sources {
		if normalizeRepo(s.RepoURL) != f.repo || !f.followsBranch(s.TargetRevision) {
			continue
		}
		if deploysPath(s, t.Layout, target) {
			return index(i), true
		}
		// Multi-source Helm: another source (the chart) reads its values
		// from this one as $ref/path.
		if s.Ref != "" && t.Layout == edit.LayoutHelm {
			for _, o := range sources {
				if o.Helm == nil {
					continue
				}
				for _, vf := range o.Helm.ValueFiles {
					if rest, ok := strings.CutPrefix(vf, "$"+s.Ref+"/"); ok && cleanPath(rest) == target {
						return index(i), true
					}
				}
			}
		}
	}
	return 0, false
}

func (f *Finder) followsBranch(rev string) bool {
	switch strings.TrimSpace(rev) {
	case "", "HEAD", f.opts.Branch, "refs/heads/" + f.opts.Branch:
		return true
	}
	return false
}

// deploysPath reports whether source s renders the target at path target.
func deploysPath(s ApplicationSource, layout edit.Layout, target string) bool {
	if s.Chart != "" {
		return false // a chart from a Helm repository: no path in git
	}
	dir := cleanPath(s.Path)
	switch layout {
	case edit.LayoutHelm:
		if s.Helm != nil {
			for _, vf := range s.Helm.ValueFiles {
				if p, ok := resolveValueFile(dir, vf); ok && p == target {
					return true
				}
			}
		}
		// Helm reads the chart's own values.yaml without being told.
		return dir == path.Dir(target) && path.Base(target) == "values.yaml"
	case edit.LayoutManifest:
		// A directory of manifests, or one manifest file in the app's directory.
		return dir == target || (isManifestFile(target) && dir == path.Dir(target))
	default: // kustomize: the overlay directory
		return dir == target
	}
}

// resolveValueFile resolves a Helm value file the way Argo CD does: relative
// to the source's path, or to the repo root when it starts with "/". URLs
// and $ref/ paths (other sources) do not resolve here.
func resolveValueFile(dir, vf string) (string, bool) {
	if strings.HasPrefix(vf, "$") || strings.Contains(vf, "://") {
		return "", false
	}
	if strings.HasPrefix(vf, "/") {
		return cleanPath(vf), true
	}
	return cleanPath(path.Join(dir, vf)), true
}

func isManifestFile(p string) bool {
	switch path.Ext(p) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// cleanPath makes a repo path comparable: slash-separated, relative to the
// repo root, no "./", no trailing slash; the root is ".".
func cleanPath(p string) string {
	p = path.Clean("/" + strings.TrimSpace(p))
	if p == "/" {
		return "."
	}
	return strings.TrimPrefix(p, "/")
}

// normalizeRepo makes repo URLs comparable: scheme and host lower case,
// user and default ports dropped, no trailing slash or .git; scp-like
// git@host:org/repo is ssh://host/org/repo. The scheme itself is dropped
// for network URLs, so https://host/org/repo and ssh://git@host/org/repo
// are the same repo; file:// URLs and local paths compare by path.
func normalizeRepo(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if !strings.Contains(s, "://") {
		if strings.HasPrefix(s, "/") {
			s = "file://" + s
		} else if user, rest, ok := strings.Cut(s, "@"); ok && !strings.ContainsAny(user, "/:") {
			if host, p, ok := strings.Cut(rest, ":"); ok {
				s = "ssh://" + host + "/" + strings.TrimPrefix(p, "/")
			}
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return strings.TrimSuffix(strings.TrimRight(s, "/"), ".git")
	}
	p := strings.TrimSuffix(strings.TrimRight(u.Path, "/"), ".git")
	if strings.EqualFold(u.Scheme, "file") {
		return "file://" + path.Clean("/"+p)
	}
	host := strings.ToLower(u.Hostname())
	switch port := u.Port(); port {
	case "", "22", "80", "443":
	default:
		host += ":" + port
	}
	return host + "/" + strings.TrimPrefix(p, "/")
}
