package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/gitops"
)

var _ gitops.ApproverPolicy = (*Enforcer)(nil)

// MayApprove decides whether q.Subject may approve (count towards) a change
// of q.App in q.Env that needs r. Two things must hold:
//
//   - the policy allows q.Subject the approve action on q.App in q.Env from
//     q.Subject.Channel, evaluated exactly as Authorize evaluates any
//     request: deny lines win, the chat platform's groups in
//     q.Subject.Groups take part, and unknown chat groups fail closed when a
//     group's deny line could apply. q.Action is ignored: it is always
//     approve. An approval given on a forge has no channel, so only approve
//     lines whose channel pattern matches the empty channel (such as *)
//     count for it;
//   - when r.Group is neither "" nor "*", the subject is in r.Group in
//     q.Env: through g lines, through a chat group that g lines put in
//     r.Group, or by being in the chat group r.Group itself.
//
// The requester's own approval is the core's business: MayApprove does not
// know who asked. An allowed Decision names the allow line (Rule) and says
// why it applies (Reason); a refusal's Reason is written for the chat user
// and says what is missing. Review and Justification are never set: they
// belong to the change, not to its approval.
func (e *Enforcer) MayApprove(ctx context.Context, q gitops.AuthzQuery, r gitops.Review) (gitops.Decision, error) {
	if err := ctx.Err(); err != nil {
		return gitops.Decision{}, err
	}
	return e.cur.Load().mayApprove(q, r)
}

// approveCheck is the outcome of the approve action and of the review
// group, before anything is worded.
type approveCheck struct {
	ev      evaluation
	inGroup bool
}

func (c approveCheck) allowed() bool { return c.ev.d.Allowed && c.inGroup }

func (st *enforcerState) checkApprove(q gitops.AuthzQuery, r gitops.Review) (approveCheck, error) {
	q.Action = gitops.ActionApprove
	ev, err := st.evaluate(q)
	if err != nil {
		return approveCheck{}, err
	}
	c := approveCheck{ev: ev}
	if ev.valid {
		c.inGroup = inReviewGroup(q.Subject, r.Group, ev.groups)
	}
	return c, nil
}

// inReviewGroup reports whether s, whose groups in the environment are
// groups (enforcerState.allGroups), is in the review group: any group for ""
// and "*", else a group of theirs, or a chat group the platform vouches for
// that is named like one (PLATFORM:NAME), whether or not the policy names it.
func inReviewGroup(s gitops.Subject, group string, groups []string) bool {
	if anyGroup(group) || slices.Contains(groups, group) {
		return true
	}
	return ExternalGroup(group) && slices.Contains(s.Groups, group)
}

func anyGroup(g string) bool { return g == "" || g == "*" }

func (st *enforcerState) mayApprove(q gitops.AuthzQuery, r gitops.Review) (gitops.Decision, error) {
	q.Action = gitops.ActionApprove
	c, err := st.checkApprove(q, r)
	if err != nil {
		return gitops.Decision{}, err
	}
	s := q.Subject
	user, env, app := display(s.User), display(q.Env), display(q.App)
	head := fmt.Sprintf("%s may not approve changes of %s in %s", user, app, env)
	ev := c.ev
	if !ev.valid {
		return deny(head + ": " + ev.d.Reason), nil
	}
	notInGroup := "" // "is not in sre, whose approvals this change needs"
	if !c.inGroup {
		notInGroup = fmt.Sprintf("is not in %s, whose approvals this change needs", display(r.Group))
		if s.GroupsUnknown {
			notInGroup += fmt.Sprintf(" (shipbot could not read %s's groups from the chat platform just now; try again in a minute)", user)
		}
	}

	if !ev.d.Allowed {
		var reason string
		switch {
		case ev.failClosed:
			reason = head + ": " + ev.d.Reason
		case ev.decisive != nil && ev.decisive.effect == effectDeny:
			reason = fmt.Sprintf("%s: a deny rule forbids it: %s%s", head, displayRule(ev.decisive.src.Text), st.denyVia(s, q.Env, ev.decisive.sub))
		default:
			if elsewhere := st.channelsAllowing(q, s.Channel); len(elsewhere) > 0 {
				from := "without a channel (as on a forge, where only approve lines for channel * count)"
				if s.Channel != "" {
					from = "from " + display(s.Channel)
				}
				reason = fmt.Sprintf("%s %s: the policy lets %s approve there only from %s", head, from, user, displayList(elsewhere))
			} else {
				reason = fmt.Sprintf("%s: no rule allows %s to approve %s in %s", head, user, app, env)
				if sug := suggestion(s.User, q.Env, q.App, string(gitops.ActionApprove)); sug != "" {
					reason += fmt.Sprintf(" (add e.g. %q or a group of %s's)", sug, user)
				}
			}
		}
		if notInGroup != "" && !ev.failClosed {
			reason += ", and " + user + " " + notInGroup
		}
		return deny(reason), nil
	}
	if !c.inGroup {
		return deny(fmt.Sprintf("%s may approve in %s but %s", user, env, notInGroup)), nil
	}

	why := ev.d.Reason
	if why == "" {
		why = "the rule names " + user
	}
	if !anyGroup(r.Group) {
		if m := st.membership(s, q.Env, r.Group); m != why {
			why += "; " + m
		}
	}
	return gitops.Decision{Allowed: true, Rule: ev.d.Rule, Reason: why}, nil
}

