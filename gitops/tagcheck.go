package gitops

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shipbot/shipbot/gitops/repo"
	"github.com/shipbot/shipbot/templates"
)

// movingTags are tags that, by convention, name whatever was pushed last
// rather than one release.
var movingTags = map[string]bool{
	"latest": true, "stable": true, "edge": true, "nightly": true, "main": true, "master": true, "head": true,
	"dev": true, "develop": true, "development": true, "current": true, "canary": true, "beta": true, "alpha": true,
	"snapshot": true, "release": true, "test": true, "staging": true, "stage": true, "prod": true, "production": true,
}

// MovingTag reports whether tag looks mutable: latest, stable, main, a
// branch or environment name, or a name ending in -latest or -snapshot.
// Rolling back to such a tag is refused: what it names changes under you,
// and a node that pulled it before keeps running its old copy.
func MovingTag(tag string) bool {
	t := strings.ToLower(tag)
	return movingTags[t] || strings.HasSuffix(t, "-latest") || strings.HasSuffix(t, "-snapshot") || strings.HasSuffix(t, "_latest")
}

// seenTag is a tag the repo's history shows an app ran in one environment.
type seenTag struct {
	env string
	// when is the time of the commit that deployed it; with before, the tag
	// ran before that commit (the oldest change shipbot sees) and nothing
	// says since when.
	when   time.Time
	before bool
}

// tagsSeen returns, per tag, where and when the app ran it, as the repo's
// history records it (every environment of the app, newest first per
// environment, in the catalog's order of environments), and the tags newest
// first.
func (s *Service) tagsSeen(ctx context.Context, snap *repo.Snapshot, app string) (map[string][]seenTag, []string, error) {
	h := s.historyReader()
	seen := map[string][]seenTag{}
	var order []string
	type dated struct {
		tag  string
		when time.Time
	}
	var all []dated
	add := func(tag string, st seenTag) {
		if tag == "" {
			return
		}
		for _, x := range seen[tag] {
			if x.env == st.env {
				return // newest first: the first one is the latest deploy
			}
		}
		seen[tag] = append(seen[tag], st)
		all = append(all, dated{tag, st.when})
	}
	for _, env := range s.o.Catalog.Envs {
		t, ok := s.o.Catalog.Apps[app][env.Name]
		if !ok {
			continue
		}
		if _, ok := snap.EntryHash(t.Path); !ok {
			continue // not in the repo (any more): nothing to learn there
		}
		ds, err := h.deploys(ctx, snap, t, walk{})
		if err != nil {
			return nil, nil, err
		}
		for _, d := range ds {
			add(d.Tag, seenTag{env: env.Name, when: d.When})
		}
		if n := len(ds); n > 0 {
			add(ds[n-1].From, seenTag{env: env.Name, when: ds[n-1].When, before: true})
		}
	}
	slices.SortStableFunc(all, func(a, b dated) int { return b.when.Compare(a.when) })
	for _, d := range all {
		if !slices.Contains(order, d.tag) {
			order = append(order, d.tag)
		}
	}
	return seen, order, nil
}

