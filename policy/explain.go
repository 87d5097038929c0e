package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/gitops"
)

// Explanation is a decision and the policy lines that produced it.
type Explanation struct {
	Query    gitops.AuthzQuery
	Decision gitops.Decision
	// Err is set when the policy could not be evaluated; Decision is then
	// a denial.
	Err error
	// Groups are the user's groups in the environment, each with the g
	// lines that make the user a member.
	Groups []Membership
	// Allow are the allow lines matching the request, in file order. When
	// the request is allowed, Allow[0] is the rule that allowed it.
	Allow []RuleMatch
	// Deny are the deny lines matching the request, in file order. Any one
	// of them denies; Deny[0] is the one the decision names.
	Deny []RuleMatch
	// Review and Justify are the review and justify lines matching an
	// allowed request, in file order; the first one of each applies, the
	// others are shadowed by it.
	Review  []RuleMatch
	Justify []RuleMatch
	// Missing is, for a request no rule allows, a line that would allow
	// exactly it (empty when a deny line matched or when the request holds
	// values no line should be suggested for).
	Missing string
	// Evaluated is false when the request never reached the rules (help, no
	// user, unknown action, no app or environment).
	Evaluated bool
	// Approvers, for an allowed request that needs review, are the users
	// who may approve it (the requester not among them), as
	// Enforcer.Approvers lists them.
	Approvers []string
	// ChatApprovers, for such a request, are the chat platform's groups
	// whose members may approve it too (Enforcer.ChatApprovers).
	ChatApprovers []string
}

// RuleMatch is one policy line that matched.
type RuleMatch struct {
	Pos  string // "policy.csv:12"
	Rule string // the line, e.g. "p, team-checkout, *, checkout, rollback, *"
	// Via is how the line's subject matched the user: "" for the user
	// itself, "*" for a line for anyone, else the group the user is in.
	Via string
}

// Membership is one group of the user and the g lines, from the user to
// the group, that make the user a member.
type Membership struct {
	Group string
	Path  []RuleMatch
}

// Explain evaluates q like Authorize and tells which rules produced the
// decision: the matching allow and deny lines, the group memberships, the
// review and justify lines, or the line that is missing.
func (e *Enforcer) Explain(q gitops.AuthzQuery) Explanation {
	st := e.cur.Load()
	x := st.explain(q)
	if r := x.Decision.Review; x.Decision.Allowed && r.Approvals > 0 {
		who, err := st.approvers(q.Env, q.App, r, q.Subject.User)
		if err == nil {
			x.Approvers = who
			x.ChatApprovers, err = st.chatApprovers(q.Env, q.App, r)
		}
		if err != nil && x.Err == nil {
			x.Err = err
		}
	}
	return x
}

// Unmergeable says, for an allowed request that needs more approvals than
// users besides the requester may give, that the change can never merge,
// e.g. "only 1 of the 2 approvals can ever be given: bob is the only other
// member of sre allowed to approve; add approvers or lower the count".
// It is "" otherwise.
func (x Explanation) Unmergeable() string {
	r := x.Decision.Review
	n := len(x.Approvers)
	if !x.Decision.Allowed || r.Approvals <= 0 || x.Err != nil || n >= r.Approvals {
		return ""
	}
	var b strings.Builder
	switch {
	case n == 0 && r.Approvals == 1:
		b.WriteString("the one approval it needs can never be given: ")
	case n == 0:
		fmt.Fprintf(&b, "none of the %d approvals can ever be given: ", r.Approvals)
	default:
		fmt.Fprintf(&b, "only %d of the %d approvals can ever be given: ", n, r.Approvals)
	}
	who := displayAnd(x.Approvers)
	switch {
	case n == 0 && anyGroup(r.Group):
		b.WriteString("nobody else is allowed to approve")
	case n == 0:
		fmt.Fprintf(&b, "nobody else in %s is allowed to approve", display(r.Group))
	case n == 1 && anyGroup(r.Group):
		fmt.Fprintf(&b, "%s is the only other user the policy lets approve", who)
	case n == 1:
		fmt.Fprintf(&b, "%s is the only other member of %s allowed to approve", who, display(r.Group))
	case anyGroup(r.Group):
		fmt.Fprintf(&b, "%s are the only other users the policy lets approve", who)
	default:
		fmt.Fprintf(&b, "%s are the only other members of %s allowed to approve", who, display(r.Group))
	}
	if len(x.ChatApprovers) > 0 {
		fmt.Fprintf(&b, " (members of the chat group %s may approve too, but the policy can't tell who they are, so they are not counted)", displayList(x.ChatApprovers))
	}
	b.WriteString("; add approvers or lower the count")
	return b.String()
}

// displayAnd is "bob", "bob and carol", "bob, carol and dave".
func displayAnd(items []string) string {
	if len(items) < 2 {
		return displayList(items)
	}
	return displayList(items[:len(items)-1]) + " and " + display(items[len(items)-1])
}

