package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shipbot/shipbot/gitops"
)

const (
	exampleModel  = "../deploy/examples/model.conf"
	examplePolicy = "../deploy/examples/policy.csv"
)

func newExampleEnforcer(t *testing.T) *Enforcer {
	t.Helper()
	e, err := NewEnforcer(exampleModel, examplePolicy)
	if err != nil {
		t.Fatalf("NewEnforcer(%s, %s): %v", exampleModel, examplePolicy, err)
	}
	return e
}

func query(user, channel, action, app, env string) gitops.AuthzQuery {
	return gitops.AuthzQuery{
		Subject: gitops.Subject{User: user, Channel: channel},
		Env:     env,
		Cluster: "c-" + env,
		App:     app,
		Action:  gitops.Action(action),
	}
}

func TestExampleModelIsTheDefault(t *testing.T) {
	b, err := os.ReadFile(exampleModel)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != DefaultModel {
		t.Errorf("%s differs from the embedded policy/model.conf; keep them identical", exampleModel)
	}
}

func TestAuthorizeExamplePolicy(t *testing.T) {
	tests := []struct {
		name       string
		q          gitops.AuthzQuery
		allowed    bool
		rule       string   // exact Rule when allowed
		reasonHas  []string // substrings of Reason
		reasonLack []string // must not be in Reason
	}{
		{
			name:    "alice rollback checkout prod via group",
			q:       query("alice", "#ops", "rollback", "checkout", "prod"),
			allowed: true, rule: "p, team-checkout, *, checkout, rollback, *",
			reasonHas: []string{"alice is in team-checkout in prod"},
		},
		{
			name:    "alice restart checkout dev",
			q:       query("alice", "#checkout", "restart", "checkout", "dev"),
			allowed: true, rule: "p, team-checkout, *, checkout, restart, *",
		},
		{
			name:    "alice promote checkout into staging",
			q:       query("alice", "#ops", "promote", "checkout", "staging"),
			allowed: true, rule: "p, team-checkout, staging, checkout, promote, *",
		},
		{
			name:    "alice promote checkout into dev",
			q:       query("alice", "#ops", "promote", "checkout", "dev"),
			allowed: true, rule: "p, team-checkout, dev, checkout, promote, *",
		},
		{
			name: "alice promote payments into prod denied",
			q:    query("alice", "#ops", "promote", "payments", "prod"),
			reasonHas: []string{
				"no policy rule lets alice promote payments in prod (from channel #ops)",
				"alice is in group team-checkout in prod, and no rule of that group covers this either",
				"an admin can add: p, alice, prod, payments, promote, *",
			},
		},
		{
			name:      "alice rollback payments prod denied",
			q:         query("alice", "#ops", "rollback", "payments", "prod"),
			reasonHas: []string{"no policy rule lets alice rollback payments in prod", "p, alice, prod, payments, rollback, *"},
		},
		{
			name:    "alice status on another app",
			q:       query("alice", "", "status", "payments", "prod"),
			allowed: true, rule: "p, team-checkout, *, *, status, *",
		},
		{
			name:    "alice history on another app",
			q:       query("alice", "#ops", "history", "search", "staging"),
			allowed: true, rule: "p, team-checkout, *, *, history, *",
		},
		{
			name:    "bob promote payments prod",
			q:       query("bob", "#ops", "promote", "payments", "prod"),
			allowed: true, rule: "p, sre, *, *, *, *",
			reasonHas: []string{"bob is in sre in prod"},
		},
		{
			name:    "bob rollback search in a new env",
			q:       query("bob", "#random", "rollback", "search", "eu-prod-2"),
			allowed: true, rule: "p, sre, *, *, *, *",
		},
		{
			name:    "carol restart checkout prod",
			q:       query("carol", "", "restart", "checkout", "prod"),
			allowed: true, rule: "p, sre, *, *, *, *",
		},
		{
			name: "mallory status denied, reason names the missing rule",
			q:    query("mallory", "#ops", "status", "checkout", "prod"),
			reasonHas: []string{
				"no policy rule lets mallory status checkout in prod (from channel #ops); an admin can add: p, mallory, prod, checkout, status, *",
			},
			reasonLack: []string{"is in group"},
		},
		{
			name:      "mallory rollback denied",
			q:         query("mallory", "#ops", "rollback", "checkout", "prod"),
			reasonHas: []string{"an admin can add: p, mallory, prod, checkout, rollback, *"},
		},
		{
			name:      "unknown user denied",
			q:         query("zed", "#ops", "status", "checkout", "dev"),
			reasonHas: []string{"no policy rule lets zed status checkout in dev"},
		},
		{
			name:       "no channel: reason omits it",
			q:          query("zed", "", "status", "checkout", "dev"),
			reasonHas:  []string{"no policy rule lets zed status checkout in dev; an admin"},
			reasonLack: []string{"from channel"},
		},
		{
			name:    "help always allowed for mallory",
			q:       query("mallory", "#ops", "help", "", ""),
			allowed: true, reasonHas: []string{"help is always allowed"},
		},
		{
			name:    "help always allowed for anyone",
			q:       query("nobody-at-all", "", "help", "whatever", "prod"),
			allowed: true,
		},
		{
			name:      "empty user denied",
			q:         query("", "#ops", "status", "checkout", "prod"),
			reasonHas: []string{"no user"},
		},
		{
			name:      "unknown action denied even for sre",
			q:         query("bob", "#ops", "delete", "checkout", "prod"),
			reasonHas: []string{`no action "delete"`},
		},
		{
			name:      "empty env denied even for sre",
			q:         query("bob", "#ops", "status", "checkout", ""),
			reasonHas: []string{"without both an app and an environment"},
		},
		{
			name:      "empty app denied even for sre",
			q:         query("bob", "#ops", "rollback", "", "prod"),
			reasonHas: []string{"without both an app and an environment"},
		},
		{
			name:       "glob in request is literal, suggestion withheld",
			q:          query("alice", "#ops", "rollback", "*", "prod"),
			reasonHas:  []string{"no policy rule lets alice rollback * in prod"},
			reasonLack: []string{"an admin can add"},
		},
		{
			name:       "hostile values are shown on one line",
			q:          query("mallory\n@channel", "#ops\r\nx", "status", "checkout", "prod"),
			reasonHas:  []string{"lets mallory @channel status", "(from channel #ops x)"},
			reasonLack: []string{"\n", "\r", "an admin can add"},
		},
	}

	e := newExampleEnforcer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Authorize(context.Background(), tt.q)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if d.Allowed != tt.allowed {
				t.Fatalf("Allowed = %v, want %v (rule %q, reason %q)", d.Allowed, tt.allowed, d.Rule, d.Reason)
			}
			if d.Rule != tt.rule {
				t.Errorf("Rule = %q, want %q", d.Rule, tt.rule)
			}
			if !tt.allowed && d.Reason == "" {
				t.Errorf("denied without a Reason")
			}
			for _, s := range tt.reasonHas {
				if !strings.Contains(d.Reason, s) {
					t.Errorf("Reason = %q, want it to contain %q", d.Reason, s)
				}
			}
			for _, s := range tt.reasonLack {
				if strings.Contains(d.Reason, s) {
					t.Errorf("Reason = %q, must not contain %q", d.Reason, s)
				}
			}
		})
	}
}