// checkRollbackTag looks at the tag a `rollback ... to TAG` names: a moving
// tag (latest) is refused; otherwise the plan says whether and when the
// tag ran in the environment, or elsewhere; a tag the history of the app
// never shows, in any environment, is said loudly and needs the explicit
// answer (Plan.Confirmation). A re-plan of the same tag keeps what the
// first plan learnt.
func (s *Service) checkRollbackTag(ctx context.Context, snap *repo.Snapshot, p *Plan) error {
	if p.tagSeen != "" && p.tagSeen == p.To {
		return nil
	}
	p.tagNote, p.tagLine, p.tagWarning, p.Confirmation, p.tagSeen = "", "", "", "", ""
	req := p.Request
	seen, order, err := s.tagsSeen(ctx, snap, req.App)
	if MovingTag(p.To) {
		msg := fmt.Sprintf("%q is a moving tag: it names whatever was pushed last, so rolling back to it would not bring back a known release (and nodes that pulled it before keep their old copy). Roll back to a fixed release", p.To)
		if here := tagsIn(seen, order, req.Env); len(here) > 0 {
			msg += fmt.Sprintf(" (%s ran %s)", req.Env, strings.Join(firstN(here, 5), ", "))
		}
		return Userf("%s: `rollback %s %s to TAG --why ...`, or `rollback %s %s --why ...` for the tag deployed before the current one. Nothing was written.", msg, req.App, req.Env, req.App, req.Env)
	}
	if err != nil {
		s.requestLogger(req).Warn("rollback to a tag: can't read the history", "err", err)
		p.tagNote = fmt.Sprintf("%s: NOT CHECKED against the history", p.To)
		p.tagWarning = fmt.Sprintf("NOT CHECKED: shipbot could not read the history of %s to tell whether %s was ever deployed (%s).", req.App, p.To, userMessage(err))
		p.Confirmation = "yes, deploy " + p.To
		p.tagSeen = p.To
		return nil
	}
	now := s.o.Now()
	where := seen[p.To]
	for _, st := range where {
		if st.env == req.Env {
			// The usual rollback: said on a line of its own, the summary
			// stays as it always was.
			p.tagLine = fmt.Sprintf("%s ran in %s before: %s.", p.To, req.Env, seenText(st, now))
			p.tagSeen = p.To
			return nil
		}
	}
	if len(where) > 0 {
		var others []string
		for _, st := range where {
			others = append(others, fmt.Sprintf("in %s (%s)", st.env, seenText(st, now)))
		}
		p.tagNote = fmt.Sprintf("%s never ran in %s; it ran %s", p.To, req.Env, strings.Join(others, ", "))
		p.tagSeen = p.To
		return nil
	}
	p.tagNote = fmt.Sprintf("%s: NEVER DEPLOYED in any environment", p.To)
	warn := fmt.Sprintf("NEVER DEPLOYED: %s is not in the repo's history of %s in any environment", p.To, req.App)
	if len(order) > 0 {
		warn += fmt.Sprintf(" (tags seen: %s)", strings.Join(firstN(order, 5), ", "))
	}
	warn += "."
	if alt := similarTag(p.To, order); alt != "" {
		warn += fmt.Sprintf(" Did you mean %s? `rollback %s %s to %s --why ...`.", alt, req.App, req.Env, alt)
	}
	warn += " A tag that does not exist in the registry leaves the new pods unable to start."
	p.tagWarning = warn
	p.Confirmation = "yes, deploy " + p.To
	p.tagSeen = p.To
	return nil
}

// tagsIn returns the tags that ran in env, newest first.
func tagsIn(seen map[string][]seenTag, order []string, env string) []string {
	var out []string
	for _, tag := range order {
		for _, st := range seen[tag] {
			if st.env == env {
				out = append(out, tag)
				break
			}
		}
	}
	return out
}

// seenText says when a tag ran, e.g. "deployed 2026-11-18 09:14 UTC, 3d ago".
func seenText(st seenTag, now time.Time) string {
	at := st.when.UTC().Format("2006-01-02 15:04 UTC")
	if st.before {
		return fmt.Sprintf("before %s (the oldest change in the history)", at)
	}
	return fmt.Sprintf("deployed %s, %s", at, templates.Ago(now, st.when))
}

// similarTag returns the tag of known that tag most likely means: the same
// with or without a leading "v", or in another case.
func similarTag(tag string, known []string) string {
	for _, k := range known {
		if k != tag && (strings.EqualFold(k, tag) || strings.TrimPrefix(k, "v") == strings.TrimPrefix(tag, "v") ||
			strings.TrimPrefix(strings.ToLower(k), "v") == strings.TrimPrefix(strings.ToLower(tag), "v")) {
			return k
		}
	}
	return ""
}

// Confirms reports whether answer, as the requester typed it, confirms the
// plan: a plain yes (yes, y, confirm) for most plans; for a plan with a
// Confirmation, that answer (case and spacing aside, the comma optional)
// and nothing less.
func (p *Plan) Confirms(answer string) bool {
	a := normalizeAnswer(answer)
	if p.Confirmation == "" {
		return a == "yes" || a == "y" || a == "confirm"
	}
	want := normalizeAnswer(p.Confirmation)
	return a == want || a == strings.Replace(want, ",", "", 1)
}

// normalizeAnswer lowers an answer and collapses its spaces; quotes or
// backticks around it (copied from the plan) are dropped.
func normalizeAnswer(s string) string {
	s = strings.Trim(strings.TrimSpace(s), "`\"'")
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}