// denyVia says how a rule's subject reached s: "" for s itself or anyone.
func (st *enforcerState) denyVia(s gitops.Subject, env, sub string) string {
	switch {
	case sub == s.User || sub == "*":
		return ""
	case slices.Contains(s.Groups, sub):
		return fmt.Sprintf(" (%s is in the chat group %s)", display(s.User), display(sub))
	}
	return fmt.Sprintf(" (%s is in %s in %s)", display(s.User), display(sub), display(env))
}

// membership says how s is in group in env, e.g. "bob is in sre in prod"
// or "zoe is in sre in prod, through the chat group slack:sre-oncall".
func (st *enforcerState) membership(s gitops.Subject, env, group string) string {
	user := display(s.User)
	if mine, err := st.groups(s.User, env); err == nil && slices.Contains(mine, group) {
		return fmt.Sprintf("%s is in %s in %s", user, display(group), display(env))
	}
	for _, sub := range st.subjects(s)[1:] {
		if sub == group {
			return fmt.Sprintf("%s is in the chat group %s", user, display(group))
		}
		if theirs, err := st.groups(sub, env); err == nil && slices.Contains(theirs, group) {
			return fmt.Sprintf("%s is in %s in %s, through the chat group %s", user, display(group), display(env), display(sub))
		}
	}
	return fmt.Sprintf("%s is in the chat group %s", user, display(group))
}

// channelsAllowing lists the channel patterns of approve lines, other than
// except, from which q.Subject would be allowed the approve action.
func (st *enforcerState) channelsAllowing(q gitops.AuthzQuery, except string) []string {
	var out []string
	for _, ch := range st.approveChannels() {
		if ch.sample == except {
			continue
		}
		q.Subject.Channel = ch.sample
		if ev, err := st.evaluate(q); err == nil && ev.d.Allowed {
			out = append(out, ch.pattern)
		}
	}
	return out
}

// approveChannel is a channel an approval may come from: the pattern of an
// approve line and a channel name that matches it.
type approveChannel struct{ pattern, sample string }

// approveChannels are the channels Approvers tries for each user: no
// channel (a review on a forge: only lines whose channel pattern matches
// the empty channel, such as *, count), then one channel matching each other
// channel pattern of the allow lines that grant approve. A pattern no
// channel name is derived from (a negated character class) is left out.
func (st *enforcerState) approveChannels() []approveChannel {
	out := []approveChannel{{pattern: "*", sample: ""}}
	for _, p := range st.pol.perms {
		pat := p.stored[4]
		if p.effect == effectDeny || !globMatch(string(gitops.ActionApprove), p.stored[3]) || globMatch("", pat) {
			continue
		}
		if slices.ContainsFunc(out, func(c approveChannel) bool { return c.pattern == pat }) {
			continue
		}
		if s, ok := globSample(pat); ok && globMatch(s, pat) {
			out = append(out, approveChannel{pattern: pat, sample: s})
		}
	}
	return out
}

