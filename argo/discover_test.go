package argo

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// listServer serves testdata/applications.json.
func listServer(t *testing.T) *fakeArgo {
	return newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "applications.json"))
		},
	})
}

func target(layout edit.Layout, p string) gitops.Target {
	return gitops.Target{App: "app", Env: "env", Location: edit.Location{Layout: layout, Path: p}}
}

func TestFind(t *testing.T) {
	f := listServer(t)
	// The environment repo as shipbot's config spells it: other case, no .git, a trailing slash.
	finder, err := NewFinder(f.client(t), FinderOptions{RepoURL: "https://GitHub.com/acme/env/", Branch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		t      gitops.Target
		want   string // the app, or "" for an error
		source int
		err    error
		msg    []string
	}{
		// kustomize: the overlay directory. checkout-prod-pinned (a tag) and
		// checkout-prod-mirror (another repo) deploy the same path.
		{name: "kustomize", t: target(edit.LayoutKustomize, "apps/checkout/overlays/prod"), want: "argocd/checkout-prod", source: -1},
		{name: "kustomize ./path/ and refs/heads/main", t: target(edit.LayoutKustomize, "apps/checkout/overlays/staging"), want: "argocd/checkout-staging", source: -1},
		{name: "kustomize HEAD, repo URL without .git", t: target(edit.LayoutKustomize, "apps/checkout/overlays/dev/"), want: "argocd/checkout-dev", source: -1},
		// helm: the values file named in valueFiles, relative to the chart,
		// from the repo root ("/..."), or through $values/ of a ref source.
		{name: "helm valueFiles ../ (scp-like repo URL, HEAD)", t: target(edit.LayoutHelm, "apps/payments/values-prod.yaml"), want: "argocd/payments-prod", source: -1},
		{name: "helm valueFiles", t: target(edit.LayoutHelm, "apps/payments/values-dev.yaml"), want: "argocd/payments-dev", source: -1},
		{name: "helm valueFiles from the repo root", t: target(edit.LayoutHelm, "apps/payments/secrets-dev.yaml"), want: "argocd/payments-dev", source: -1},
		{name: "helm multi-source $values", t: target(edit.LayoutHelm, "apps/payments/values-staging.yaml"), want: "argocd/payments-staging", source: 1},
		{name: "helm chart values.yaml read by two apps", t: target(edit.LayoutHelm, "apps/payments/chart/values.yaml"),
			err: ErrAmbiguousApp, msg: []string{"argocd/payments-dev, argocd/payments-prod", "argoApp"}},
		{name: "helm values file no app reads", t: target(edit.LayoutHelm, "apps/payments/values-qa.yaml"), err: ErrNoApp},
		// manifest: a directory, or one file in the app's directory.
		{name: "manifest file", t: target(edit.LayoutManifest, "apps/search/dev/deployment.yaml"), want: "argocd/search-dev", source: -1},
		{name: "manifest directory deployed to two clusters", t: target(edit.LayoutManifest, "apps/search/prod"),
			err: ErrAmbiguousApp, msg: []string{"argocd/search-prod-eu, search-apps/search-prod-us", "set argoApp for app in env"}},
		{name: "nothing deploys it", t: target(edit.LayoutKustomize, "apps/unknown/overlays/prod"),
			err: ErrNoApp, msg: []string{"apps/unknown/overlays/prod from https://GitHub.com/acme/env/ (branch main)", "set argoApp for app in env in shipbot.yaml"}},
		{name: "same path in another repo only", t: target(edit.LayoutKustomize, "prod"), err: ErrNoApp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := finder.Find(context.Background(), tc.t)
			if tc.err != nil {
				var ue *gitops.UserError
				if !errors.Is(err, tc.err) || !errors.As(err, &ue) {
					t.Fatalf("Find: %v (%T), want a UserError wrapping %v", err, err, tc.err)
				}
				for _, s := range tc.msg {
					if !strings.Contains(ue.Message, s) {
						t.Errorf("message %q lacks %q", ue.Message, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := refOf(&m.App); got != tc.want || m.Source != tc.source {
				t.Errorf("found %s source %d, want %s source %d", got, m.Source, tc.want, tc.source)
			}
		})
	}
}

func TestFindOtherBranch(t *testing.T) {
	f := listServer(t)
	finder, err := NewFinder(f.client(t), FinderOptions{RepoURL: "https://github.com/acme/env.git", Branch: "release"})
	if err != nil {
		t.Fatal(err)
	}
	// checkout-prod follows main: not shipbot's branch.
	if _, err := finder.Find(context.Background(), target(edit.LayoutKustomize, "apps/checkout/overlays/prod")); !errors.Is(err, ErrNoApp) {
		t.Errorf("Find on branch release: %v, want ErrNoApp", err)
	}
	// checkout-dev follows HEAD, taken as shipbot's branch.
	if _, err := finder.Find(context.Background(), target(edit.LayoutKustomize, "apps/checkout/overlays/dev")); err != nil {
		t.Errorf("Find for a HEAD app: %v", err)
	}
}

func TestFindCachesList(t *testing.T) {
	f := listServer(t)
	clock := &fakeClock{now: time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)}
	finder, err := NewFinder(f.client(t), FinderOptions{RepoURL: "https://github.com/acme/env", CacheTTL: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	lists := func() int { return len(f.requests("GET", "/api/v1/applications")) }
	prod := target(edit.LayoutKustomize, "apps/checkout/overlays/prod")
	find := func(tg gitops.Target) error {
		_, err := finder.Find(context.Background(), tg)
		return err
	}

	if err := find(prod); err != nil || lists() != 1 {
		t.Fatalf("first Find: %v, %d lists", err, lists())
	}
	clock.Advance(59 * time.Second)
	if err := find(prod); err != nil || lists() != 1 {
		t.Fatalf("Find within the TTL: %v, %d lists, want the cached list", err, lists())
	}
	clock.Advance(2 * time.Second)
	if err := find(prod); err != nil || lists() != 2 {
		t.Fatalf("Find after the TTL: %v, %d lists, want a new list", err, lists())
	}
	// No match in a cached list: one more look in a fresh list (the app may be new).
	missing := target(edit.LayoutKustomize, "apps/new/overlays/prod")
	if err := find(missing); !errors.Is(err, ErrNoApp) || lists() != 3 {
		t.Fatalf("Find of a new app: %v, %d lists, want ErrNoApp after 3", err, lists())
	}
	// The list is fresh now: no second reload.
	clock.Advance(time.Second)
	if err := find(missing); !errors.Is(err, ErrNoApp) || lists() != 4 {
		t.Fatalf("Find again: %v, %d lists, want 4 (cached, then one reload)", err, lists())
	}
}

func TestFindListFails(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications": func(w http.ResponseWriter, r *http.Request) {
			grpcError(w, http.StatusForbidden, 7, "permission denied")
		},
	})
	finder, err := NewFinder(f.client(t), FinderOptions{RepoURL: "https://github.com/acme/env"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = finder.Find(context.Background(), target(edit.LayoutKustomize, "apps/checkout/overlays/prod"))
	if !errors.Is(err, ErrPermissionDenied) || errors.Is(err, ErrNoApp) {
		t.Fatalf("Find: %v, want the permission error", err)
	}
}

func TestNormalizeRepo(t *testing.T) {
	same := [][]string{
		{"https://github.com/acme/env.git", "https://GitHub.com/acme/env", "HTTPS://github.com/acme/env/", "git@github.com:acme/env.git",
			"ssh://git@github.com/acme/env.git", "ssh://git@github.com:22/acme/env", "https://token@github.com/acme/env.git", "https://github.com:443/acme/env"},
		{"file:///srv/git/env.git", "/srv/git/env.git", "file:///srv/git/env/", "file:///srv//git/env"},
		{"https://git.acme.example:8443/env", "ssh://git.acme.example:8443/env.git"},
	}
	var keys []string
	for _, group := range same {
		want := normalizeRepo(group[0])
		for _, u := range group[1:] {
			if got := normalizeRepo(u); got != want {
				t.Errorf("normalizeRepo(%q) = %q, want %q (as %q)", u, got, want, group[0])
			}
		}
		keys = append(keys, want)
	}
	different := []string{"https://github.com/acme/Env", "https://github.com/acme/env-prod", "https://gitlab.com/acme/env", "https://git.acme.example/env"}
	for _, u := range different {
		for _, k := range keys {
			if normalizeRepo(u) == k {
				t.Errorf("normalizeRepo(%q) = %q: the same as another repo", u, k)
			}
		}
	}
}
