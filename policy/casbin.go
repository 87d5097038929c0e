// Package policy implements the core's policy ports: an Authorizer backed by
// casbin (RBAC with domains, allow and deny rules, deny wins, deny by
// default) and a Justifier that checks the --why of a request against the
// environment's rules.
package policy

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/util"

	"github.com/shipbot/shipbot/gitops"
)

// DefaultModel is the casbin model NewEnforcer uses when no model file is
// given. deploy/examples/model.conf is a copy of it.
//
// Requests are (sub, dom, obj, act, chan) = (user, environment, app, action,
// chat channel). Policy lines are "p, sub, dom, obj, act, chan[, allow|deny]";
// deny wins. Role lines are "g, user, group, env-pattern".
//
//go:embed model.conf
var DefaultModel string

// policyActions are the actions a policy rule can grant. ActionHelp is not
// among them: it is always allowed.
var policyActions = []gitops.Action{
	gitops.ActionRollback,
	gitops.ActionRestart,
	gitops.ActionPromote,
	gitops.ActionStatus,
	gitops.ActionHistory,
	gitops.ActionApprove,
	gitops.ActionFreeze,
	gitops.ActionUnfreeze,
	gitops.ActionBreakGlass,
	// unpin lifts the pin a rollback set on an app (a rollback pins: it
	// needs no action of its own).
	gitops.ActionUnpin,
}

// envWideActions apply to a whole environment: their requests have no app,
// and only rules whose app pattern matches the empty app (such as *) grant
// them.
var envWideActions = []gitops.Action{gitops.ActionFreeze, gitops.ActionUnfreeze}

// Actions returns the actions a policy can allow or deny (help is not one:
// it is always allowed).
func Actions() []gitops.Action { return slices.Clone(policyActions) }

func actionNames() []string {
	names := make([]string, len(policyActions))
	for i, a := range policyActions {
		names[i] = string(a)
	}
	return names
}

// Enforcer is a gitops.Authorizer backed by a casbin SyncedEnforcer. It is
// safe for concurrent use. NewEnforcer reads the policy; Reload and Watch
// replace it as a whole, so every decision sees one consistent policy.
type Enforcer struct {
	modelPath, policyPath string

	cur      atomic.Pointer[enforcerState]
	reloadMu sync.Mutex // one Reload at a time
}

var _ gitops.Authorizer = (*Enforcer)(nil)

// enforcerState is one loaded model and policy. It is never modified after
// it is built, except for the explain recorder (guarded by explainMu).
type enforcerState struct {
	se   *casbin.SyncedEnforcer
	pol  *parsedPolicy
	caps modelCaps
	sum  [32]byte // of the model text and the policy file

	// explainMatcher is the model's matcher wrapped in explainFunc, so a
	// casbin evaluation records every matching p line instead of stopping
	// at the deciding one.
	explainMatcher string
	explainMu      sync.Mutex
	recorded       [][]string // guarded by explainMu
}

const explainFunc = "shipbotExplainRecord"

// NewEnforcer loads a casbin model and a policy file. An empty modelPath
// selects DefaultModel. The policy file is CSV, one rule per line; blank lines
// and lines starting with '#' are ignored (see deploy/examples/policy.csv for
// the syntax). Every problem is reported with the file (and, for the policy,
// the line) it was found in: a file that cannot be read (the error wraps the
// os error, so errors.Is(err, fs.ErrNotExist) works), a model without the
// five request fields or a domain role definition, a matcher casbin cannot
// evaluate, and policy lines with an unknown type, the wrong number of
// fields, an empty field, a malformed glob, an action pattern that matches no
// shipbot action, a deny rule the model cannot make win, or a review group
// nobody is in.
func NewEnforcer(modelPath, policyPath string) (*Enforcer, error) {
	e := &Enforcer{modelPath: modelPath, policyPath: policyPath}
	f, err := e.readFiles()
	if err != nil {
		return nil, err
	}
	st, err := buildState(f)
	if err != nil {
		return nil, err
	}
	e.cur.Store(st)
	return e, nil
}

// policyFiles is the content of the model and policy files at one time.
type policyFiles struct {
	modelName, modelText string
	policyFile           string
	policy               []byte
	stats                []fileStat // for the watcher
}