// globSample returns a name matching the glob pattern: * and ** match
// nothing, ? the letter x, a class its first character, {a,b} its first
// alternative. ok is false for a negated class; the caller checks the
// result against the pattern.
func globSample(pat string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '\\':
			if i+1 < len(pat) {
				i++
				b.WriteByte(pat[i])
			}
		case '*':
		case '?':
			b.WriteByte('x')
		case '[':
			if i+1 >= len(pat) || pat[i+1] == '!' || pat[i+1] == '^' {
				return "", false
			}
			j := strings.IndexByte(pat[i+1:], ']')
			if j < 0 {
				return "", false
			}
			b.WriteByte(pat[i+1])
			i += j + 1
		case '{':
			depth, end, alt := 0, -1, -1
			for j := i + 1; j < len(pat) && end < 0; j++ {
				switch pat[j] {
				case '\\':
					j++
				case '{':
					depth++
				case '}':
					if depth == 0 {
						end = j
					}
					depth--
				case ',':
					if depth == 0 && alt < 0 {
						alt = j
					}
				}
			}
			if end < 0 {
				return "", false
			}
			if alt < 0 {
				alt = end
			}
			s, ok := globSample(pat[i+1 : alt])
			if !ok {
				return "", false
			}
			b.WriteString(s)
			i = end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// mayApproveSomewhere reports whether s may approve from some channel
// approveChannels lists.
func (st *enforcerState) mayApproveSomewhere(s gitops.Subject, env, app string, r gitops.Review, chans []approveChannel) (bool, error) {
	for _, ch := range chans {
		s.Channel = ch.sample
		c, err := st.checkApprove(gitops.AuthzQuery{Subject: s, Env: env, App: app}, r)
		if err != nil {
			return false, err
		}
		if c.allowed() {
			return true, nil
		}
	}
	return false, nil
}

// Approvers lists the users the policy names who may approve a change of
// app in env that needs r, the requester excluded, sorted: every user
// subject of a g line and of a p line (not a group, not a chat platform's
// PLATFORM:NAME group, not *) for whom MayApprove allows it.
//
// Channels: a user counts when they may approve from somewhere, either
// without a channel (on a forge: approve lines whose channel pattern is *)
// or from a chat channel that some approve line names. A user whose approve
// line is restricted to #ops is listed, since an approval from #ops counts;
// MayApprove still refuses their approval anywhere else. A quorum is
// therefore never declared impossible because an approver must use a
// particular channel.
//
// Members of chat groups (slack:sre-oncall) are not listed: the policy
// does not know who they are (see ChatApprovers).
func (e *Enforcer) Approvers(ctx context.Context, env, app string, r gitops.Review, requester string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return e.cur.Load().approvers(env, app, r, requester)
}

func (st *enforcerState) approvers(env, app string, r gitops.Review, requester string) ([]string, error) {
	chans := st.approveChannels()
	var out []string
	for _, u := range st.pol.users() {
		if u == requester {
			continue
		}
		ok, err := st.mayApproveSomewhere(gitops.Subject{User: u}, env, app, r, chans)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, u)
		}
	}
	return out, nil
}

// users are the users the policy names, sorted: the user subjects of g and
// p lines.
func (pol *parsedPolicy) users() []string {
	var users []string
	add := func(name string) {
		if name != "*" && !pol.groups[name] && !ExternalGroup(name) {
			users = append(users, name)
		}
	}
	for _, r := range pol.roles {
		add(r.user)
	}
	for _, p := range pol.perms {
		add(p.sub)
	}
	slices.Sort(users)
	return slices.Compact(users)
}

// chatMember stands for an unknown member of a chat group: no policy line
// can name it (policy fields may not hold control characters).
const chatMember = "\x00chat-member"

// ChatApprovers lists the chat platform's groups (PLATFORM:NAME) whose
// members may approve a change of app in env that needs r, sorted: the
// policy can't tell who or how many they are, so Approvers leaves them out.
func (e *Enforcer) ChatApprovers(env, app string, r gitops.Review) ([]string, error) {
	return e.cur.Load().chatApprovers(env, app, r)
}

func (st *enforcerState) chatApprovers(env, app string, r gitops.Review) ([]string, error) {
	var groups []string
	for name := range st.pol.names {
		if ExternalGroup(name) {
			groups = append(groups, name)
		}
	}
	if ExternalGroup(r.Group) && !slices.Contains(groups, r.Group) {
		groups = append(groups, r.Group)
	}
	slices.Sort(groups)
	chans := st.approveChannels()
	var out []string
	for _, g := range groups {
		ok, err := st.mayApproveSomewhere(gitops.Subject{User: chatMember, Groups: []string{g}}, env, app, r, chans)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, g)
		}
	}
	return out, nil
}

