package policy

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
)

// chatGroupPolicy gives rights to groups a chat platform vouches for
// (Slack user groups, named slack:HANDLE), directly and through g lines.
const chatGroupPolicy = `g, alice, team-checkout, *
g, bob, sre, *
# members of the Slack group @sre-oncall are SREs in prod only
g, slack:sre-oncall, sre, prod
p, team-checkout, *, checkout, rollback, *
p, sre, prod, *, restart, *
p, bob, *, payments, *, *
p, slack:release, staging, *, promote, *
p, slack:payments-oncall, prod, payments, rollback, *
# contractors may do nothing in prod, whatever else allows it
p, slack:contractors, prod, *, *, *, deny
review, slack:release, staging, *, promote, 1, slack:release-managers
justify, prod, *, *, pagerduty-incident
`

func groupQuery(user string, groups []string, action, app, env string) gitops.AuthzQuery {
	q := query(user, "#ops", action, app, env)
	q.Subject.Groups = groups
	return q
}

var pdOnly = gitops.JustificationRule{Required: true, Kinds: []string{"pagerduty-incident"}}

var chatGroupCases = []decisionCase{
	{name: "no groups: denied", q: groupQuery("zoe", nil, "restart", "search", "prod")},
	{name: "a chat group put in a policy group by a g line", q: groupQuery("zoe", []string{"slack:sre-oncall"}, "restart", "search", "prod"),
		allowed: true, rule: "p, sre, prod, *, restart, *", justify: pdOnly,
		reasonHas: []string{"zoe is in sre in prod, through the chat group slack:sre-oncall"}},
	{name: "the g line's environment scope holds", q: groupQuery("zoe", []string{"slack:sre-oncall"}, "restart", "search", "staging"),
		reasonHas: []string{"no policy rule lets zoe restart search in staging", "zoe is in group slack:sre-oncall in staging, and no rule of that group covers this either"}},
	{name: "a p line for the chat group itself", q: groupQuery("zoe", []string{"slack:release"}, "promote", "checkout", "staging"),
		allowed: true, rule: "p, slack:release, staging, *, promote, *", reasonHas: []string{"zoe is in the chat group slack:release"},
		review: gitops.Review{Approvals: 1, Group: "slack:release-managers"}},
	{name: "a group the policy never names changes nothing", q: groupQuery("zoe", []string{"slack:lunch-club"}, "restart", "search", "prod"),
		reasonHas: []string{"no policy rule lets zoe restart search in prod (from channel #ops); an admin can add"}},
	{name: "deny of a chat group wins over the user's own allow", q: groupQuery("alice", []string{"slack:contractors"}, "rollback", "checkout", "prod"),
		reasonHas: []string{"the policy denies alice rollback checkout in prod (from channel #ops): p, slack:contractors, prod, *, *, *, deny (alice is in group slack:contractors in prod)"}},
	{name: "deny of a chat group wins over another chat group's allow", q: groupQuery("zoe", []string{"slack:sre-oncall", "slack:contractors"}, "restart", "search", "prod"),
		reasonHas: []string{"p, slack:contractors, prod, *, *, *, deny"}},
	{name: "same, groups in the other order", q: groupQuery("zoe", []string{"slack:contractors", "slack:sre-oncall"}, "restart", "search", "prod"),
		reasonHas: []string{"p, slack:contractors, prod, *, *, *, deny"}},
	{name: "the deny is scoped to prod", q: groupQuery("alice", []string{"slack:contractors"}, "rollback", "checkout", "dev"),
		allowed: true, rule: "p, team-checkout, *, checkout, rollback, *", reasonHas: []string{"alice is in team-checkout in dev"}},
	{name: "the first allow line in the file decides", q: groupQuery("zoe", []string{"slack:payments-oncall", "slack:sre-oncall"}, "restart", "payments", "prod"),
		allowed: true, rule: "p, sre, prod, *, restart, *", justify: pdOnly},
	{name: "a chat group named like a policy group counts", q: groupQuery("zoe", []string{"sre"}, "restart", "search", "prod"),
		allowed: true, rule: "p, sre, prod, *, restart, *", justify: pdOnly, reasonHas: []string{"zoe is in the chat group sre"}},
	{name: "a chat group named like a user never acts as that user", q: groupQuery("zoe", []string{"bob"}, "rollback", "payments", "dev"),
		reasonHas: []string{"no policy rule lets zoe rollback payments in dev"}},
	{name: "a chat group named like the user changes nothing", q: groupQuery("bob", []string{"bob"}, "rollback", "payments", "dev"),
		allowed: true, rule: "p, bob, *, payments, *, *"},
	{name: "empty group names are ignored", q: groupQuery("zoe", []string{"", "slack:sre-oncall"}, "restart", "search", "prod"),
		allowed: true, rule: "p, sre, prod, *, restart, *", justify: pdOnly},
}