func (f *policyFiles) sum() [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s%d:", len(f.modelText), f.modelText, len(f.policy))
	h.Write(f.policy)
	var s [32]byte
	h.Sum(s[:0])
	return s
}

// readFiles reads the model (unless it is the embedded one) and the policy.
func (e *Enforcer) readFiles() (*policyFiles, error) {
	f := &policyFiles{modelName: e.modelPath, modelText: DefaultModel, policyFile: e.policyPath}
	if e.modelPath == "" {
		f.modelName = "embedded default model"
	} else {
		b, st, err := readStat(e.modelPath)
		if err != nil {
			return nil, fmt.Errorf("policy: read model: %w", err)
		}
		f.modelText = string(b)
		f.stats = append(f.stats, st)
	}
	if e.policyPath == "" {
		return nil, errors.New("policy: no policy file given")
	}
	b, st, err := readStat(e.policyPath)
	if err != nil {
		return nil, fmt.Errorf("policy: read policy: %w", err)
	}
	f.policy = b
	f.stats = append(f.stats, st)
	return f, nil
}

// buildState validates the model and the policy and builds a casbin
// enforcer for them.
func buildState(f *policyFiles) (*enforcerState, error) {
	m, err := model.NewModelFromString(f.modelText)
	if err != nil {
		return nil, fmt.Errorf("policy: invalid model %s: %w", f.modelName, err)
	}
	if err := checkModel(m); err != nil {
		return nil, fmt.Errorf("policy: invalid model %s: %w", f.modelName, err)
	}
	caps, err := probeModel(f.modelName, f.modelText)
	if err != nil {
		return nil, fmt.Errorf("policy: invalid model %s: matcher: %w", f.modelName, err)
	}
	pol, err := parsePolicy(f.policyFile, f.policy, m, caps)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}

	st := &enforcerState{pol: pol, caps: caps, sum: f.sum()}
	// No adapter yet: the domain matching function must be in place before
	// the role links are built, so the policy is loaded afterwards.
	se, err := newCasbin(m)
	if err != nil {
		return nil, fmt.Errorf("policy: invalid model %s: %w", f.modelName, err)
	}
	se.AddFunction(explainFunc, st.record)
	se.SetAdapter(&policyAdapter{pol: pol})
	if err := se.LoadPolicy(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	st.se = se

	// casbin compiles the matcher on first use; do it now so a bad matcher
	// (unknown function, syntax error) fails at load, not on a request.
	// The probe values contain a NUL, which no policy line may contain.
	probe := "\x00shipbot-probe"
	if _, err := se.Enforce(probe, probe, probe, probe, probe); err != nil {
		return nil, fmt.Errorf("policy: invalid model %s: matcher: %w", f.modelName, err)
	}
	args := []string{"(" + m["m"]["m"].Value + ")"}
	args = append(args, m["p"]["p"].Tokens...)
	st.explainMatcher = explainFunc + "(" + strings.Join(args, ", ") + ")"
	if _, err := se.EnforceWithMatcher(st.explainMatcher, probe, probe, probe, probe, probe); err != nil {
		return nil, fmt.Errorf("policy: invalid model %s: matcher: %w", f.modelName, err)
	}
	return st, nil
}

// newCasbin makes a synced casbin enforcer for m with shipbot's functions.
func newCasbin(m model.Model) (*casbin.SyncedEnforcer, error) {
	se, err := casbin.NewSyncedEnforcer(m, false)
	if err != nil {
		return nil, err
	}
	// "g, alice, team-checkout, *": the domain of a role line is a glob too.
	se.AddNamedDomainMatchingFunc("g", "globMatch", globMatch)
	se.AddFunction("appMatch", appMatchFunc)
	return se, nil
}

