package policy

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
)

const reviewPolicy = `g, alice, team-checkout, *
g, bob, sre, *
g, carol, sre, *
g, dave, sre, *
g, erin, qa, *
g, slack:sre-oncall, sre, prod
p, team-checkout, *, checkout, *, *
p, sre, *, *, *, *
p, erin, prod, *, approve, *
p, dave, prod, payments, approve, *, deny
p, slack:contractors, prod, *, approve, *, deny
review, *, prod, *, promote, 2, sre
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
	for _, tc := range []struct {
		name   string
		sub    gitops.Subject
		app    string
		review gitops.Review
		ok     bool
		reason string
	}{
		{name: "a member of the group", sub: gitops.Subject{User: "bob", Channel: "#ops"}, app: "checkout", review: sre, ok: true},
		{name: "no approve rule", sub: gitops.Subject{User: "mallory", Channel: "#ops"}, app: "checkout", review: sre,
			reason: "mallory may not approve changes of checkout in prod: no policy rule lets mallory approve checkout in prod"},
		{name: "may approve but outside the group", sub: gitops.Subject{User: "erin"}, app: "checkout", review: sre,
			reason: "erin may approve in prod but is not in sre, whose approvals this change needs"},
		{name: "outside the group is fine when any group counts", sub: gitops.Subject{User: "erin"}, app: "checkout", review: gitops.Review{Approvals: 1, Group: "*"}, ok: true},
		{name: "a deny line for approve wins", sub: gitops.Subject{User: "dave"}, app: "payments", review: sre,
			reason: "dave may not approve changes of payments in prod"},
		{name: "in the group through a chat group", sub: gitops.Subject{User: "zoe", Groups: []string{"slack:sre-oncall"}}, app: "checkout", review: sre, ok: true},
		{name: "a chat group's deny line wins", sub: gitops.Subject{User: "bob", Groups: []string{"slack:contractors"}}, app: "checkout", review: sre,
			reason: "bob may not approve"},
		{name: "unknown chat groups fail closed on a group deny line", sub: gitops.Subject{User: "bob", GroupsUnknown: true}, app: "checkout", review: sre,
			reason: "could not read bob's groups"},
		{name: "the requester is the core's business, not the policy's", sub: gitops.Subject{User: "alice"}, app: "checkout", review: gitops.Review{Approvals: 1, Group: "team-checkout"}, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.MayApprove(context.Background(), gitops.AuthzQuery{Subject: tc.sub, Env: "prod", App: tc.app}, tc.review)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tc.ok {
				t.Fatalf("allowed = %v (%s), want %v", d.Allowed, d.Reason, tc.ok)
			}
			if tc.reason != "" && !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", d.Reason, tc.reason)
			}
			if tc.ok && d.Rule == "" {
				t.Errorf("an allowed approval names no rule")
			}
		})
	}
}

func TestApprovers(t *testing.T) {
	e := reviewEnforcer(t, reviewPolicy)
	sre := gitops.Review{Approvals: 2, Group: "sre"}
	for _, tc := range []struct {
		app, requester string
		want           []string
	}{
		{"checkout", "alice", []string{"bob", "carol", "dave"}},
		{"checkout", "bob", []string{"carol", "dave"}},
		{"payments", "alice", []string{"bob", "carol"}}, // dave's approve is denied for payments
	} {
		got, err := e.Approvers(context.Background(), "prod", tc.app, sre, tc.requester)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Approvers(%s, requester %s) = %v, want %v", tc.app, tc.requester, got, tc.want)
		}
	}
}

func TestReviewProblemsAndExplain(t *testing.T) {
	e := reviewEnforcer(t, reviewPolicy+"review, *, staging, *, promote, 3, sre\n")
	errs, warnings, err := e.ReviewProblems(context.Background(), map[string][]string{"payments": {"prod", "staging"}, "checkout": {"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	// payments in prod: bob and carol for 2 approvals (a warning); in
	// staging 3 sre members may approve for 3 approvals (a warning);
	// checkout in prod: 3 for 2 (fine).
	if len(errs) != 0 || len(warnings) != 2 || !strings.Contains(warnings[0], "for payments in prod exactly 2 users may approve (bob, carol)") {
		t.Errorf("errs %q\nwarnings %q", errs, warnings)
	}
	e = reviewEnforcer(t, reviewPolicy+"review, *, staging, *, promote, 4, sre\n")
	if errs, _, _ := e.ReviewProblems(context.Background(), map[string][]string{"checkout": {"staging"}}); len(errs) != 1 ||
		!strings.Contains(errs[0], "policy.csv:13: review, *, staging, *, promote, 4, sre: for checkout in staging it needs 4 approvals from sre but only 3 users may approve (bob, carol, dave): such a change can never merge") {
		t.Errorf("errs = %q", errs)
	}

	x := e.Explain(gitops.AuthzQuery{Subject: gitops.Subject{User: "alice", Channel: "#ops"}, Env: "prod", App: "checkout", Action: gitops.ActionPromote})
	out := x.String()
	for _, want := range []string{"decision:  allowed after 2 approvals from sre (the requester does not count)", "approvers: bob, carol, dave"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "WARNING") {
		t.Errorf("a satisfiable review warns:\n%s", out)
	}
	x = e.Explain(gitops.AuthzQuery{Subject: gitops.Subject{User: "bob", Channel: "#ops"}, Env: "staging", App: "checkout", Action: gitops.ActionPromote})
	if out := x.String(); !strings.Contains(out, "WARNING:   this change can never merge: it needs 4 approvals from sre besides bob, and only 2 users may give one") {
		t.Errorf("explain of an impossible quorum:\n%s", out)
	}
}
