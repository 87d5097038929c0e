package policy

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// at is "file:N" for the first line of file that is line.
func at(t *testing.T, file, line string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == line {
			return fmt.Sprintf("%s:%d", file, i+1)
		}
	}
	t.Fatalf("%s has no line %q", file, line)
	return ""
}

func TestExplainAllowedExample(t *testing.T) {
	e := newExampleEnforcer(t)
	x := e.Explain(query("alice", "#ops", "rollback", "checkout", "prod"))
	p := examplePolicy
	want := `request:   alice rollback checkout in prod from #ops
decision:  allowed
reason:    alice is in team-checkout in prod
groups:    team-checkout  (` + at(t, p, "g, alice, team-checkout, *") + `: g, alice, team-checkout, *)
allow:     ` + at(t, p, "p, team-checkout, *, checkout, rollback, *") + `: p, team-checkout, *, checkout, rollback, *  (as team-checkout)  <- decides
deny:      none matches
review:    none: the change lands directly
justify:   required, of kind pagerduty-incident or jira-issue  (` + at(t, p, "justify, prod, *, rollback, pagerduty-incident|jira-issue") + `: justify, prod, *, rollback, pagerduty-incident|jira-issue)
`
	if got := x.String(); got != want {
		t.Errorf("Explain().String() =\n%s\nwant\n%s", got, want)
	}
	if len(x.Groups) != 1 || x.Groups[0].Group != "team-checkout" || x.Allow[0].Via != "team-checkout" {
		t.Errorf("Explanation = %+v", x)
	}
}

func TestExplainReviewAndBreakGlassExample(t *testing.T) {
	e := newExampleEnforcer(t)
	got := e.Explain(query("bob", "#ops", "promote", "checkout", "prod")).String()
	for _, s := range []string{
		"allow:     " + at(t, examplePolicy, "p, sre, *, *, *, *") + ": p, sre, *, *, *, *  (as sre)  <- decides",
		"review:    2 approval(s) from group sre, the requester never counts  (" + at(t, examplePolicy, "review, *, prod, *, promote, 2, sre") + ": review, *, prod, *, promote, 2, sre)",
		"justify:   not required\n",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("explain of bob's prod promotion lacks %q:\n%s", s, got)
		}
	}
	got = e.Explain(query("carol", "#ops", "breakglass", "payments", "prod")).String()
	for _, s := range []string{
		"decision:  allowed, BREAK-GLASS\n",
		"allow:     " + at(t, examplePolicy, "p, sre, *, *, breakglass, *") + ": p, sre, *, *, breakglass, *  (as sre)  <- decides\n           " + at(t, examplePolicy, "p, sre, *, *, *, *") + ": p, sre, *, *, *, *  (as sre)\n",
		"justify:   required, of kind pagerduty-incident or jira-issue  (" + at(t, examplePolicy, "justify, *, *, breakglass, pagerduty-incident|jira-issue") + ": justify, *, *, breakglass, pagerduty-incident|jira-issue)",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("explain of carol's break-glass lacks %q:\n%s", s, got)
		}
	}
}

func TestExplainDeniedByDefault(t *testing.T) {
	e := newExampleEnforcer(t)
	x := e.Explain(query("mallory", "#ops", "rollback", "checkout", "prod"))
	want := `request:   mallory rollback checkout in prod from #ops
decision:  DENIED
reason:    no policy rule lets mallory rollback checkout in prod (from channel #ops); an admin can add: p, mallory, prod, checkout, rollback, *
groups:    none in prod
allow:     none matches: denied by default
deny:      none matches
missing:   a rule such as: p, mallory, prod, checkout, rollback, *
`
	if got := x.String(); got != want {
		t.Errorf("Explain().String() =\n%s\nwant\n%s", got, want)
	}
	if x.Missing != "p, mallory, prod, checkout, rollback, *" || len(x.Allow)+len(x.Deny)+len(x.Groups) != 0 {
		t.Errorf("Explanation = %+v", x)
	}
}