// checkModel verifies the model has the shape Authorize relies on.
func checkModel(m model.Model) error {
	r, ok := m["r"]["r"]
	if !ok || len(r.Tokens) != 5 {
		return errors.New("request_definition must be: r = sub, dom, obj, act, chan")
	}
	p, ok := m["p"]["p"]
	if !ok || len(p.Tokens) < 5 || len(p.Tokens) > 6 || len(p.Tokens) == 6 && p.Tokens[5] != "p_eft" {
		return errors.New("policy_definition must be: p = sub, dom, obj, act, chan, eft (or, without deny rules, p = sub, dom, obj, act, chan)")
	}
	g, ok := m["g"]["g"]
	if !ok || len(g.Tokens) != 3 || len(g.ParamsTokens) != 0 {
		return errors.New("role_definition must be: g = _, _, _ (user, group, environment)")
	}
	mm, ok := m["m"]["m"]
	if !ok {
		return errors.New("matchers must define m")
	}
	if strings.Contains(mm.Value, explainFunc) {
		return fmt.Errorf("the matcher may not call %s (shipbot's own)", explainFunc)
	}
	return nil
}

// modelCaps is what a model can express, found by probing it (a custom
// model may differ from DefaultModel).
type modelCaps struct {
	name       string // the model, for messages
	hasEft     bool   // p lines carry allow|deny
	denyWins   bool   // a matching deny line overrides a matching allow line
	anySubject bool   // p.sub "*" matches every user
	namespaces bool   // obj patterns are matched as APP or NAMESPACE/APP
}

// probeModel evaluates tiny policies against the model to learn what it
// can express, so a policy using a feature the model lacks is refused
// instead of being silently ignored.
func probeModel(name, text string) (modelCaps, error) {
	caps := modelCaps{name: name}
	try := func(rules [][]string, req ...string) (bool, error) {
		m, err := model.NewModelFromString(text)
		if err != nil {
			return false, err
		}
		caps.hasEft = len(m["p"]["p"].Tokens) == 6
		for _, r := range rules {
			if !caps.hasEft {
				if r[5] != effectAllow {
					return false, nil
				}
				r = r[:5]
			}
			if err := m.AddPolicy("p", "p", r); err != nil {
				return false, err
			}
		}
		se, err := newCasbin(m)
		if err != nil {
			return false, err
		}
		return se.Enforce(anys(req)...)
	}
	u, d, o, a, c := "u", "d", "o", "a", "c"
	allow := []string{u, d, o, a, c, effectAllow}
	ok, err := try([][]string{allow}, u, d, o, a, c)
	if err != nil {
		return caps, err
	}
	if !ok {
		return caps, errors.New("a request that is exactly a policy rule is denied: check [matchers] and [policy_effect]")
	}
	if caps.hasEft {
		ok, err := try([][]string{allow, {u, d, o, a, c, effectDeny}}, u, d, o, a, c)
		if err != nil {
			return caps, err
		}
		caps.denyWins = !ok
	}
	if caps.anySubject, err = try([][]string{{"*", d, o, a, c, effectAllow}}, u, d, o, a, c); err != nil {
		return caps, err
	}
	ns1, err := try([][]string{{u, d, "*/" + o, a, c, effectAllow}}, u, d, o, a, c)
	if err != nil {
		return caps, err
	}
	ns2, err := try([][]string{{u, d, o, a, c, effectAllow}}, u, d, "n/"+o, a, c)
	if err != nil {
		return caps, err
	}
	caps.namespaces = ns1 && ns2
	return caps, nil
}

func anys(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// globMatch reports whether name matches pattern, with casbin's globMatch
// semantics. A malformed pattern matches nothing (the loader rejects them).
func globMatch(name, pattern string) bool {
	ok, err := util.GlobMatch(name, pattern)
	return err == nil && ok
}

// appMatch reports whether the request object obj (APP or NAMESPACE/APP)
// matches pattern. A pattern without '/' is matched against the app name
// alone, in any namespace; a pattern with '/' against NAMESPACE/APP, where
// an app without a namespace has the empty one ("*/checkout" matches
// "checkout").
func appMatch(obj, pattern string) bool {
	ns, app, hasNS := strings.Cut(obj, "/")
	if !hasNS {
		ns, app = "", obj
	}
	if !strings.Contains(pattern, "/") {
		return globMatch(app, pattern)
	}
	return globMatch(ns+"/"+app, pattern)
}

func appMatchFunc(args ...any) (any, error) {
	if len(args) != 2 {
		return false, fmt.Errorf("appMatch: want 2 arguments, got %d", len(args))
	}
	obj, ok1 := args[0].(string)
	pattern, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return false, errors.New("appMatch: arguments must be strings")
	}
	return appMatch(obj, pattern), nil
}