func TestAuthorizeChatGroups(t *testing.T) {
	e, err := NewEnforcer("", writePolicy(t, "chat.csv", chatGroupPolicy))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range chatGroupCases {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Authorize(context.Background(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			checkDecision(t, tt, d)

			x := e.Explain(tt.q)
			if x.Err != nil || !reflect.DeepEqual(x.Decision, d) {
				t.Fatalf("Explain decision %+v (err %v), Authorize %+v", x.Decision, x.Err, d)
			}
			switch {
			case d.Allowed && (len(x.Allow) == 0 || x.Allow[0].Rule != d.Rule || len(x.Deny) > 0):
				t.Errorf("allowed by %q, but Explain has Allow = %+v, Deny = %+v", d.Rule, x.Allow, x.Deny)
			case !d.Allowed && len(x.Deny) == 0 && len(x.Allow) > 0:
				t.Errorf("denied by default, but Explain has Allow = %+v", x.Allow)
			case !d.Allowed && len(x.Deny) > 0 && !strings.Contains(d.Reason, x.Deny[0].Rule):
				t.Errorf("reason %q does not name %q", d.Reason, x.Deny[0].Rule)
			}
		})
	}
}

func TestExplainChatGroup(t *testing.T) {
	file := writePolicy(t, "chat.csv", chatGroupPolicy)
	e, err := NewEnforcer("", file)
	if err != nil {
		t.Fatal(err)
	}
	out := e.Explain(groupQuery("zoe", []string{"slack:sre-oncall", "slack:lunch-club"}, "restart", "search", "prod")).String()
	out = strings.ReplaceAll(out, file, "chat.csv")
	for _, want := range []string{
		"decision:  allowed\n",
		"groups:    slack:sre-oncall  (chat: zoe is in the chat group slack:sre-oncall)\n",
		"           sre  (chat: zoe is in the chat group slack:sre-oncall; chat.csv:4: g, slack:sre-oncall, sre, prod)\n",
		"allow:     chat.csv:6: p, sre, prod, *, restart, *  (as sre)  <- decides\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explanation lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "lunch-club") {
		t.Errorf("explanation shows a group the policy never names:\n%s", out)
	}
}

func TestReviewGroupFromChat(t *testing.T) {
	// A review group named PLATFORM:NAME gets its members from the chat
	// platform; a plain one still needs a g line.
	if _, err := NewEnforcer("", writePolicy(t, "ok.csv", "p, bob, *, *, *, *\nreview, *, prod, *, promote, 2, slack:sre\n")); err != nil {
		t.Errorf("review group slack:sre refused: %v", err)
	}
	_, err := NewEnforcer("", writePolicy(t, "bad.csv", "p, bob, *, *, *, *\nreview, *, prod, *, promote, 2, sre\n"))
	if err == nil || !strings.Contains(err.Error(), `review group "sre" has no members`) || !strings.Contains(err.Error(), "slack:sre") {
		t.Errorf("err = %v, want no members, with the slack:sre hint", err)
	}
}

func TestExternalGroup(t *testing.T) {
	for name, want := range map[string]bool{
		"slack:sre": true, "slack:sre-oncall": true, "teams:ops": true,
		"sre": false, ":sre": false, "slack:": false, "": false,
	} {
		if got := ExternalGroup(name); got != want {
			t.Errorf("ExternalGroup(%q) = %v, want %v", name, got, want)
		}
	}
}

// When the chat platform could not tell the user's groups, a deny line for
// a group that could match the request might have been missed: such a
// request is refused (fail closed); requests no such line could match, and
// policies without such lines, decide as usual.
func TestChatGroupsUnknownFailClosed(t *testing.T) {
	e, err := NewEnforcer("", writePolicy(t, "chat.csv", chatGroupPolicy))
	if err != nil {
		t.Fatal(err)
	}
	unknown := func(q gitops.AuthzQuery) gitops.AuthzQuery { q.Subject.GroupsUnknown = true; return q }
	ctx := context.Background()
	d, err := e.Authorize(ctx, unknown(groupQuery("alice", nil, "rollback", "checkout", "prod")))
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || !strings.Contains(d.Reason, "shipbot could not read alice's groups from the chat platform just now, and a deny rule for a group could apply (p, slack:contractors, prod, *, *, *, deny)") {
		t.Errorf("groups unknown, prod: %+v", d)
	}
	if x := e.Explain(unknown(groupQuery("alice", nil, "rollback", "checkout", "prod"))); !reflect.DeepEqual(x.Decision, d) {
		t.Errorf("Explain decided %+v, Authorize %+v", x.Decision, d)
	}
	if d, _ := e.Authorize(ctx, unknown(groupQuery("alice", nil, "rollback", "checkout", "dev"))); !d.Allowed {
		t.Errorf("groups unknown, dev (no group deny line applies): %+v", d)
	}
	ex := newExampleEnforcer(t) // no deny lines at all
	if d, _ := ex.Authorize(ctx, unknown(groupQuery("alice", nil, "rollback", "checkout", "prod"))); !d.Allowed {
		t.Errorf("groups unknown, a policy without group deny lines: %+v", d)
	}
}
