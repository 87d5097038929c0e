package gitops

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/shipbot/shipbot/gitops/edit"
)

// checkReach refuses a change that would also change another app or
// environment: an edit that lands in a file another target reads (a base
// several overlays build on, a values file several environments stack, a
// manifest several apps share) and moves that target's tag or restart with
// it. shipbot changes one app in one environment per request: what the
// requester was authorized for and confirmed.
//
// Apps that merely share a file are fine as long as only this app's field
// moves. For a kustomize restart of the same app, an overlay that another
// environment's build includes is refused outright: that environment's
// build applies the overlay's restart patches too, whatever its own
// patches say.
func (s *Service) checkReach(f edit.Files, p *Plan) error {
	if len(p.Changes) == 0 {
		return nil
	}
	changed := map[string]bool{}
	for _, c := range p.Changes {
		changed[c.Path] = true
	}
	after := edit.WithChanges(f, p.Changes)
	t := p.Target
	var reached []string
	apps := make([]string, 0, len(s.o.Catalog.Apps))
	for app := range s.o.Catalog.Apps {
		apps = append(apps, app)
	}
	sort.Strings(apps)
	for _, app := range apps {
		envs := make([]string, 0, len(s.o.Catalog.Apps[app]))
		for env := range s.o.Catalog.Apps[app] {
			envs = append(envs, env)
		}
		sort.Strings(envs)
		for _, env := range envs {
			o := s.o.Catalog.Apps[app][env]
			if app == t.App && env == t.Env {
				continue
			}
			if app != t.App && !near(o, changed) {
				continue // reading every app's inputs would cost a walk each
			}
			inputs, err := edit.Inputs(f, o.Location)
			if err != nil {
				continue
			}
			shared := ""
			for _, in := range inputs {
				if changed[in] {
					shared = in
					break
				}
			}
			if shared == "" {
				continue
			}
			if why := reach(f, after, p, o, shared); why != "" {
				reached = append(reached, why)
			}
		}
	}
	if len(reached) == 0 {
		return nil
	}
	return &UserError{Message: fmt.Sprintf("not changing %s in %s: the change would also change %s. shipbot changes one app in one environment per request; give %s in %s a file of its own (an overlay's images entry, the environment's own values file) and point its path there",
		t.App, t.Env, strings.Join(reached, "; "), t.App, t.Env), Err: ErrShared}
}

// near reports whether another app's target may read a changed file
// without walking its build: the file is its path, is directly in its
// directory, or is one of its values files. Another app's overlay that
// builds on this app's overlay is not looked for.
func near(o Target, changed map[string]bool) bool {
	for c := range changed {
		if c == o.Path || path.Dir(c) == o.Path || slices.Contains(o.ValuesFiles, c) {
			return true
		}
	}
	return false
}

// reach says how the change of p reaches the other target o through the
// file shared, "" if o's tag and restart stay as they are.
func reach(before, after edit.Files, p *Plan, o Target, shared string) string {
	t := p.Target
	if p.Request.Action == ActionRestart && o.App == t.App && o.Layout == edit.LayoutKustomize && t.Layout == edit.LayoutKustomize && o.Path != t.Path {
		return fmt.Sprintf("%s in %s (its build includes %s, and with it the restart)", o.App, o.Env, shared)
	}
	tb, _ := edit.CurrentTag(before, o.Location)
	ta, _ := edit.CurrentTag(after, o.Location)
	if tb != ta {
		return fmt.Sprintf("%s in %s (it reads %s too: its tag would go %s -> %s)", o.App, o.Env, shared, fromText(tb), fromText(ta))
	}
	rb, _ := edit.CurrentRestart(before, o.Location)
	ra, _ := edit.CurrentRestart(after, o.Location)
	if rb != ra {
		return fmt.Sprintf("%s in %s (it reads %s too: it would restart)", o.App, o.Env, shared)
	}
	return ""
}