// record is the explain matcher's function: it records the p line when the
// model's matcher matched it, and never lets casbin stop early.
func (st *enforcerState) record(args ...any) (any, error) {
	if len(args) == 0 {
		return false, nil
	}
	if matched, _ := args[0].(bool); !matched {
		return false, nil
	}
	fields := make([]string, 0, len(args)-1)
	for _, a := range args[1:] {
		s, _ := a.(string)
		fields = append(fields, s)
	}
	st.recorded = append(st.recorded, fields)
	return false, nil
}

// Authorize answers whether q.Subject.User may do q.Action on q.App in q.Env
// (for promote, q.Env is the target environment) from q.Subject.Channel.
// q.Cluster is not part of the policy. ActionHelp is always allowed. A
// request with an empty user, app or environment, or an action the policy
// does not know, is denied. A request allowed by some allow rule is denied
// when a deny rule matches it too.
//
// An allowed Decision carries the extras of the first matching review line
// (Review) and of the first matching justify line (Justification); a
// request allowed for gitops.ActionBreakGlass has BreakGlass set: shipbot asks for
// breakglass, on the same app and environment, when a freeze is in force.
//
// A denial is a Decision, not an error; errors are reserved for an
// evaluation failure or a cancelled ctx.
func (e *Enforcer) Authorize(ctx context.Context, q gitops.AuthzQuery) (gitops.Decision, error) {
	if err := ctx.Err(); err != nil {
		return gitops.Decision{}, err
	}
	ev, err := e.cur.Load().evaluate(q)
	if err != nil {
		return gitops.Decision{}, err
	}
	return ev.d, nil
}

// InGroup reports whether user is in group (directly or through other
// groups) in env, e.g. to check an approver against Decision.Review.Group.
func (e *Enforcer) InGroup(user, group, env string) bool {
	groups, err := e.cur.Load().groups(user, env)
	return err == nil && slices.Contains(groups, group)
}

// evaluation is a decision and what produced it.
type evaluation struct {
	d        gitops.Decision
	valid    bool      // the query reached the policy
	decisive *permRule // the allow line that allowed, or the deny line that won
	groups   []string  // the user's groups in the env, when computed
	// failClosed: an allow line matched, but the chat platform could not
	// tell the user's groups and a group's deny line could apply.
	failClosed bool
	review     *reviewRule
	justify    *justifyRule
}

