package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const exampleTests = "../deploy/examples/policy_test.yaml"

// TestExamplePolicyTests runs deploy/examples/policy_test.yaml against the
// demo policy: every case must pass.
func TestExamplePolicyTests(t *testing.T) {
	r, err := RunTests(newExampleEnforcer(t), exampleTests)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Cases < 30 {
		t.Fatalf("%d cases, %d failed:\n%s", r.Cases, len(r.Failures), r)
	}
	if got, want := r.String(), "ok   "+exampleTests+": "; !strings.HasPrefix(got, want) {
		t.Errorf("report %q, want it to start with %q", got, want)
	}
	tf, err := LoadTests(exampleTests)
	if err != nil {
		t.Fatal(err)
	}
	if tf.Model != filepath.Join("..", "deploy", "examples", "model.conf") || tf.Policy != filepath.Join("..", "deploy", "examples", "policy.csv") {
		t.Errorf("model %q, policy %q: want them beside the test file", tf.Model, tf.Policy)
	}
	// Every demo user and every action of the policy is covered.
	covered := map[string]bool{}
	for _, c := range tf.Cases {
		covered[c.User] = true
		covered[c.Action] = true
	}
	for _, want := range append([]string{"alice", "bob", "carol", "dave", "mallory", "help"}, actionNames()...) {
		if !covered[want] {
			t.Errorf("no case for %s", want)
		}
	}
}

func writeTests(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy_test.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunTestsReportsMismatchesWithLine(t *testing.T) {
	file := writeTests(t, `cases:
  - {user: alice, channel: "#ops", action: rollback, app: checkout, env: prod, allow: true}
  - {user: alice, channel: "#ops", action: promote, app: payments, env: prod, allow: true}
  - name: bob needs no review in prod
    user: bob
    action: promote
    app: payments
    env: prod
    allow: true
    approvals: 0
    approvers: "*"
    justify: [any]
    breakglass: true
    rule: p, sre, *, *, promote, *
    reason: bob is root
  - {user: mallory, action: status, app: checkout, env: prod, allow: false, rule: "p, x, *, *, *, *, deny"}
  - {user: carol, action: restart, app: checkout, env: prod, allow: true, justify: [jira-issue]}
  - {user: carol, action: restart, app: checkout, env: dev, allow: true, justify: [jira-issue, pagerduty-incident]}
  - {user: carol, action: restart, app: checkout, env: prod, allow: true, justify: []}
`)
	r, err := RunTests(newExampleEnforcer(t), file)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cases != 7 || r.Passed() != 1 || r.OK() {
		t.Fatalf("cases %d, passed %d:\n%s", r.Cases, r.Passed(), r)
	}
	want := []struct {
		line     string
		problems []string
	}{
		{":3", []string{"denied, want allowed (reason: no policy rule lets alice promote payments in prod"}},
		{":4", []string{
			`decided by "p, sre, *, *, *, *", want "p, sre, *, *, promote, *"`,
			`reason "bob is in sre in prod" does not contain "bob is root"`,
			"needs 2 approval(s), want 0",
			"approvers from group sre, want anyone allowed to approve (*)",
			"justification not required, want required, any kind",
			"break-glass false, want true",
		}},
		{":16", []string{`decided by "", want "p, x, *, *, *, *, deny"`}},
		{":17", []string{"justification required, pagerduty-incident|jira-issue, want required, jira-issue"}},
		{":18", []string{"justification not required, want required, jira-issue|pagerduty-incident"}},
		{":19", []string{"justification required, pagerduty-incident|jira-issue, want not required"}},
	}
	if len(r.Failures) != len(want) {
		t.Fatalf("%d failures, want %d:\n%s", len(r.Failures), len(want), r)
	}
	for i, w := range want {
		f := r.Failures[i]
		if f.Pos != file+w.line {
			t.Errorf("failure %d at %s, want %s%s", i, f.Pos, file, w.line)
		}
		if len(f.Problems) != len(w.problems) {
			t.Errorf("%s: problems %q, want %q", f.Pos, f.Problems, w.problems)
			continue
		}
		for j, p := range w.problems {
			if !strings.HasPrefix(f.Problems[j], p) {
				t.Errorf("%s: problem %q, want %q", f.Pos, f.Problems[j], p)
			}
		}
	}
	out := r.String()
	for _, s := range []string{
		"FAIL " + file + ":3: alice promote payments in prod from #ops\n     denied, want allowed",
		"FAIL " + file + ":4: bob needs no review in prod\n",
		"       | decision:  DENIED\n",
		"FAIL " + file + ": 7 cases, 1 passed, 6 failed\n",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("report lacks %q:\n%s", s, out)
		}
	}
}

