package policy

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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
			name: "alice promote checkout into prod denied",
			q:    query("alice", "#ops", "promote", "checkout", "prod"),
			reasonHas: []string{
				"no policy rule lets alice promote checkout in prod (from channel #ops)",
				"alice is in group team-checkout in prod, and no rule of that group covers this either",
				"an admin can add: p, alice, prod, checkout, promote, *",
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
	d, err = e.Authorize(context.Background(), query("alice", "#ops", "promote", "checkout", "prod"))
	if err != nil || d.Allowed {
		t.Fatalf("alice promote checkout prod with the embedded model: %+v, %v", d, err)
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
		"globMatch(r.obj, p.obj)", "nosuchFunc(r.obj, p.obj)", 1)), 0o600); err != nil {
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
		{"too many fields", "p, alice, prod, checkout, rollback, *, deny", `has 6 fields after "p", want 5`},
		{"role line without env", "g, alice, team-checkout", `g line has 2 fields after "g", want 3 (user, group, env)`},
		{"unknown type", "x, alice, prod, checkout, rollback, *", `unknown rule type "x"`},
		{"unknown numbered type", "p2, alice, prod, checkout, rollback, *", `unknown rule type "p2"`},
		{"unterminated quote", `p, alice, "prod, checkout, rollback, *`, "malformed CSV"},
		{"empty field", "p, alice, , checkout, rollback, *", "field dom is empty"},
		{"trailing comment", "p, alice, prod, checkout, rollback, * # note", "contains a space"},
		{"bad glob", "p, alice, prod, check[out, rollback, *", `field obj "check[out" is not a valid glob`},
		{"bad glob in role env", "g, alice, team, {prod", `field env "{prod" is not a valid glob`},
		{"typo in action", "p, alice, prod, checkout, rolback, *", `action "rolback" matches no shipbot action`},
		{"help rule", "p, alice, prod, checkout, help, *", "help is always allowed"},
		{"pattern subject", "p, *, prod, checkout, status, *", "subjects are matched exactly"},
		{"pattern group", "g, alice, team-*, *", "users and groups are matched exactly"},
		{"control character", "p, alice, prod, check\x00out, status, *", "control character"},
	}
	for _, l := range lines {
		// The bad line is line 3, after a comment and a good line.
		p := writePolicy(t, "bad-"+strings.ReplaceAll(l.name, " ", "-")+".csv",
			"# header\np, bob, *, *, *, *\n"+l.line+"\n")
		tests = append(tests, struct {
			name        string
			model, pol  string
			want        []string
			notExisting bool
		}{name: "policy " + l.name, pol: p, want: []string{p + ":3: ", l.want}})
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
		{query("alice", "#ops", "promote", "checkout", "prod"), false},
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