func (st *enforcerState) evaluate(q gitops.AuthzQuery) (evaluation, error) {
	if q.Action == gitops.ActionHelp {
		return evaluation{d: gitops.Decision{Allowed: true, Reason: "help is always allowed"}}, nil
	}
	user, env, app, act, ch := q.Subject.User, q.Env, q.App, string(q.Action), q.Subject.Channel
	switch {
	case user == "":
		return evaluation{d: deny("cannot tell who is asking: the request has no user")}, nil
	case !slices.Contains(policyActions, q.Action):
		return evaluation{d: deny(fmt.Sprintf("the policy knows no action %q", display(act)))}, nil
	case slices.Contains(envWideActions, q.Action):
		if env == "" {
			return evaluation{d: deny(fmt.Sprintf("cannot authorize %s without an environment", display(act)))}, nil
		}
	case app == "" || env == "":
		return evaluation{d: deny(fmt.Sprintf("cannot authorize %s without both an app and an environment", display(act)))}, nil
	}
	ev := evaluation{valid: true}

	// The user is evaluated first, then each group the chat platform
	// vouches for, as if "g, USER, GROUP, *" were in the policy: a deny
	// line matching any of them wins; otherwise an allow line matching any
	// of them allows.
	var (
		ok     bool
		fields []string
		via    string // the subject that allowed, or whose deny line won
	)
	for _, sub := range st.subjects(q.Subject) {
		allowed, f, err := st.se.EnforceEx(sub, env, app, act, ch)
		if err != nil {
			return ev, fmt.Errorf("policy: evaluating %s %s %s for %s: %w", act, app, env, sub, err)
		}
		if allowed {
			// The allow line that decides is the first in the file, as
			// for the user alone.
			if !ok || st.pol.line(f) < st.pol.line(fields) {
				ok, fields, via = true, f, sub
			}
			continue
		}
		if r, found := st.pol.perm(f); found && r.effect == effectDeny {
			ok, fields, via = false, f, sub
			break
		}
	}
	groups, err := st.allGroups(q.Subject, env)
	if err != nil {
		return ev, err
	}
	ev.groups = groups
	rule, found := st.pol.perm(fields)
	if found {
		ev.decisive = &rule
	}

	if !ok {
		if found && rule.effect == effectDeny {
			ev.d = deny(denyRuleReason(user, env, app, act, ch, rule, ev.groups))
		} else {
			ev.decisive = nil
			ev.d = deny(denyReason(user, env, app, act, ch, ev.groups))
		}
		return ev, nil
	}

	// Groups the chat platform could not tell may hide a deny line: when
	// a deny line for a group could match this request, refuse rather than
	// guess (fail closed).
	if q.Subject.GroupsUnknown {
		for _, p := range st.pol.groupDenies {
			if scopeMatches(p.stored[1], p.stored[2], p.stored[3], env, app, act) && globMatch(ch, p.stored[4]) {
				ev.decisive, ev.failClosed = nil, true
				ev.d = deny(fmt.Sprintf("shipbot could not read %s's groups from the chat platform just now, and a deny rule for a group could apply (%s); try again in a minute",
					display(user), displayRule(p.src.Text)))
				return ev, nil
			}
		}
	}

	d := gitops.Decision{Allowed: true, Rule: formatRule("p", fields)}
	if found {
		d.Rule = rule.src.Text
		switch {
		case rule.sub == user:
		case rule.sub == "*":
			d.Reason = "the rule applies to anyone"
		case via != user && rule.sub != via:
			d.Reason = fmt.Sprintf("%s is in %s in %s, through the chat group %s", display(user), display(rule.sub), display(env), display(via))
		case via != user:
			d.Reason = fmt.Sprintf("%s is in the chat group %s", display(user), display(via))
		default:
			d.Reason = fmt.Sprintf("%s is in %s in %s", display(user), display(rule.sub), display(env))
		}
	}
	for i := range st.pol.reviews {
		if r := &st.pol.reviews[i]; st.reviewMatches(r, user, env, app, act, ev.groups) {
			ev.review = r
			d.Review = gitops.Review{Approvals: r.approvals, Group: r.group}
			break
		}
	}
	for i := range st.pol.justifies {
		if j := &st.pol.justifies[i]; scopeMatches(j.env, j.app, j.act, env, app, act) {
			ev.justify = j
			d.Justification = gitops.JustificationRule{Required: j.required, Kinds: slices.Clone(j.kinds)}
			break
		}
	}
	d.BreakGlass = q.Action == gitops.ActionBreakGlass
	ev.d = d
	return ev, nil
}

func (st *enforcerState) reviewMatches(r *reviewRule, user, env, app, act string, groups []string) bool {
	if r.sub != "*" && r.sub != user && !slices.Contains(groups, r.sub) {
		return false
	}
	return scopeMatches(r.env, r.app, r.act, env, app, act)
}

func scopeMatches(envPat, appPat, actPat, env, app, act string) bool {
	return globMatch(env, envPat) && appMatch(app, appPat) && globMatch(act, actPat)
}

// subjects are the names a request is evaluated as: the user, then the
// chat platform's groups that take part (parsedPolicy.chatGroup; a group
// the policy never names could only match lines for anyone, which the user
// matches already).
func (st *enforcerState) subjects(s gitops.Subject) []string {
	subs := []string{s.User}
	for _, g := range s.Groups {
		if g != s.User && st.pol.chatGroup(g) && !slices.Contains(subs, g) {
			subs = append(subs, g)
		}
	}
	return subs
}