// ReviewProblems checks every review line against the apps and environments
// shipbot manages (apps: app name -> the names of its environments). For
// each place a line applies to (its app and env patterns match) it counts
// the users who may approve there (Approvers; for a line whose subject is
// one user, that user never counts):
//
//   - fewer than the approvals the line needs: the change can never merge,
//     an error (unless members of a chat group may approve too: the policy
//     can't count them, a warning);
//   - exactly as many: a requester who is one of them leaves too few, a
//     warning.
//
// Each message starts with the line's position and text, names the apps
// and environments, and says how to fix it.
func (e *Enforcer) ReviewProblems(ctx context.Context, apps map[string][]string) (errs, warnings []string, err error) {
	st := e.cur.Load()
	names := make([]string, 0, len(apps))
	for a := range apps {
		names = append(names, a)
	}
	slices.Sort(names)
	for _, rl := range st.pol.reviews {
		if rl.approvals <= 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		r := gitops.Review{Approvals: rl.approvals, Group: rl.group}
		requester := ""
		if rl.sub != "*" && !st.pol.groups[rl.sub] && !ExternalGroup(rl.sub) {
			requester = rl.sub // the line applies to this user's requests only
		}
		// One message per kind of problem, environment and approvers,
		// naming every app it concerns.
		type place struct {
			env, who, chat string
			kind           int
		}
		const (
			impossible = iota
			uncounted
			tight
		)
		var order []place
		where := map[place][]string{}
		for _, app := range names {
			if !appMatch(app, rl.app) {
				continue
			}
			envs := slices.Clone(apps[app])
			slices.Sort(envs)
			for _, env := range slices.Compact(envs) {
				if !globMatch(env, rl.env) {
					continue
				}
				who, err := st.approvers(env, app, r, requester)
				if err != nil {
					return nil, nil, err
				}
				chat, err := st.chatApprovers(env, app, r)
				if err != nil {
					return nil, nil, err
				}
				p := place{env: env, who: strings.Join(who, ", "), chat: strings.Join(chat, ", ")}
				switch {
				case len(who) < rl.approvals && len(chat) == 0:
					p.kind = impossible
				case len(who) < rl.approvals:
					p.kind = uncounted
				case len(who) == rl.approvals && requester == "" && st.mayRequest(rl.sub, who, env):
					p.kind = tight
				default:
					continue
				}
				if _, seen := where[p]; !seen {
					order = append(order, p)
				}
				where[p] = append(where[p], app)
			}
		}
		line := rl.src.Pos() + ": " + displayRule(rl.src.Text)
		need := fmt.Sprintf("%d approval%s from %s", rl.approvals, plural(rl.approvals), reviewGroup(rl.group))
		for _, p := range order {
			n := 0
			if p.who != "" {
				n = strings.Count(p.who, ",") + 1
			}
			at := fmt.Sprintf("for %s in %s", appList(where[p]), display(p.env))
			besides := ""
			if requester != "" {
				besides = " besides " + display(requester)
			}
			switch p.kind {
			case impossible:
				errs = append(errs, fmt.Sprintf("%s: %s it needs %s%s, but %s: such a change can never merge; %s, or lower the count",
					line, at, need, besides, mayApproveCount(n, p.who), howToAdd(rl.group)))
			case uncounted:
				warnings = append(warnings, fmt.Sprintf("%s: %s it needs %s%s, but %s; members of the chat group %s may approve too, but the policy can't count them, and shipbot, counting only the users the policy names, refuses such a change; %s, or lower the count",
					line, at, need, besides, mayApproveCount(n, p.who), p.chat, howToAdd(rl.group)))
			case tight:
				chat := ""
				if p.chat != "" {
					chat = fmt.Sprintf(" (members of the chat group %s may approve too, but the policy can't count them)", p.chat)
				}
				warnings = append(warnings, fmt.Sprintf("%s: %s it needs %s and exactly %d user%s may approve (%s): when one of them asks, only %d can approve and the change can never merge%s; %s, or lower the count",
					line, at, need, n, plural(n), p.who, n-1, chat, howToAdd(rl.group)))
			}
		}
	}
	return errs, warnings, nil
}

// mayRequest reports whether one of who may be a requester of a review
// line for sub: anyone for *, a member for a group (a chat platform's group
// may hold anyone).
func (st *enforcerState) mayRequest(sub string, who []string, env string) bool {
	if sub == "*" || ExternalGroup(sub) {
		return true
	}
	return slices.ContainsFunc(who, func(u string) bool {
		groups, err := st.groups(u, env)
		return u == sub || err == nil && slices.Contains(groups, sub)
	})
}

func mayApproveCount(n int, who string) string {
	switch n {
	case 0:
		return "nobody may approve it"
	case 1:
		return "only 1 user may approve it (" + who + ")"
	}
	return fmt.Sprintf("only %d users may approve it (%s)", n, who)
}

func howToAdd(group string) string {
	if anyGroup(group) {
		return "give more users the approve action (p lines)"
	}
	g := display(group)
	return fmt.Sprintf("give more members of %s the approve action (p lines for them or for %s) or put more users who have it in %s (g lines)", g, g, g)
}

func appList(apps []string) string {
	const most = 5
	if len(apps) <= most {
		return displayList(apps)
	}
	return fmt.Sprintf("%s and %d more apps", displayList(apps[:most]), len(apps)-most)
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