func (st *enforcerState) explain(q gitops.AuthzQuery) Explanation {
	x := Explanation{Query: q}
	ev, err := st.evaluate(q)
	if err != nil {
		x.Err = err
		x.Decision = deny(fmt.Sprintf("the policy could not be evaluated: %v", err))
		return x
	}
	x.Decision = ev.d
	if !ev.valid {
		return x
	}
	x.Evaluated = true
	user, env, app, act := q.Subject.User, q.Env, q.App, string(q.Action)

	matched, err := st.matches(q)
	if err != nil {
		x.Err = err
		return x
	}
	for _, p := range matched {
		m := RuleMatch{Pos: p.src.Pos(), Rule: p.src.Text, Via: matchedVia(p.sub, user)}
		if p.effect == effectDeny {
			x.Deny = append(x.Deny, m)
		} else {
			x.Allow = append(x.Allow, m)
		}
	}
	paths := st.membershipPaths(q.Subject, env)
	for _, g := range ev.groups {
		x.Groups = append(x.Groups, Membership{Group: g, Path: paths[g]})
	}
	if ev.d.Allowed {
		for i := range st.pol.reviews {
			if r := &st.pol.reviews[i]; st.reviewMatches(r, user, env, app, act, ev.groups) {
				x.Review = append(x.Review, RuleMatch{Pos: r.src.Pos(), Rule: r.src.Text, Via: matchedVia(r.sub, user)})
			}
		}
		for i := range st.pol.justifies {
			if j := &st.pol.justifies[i]; scopeMatches(j.env, j.app, j.act, env, app, act) {
				x.Justify = append(x.Justify, RuleMatch{Pos: j.src.Pos(), Rule: j.src.Text})
			}
		}
	} else if len(x.Deny) == 0 {
		x.Missing = suggestion(user, env, app, act)
	}
	return x
}

func matchedVia(sub, user string) string {
	if sub == user {
		return ""
	}
	return sub
}