// allGroups returns the groups of s in env, sorted: the chat platform's
// groups that take part and every group the policy's g lines put the user
// or those groups in, nested ones included.
func (st *enforcerState) allGroups(s gitops.Subject, env string) ([]string, error) {
	var all []string
	for i, sub := range st.subjects(s) {
		groups, err := st.groups(sub, env)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			all = append(all, sub)
		}
		all = append(all, groups...)
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// groups returns user's groups in env, nested ones included, sorted.
func (st *enforcerState) groups(user, env string) ([]string, error) {
	groups, err := st.se.GetImplicitRolesForUser(user, env)
	if err != nil {
		return nil, fmt.Errorf("policy: groups of %s in %s: %w", user, env, err)
	}
	slices.Sort(groups)
	return slices.Compact(groups), nil
}

func deny(reason string) gitops.Decision {
	return gitops.Decision{Allowed: false, Reason: reason}
}

// denyReason tells the chat user which rule is missing.
func denyReason(user, env, app, act, ch string, groups []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "no policy rule lets %s %s", display(user), requestPhrase(act, app, env))
	if ch != "" {
		fmt.Fprintf(&b, " (from channel %s)", display(ch))
	}
	if len(groups) > 0 {
		noun, those := "group", "that group"
		if len(groups) > 1 {
			noun, those = "groups", "those groups"
		}
		fmt.Fprintf(&b, "; %s is in %s %s in %s, and no rule of %s covers this either",
			display(user), noun, displayList(groups), display(env), those)
	}
	if s := suggestion(user, env, app, act); s != "" {
		fmt.Fprintf(&b, "; an admin can add: %s", s)
	}
	return b.String()
}

// denyRuleReason tells the chat user which deny rule refused the request.
func denyRuleReason(user, env, app, act, ch string, rule permRule, groups []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the policy denies %s %s", display(user), requestPhrase(act, app, env))
	if ch != "" {
		fmt.Fprintf(&b, " (from channel %s)", display(ch))
	}
	fmt.Fprintf(&b, ": %s", displayRule(rule.src.Text))
	if rule.sub != user && rule.sub != "*" && slices.Contains(groups, rule.sub) {
		fmt.Fprintf(&b, " (%s is in group %s in %s)", display(user), display(rule.sub), display(env))
	}
	return b.String()
}

// suggestion is a policy line that would allow the request, when it is safe
// to suggest: every value a literal name, so the line cannot grant more than
// what was asked.
func suggestion(user, env, app, act string) string {
	if !literalName(user) || !literalName(env) || !literalName(act) {
		return ""
	}
	switch {
	case app == "" && slices.Contains(envWideActions, gitops.Action(act)):
		app = "*" // an environment-wide request has no app
	case !literalName(app):
		return ""
	}
	return fmt.Sprintf("p, %s, %s, %s, %s, *", user, env, app, act)
}

// requestPhrase is "rollback checkout in prod", or for an environment-wide
// action "freeze prod".
func requestPhrase(act, app, env string) string {
	if app == "" {
		return display(act) + " " + display(env)
	}
	return display(act) + " " + display(app) + " in " + display(env)
}

func displayList(items []string) string {
	shown := make([]string, len(items))
	for i, s := range items {
		shown[i] = display(s)
	}
	return strings.Join(shown, ", ")
}

// display makes a request value safe to show in one chat line.
func display(s string) string {
	return normalize(s, 64)
}

// displayRule makes a policy line or an error safe to show on one line.
func displayRule(s string) string {
	return normalize(s, 400)
}

// literalName reports whether s is a plain name: no glob syntax, CSV syntax,
// space or control character.
func literalName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(globSyntax+`,"#`, r) {
			return false
		}
	}
	return true
}

// formatRule renders a policy rule as a CSV line, e.g.
// "p, team-checkout, *, checkout, rollback, *".
func formatRule(ptype string, fields []string) string {
	if len(fields) == 0 {
		return ""
	}
	parts := make([]string, 0, len(fields)+1)
	parts = append(parts, ptype)
	for _, f := range fields {
		if strings.ContainsAny(f, `,"`) {
			f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
		}
		parts = append(parts, f)
	}
	return strings.Join(parts, ", ")
}

// readStat reads a file and the stat the watcher compares.
func readStat(path string) ([]byte, fileStat, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileStat{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStat{}, err
	}
	b, err := readAllLimited(f, maxPolicyBytes)
	if err != nil {
		return nil, fileStat{}, fmt.Errorf("%s: %w", path, err)
	}
	return b, fileStat{path: path, size: fi.Size(), mtime: fi.ModTime()}, nil
}
