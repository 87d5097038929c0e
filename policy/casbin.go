// Package policy implements the core's policy ports: an Authorizer backed by
// casbin (RBAC with domains, deny by default) and a Justifier that checks the
// --why of a request against the environment's rules.
package policy

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/util"

	"github.com/shipbot/shipbot/gitops"
)

// DefaultModel is the casbin model NewEnforcer uses when no model file is
// given. deploy/examples/model.conf is a copy of it.
//
// Requests are (sub, dom, obj, act, chan) = (user, environment, app, action,
// chat channel). Policy lines have the same five fields; dom, obj, act and
// chan are casbin globMatch patterns ('*' = any), sub is matched exactly or
// through a group. Role lines are "g, user, group, env-pattern".
//
//go:embed model.conf
var DefaultModel string

// Enforcer is a gitops.Authorizer backed by a casbin SyncedEnforcer. It is
// safe for concurrent use. The policy is read once, by NewEnforcer.
type Enforcer struct {
	se *casbin.SyncedEnforcer
}

var _ gitops.Authorizer = (*Enforcer)(nil)

// policyActions are the actions a policy rule can grant. ActionHelp is not
// among them: it is always allowed.
var policyActions = []gitops.Action{
	gitops.ActionRollback,
	gitops.ActionRestart,
	gitops.ActionPromote,
	gitops.ActionStatus,
	gitops.ActionHistory,
}

// NewEnforcer loads a casbin model and a policy file. An empty modelPath
// selects DefaultModel. The policy file is CSV, one rule per line; blank lines
// and lines starting with '#' are ignored. Every problem is reported with the
// file (and, for the policy, the line) it was found in: a file that cannot be
// read (the error wraps the os error, so errors.Is(err, fs.ErrNotExist)
// works), a model without the five request fields or a domain role
// definition, a matcher casbin cannot evaluate, and policy lines with an
// unknown type, the wrong number of fields, an empty field, a malformed glob,
// or an action pattern that matches no shipbot action.
func NewEnforcer(modelPath, policyPath string) (*Enforcer, error) {
	modelName := modelPath
	modelText := DefaultModel
	if modelPath == "" {
		modelName = "embedded default model"
	} else {
		b, err := os.ReadFile(modelPath)
		if err != nil {
			return nil, fmt.Errorf("policy: read model: %w", err)
		}
		modelText = string(b)
	}
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("policy: invalid model %s: %w", modelName, err)
	}
	if err := checkModel(m); err != nil {
		return nil, fmt.Errorf("policy: invalid model %s: %w", modelName, err)
	}

	if policyPath == "" {
		return nil, errors.New("policy: no policy file given")
	}

	// No adapter yet: the domain matching function must be in place before
	// the role links are built, so the policy is loaded afterwards.
	se, err := casbin.NewSyncedEnforcer(m, false)
	if err != nil {
		return nil, fmt.Errorf("policy: invalid model %s: %w", modelName, err)
	}
	// "g, alice, team-checkout, *": the domain of a role line is a glob too.
	se.AddNamedDomainMatchingFunc("g", "globMatch", globMatch)
	se.SetAdapter(&fileAdapter{path: policyPath})
	if err := se.LoadPolicy(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}

	// casbin compiles the matcher on first use; do it now so a bad matcher
	// (unknown function, syntax error) fails at startup, not on a request.
	// The probe values contain a NUL, which no policy line may contain.
	probe := "\x00shipbot-probe"
	if _, err := se.Enforce(probe, probe, probe, probe, probe); err != nil {
		return nil, fmt.Errorf("policy: invalid model %s: matcher: %w", modelName, err)
	}
	return &Enforcer{se: se}, nil
}

