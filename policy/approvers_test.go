package policy

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
)

// reviewPolicy: bob, carol and dave are SREs; dave may not approve payments
// in prod; erin may approve anything in prod but is no SRE; frank may
// approve in prod from #approvals only; the Slack group @sre-oncall makes
// its members SREs in prod; @contractors may never approve in prod; the
// Slack group @release-managers approves promotions into uat.
const reviewPolicy = `g, alice, team-checkout, *
g, bob, sre, *
g, carol, sre, *
g, dave, sre, *
g, erin, qa, *
g, slack:sre-oncall, sre, prod
p, team-checkout, *, checkout, *, *
p, sre, *, *, *, *
p, erin, prod, *, approve, *
p, frank, prod, *, approve, #approvals
p, dave, prod, payments, approve, *, deny
p, slack:contractors, prod, *, approve, *, deny
p, slack:release-managers, uat, *, approve, *
review, *, prod, *, promote, 2, sre
review, *, uat, *, promote, 1, slack:release-managers
`

func reviewEnforcer(t *testing.T, text string) *Enforcer {
	t.Helper()
	e, err := NewEnforcer("", writePolicy(t, "policy.csv", text))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestMayApprove(t *testing.T) {
	e := reviewEnforcer(t, reviewPolicy)
	sre := gitops.Review{Approvals: 2, Group: "sre"}
	anyone := gitops.Review{Approvals: 1, Group: "*"}
	rm := gitops.Review{Approvals: 1, Group: "slack:release-managers"}
	for _, tc := range []struct {
		name   string
		sub    gitops.Subject
		env    string // default prod
		app    string
		review gitops.Review
		ok     bool
		rule   string // the allowing line, for ok
		reason string // a substring of the reason ("" for an allow: not checked)
	}{
		{name: "a member of the group", sub: gitops.Subject{User: "bob", Channel: "#ops"}, app: "checkout", review: sre, ok: true,
			rule: "p, sre, *, *, *, *", reason: "bob is in sre in prod"},
		{name: "no approve rule", sub: gitops.Subject{User: "mallory", Channel: "#ops"}, app: "checkout", review: sre,
			reason: `mallory may not approve changes of checkout in prod: no rule allows mallory to approve checkout in prod (add e.g. "p, mallory, prod, checkout, approve, *" or a group of mallory's), and mallory is not in sre, whose approvals this change needs`},
		{name: "no approve rule, any group", sub: gitops.Subject{User: "mallory", Channel: "#ops"}, app: "checkout", review: anyone,
			reason: `mallory may not approve changes of checkout in prod: no rule allows mallory to approve checkout in prod (add e.g. "p, mallory, prod, checkout, approve, *" or a group of mallory's)`},
		{name: "may approve but outside the group", sub: gitops.Subject{User: "erin", Channel: "#ops"}, app: "checkout", review: sre,
			reason: "erin may approve in prod but is not in sre, whose approvals this change needs"},
		{name: "outside the group is fine when any group counts", sub: gitops.Subject{User: "erin"}, app: "checkout", review: anyone, ok: true,
			rule: "p, erin, prod, *, approve, *", reason: "the rule names erin"},
		{name: "a deny line for approve wins", sub: gitops.Subject{User: "dave", Channel: "#ops"}, app: "payments", review: sre,
			reason: "dave may not approve changes of payments in prod: a deny rule forbids it: p, dave, prod, payments, approve, *, deny"},
		{name: "the deny line is for payments only", sub: gitops.Subject{User: "dave", Channel: "#ops"}, app: "checkout", review: sre, ok: true,
			rule: "p, sre, *, *, *, *"},
		{name: "in the group through a chat group", sub: gitops.Subject{User: "zoe", Channel: "#ops", Groups: []string{"slack:sre-oncall"}}, app: "checkout", review: sre, ok: true,
			rule: "p, sre, *, *, *, *", reason: "zoe is in sre in prod, through the chat group slack:sre-oncall"},
		{name: "the chat group's g line is scoped to prod", sub: gitops.Subject{User: "zoe", Channel: "#ops", Groups: []string{"slack:sre-oncall"}}, env: "staging", app: "checkout", review: sre,
			reason: "zoe may not approve changes of checkout in staging: no rule allows zoe to approve checkout in staging"},
		{name: "a chat group's deny line wins", sub: gitops.Subject{User: "bob", Channel: "#ops", Groups: []string{"slack:contractors"}}, app: "checkout", review: sre,
			reason: "bob may not approve changes of checkout in prod: a deny rule forbids it: p, slack:contractors, prod, *, approve, *, deny (bob is in the chat group slack:contractors)"},
		{name: "unknown chat groups fail closed on a group deny line", sub: gitops.Subject{User: "bob", Channel: "#ops", GroupsUnknown: true}, app: "checkout", review: sre,
			reason: "bob may not approve changes of checkout in prod: shipbot could not read bob's groups from the chat platform just now, and a deny rule for a group could apply (p, slack:contractors, prod, *, approve, *, deny)"},
		{name: "unknown chat groups are fine where no group deny line applies", sub: gitops.Subject{User: "bob", Channel: "#ops", GroupsUnknown: true}, env: "staging", app: "checkout", review: sre, ok: true,
			rule: "p, sre, *, *, *, *"},
		{name: "the review group is the chat group itself", sub: gitops.Subject{User: "zoe", Groups: []string{"slack:release-managers"}}, env: "uat", app: "checkout", review: rm, ok: true,
			rule: "p, slack:release-managers, uat, *, approve, *", reason: "zoe is in the chat group slack:release-managers"},
		{name: "outside the chat group that reviews", sub: gitops.Subject{User: "bob"}, env: "uat", app: "checkout", review: rm,
			reason: "bob may approve in uat but is not in slack:release-managers, whose approvals this change needs"},
		{name: "outside the chat group, whose groups are unknown", sub: gitops.Subject{User: "bob", GroupsUnknown: true}, env: "uat", app: "checkout", review: rm,
			reason: "bob may approve in uat but is not in slack:release-managers, whose approvals this change needs (shipbot could not read bob's groups from the chat platform just now; try again in a minute)"},
		{name: "from the channel the approve line names", sub: gitops.Subject{User: "frank", Channel: "#approvals"}, app: "checkout", review: anyone, ok: true,
			rule: "p, frank, prod, *, approve, #approvals"},
		{name: "from another channel", sub: gitops.Subject{User: "frank", Channel: "#ops"}, app: "checkout", review: anyone,
			reason: "frank may not approve changes of checkout in prod from #ops: the policy lets frank approve there only from #approvals"},
		{name: "on a forge (no channel)", sub: gitops.Subject{User: "frank"}, app: "checkout", review: anyone,
			reason: "frank may not approve changes of checkout in prod without a channel (as on a forge, where only approve lines for channel * count): the policy lets frank approve there only from #approvals"},
		{name: "the requester is the core's business, not the policy's", sub: gitops.Subject{User: "alice"}, app: "checkout", review: gitops.Review{Approvals: 1, Group: "team-checkout"}, ok: true,
			rule: "p, team-checkout, *, checkout, *, *", reason: "alice is in team-checkout in prod"},
		{name: "no user", sub: gitops.Subject{}, app: "checkout", review: sre,
			reason: "cannot tell who is asking"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if env == "" {
				env = "prod"
			}
			// The action of the query does not matter: it is approve.
			d, err := e.MayApprove(context.Background(), gitops.AuthzQuery{Subject: tc.sub, Env: env, App: tc.app, Action: gitops.ActionPromote}, tc.review)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tc.ok {
				t.Fatalf("allowed = %v (%s), want %v", d.Allowed, d.Reason, tc.ok)
			}
			if !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", d.Reason, tc.reason)
			}
			if d.Rule != tc.rule {
				t.Errorf("rule = %q, want %q", d.Rule, tc.rule)
			}
			if d.Review != (gitops.Review{}) || d.Justification.Required || d.BreakGlass {
				t.Errorf("an approval carries the change's extras: %+v", d)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.MayApprove(ctx, gitops.AuthzQuery{Subject: gitops.Subject{User: "bob"}, Env: "prod", App: "checkout"}, sre); err == nil {
		t.Error("MayApprove with a cancelled context: no error")
	}
}

func TestApprovers(t *testing.T) {
	e := reviewEnforcer(t, reviewPolicy)
	sre := gitops.Review{Approvals: 2, Group: "sre"}
	anyone := gitops.Review{Approvals: 1, Group: "*"}
	for _, tc := range []struct {
		env, app  string
		review    gitops.Review
		requester string
		want      []string
	}{
		// zoe (only in a chat group) is unknown to the policy; erin and
		// frank may approve but are no SREs.
		{"prod", "checkout", sre, "alice", []string{"bob", "carol", "dave"}},
		{"prod", "checkout", sre, "bob", []string{"carol", "dave"}},
		{"prod", "payments", sre, "alice", []string{"bob", "carol"}}, // dave's approve is denied for payments
		// frank may approve from #approvals only: he counts.
		{"prod", "checkout", anyone, "alice", []string{"bob", "carol", "dave", "erin", "frank"}},
		{"prod", "checkout", anyone, "", []string{"alice", "bob", "carol", "dave", "erin", "frank"}},
		{"prod", "payments", anyone, "erin", []string{"bob", "carol", "frank"}},
		{"staging", "checkout", sre, "carol", []string{"bob", "dave"}},
		{"uat", "checkout", gitops.Review{Approvals: 1, Group: "slack:release-managers"}, "alice", nil},
	} {
		got, err := e.Approvers(context.Background(), tc.env, tc.app, tc.review, tc.requester)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Approvers(%s, %s, %+v, requester %s) = %q, want %q", tc.env, tc.app, tc.review, tc.requester, got, tc.want)
		}
	}
	for _, tc := range []struct {
		env    string
		review gitops.Review
		want   []string
	}{
		{"prod", sre, []string{"slack:sre-oncall"}}, // not slack:contractors: denied
		{"staging", sre, nil},
		{"uat", gitops.Review{Approvals: 1, Group: "slack:release-managers"}, []string{"slack:release-managers"}},
	} {
		got, err := e.ChatApprovers(tc.env, "checkout", tc.review)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ChatApprovers(%s, %+v) = %q, want %q", tc.env, tc.review, got, tc.want)
		}
	}
}

func TestGlobSample(t *testing.T) {
	for _, pat := range []string{"#ops", "#ops-*", "#ops-?", "#[abc]ops", "{#ops,#deploys}", "#a{b,{c,d}}e", `\*x`} {
		s, ok := globSample(pat)
		if !ok || !globMatch(s, pat) {
			t.Errorf("globSample(%q) = %q, %v: does not match", pat, s, ok)
		}
	}
	if _, ok := globSample("#[!a]"); ok {
		t.Error("globSample of a negated class: ok")
	}
}

func TestReviewProblems(t *testing.T) {
	e := reviewEnforcer(t, reviewPolicy+
		"review, *, staging, *, promote, 4, sre\n"+ // line 16: 3 SREs, impossible
		"review, *, dev, *, promote, 3, sre\n"+ // line 17: exactly 3: a warning
		"review, bob, qa, *, promote, 3, sre\n"+ // line 18: only bob asks: carol and dave, impossible
		"review, team-checkout, qa, *, restart, 3, sre\n") // line 19: 3 SREs and no SRE asks: fine
	apps := map[string][]string{
		"checkout": {"prod", "staging", "dev", "qa", "uat"},
		"payments": {"prod", "staging", "dev", "qa"},
		"search":   {"qa"},
	}
	errs, warnings, err := e.ReviewProblems(context.Background(), apps)
	if err != nil {
		t.Fatal(err)
	}
	pos := e.policyPath + ":"
	wantErrs := []string{
		pos + "16: review, *, staging, *, promote, 4, sre: for checkout, payments in staging it needs 4 approvals from sre, but only 3 users may approve it (bob, carol, dave): such a change can never merge; give more members of sre the approve action (p lines for them or for sre) or put more users who have it in sre (g lines), or lower the count",
		pos + "18: review, bob, qa, *, promote, 3, sre: for checkout, payments, search in qa it needs 3 approvals from sre besides bob, but only 2 users may approve it (carol, dave): such a change can never merge;",
	}
	wantWarnings := []string{
		// payments in prod: bob and carol (dave is denied), and the
		// members of @sre-oncall the policy can't count.
		pos + "14: review, *, prod, *, promote, 2, sre: for payments in prod it needs 2 approvals from sre and exactly 2 users may approve (bob, carol): when one of them asks, only 1 can approve and the change can never merge (members of the chat group slack:sre-oncall may approve too, but the policy can't count them);",
		// uat: only the chat group's members, whom the policy can't name.
		pos + "15: review, *, uat, *, promote, 1, slack:release-managers: for checkout in uat it needs 1 approval from slack:release-managers, but nobody may approve it; members of the chat group slack:release-managers may approve too, but the policy can't count them",
		pos + "17: review, *, dev, *, promote, 3, sre: for checkout, payments in dev it needs 3 approvals from sre and exactly 3 users may approve (bob, carol, dave): when one of them asks, only 2 can approve",
	}
	check := func(kind string, got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%d %s, want %d:\n%s", len(got), kind, len(want), strings.Join(got, "\n"))
			return
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("%s[%d] =\n%s\nwant a message starting with\n%s", kind, i, got[i], want[i])
			}
		}
	}
	check("errors", errs, wantErrs)
	check("warnings", warnings, wantWarnings)

	// The demo policy has none.
	errs, warnings, err = newExampleEnforcer(t).ReviewProblems(context.Background(), map[string][]string{"checkout": {"dev", "staging", "prod"}, "payments": {"prod"}})
	if err != nil || len(errs) != 0 || len(warnings) != 0 {
		t.Errorf("the demo policy: %v\nerrors %q\nwarnings %q", err, errs, warnings)
	}
}