func TestExplainDenyWins(t *testing.T) {
	pol := writePolicy(t, "v2.csv", v2Policy)
	e, err := NewEnforcer("", pol)
	if err != nil {
		t.Fatal(err)
	}
	x := e.Explain(query("ivan", "#random", "rollback", "checkout", "prod"))
	if x.Decision.Allowed || x.Missing != "" {
		t.Fatalf("ivan from #random: %+v", x)
	}
	wantAllow := []RuleMatch{{Pos: at(t, pol, "p, team-checkout, *, checkout, *, *"), Rule: "p, team-checkout, *, checkout, *, *", Via: "team-checkout"}}
	wantDeny := []RuleMatch{
		{Pos: at(t, pol, "p, interns, prod, *, *, *, deny"), Rule: "p, interns, prod, *, *, *, deny", Via: "interns"},
		{Pos: at(t, pol, "p, *, *, *, *, #random, deny"), Rule: "p, *, *, *, *, #random, deny", Via: "*"},
	}
	if !reflect.DeepEqual(x.Allow, wantAllow) || !reflect.DeepEqual(x.Deny, wantDeny) {
		t.Errorf("Allow = %+v\nDeny = %+v", x.Allow, x.Deny)
	}
	want := []Membership{
		{Group: "interns", Path: []RuleMatch{{Pos: at(t, pol, "g, ivan, interns, *"), Rule: "g, ivan, interns, *"}}},
		{Group: "team-checkout", Path: []RuleMatch{{Pos: at(t, pol, "g, ivan, team-checkout, *"), Rule: "g, ivan, team-checkout, *"}}},
	}
	if !reflect.DeepEqual(x.Groups, want) {
		t.Errorf("Groups = %+v, want %+v", x.Groups, want)
	}
	got := x.String()
	for _, s := range []string{
		"decision:  DENIED\n",
		"reason:    the policy denies ivan rollback checkout in prod (from channel #random): p, interns, prod, *, *, *, deny (ivan is in group interns in prod)\n",
		"allow:     " + at(t, pol, "p, team-checkout, *, checkout, *, *") + ": p, team-checkout, *, checkout, *, *  (as team-checkout)\n",
		"deny:      " + at(t, pol, "p, interns, prod, *, *, *, deny") + ": p, interns, prod, *, *, *, deny  (as interns)  <- denies (deny wins)\n",
		"           " + at(t, pol, "p, *, *, *, *, #random, deny") + ": p, *, *, *, *, #random, deny  (for anyone)\n",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("explain lacks %q:\n%s", s, got)
		}
	}
	if strings.Contains(got, "missing:") || strings.Contains(got, "review:") {
		t.Errorf("a denial by a deny rule suggests nothing and shows no extras:\n%s", got)
	}
}

func TestExplainShadowedExtrasAndNestedGroups(t *testing.T) {
	pol := writePolicy(t, "v2.csv", v2Policy+"g, team-web, frontend, *\np, frontend, dev, *, restart, *\n")
	e, err := NewEnforcer("", pol)
	if err != nil {
		t.Fatal(err)
	}
	got := e.Explain(query("bob", "#ops", "promote", "payments", "prod")).String()
	for _, s := range []string{
		"review:    1 approval(s) from group sre, the requester never counts  (" + at(t, pol, "review, bob, prod, *, promote, 1, sre") + ": review, bob, prod, *, promote, 1, sre)\n",
		"           shadowed: " + at(t, pol, "review, *, prod, *, promote, 2, sre") + ": review, *, prod, *, promote, 2, sre\n",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("explain lacks %q:\n%s", s, got)
		}
	}
	got = e.Explain(query("carol", "#ops", "rollback", "canary", "prod")).String()
	for _, s := range []string{
		"justify:   not required  (" + at(t, pol, "justify, prod, canary, *, none") + ": justify, prod, canary, *, none)\n",
		"           shadowed: " + at(t, pol, "justify, prod, *, \"{rollback,restart}\", pagerduty-incident|jira-issue") + ": justify, prod, *, \"{rollback,restart}\", pagerduty-incident|jira-issue\n",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("explain lacks %q:\n%s", s, got)
		}
	}
	x := e.Explain(query("erin", "", "restart", "web", "dev"))
	if !x.Decision.Allowed {
		t.Fatalf("erin restart web dev: %+v", x)
	}
	got = x.String()
	for _, s := range []string{
		"request:   erin restart web in dev (no channel)\n",
		"groups:    frontend  (" + at(t, pol, "g, erin, team-web, *") + ": g, erin, team-web, *; " + at(t, pol, "g, team-web, frontend, *") + ": g, team-web, frontend, *)\n",
		"           team-web  (" + at(t, pol, "g, erin, team-web, *") + ": g, erin, team-web, *)\n",
		"allow:     " + at(t, pol, "p, frontend, dev, *, restart, *") + ": p, frontend, dev, *, restart, *  (as frontend)  <- decides\n",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("explain lacks %q:\n%s", s, got)
		}
	}
}