func TestLoadTestsErrors(t *testing.T) {
	for _, tt := range []struct {
		name, text, want string
	}{
		{"not a mapping", "- {user: a}\n", "want a mapping with model, policy and cases"},
		{"unknown top key", "polcy: p.csv\ncases: []\n", `:1: unknown key "polcy" (want model, policy or cases)`},
		{"no cases", "policy: p.csv\n", "no cases"},
		{"cases not a list", "cases: {user: a}\n", ":1: cases: want a list of cases"},
		{"case not a mapping", "cases:\n  - alice\n", ":2: a case must be a mapping"},
		{"unknown case key", "cases:\n  - {user: a, action: status, app: x, env: y, allow: true, alow: false}\n", `:2: unknown key "alow"`},
		{"duplicate key", "cases:\n  - user: a\n    user: b\n", `:3: key "user" given twice`},
		{"missing keys", "cases:\n  - {channel: '#ops', action: status}\n", ":2: the case has no user, app, env, allow"},
		{"bad action", "cases:\n  - {user: a, action: rolback, app: x, env: y, allow: true}\n", `:2: unknown action "rolback"`},
		{"allow not bool", "cases:\n  - {user: a, action: status, app: x, env: y,\n     allow: yes}\n", ":3: allow: want true or false"},
		{"groups not a list", "cases:\n  - {user: a, groups: slack:sre, action: status, app: x, env: y, allow: true}\n", ":2: groups: want a list"},
		{"empty group", "cases:\n  - {user: a, groups: [''], action: status, app: x, env: y, allow: true}\n", ":2: groups: want a group name"},
		{"user not string", "cases:\n  - {user: [a], action: status, app: x, env: y, allow: true}\n", ":2: user: want a string"},
		{"negative approvals", "cases:\n  - {user: a, action: promote, app: x, env: y, allow: true, approvals: -1}\n", ":2: approvals: want a whole number"},
		{"unknown kind", "cases:\n  - {user: a, action: promote, app: x, env: y, allow: true, justify: [jira]}\n", `:2: justify: unknown kind "jira"`},
		{"justify not a list", "cases:\n  - {user: a, action: promote, app: x, env: y, allow: true, justify: jira-issue}\n", ":2: justify: want a list"},
		{"any with kinds", "cases:\n  - {user: a, action: promote, app: x, env: y, allow: true, justify: [any, text]}\n", ":2: justify: any stands alone"},
		{"extras on a denial", "cases:\n  - {user: a, action: promote, app: x, env: y, allow: false, approvals: 2}\n", ":2: approvals, approvers, justify and breakglass describe an allowed request"},
		{"two documents", "cases:\n  - {user: a, action: help, allow: true}\n---\ncases: []\n", ":3: a second YAML document"},
		{"bad yaml", "cases: [\n", "policy_test.yaml: yaml: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := writeTests(t, tt.text)
			_, err := LoadTests(file)
			if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadTests = %v, want an error with %s and %q", err, file, tt.want)
			}
		})
	}
	if _, err := RunTests(newExampleEnforcer(t), filepath.Join(t.TempDir(), "nope.yaml")); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("RunTests on a missing file: %v", err)
	}
}

func TestLoadTestsEnvWideAndHelp(t *testing.T) {
	file := writeTests(t, "cases:\n  - {user: bob, action: freeze, env: prod, allow: true}\n  - {user: a, action: help, allow: true}\n")
	r, err := RunTests(newExampleEnforcer(t), file)
	if err != nil || !r.OK() {
		t.Fatalf("%v\n%s", err, r)
	}
}