func TestExplainReview(t *testing.T) {
	e := reviewEnforcer(t, reviewPolicy+"review, *, staging, *, promote, 3, sre\n")
	pos := e.policyPath + ":"
	x := e.Explain(gitops.AuthzQuery{Subject: gitops.Subject{User: "alice", Channel: "#ops"}, Env: "prod", App: "checkout", Action: gitops.ActionPromote})
	want := `request:   alice promote checkout in prod from #ops
decision:  allowed after 2 approvals from sre (the requester does not count)
reason:    alice is in team-checkout in prod
groups:    team-checkout  (` + pos + `1: g, alice, team-checkout, *)
allow:     ` + pos + `7: p, team-checkout, *, checkout, *, *  (as team-checkout)  <- decides
deny:      none matches
review:    2 approval(s) from group sre, the requester never counts  (` + pos + `14: review, *, prod, *, promote, 2, sre)
           who may approve: bob, carol, dave, and members of the chat group slack:sre-oncall
justify:   not required
`
	if got := x.String(); got != want {
		t.Errorf("explain =\n%s\nwant\n%s", got, want)
	}
	if x.Unmergeable() != "" || !slices.Equal(x.Approvers, []string{"bob", "carol", "dave"}) {
		t.Errorf("Approvers %q, Unmergeable %q", x.Approvers, x.Unmergeable())
	}

	for _, tc := range []struct {
		user, env, app string
		want           string
	}{
		// 3 SREs, bob asks for 3 approvals.
		{"bob", "staging", "checkout", "WARNING:   THIS CHANGE CAN NEVER MERGE: only 2 of the 3 approvals can ever be given: carol and dave are the only other members of sre allowed to approve; add approvers or lower the count\n"},
		// payments in prod: dave is denied; bob asks.
		{"bob", "prod", "payments", "WARNING:   THIS CHANGE CAN NEVER MERGE: only 1 of the 2 approvals can ever be given: carol is the only other member of sre allowed to approve (members of the chat group slack:sre-oncall may approve too, but the policy can't tell who they are, so they are not counted); add approvers or lower the count\n"},
	} {
		x := e.Explain(gitops.AuthzQuery{Subject: gitops.Subject{User: tc.user, Channel: "#ops"}, Env: tc.env, App: tc.app, Action: gitops.ActionPromote})
		got := x.String()
		// Right under the decision and its reason, before anything else.
		if !strings.Contains(got, "(the requester does not count)\nreason:    "+tc.user+" is in sre in "+tc.env+"\n"+tc.want) {
			t.Errorf("explain of %s %s %s lacks, under the decision,\n%s\n%s", tc.user, tc.app, tc.env, tc.want, got)
		}
		if !x.Decision.Allowed {
			t.Errorf("an unmergeable change is still allowed: %+v", x.Decision)
		}
	}

	// Anyone allowed to approve, and nobody is.
	e = reviewEnforcer(t, "p, alice, dev, *, *, *\nreview, *, dev, *, restart, 1, *\n")
	got := e.Explain(gitops.AuthzQuery{Subject: gitops.Subject{User: "alice"}, Env: "dev", App: "checkout", Action: gitops.ActionRestart}).String()
	for _, s := range []string{
		"decision:  allowed after 1 approval from anyone the policy lets approve (the requester does not count)\n",
		"WARNING:   THIS CHANGE CAN NEVER MERGE: the one approval it needs can never be given: nobody else is allowed to approve; add approvers or lower the count\n",
		"           who may approve: nobody besides the requester\n",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("explain lacks %q:\n%s", s, got)
		}
	}
}
