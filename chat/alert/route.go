package alert

import (
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Route maps the alerts it matches to an app and environment. App and Env
// are templates: literal text with ${name} (or $name) references, each
// replaced by the named capture group of the route's regexes (labelRegex,
// textRegex) or, failing that, by the alert's label of that name; $$ is a
// literal $. A route whose App or Env comes out empty, or not a valid
// name, does not match and the next route is tried.
type Route struct {
	Name  string `yaml:"name"`
	Match Match  `yaml:"match"`
	App   string `yaml:"app"`
	Env   string `yaml:"env"`
	// Why is the reason the incident's Rollback gives (a template like
	// App: e.g. ${incident} captured from an annotation naming the
	// PagerDuty incident); "" = the alert's own link.
	Why string `yaml:"why"`
}

// Match is what an alert must have for its route to match; every condition
// given must hold (no conditions: every alert matches).
type Match struct {
	// Sources limits the route to alerts from these sources
	// (alertmanager, pagerduty, opsgenie); empty: any.
	Sources []Source `yaml:"sources"`
	// Labels must be equal; a label that is absent equals "".
	Labels map[string]string `yaml:"labels"`
	// LabelRegex: each label must match its regex, which is anchored at
	// both ends (as Prometheus matchers are); named groups can feed App
	// and Env.
	LabelRegex map[string]string `yaml:"labelRegex"`
	// TextRegex must match somewhere in the alert's text: its title, then
	// its description, then its annotations as "name: value" lines (by
	// name). Named groups can feed App and Env. (?i) makes it ignore case.
	TextRegex string `yaml:"textRegex"`
}

// Router maps alerts to targets: the first route that matches wins.
type Router struct {
	routes []compiledRoute
	log    *slog.Logger
}

type compiledRoute struct {
	name       string
	sources    []Source
	labels     map[string]string
	labelRegex []labelRegex // sorted by label
	textRegex  *regexp.Regexp
	app, env   template
	why        *template // nil: none
}

type labelRegex struct {
	label string
	re    *regexp.Regexp
}

// nameRe is what an app or environment name may look like once expanded.
var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// NewRouter compiles routes. Every problem is reported with the route it
// is in: a bad regex, a bad template, an unknown source, a missing app or
// env.
func NewRouter(routes []Route, log *slog.Logger) (*Router, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Router{log: log}
	var problems []string
	for i, rt := range routes {
		cr, errs := compileRoute(rt, i)
		for _, e := range errs {
			problems = append(problems, fmt.Sprintf("%s: %s", cr.name, e))
		}
		r.routes = append(r.routes, cr)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("alert routes: %s", strings.Join(problems, "; "))
	}
	return r, nil
}

func compileRoute(rt Route, i int) (compiledRoute, []string) {
	cr := compiledRoute{name: rt.Name, labels: rt.Match.Labels}
	if cr.name == "" {
		cr.name = fmt.Sprintf("routes[%d]", i)
	} else {
		cr.name = fmt.Sprintf("routes[%d] (%s)", i, rt.Name)
	}
	var errs []string
	for _, s := range rt.Match.Sources {
		switch s {
		case SourceAlertmanager, SourcePagerDuty, SourceOpsgenie:
			cr.sources = append(cr.sources, s)
		default:
			errs = append(errs, fmt.Sprintf("match.sources: unknown source %q (alertmanager, pagerduty or opsgenie)", s))
		}
	}
	labels := make([]string, 0, len(rt.Match.LabelRegex))
	for l := range rt.Match.LabelRegex {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		re, err := regexp.Compile("^(?:" + rt.Match.LabelRegex[l] + ")$")
		if err != nil {
			errs = append(errs, fmt.Sprintf("match.labelRegex.%s: %v", l, err))
			continue
		}
		cr.labelRegex = append(cr.labelRegex, labelRegex{l, re})
	}
	if rt.Match.TextRegex != "" {
		re, err := regexp.Compile(rt.Match.TextRegex)
		if err != nil {
			errs = append(errs, fmt.Sprintf("match.textRegex: %v", err))
		} else {
			cr.textRegex = re
		}
	}
	var err error
	if cr.app, err = parseTemplate(rt.App); err != nil {
		errs = append(errs, fmt.Sprintf("app: %v", err))
	}
	if cr.env, err = parseTemplate(rt.Env); err != nil {
		errs = append(errs, fmt.Sprintf("env: %v", err))
	}
	if rt.Why != "" {
		why, err := parseText(rt.Why)
		if err != nil {
			errs = append(errs, fmt.Sprintf("why: %v", err))
		}
		cr.why = &why
	}
	return cr, errs
}

// Route returns the target of the first route that matches a, or false
// when none does.
func (r *Router) Route(a Alert) (Target, bool) {
	var text string
	for _, cr := range r.routes {
		if cr.textRegex != nil && text == "" {
			text = searchText(a)
		}
		t, ok, why := cr.match(a, text)
		if ok {
			return t, true
		}
		if why != "" {
			r.log.Debug("alert route skipped", "route", cr.name, "source", a.Source, "key", clip(a.Key, 100), "why", why)
		}
	}
	return Target{}, false
}

// match reports whether the route matches a and its target; why says why
// a route whose conditions held still did not match.
func (cr compiledRoute) match(a Alert, text string) (t Target, ok bool, why string) {
	if len(cr.sources) > 0 && !slices.Contains(cr.sources, a.Source) {
		return Target{}, false, ""
	}
	for k, v := range cr.labels {
		if a.Labels[k] != v {
			return Target{}, false, ""
		}
	}
	captures := map[string]string{}
	capture := func(re *regexp.Regexp, m []string) {
		for i, n := range re.SubexpNames() {
			if n != "" && m[i] != "" && captures[n] == "" {
				captures[n] = m[i]
			}
		}
	}
	for _, lr := range cr.labelRegex {
		m := lr.re.FindStringSubmatch(a.Labels[lr.label])
		if m == nil {
			return Target{}, false, ""
		}
		capture(lr.re, m)
	}
	if cr.textRegex != nil {
		m := cr.textRegex.FindStringSubmatch(text)
		if m == nil {
			return Target{}, false, ""
		}
		capture(cr.textRegex, m)
	}
	lookup := func(name string) string {
		if v, ok := captures[name]; ok {
			return v
		}
		return a.Labels[name]
	}
	app, env := cr.app.expand(lookup), cr.env.expand(lookup)
	if !nameRe.MatchString(app) || !nameRe.MatchString(env) {
		return Target{}, false, fmt.Sprintf("app %q or env %q is not a valid name", clip(app, 100), clip(env, 100))
	}
	t = Target{App: app, Env: env, Route: cr.name}
	if cr.why != nil {
		t.Why = cr.why.expand(lookup)
	}
	return t, true, ""
}

// searchText is what TextRegex searches: title, description, annotations.
func searchText(a Alert) string {
	var b strings.Builder
	b.WriteString(a.Title)
	b.WriteByte('\n')
	b.WriteString(a.Text)
	names := make([]string, 0, len(a.Annotations))
	for k := range a.Annotations {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b.WriteByte('\n')
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(a.Annotations[k])
	}
	return b.String()
}

// template is literal text with references.
type template []templatePart

type templatePart struct {
	literal string
	ref     string // when set, a reference instead of literal
}

var refNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// parseTemplate parses an app or env template: required, and a literal
// one must be a valid name.
func parseTemplate(s string) (template, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("required")
	}
	t, err := parseText(s)
	if err != nil {
		return nil, err
	}
	if t.literalOnly() && !nameRe.MatchString(t.expand(nil)) {
		return nil, fmt.Errorf("%q is not a valid name (letters, digits, '.', '_', '-')", s)
	}
	return t, nil
}