// checkModel verifies the model has the shape Authorize relies on.
func checkModel(m model.Model) error {
	r, ok := m["r"]["r"]
	if !ok || len(r.Tokens) != 5 {
		return errors.New("request_definition must be: r = sub, dom, obj, act, chan")
	}
	p, ok := m["p"]["p"]
	if !ok || len(p.Tokens) < 5 {
		return errors.New("policy_definition must start with: p = sub, dom, obj, act, chan")
	}
	g, ok := m["g"]["g"]
	if !ok || len(g.Tokens) != 3 || len(g.ParamsTokens) != 0 {
		return errors.New("role_definition must be: g = _, _, _ (user, group, environment)")
	}
	if _, ok := m["m"]["m"]; !ok {
		return errors.New("matchers must define m")
	}
	return nil
}

// globMatch reports whether name matches pattern, with casbin's globMatch
// semantics. A malformed pattern matches nothing (the loader rejects them).
func globMatch(name, pattern string) bool {
	ok, err := util.GlobMatch(name, pattern)
	return err == nil && ok
}

// Authorize answers whether q.Subject.User may do q.Action on q.App in q.Env
// (for promote, q.Env is the target environment) from q.Subject.Channel.
// q.Cluster is not part of the policy. ActionHelp is always allowed. A
// request with an empty user, app or environment, or an action the policy
// does not know, is denied. A denial is a Decision, not an error; errors are
// reserved for an evaluation failure or a cancelled ctx.
func (e *Enforcer) Authorize(ctx context.Context, q gitops.AuthzQuery) (gitops.Decision, error) {
	if err := ctx.Err(); err != nil {
		return gitops.Decision{}, err
	}
	if q.Action == gitops.ActionHelp {
		return gitops.Decision{Allowed: true, Reason: "help is always allowed"}, nil
	}
	user, env, app, act, ch := q.Subject.User, q.Env, q.App, string(q.Action), q.Subject.Channel
	switch {
	case user == "":
		return deny("cannot tell who is asking: the request has no user"), nil
	case !slices.Contains(policyActions, q.Action):
		return deny(fmt.Sprintf("the policy knows no action %q", display(act))), nil
	case app == "" || env == "":
		return deny(fmt.Sprintf("cannot authorize %s without both an app and an environment", display(act))), nil
	}

	ok, explain, err := e.se.EnforceEx(user, env, app, act, ch)
	if err != nil {
		return gitops.Decision{}, fmt.Errorf("policy: evaluating %s %s %s for %s: %w", act, app, env, user, err)
	}
	if ok {
		d := gitops.Decision{Allowed: true, Rule: formatRule("p", explain)}
		if len(explain) > 0 && explain[0] != user {
			d.Reason = fmt.Sprintf("%s is in %s in %s", display(user), display(explain[0]), display(env))
		}
		return d, nil
	}

	groups, err := e.se.GetImplicitRolesForUser(user, env)
	if err != nil {
		return gitops.Decision{}, fmt.Errorf("policy: groups of %s in %s: %w", user, env, err)
	}
	return deny(denyReason(user, env, app, act, ch, groups)), nil
}

func deny(reason string) gitops.Decision {
	return gitops.Decision{Allowed: false, Reason: reason}
}

// denyReason tells the chat user which rule is missing.
func denyReason(user, env, app, act, ch string, groups []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "no policy rule lets %s %s %s in %s", display(user), display(act), display(app), display(env))
	if ch != "" {
		fmt.Fprintf(&b, " (from channel %s)", display(ch))
	}
	if len(groups) > 0 {
		slices.Sort(groups)
		groups = slices.Compact(groups)
		shown := make([]string, len(groups))
		for i, g := range groups {
			shown[i] = display(g)
		}
		noun, those := "group", "that group"
		if len(groups) > 1 {
			noun, those = "groups", "those groups"
		}
		fmt.Fprintf(&b, "; %s is in %s %s in %s, and no rule of %s covers this either",
			display(user), noun, strings.Join(shown, ", "), display(env), those)
	}
	// Only suggest a line an admin can paste safely: every value a literal
	// name, so the suggestion cannot grant more than what was asked.
	if literalName(user) && literalName(env) && literalName(app) && literalName(act) {
		fmt.Fprintf(&b, "; an admin can add: p, %s, %s, %s, %s, *", user, env, app, act)
	}
	return b.String()
}

// display makes a request value safe to show in one chat line.
func display(s string) string {
	return normalize(s, 64)
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