// TestExplainAgreesWithAuthorize checks, for every decision case, that
// Explain gives Authorize's decision and that its rules are consistent
// with it.
func TestExplainAgreesWithAuthorize(t *testing.T) {
	v2, err := NewEnforcer("", writePolicy(t, "v2.csv", v2Policy))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := NewEnforcer(writeModel(t, v1Model), examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Enforcer{v2, v1, newExampleEnforcer(t)} {
		for _, tt := range v2Cases {
			d, err := e.Authorize(context.Background(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			x := e.Explain(tt.q)
			if x.Err != nil || !reflect.DeepEqual(x.Decision, d) {
				t.Errorf("%s: Explain decision %+v (err %v), Authorize %+v", tt.name, x.Decision, x.Err, d)
				continue
			}
			switch {
			case !x.Evaluated:
			case d.Allowed && (len(x.Allow) == 0 || x.Allow[0].Rule != d.Rule || len(x.Deny) > 0):
				t.Errorf("%s: allowed by %q, but Allow = %+v, Deny = %+v", tt.name, d.Rule, x.Allow, x.Deny)
			case !d.Allowed && len(x.Deny) == 0 && len(x.Allow) > 0:
				t.Errorf("%s: denied by default, but Allow = %+v", tt.name, x.Allow)
			case !d.Allowed && len(x.Deny) > 0 && !strings.Contains(d.Reason, x.Deny[0].Rule):
				t.Errorf("%s: reason %q does not name %q", tt.name, d.Reason, x.Deny[0].Rule)
			}
		}
	}
}

func TestExplainNotEvaluated(t *testing.T) {
	e := newExampleEnforcer(t)
	for _, tt := range []struct {
		q    []string
		want string
	}{
		{[]string{"mallory", "", "help", "", ""}, "request:   mallory help (none) in (none) (no channel)\ndecision:  allowed\nreason:    help is always allowed\n"},
		{[]string{"bob", "#ops", "delete", "checkout", "prod"}, "request:   bob delete checkout in prod from #ops\ndecision:  DENIED\nreason:    the policy knows no action \"delete\"\n"},
		{[]string{"bob", "#ops", "freeze", "", ""}, "request:   bob freeze (none) from #ops\ndecision:  DENIED\nreason:    cannot authorize freeze without an environment\n"},
	} {
		x := e.Explain(query(tt.q[0], tt.q[1], tt.q[2], tt.q[3], tt.q[4]))
		if x.Evaluated || x.String() != tt.want {
			t.Errorf("%v: evaluated %v, String() =\n%s\nwant\n%s", tt.q, x.Evaluated, x, tt.want)
		}
	}
}

func TestExplainHostileValuesStayOnOneLine(t *testing.T) {
	e := newExampleEnforcer(t)
	got := e.Explain(query("mallory\n@channel", "#ops\r\nreason: allowed", "status", "check\u202eout", "prod")).String()
	if n := strings.Count(got, "\n"); n != 6 {
		t.Errorf("explain has %d lines, want 6:\n%s", n, got)
	}
	if strings.Contains(got, "\u202e") || strings.Contains(got, "\r") {
		t.Errorf("control or format characters in explain:\n%q", got)
	}
}