// parseText parses literal text with $name and ${name} references ($$ is
// a dollar).
func parseText(s string) (template, error) {
	var t template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t = append(t, templatePart{literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		if s[i] != '$' {
			lit.WriteByte(s[i])
			i++
			continue
		}
		rest := s[i+1:]
		switch {
		case strings.HasPrefix(rest, "$"):
			lit.WriteByte('$')
			i += 2
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return nil, fmt.Errorf("%q: ${ without }", s)
			}
			name := strings.TrimSpace(rest[1:end])
			if name == "" {
				return nil, fmt.Errorf("%q: empty ${}", s)
			}
			flush()
			t = append(t, templatePart{ref: name})
			i += 1 + end + 1
		default:
			name := refNameRe.FindString(rest)
			if name == "" {
				return nil, fmt.Errorf("%q: $ must be followed by a name, {name} or $", s)
			}
			flush()
			t = append(t, templatePart{ref: name})
			i += 1 + len(name)
		}
	}
	flush()
	return t, nil
}

func (t template) literalOnly() bool {
	for _, p := range t {
		if p.ref != "" {
			return false
		}
	}
	return true
}

func (t template) expand(lookup func(string) string) string {
	var b strings.Builder
	for _, p := range t {
		if p.ref != "" {
			b.WriteString(lookup(p.ref))
		} else {
			b.WriteString(p.literal)
		}
	}
	return b.String()
}