// matches returns every p line whose matcher matches q for the user or one
// of the chat platform's groups, in file order, by evaluating the model's own
// matcher with a recording function around it.
func (st *enforcerState) matches(q gitops.AuthzQuery) ([]permRule, error) {
	st.explainMu.Lock()
	defer st.explainMu.Unlock()
	var out []permRule
	seen := map[int]bool{} // line numbers
	for _, sub := range st.subjects(q.Subject) {
		st.recorded = nil
		_, err := st.se.EnforceWithMatcher(st.explainMatcher,
			sub, q.Env, q.App, string(q.Action), q.Subject.Channel)
		rec := st.recorded
		st.recorded = nil
		if err != nil {
			return nil, fmt.Errorf("policy: explaining %s %s %s for %s: %w", q.Action, q.App, q.Env, sub, err)
		}
		for _, fields := range rec {
			if p, ok := st.pol.perm(fields); ok && !seen[p.src.Line] {
				seen[p.src.Line] = true
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b permRule) int { return a.src.Line - b.src.Line })
	return out, nil
}

// membershipPaths finds, for each group s.User is in in env, the shortest
// chain of g lines from the user to the group. A chat platform's group
// starts its own chain, with a first step that says where it came from.
func (st *enforcerState) membershipPaths(s gitops.Subject, env string) map[string][]RuleMatch {
	paths := map[string][]RuleMatch{}
	type node struct {
		name string
		path []RuleMatch
	}
	queue := []node{{name: s.User}}
	seen := map[string]bool{s.User: true}
	for _, sub := range st.subjects(s)[1:] {
		p := []RuleMatch{{Pos: "chat", Rule: display(s.User) + " is in the chat group " + display(sub)}}
		paths[sub], seen[sub] = p, true
		queue = append(queue, node{name: sub, path: p})
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, r := range st.pol.roles {
			if r.user != n.name || seen[r.group] || !globMatch(env, r.env) {
				continue
			}
			seen[r.group] = true
			p := append(slices.Clone(n.path), RuleMatch{Pos: r.src.Pos(), Rule: r.src.Text})
			paths[r.group] = p
			queue = append(queue, node{name: r.group, path: p})
		}
	}
	return paths
}

// String renders the explanation for a terminal, one fact per line, e.g.
//
//	request:   alice rollback checkout in prod from #ops
//	decision:  allowed
//	reason:    alice is in team-checkout in prod
//	groups:    team-checkout  (policy.csv:16: g, alice, team-checkout, *)
//	allow:     policy.csv:27: p, team-checkout, *, checkout, rollback, *  (as team-checkout)  <- decides
//	deny:      none matches
//	review:    none: the change lands directly
//	justify:   required, of kind pagerduty-incident or jira-issue  (policy.csv:45: justify, prod, *, rollback, pagerduty-incident|jira-issue)
func (x Explanation) String() string {
	var b strings.Builder
	row := func(label, format string, args ...any) {
		if label != "" {
			label += ":"
		}
		fmt.Fprintf(&b, "%-10s %s\n", label, fmt.Sprintf(format, args...))
	}
	q := x.Query
	req := explainValue(q.Subject.User) + " " + explainValue(string(q.Action)) + " " + explainValue(q.App) + " in " + explainValue(q.Env)
	if q.App == "" && slices.Contains(envWideActions, q.Action) {
		req = explainValue(q.Subject.User) + " " + explainValue(string(q.Action)) + " " + explainValue(q.Env)
	}
	if q.Subject.Channel != "" {
		req += " from " + display(q.Subject.Channel)
	} else {
		req += " (no channel)"
	}
	row("request", "%s", req)
	d := x.Decision
	switch {
	case d.Allowed && d.BreakGlass:
		row("decision", "allowed, BREAK-GLASS")
	case d.Allowed && d.Review.Approvals > 0:
		row("decision", "allowed after %d approval%s from %s (the requester does not count)", d.Review.Approvals, plural(d.Review.Approvals), reviewGroup(d.Review.Group))
	case d.Allowed:
		row("decision", "allowed")
	default:
		row("decision", "DENIED")
	}
	if d.Reason != "" {
		row("reason", "%s", d.Reason)
	}
	if x.Err != nil {
		row("error", "%s", displayRule(x.Err.Error()))
	}
	if u := x.Unmergeable(); u != "" {
		row("WARNING", "THIS CHANGE CAN NEVER MERGE: %s", u)
	}
	if !x.Evaluated {
		return b.String()
	}

	if len(x.Groups) == 0 {
		row("groups", "none in %s", display(q.Env))
	}
	for i, g := range x.Groups {
		path := make([]string, len(g.Path))
		for j, p := range g.Path {
			path[j] = p.String()
		}
		row(firstOnly(i, "groups"), "%s  (%s)", display(g.Group), strings.Join(path, "; "))
	}

	if len(x.Allow) == 0 {
		row("allow", "none matches: denied by default")
	}
	for i, m := range x.Allow {
		mark := ""
		if i == 0 && d.Allowed {
			mark = "  <- decides"
		}
		row(firstOnly(i, "allow"), "%s%s%s", m, viaText(m.Via), mark)
	}
	if len(x.Deny) == 0 {
		row("deny", "none matches")
	}
	for i, m := range x.Deny {
		mark := ""
		if i == 0 {
			mark = "  <- denies (deny wins)"
		}
		row(firstOnly(i, "deny"), "%s%s%s", m, viaText(m.Via), mark)
	}
	if x.Missing != "" {
		row("missing", "a rule such as: %s", x.Missing)
	}
	if !d.Allowed {
		return b.String()
	}

	switch r := d.Review; {
	case r.Approvals == 0 && len(x.Review) == 0:
		row("review", "none: the change lands directly")
	case r.Approvals == 0:
		row("review", "none: the change lands directly  (%s)", x.Review[0])
	default:
		from := "anyone allowed to approve"
		if r.Group != "" {
			from = "group " + display(r.Group)
		}
		row("review", "%d approval(s) from %s, the requester never counts  (%s)", r.Approvals, from, x.Review[0])
	}
	if r := d.Review; r.Approvals > 0 {
		who := "nobody besides the requester"
		if len(x.Approvers) > 0 {
			who = displayList(x.Approvers)
		}
		if len(x.ChatApprovers) > 0 {
			who += ", and members of the chat group " + displayList(x.ChatApprovers)
		}
		row("", "who may approve: %s", who)
	}
	for _, m := range x.Review[min(1, len(x.Review)):] {
		row("", "shadowed: %s", m)
	}
	switch j := d.Justification; {
	case !j.Required && len(x.Justify) == 0:
		row("justify", "not required")
	case !j.Required:
		row("justify", "not required  (%s)", x.Justify[0])
	case len(j.Kinds) == 0:
		row("justify", "required, of any kind  (%s)", x.Justify[0])
	default:
		row("justify", "required, of kind %s  (%s)", strings.Join(j.Kinds, " or "), x.Justify[0])
	}
	for _, m := range x.Justify[min(1, len(x.Justify)):] {
		row("", "shadowed: %s", m)
	}
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func reviewGroup(g string) string {
	if anyGroup(g) {
		return "anyone the policy lets approve"
	}
	return display(g)
}

// String is "file:line: rule".
func (m RuleMatch) String() string { return m.Pos + ": " + displayRule(m.Rule) }

func firstOnly(i int, name string) string {
	if i == 0 {
		return name
	}
	return ""
}

func viaText(v string) string {
	switch v {
	case "":
		return ""
	case "*":
		return "  (for anyone)"
	}
	return "  (as " + display(v) + ")"
}

func explainValue(s string) string {
	if s == "" {
		return "(none)"
	}
	return display(s)
}
