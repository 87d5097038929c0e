package policy

import (
	"context"
	"fmt"
	"slices"
	"sort"

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