func TestAuthorizeDefaultModelSameAsExample(t *testing.T) {
	e, err := NewEnforcer("", examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Authorize(context.Background(), query("alice", "#ops", "rollback", "checkout", "prod"))
	if err != nil || !d.Allowed {
		t.Fatalf("alice rollback checkout prod with the embedded model: %+v, %v", d, err)
	}
	d, err = e.Authorize(context.Background(), query("alice", "#ops", "promote", "payments", "prod"))
	if err != nil || d.Allowed {
		t.Fatalf("alice promote payments prod with the embedded model: %+v, %v", d, err)
	}
}

func TestAuthorizeCancelledContext(t *testing.T) {
	e := newExampleEnforcer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := e.Authorize(ctx, query("bob", "#ops", "status", "checkout", "prod"))
	if !errors.Is(err, context.Canceled) || d.Allowed {
		t.Fatalf("Authorize with a cancelled ctx = %+v, %v; want a denial and context.Canceled", d, err)
	}
}

// writePolicy writes a policy file and returns its path.
func writePolicy(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPolicyFeatures covers policy syntax the demo file does not use.
func TestPolicyFeatures(t *testing.T) {
	pol := writePolicy(t, "features.csv", strings.Join([]string{
		"\ufeff# BOM and comments are fine",
		"",
		"g, dave, oncall, prod",          // member in prod only
		"g, erin, web, *",                // in every env
		"g, web, frontend, *",            // nested group
		"p, oncall, prod, *, restart, *", // any app
		`p, frontend, "{dev,staging}", web-*, rollback, *`, // quoted brace glob
		"p, erin, prod, checkout, status, #checkout-ops",   // one channel only
		"p, erin, prod, checkout, status, #checkout-ops",   // duplicate ignored
	}, "\n"))
	e, err := NewEnforcer("", pol)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		q       gitops.AuthzQuery
		allowed bool
		rule    string
	}{
		{query("dave", "#x", "restart", "checkout", "prod"), true, "p, oncall, prod, *, restart, *"},
		{query("dave", "#x", "restart", "checkout", "staging"), false, ""}, // group only in prod
		{query("erin", "#x", "rollback", "web-shop", "staging"), true, `p, frontend, "{dev,staging}", web-*, rollback, *`},
		{query("erin", "#x", "rollback", "web-shop", "prod"), false, ""},
		{query("erin", "#x", "rollback", "checkout", "dev"), false, ""},
		{query("erin", "#checkout-ops", "status", "checkout", "prod"), true, "p, erin, prod, checkout, status, #checkout-ops"},
		{query("erin", "#general", "status", "checkout", "prod"), false, ""},
		{query("erin", "", "status", "checkout", "prod"), false, ""},
	}
	for _, tt := range tests {
		d, err := e.Authorize(context.Background(), tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != tt.allowed || d.Rule != tt.rule {
			t.Errorf("%s %s %s in %s from %q = (%v, %q), want (%v, %q); reason %q",
				tt.q.Subject.User, tt.q.Action, tt.q.App, tt.q.Env, tt.q.Subject.Channel,
				d.Allowed, d.Rule, tt.allowed, tt.rule, d.Reason)
		}
	}

	d, _ := e.Authorize(context.Background(), query("dave", "#x", "restart", "checkout", "staging"))
	if strings.Contains(d.Reason, "oncall") {
		t.Errorf("dave is not in oncall for staging, but the reason says so: %q", d.Reason)
	}
	d, _ = e.Authorize(context.Background(), query("erin", "#x", "rollback", "checkout", "dev"))
	if !strings.Contains(d.Reason, "erin is in groups frontend, web in dev, and no rule of those groups covers this either") {
		t.Errorf("reason should list erin's groups (nested too): %q", d.Reason)
	}
}

func TestNewEnforcerErrors(t *testing.T) {
	dir := t.TempDir()
	goodPolicy := writePolicy(t, "good.csv", "p, bob, *, *, *, *\n")
	badModel := filepath.Join(dir, "bad-model.conf")
	if err := os.WriteFile(badModel, []byte("[request_definition]\nr = sub, obj, act\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fourFieldModel := filepath.Join(dir, "four-field-model.conf")
	if err := os.WriteFile(fourFieldModel, []byte(strings.Replace(DefaultModel,
		"r = sub, dom, obj, act, chan", "r = sub, dom, obj, act", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	noRolesModel := filepath.Join(dir, "no-roles-model.conf")
	if err := os.WriteFile(noRolesModel, []byte(strings.Replace(DefaultModel,
		"g = _, _, _", "g = _, _", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	badMatcherModel := filepath.Join(dir, "bad-matcher-model.conf")
	if err := os.WriteFile(badMatcherModel, []byte(strings.Replace(DefaultModel,
		"appMatch(r.obj, p.obj)", "nosuchFunc(r.obj, p.obj)", 1)), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		model, pol  string
		want        []string
		notExisting bool
	}{
		{name: "missing model file", model: filepath.Join(dir, "nope.conf"), pol: goodPolicy,
			want: []string{"nope.conf"}, notExisting: true},
		{name: "missing policy file", pol: filepath.Join(dir, "nope.csv"),
			want: []string{"nope.csv"}, notExisting: true},
		{name: "no policy path", pol: "", want: []string{"no policy file"}},
		{name: "model missing sections", model: badModel, pol: goodPolicy,
			want: []string{"bad-model.conf", "missing required sections"}},
		{name: "model with four request fields", model: fourFieldModel, pol: goodPolicy,
			want: []string{"four-field-model.conf", "r = sub, dom, obj, act, chan"}},
		{name: "model without domain roles", model: noRolesModel, pol: goodPolicy,
			want: []string{"no-roles-model.conf", "g = _, _, _"}},
		{name: "model with unknown matcher function", model: badMatcherModel, pol: goodPolicy,
			want: []string{"bad-matcher-model.conf", "matcher"}},
	}

	lines := []struct {
		name, line string
		want       string
	}{
		{"too few fields", "p, alice, prod, checkout, rollback", `p line has 4 fields after "p", want 5 (sub, dom, obj, act, chan)`},
		{"too many fields", "p, alice, prod, checkout, rollback, *, deny, x", `p line has 7 fields after "p", want 5 (sub, dom, obj, act, chan) or 6 (sub, dom, obj, act, chan, allow|deny)`},
		{"bad effect", "p, alice, prod, checkout, rollback, *, maybe", `field eft "maybe" must be allow or deny`},
		{"role line without env", "g, alice, team-checkout", `g line has 2 fields after "g", want 3 (user, group, env)`},
		{"unknown type", "x, alice, prod, checkout, rollback, *", `unknown rule type "x" (want p, g, review or justify)`},
		{"unknown numbered type", "p2, alice, prod, checkout, rollback, *", `unknown rule type "p2"`},
		{"unterminated quote", `p, alice, "prod, checkout, rollback, *`, "malformed CSV"},
		{"empty field", "p, alice, , checkout, rollback, *", "field dom is empty"},
		{"trailing comment", "p, alice, prod, checkout, rollback, * # note", "contains a space"},
		{"bad glob", "p, alice, prod, check[out, rollback, *", `field obj "check[out" is not a valid glob`},
		{"bad glob in role env", "g, alice, team, {prod", `field env "{prod" is not a valid glob`},
		{"typo in action", "p, alice, prod, checkout, rolback, *", `action "rolback" matches no shipbot action`},
		{"help rule", "p, alice, prod, checkout, help, *", "help is always allowed"},
		{"pattern subject", "p, team-*, prod, checkout, status, *", "subjects are matched exactly"},
		{"pattern group", "g, alice, team-*, *", "users and groups are matched exactly"},
		{"control character", "p, alice, prod, check\x00out, status, *", "control character"},
		{"app with two slashes", "p, alice, prod, a/b/c, status, *", `field obj "a/b/c" has more than one '/'`},
		{"app with empty namespace", "p, alice, prod, /checkout, status, *", `field obj "/checkout" has an empty side of '/'`},
		{"freeze of one app", "p, alice, prod, checkout, freeze, *", `freeze applies to a whole environment (the request has no app), so write * as the app, not "checkout"`},
		{"freeze pattern of one app", "p, alice, prod, checkout, \"{freeze,unfreeze}\", *", `never matches`},
		{"g in itself", "g, sre, sre, *", `g line puts "sre" in itself`},
		{"review too few fields", "review, *, prod, *, promote, 2", `review line has 5 fields after "review", want 6 (subject, env, app, action, approvals, group)`},
		{"review bad count", "review, *, prod, *, promote, two, sre", `approvals "two" must be a whole number from 0 to 20`},
		{"review negative count", "review, *, prod, *, promote, -1, sre", `approvals "-1" must be`},
		{"review too many", "review, *, prod, *, promote, 21, sre", `approvals "21" must be`},
		{"review padded count", "review, *, prod, *, promote, 02, sre", `approvals "02" must be`},
		{"review zero with group", "review, *, prod, *, promote, 0, sre", "a review with 0 approvals has no approvers"},
		{"review pattern group", "review, *, prod, *, promote, 2, s*", `group "s*" is a pattern`},
		{"review pattern subject", "review, team-*, prod, *, promote, 2, sre", `subject "team-*" is a pattern`},
		{"review unknown action", "review, *, prod, *, promot, 2, sre", `action "promot" matches no shipbot action`},
		{"review group without members", "review, *, prod, *, promote, 2, sres", `review group "sres" has no members: no g line puts anyone in it`},
		{"review shadowed", "review, *, prod, *, promote, 2, sre\nreview, *, prod, *, promote, 1, sre", "this review line never applies: "},
		{"justify too many fields", "justify, prod, *, rollback, jira-issue, x", `justify line has 5 fields after "justify", want 4 (env, app, action, kinds)`},
		{"justify unknown kind", "justify, prod, *, rollback, jira-isue", `unknown kind "jira-isue"`},
		{"justify empty kind", "justify, prod, *, rollback, jira-issue|", `unknown kind ""`},
		{"justify none combined", "justify, prod, *, rollback, none|jira-issue", "none stands alone"},
		{"justify kind twice", "justify, prod, *, rollback, jira-issue|jira-issue", "jira-issue given twice"},
		{"justify bad env glob", "justify, {prod, *, rollback, any", `field env "{prod" is not a valid glob`},
		{"justify shadowed", "justify, prod, *, rollback, any\njustify, prod, *, rollback, none", "this justify line never applies: "},
	}
	for _, l := range lines {
		// The bad line is line 3, after a comment and a good line (line 4
		// when the case has two lines: the second one is bad).
		p := writePolicy(t, "bad-"+strings.ReplaceAll(l.name, " ", "-")+".csv",
			"# header\ng, bob, sre, *\n"+l.line+"\n")
		line := 3 + strings.Count(l.line, "\n")
		tests = append(tests, struct {
			name        string
			model, pol  string
			want        []string
			notExisting bool
		}{name: "policy " + l.name, pol: p, want: []string{fmt.Sprintf("%s:%d: ", p, line), l.want}})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEnforcer(tt.model, tt.pol)
			if err == nil {
				t.Fatalf("NewEnforcer(%q, %q) = %v, want an error", tt.model, tt.pol, e)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tt.notExisting && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %q does not wrap fs.ErrNotExist", err)
			}
		})
	}
}

func TestAuthorizeConcurrent(t *testing.T) {
	e := newExampleEnforcer(t)
	cases := []struct {
		q       gitops.AuthzQuery
		allowed bool
	}{
		{query("alice", "#ops", "rollback", "checkout", "prod"), true},
		{query("alice", "#ops", "promote", "payments", "prod"), false},
		{query("alice", "#ops", "promote", "checkout", "staging"), true},
		{query("bob", "#ops", "promote", "payments", "prod"), true},
		{query("mallory", "#ops", "status", "checkout", "prod"), false},
		{query("carol", "#ops", "history", "search", "dev"), true},
		{query("zed", "#ops", "status", "checkout", "dev"), false},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for g := range 50 {
		wg.Go(func() {
			for i := range 40 {
				c := cases[(g+i)%len(cases)]
				d, err := e.Authorize(context.Background(), c.q)
				if err != nil {
					errs <- err
					return
				}
				if d.Allowed != c.allowed {
					errs <- errors.New(c.q.Subject.User + " " + string(c.q.Action) + " " + c.q.Env + ": wrong decision")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// v2Policy exercises policy v2: deny rules, anyone (*), channel-scoped
// rules, namespaced app patterns, environment-wide actions, review and
// justify lines.
const v2Policy = `# policy v2 features
g, alice, team-checkout, *
g, bob, sre, *
g, carol, sre, *
g, ivan, interns, *
g, ivan, team-checkout, *
g, dave, oncall, prod
g, erin, team-web, *
p, team-checkout, *, checkout, *, *
# interns may do nothing in prod, whatever their other groups allow
p, interns, prod, *, *, *, deny
# anyone may read status, from #ops only
p, *, *, *, status, "#ops"
# nothing at all from #random
p, *, *, *, *, #random, deny
p, sre, *, *, *, *, allow
# bob personally may not roll payments back in prod
p, bob, prod, payments, rollback, *, deny
# on-call may restart search (any namespace) in prod, from #incident only
p, oncall, prod, */search, restart, #incident
# team-web owns the apps of namespace shop
p, team-web, *, shop/*, rollback, *
# reviews: the first matching line applies
review, bob, prod, *, promote, 1, sre
review, *, prod, *, promote, 2, sre
review, team-checkout, staging, checkout, rollback, 1, *
# justifications: the first matching line applies
justify, prod, canary, *, none
justify, prod, *, "{rollback,restart}", pagerduty-incident|jira-issue
justify, staging, *, *, any
`

type decisionCase struct {
	name      string
	q         gitops.AuthzQuery
	allowed   bool
	rule      string // Decision.Rule
	reasonHas []string
	review    gitops.Review
	justify   gitops.JustificationRule
	glass     bool
}

var pdJira = gitops.JustificationRule{Required: true, Kinds: []string{"pagerduty-incident", "jira-issue"}}

var v2Cases = []decisionCase{
	// Allow through a group; extras from the first matching justify line.
	{name: "group allow with justification", q: query("alice", "#ops", "rollback", "checkout", "prod"), allowed: true,
		rule: "p, team-checkout, *, checkout, *, *", reasonHas: []string{"alice is in team-checkout in prod"}, justify: pdJira},
	// Deny wins over an allow of another group, whatever the order.
	{name: "deny of a group wins", q: query("ivan", "#ops", "rollback", "checkout", "prod"),
		reasonHas: []string{"the policy denies ivan rollback checkout in prod (from channel #ops): p, interns, prod, *, *, *, deny (ivan is in group interns in prod)"}},
	{name: "deny scoped to prod", q: query("ivan", "#ops", "rollback", "checkout", "staging"), allowed: true,
		rule: "p, team-checkout, *, checkout, *, *", review: gitops.Review{Approvals: 1}, justify: gitops.JustificationRule{Required: true}},
	{name: "personal deny wins over group allow", q: query("bob", "#ops", "rollback", "payments", "prod"),
		reasonHas: []string{"the policy denies bob rollback payments in prod (from channel #ops): p, bob, prod, payments, rollback, *, deny"}},
	{name: "personal deny is scoped", q: query("bob", "#ops", "rollback", "payments", "staging"), allowed: true,
		rule: "p, sre, *, *, *, *, allow", justify: gitops.JustificationRule{Required: true}},
	{name: "deny for anyone from a channel", q: query("bob", "#random", "status", "search", "dev"),
		reasonHas: []string{"the policy denies bob status search in dev (from channel #random): p, *, *, *, *, #random, deny"}},
	// Anyone (*), channel-scoped.
	{name: "anyone from #ops", q: query("mallory", "#ops", "status", "checkout", "prod"), allowed: true,
		rule: `p, *, *, *, status, #ops`, reasonHas: []string{"the rule applies to anyone"}},
	{name: "anyone, other channel: default deny", q: query("mallory", "#general", "status", "checkout", "prod"),
		reasonHas: []string{"no policy rule lets mallory status checkout in prod (from channel #general); an admin can add: p, mallory, prod, checkout, status, *"}},
	{name: "anyone, no channel: default deny", q: query("mallory", "", "status", "checkout", "prod")},
	// Channel-scoped rule of a group scoped to prod; namespaced patterns.
	{name: "channel-scoped rule", q: query("dave", "#incident", "restart", "search", "prod"), allowed: true,
		rule: "p, oncall, prod, */search, restart, #incident", justify: pdJira},
	{name: "channel-scoped rule, other channel", q: query("dave", "#ops", "restart", "search", "prod")},
	{name: "group only in prod", q: query("dave", "#incident", "restart", "search", "staging")},
	{name: "*/search matches a namespaced app", q: query("dave", "#incident", "restart", "shop/search", "prod"), allowed: true,
		justify: pdJira},
	{name: "namespace pattern", q: query("erin", "#ops", "rollback", "shop/web", "dev"), allowed: true,
		rule: "p, team-web, *, shop/*, rollback, *"},
	{name: "namespace pattern, app without namespace", q: query("erin", "#ops", "rollback", "web", "dev")},
	{name: "namespace pattern, other namespace", q: query("erin", "#ops", "rollback", "other/web", "dev")},
	{name: "plain app pattern matches in any namespace", q: query("alice", "#ops", "restart", "shop/checkout", "dev"), allowed: true,
		rule: "p, team-checkout, *, checkout, *, *"},
	// Review: the first matching line applies; a user's exemption first.
	{name: "review exemption for bob", q: query("bob", "#ops", "promote", "payments", "prod"), allowed: true,
		review: gitops.Review{Approvals: 1, Group: "sre"}},
	{name: "review general line", q: query("carol", "#ops", "promote", "payments", "prod"), allowed: true,
		review: gitops.Review{Approvals: 2, Group: "sre"}},
	{name: "review of a group, no justify line", q: query("alice", "#ops", "promote", "checkout", "prod"), allowed: true,
		review: gitops.Review{Approvals: 2, Group: "sre"}},
	{name: "review by anyone", q: query("alice", "#ops", "rollback", "checkout", "staging"), allowed: true,
		review: gitops.Review{Approvals: 1}, justify: gitops.JustificationRule{Required: true}},
	{name: "no review outside its scope", q: query("carol", "#ops", "promote", "payments", "staging"), allowed: true,
		justify: gitops.JustificationRule{Required: true}},
	// Justify: none first, then kinds.
	{name: "justify none exemption", q: query("carol", "#ops", "rollback", "canary", "prod"), allowed: true},
	{name: "justify kinds", q: query("carol", "#ops", "restart", "payments", "prod"), allowed: true, justify: pdJira},
	{name: "no justify line", q: query("carol", "#ops", "status", "payments", "dev"), allowed: true},
	// Break-glass and environment-wide actions.
	{name: "break-glass", q: query("carol", "#ops", "breakglass", "checkout", "prod"), allowed: true, glass: true},
	{name: "break-glass through a * action of the app's team", q: query("alice", "#ops", "breakglass", "checkout", "dev"), allowed: true, glass: true},
	{name: "freeze env-wide", q: query("carol", "#ops", "freeze", "", "prod"), allowed: true, rule: "p, sre, *, *, *, *, allow"},
	{name: "freeze not granted by an app rule", q: query("alice", "#ops", "freeze", "", "prod"),
		reasonHas: []string{"no policy rule lets alice freeze prod (from channel #ops)", "an admin can add: p, alice, prod, *, freeze, *"}},
	{name: "freeze needs an env", q: query("carol", "#ops", "unfreeze", "", ""), reasonHas: []string{"cannot authorize unfreeze without an environment"}},
	{name: "rollback still needs an app", q: query("carol", "#ops", "rollback", "", "prod"), reasonHas: []string{"without both an app and an environment"}},
	{name: "approve", q: query("carol", "#ops", "approve", "checkout", "prod"), allowed: true},
	{name: "approve denied", q: query("mallory", "#ops", "approve", "checkout", "prod")},
}

func checkDecision(t *testing.T, tt decisionCase, d gitops.Decision) {
	t.Helper()
	if d.Allowed != tt.allowed {
		t.Fatalf("Allowed = %v, want %v (rule %q, reason %q)", d.Allowed, tt.allowed, d.Rule, d.Reason)
	}
	if tt.rule != "" && d.Rule != tt.rule {
		t.Errorf("Rule = %q, want %q", d.Rule, tt.rule)
	}
	if !tt.allowed && d.Rule != "" {
		t.Errorf("denied with Rule %q", d.Rule)
	}
	if !tt.allowed && d.Reason == "" {
		t.Errorf("denied without a Reason")
	}
	for _, s := range tt.reasonHas {
		if !strings.Contains(d.Reason, s) {
			t.Errorf("Reason = %q, want it to contain %q", d.Reason, s)
		}
	}
	if d.Review != tt.review {
		t.Errorf("Review = %+v, want %+v", d.Review, tt.review)
	}
	if d.Justification.Required != tt.justify.Required || !slices.Equal(d.Justification.Kinds, tt.justify.Kinds) {
		t.Errorf("Justification = %+v, want %+v", d.Justification, tt.justify)
	}
	if d.BreakGlass != tt.glass {
		t.Errorf("BreakGlass = %v, want %v", d.BreakGlass, tt.glass)
	}
}

func TestAuthorizeV2(t *testing.T) {
	e, err := NewEnforcer("", writePolicy(t, "v2.csv", v2Policy))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range v2Cases {
		t.Run(tt.name, func(t *testing.T) {
			d, err := e.Authorize(context.Background(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			checkDecision(t, tt, d)
		})
	}
}

// TestAuthorizeOrderOfAllowAndDenyLines checks that allow and deny lines
// decide the same whatever their order (review and justify lines keep
// theirs: the first matching one applies).
func TestAuthorizeOrderOfAllowAndDenyLines(t *testing.T) {
	var perms, rest []string
	for line := range strings.Lines(v2Policy) {
		if strings.HasPrefix(line, "p, ") || strings.HasPrefix(line, "g, ") {
			perms = append(perms, line)
		} else if !strings.HasPrefix(line, "#") {
			rest = append(rest, line)
		}
	}
	slices.Reverse(perms)
	e, err := NewEnforcer("", writePolicy(t, "reversed.csv", strings.Join(append(perms, rest...), "")))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range v2Cases {
		d, err := e.Authorize(context.Background(), tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != tt.allowed {
			t.Errorf("%s: with the lines reversed, Allowed = %v, want %v (%s)", tt.name, d.Allowed, tt.allowed, d.Reason)
		}
	}
}

func TestInGroup(t *testing.T) {
	e, err := NewEnforcer("", writePolicy(t, "v2.csv", v2Policy+"g, team-checkout, all-teams, *\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		user, group, env string
		want             bool
	}{
		{"bob", "sre", "prod", true},
		{"alice", "sre", "prod", false},
		{"dave", "oncall", "prod", true},
		{"dave", "oncall", "dev", false},
		{"alice", "all-teams", "dev", true}, // nested
		{"mallory", "sre", "prod", false},
	} {
		if got := e.InGroup(tt.user, tt.group, tt.env); got != tt.want {
			t.Errorf("InGroup(%s, %s, %s) = %v, want %v", tt.user, tt.group, tt.env, got, tt.want)
		}
	}
}

func TestAppMatch(t *testing.T) {
	for _, tt := range []struct {
		obj, pattern string
		want         bool
	}{
		{"checkout", "checkout", true},
		{"checkout", "*", true},
		{"checkout", "*/checkout", true},
		{"checkout", "*/*", true},
		{"checkout", "shop/*", false},
		{"checkout", "check*", true},
		{"shop/checkout", "checkout", true},
		{"shop/checkout", "*", true},
		{"shop/checkout", "*/checkout", true},
		{"shop/checkout", "shop/*", true},
		{"shop/checkout", "shop/checkout", true},
		{"shop/checkout", "web/*", false},
		{"shop/checkout", "payments", false},
		{"", "*", true}, // environment-wide actions have no app
		{"", "checkout", false},
		{"", "*/*", true},
		{"a/b/c", "*", false},
	} {
		if got := appMatch(tt.obj, tt.pattern); got != tt.want {
			t.Errorf("appMatch(%q, %q) = %v, want %v", tt.obj, tt.pattern, got, tt.want)
		}
	}
}
