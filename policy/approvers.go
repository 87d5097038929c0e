package policy

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/shipbot/shipbot/gitops"
)

var _ gitops.ApproverPolicy = (*Enforcer)(nil)

// MayApprove decides whether q.Subject may approve a change of q.App in
// q.Env that needs r: the policy allows them the approve action there (deny
// lines win, chat groups take part and unknown groups fail closed, as in
// Authorize) and they are in r.Group ("" or "*": any group), through g lines
// or a chat group. Approvals given on a forge have no channel: only approve
// lines whose channel pattern matches any channel (*) count for them.
func (e *Enforcer) MayApprove(ctx context.Context, q gitops.AuthzQuery, r gitops.Review) (gitops.Decision, error) {
	q.Action = gitops.ActionApprove
	d, err := e.Authorize(ctx, q)
	if err != nil || !d.Allowed {
		if err == nil {
			d.Reason = fmt.Sprintf("%s may not approve changes of %s in %s: %s", display(q.Subject.User), display(q.App), display(q.Env), d.Reason)
		}
		return d, err
	}
	if r.Group == "" || r.Group == "*" {
		return d, nil
	}
	st := e.cur.Load()
	groups, err := st.allGroups(q.Subject, q.Env)
	if err != nil {
		return gitops.Decision{}, err
	}
	if !slices.Contains(groups, r.Group) {
		return deny(fmt.Sprintf("%s may approve in %s but is not in %s, whose approvals this change needs", display(q.Subject.User), display(q.Env), display(r.Group))), nil
	}
	return d, nil
}

// Approvers lists the users the policy names who may approve a change of
// app in env that needs r, the requester excluded, sorted.
func (e *Enforcer) Approvers(ctx context.Context, env, app string, r gitops.Review, requester string) ([]string, error) {
	st := e.cur.Load()
	var users []string
	for name := range st.pol.names {
		if name == "*" || name == requester || st.pol.groups[name] || ExternalGroup(name) {
			continue
		}
		users = append(users, name)
	}
	sort.Strings(users)
	var out []string
	for _, u := range users {
		d, err := e.MayApprove(ctx, gitops.AuthzQuery{Subject: gitops.Subject{User: u}, Env: env, App: app}, r)
		if err != nil {
			return nil, err
		}
		if d.Allowed {
			out = append(out, u)
		}
	}
	return out, nil
}

// ReviewProblems checks every review line against the apps and
// environments shipbot manages (apps: app -> its environments): a line
// that applies somewhere with fewer possible approvers than approvals can
// never be satisfied (errs); one with exactly as many leaves a requester
// who is one of them short (warnings).
func (e *Enforcer) ReviewProblems(ctx context.Context, apps map[string][]string) (errs, warnings []string, err error) {
	st := e.cur.Load()
	names := make([]string, 0, len(apps))
	for a := range apps {
		names = append(names, a)
	}
	sort.Strings(names)
	for _, r := range st.pol.reviews {
		if r.approvals <= 0 {
			continue
		}
		review := gitops.Review{Approvals: r.approvals, Group: r.group}
		for _, app := range names {
			if !appMatch(app, r.app) {
				continue
			}
			for _, env := range apps[app] {
				if !globMatch(env, r.env) {
					continue
				}
				who, err := e.Approvers(ctx, env, app, review, "")
				if err != nil {
					return nil, nil, err
				}
				where := fmt.Sprintf("%s: %s: for %s in %s", r.src.Pos(), displayRule(r.src.Text), app, env)
				switch {
				case len(who) < r.approvals:
					errs = append(errs, fmt.Sprintf("%s it needs %d approval%s from %s but only %d user%s may approve (%s): such a change can never merge; add approvers (p lines with approve, g lines into %s) or lower the count",
						where, r.approvals, plural(r.approvals), reviewGroup(r.group), len(who), plural(len(who)), strings.Join(who, ", "), reviewGroup(r.group)))
				case len(who) == r.approvals:
					warnings = append(warnings, fmt.Sprintf("%s exactly %d user%s may approve (%s): when one of them asks, the change can never merge",
						where, len(who), plural(len(who)), strings.Join(who, ", ")))
				}
			}
		}
	}
	return errs, warnings, nil
}

// HasReviews reports whether any review line asks for approvals.
func (e *Enforcer) HasReviews() bool {
	for _, r := range e.cur.Load().pol.reviews {
		if r.approvals > 0 {
			return true
		}
	}
	return false
}
