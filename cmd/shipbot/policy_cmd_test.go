package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policyConfig writes a config whose policy is the demo's, and returns it.
func policyConfig(t *testing.T) string {
	t.Helper()
	return policyConfigWith(t, "")
}

// policyConfigWith writes a config whose policy is policy ("": the demo's),
// and returns it.
func policyConfigWith(t *testing.T, policy string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"model.conf", "policy.csv"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "policy.csv" && policy != "" {
			b = []byte(policy)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "shipbot.yaml")
	if err := os.WriteFile(cfg, []byte(`signing: {mode: off}
repo: {url: env.git}
policy: {model: model.conf, policy: policy.csv}
chat: {channel: "#ops"}
environments:
  - name: dev
  - name: prod
    protected: true
apps:
  checkout:
    layout: kustomize
    image: registry.example.com/shop/checkout
    envs:
      dev: {path: apps/checkout/overlays/dev}
      prod: {path: apps/checkout/overlays/prod}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func runPolicyCmd(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = runPolicy(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestPolicyExplain(t *testing.T) {
	cfg := policyConfig(t)
	tests := []struct {
		name     string
		args     []string
		exit     int // 0: nil error, 1: exitCode(1)
		stdout   []string
		stderr   []string
		noStdout []string
	}{
		{name: "allowed", args: []string{"explain", "--config", cfg, "--as", "alice", "rollback", "checkout", "prod"},
			stdout: []string{
				"request:   alice rollback checkout in prod from #ops\n", // the config's channel
				"decision:  allowed\n",
				": p, team-checkout, *, checkout, rollback, *  (as team-checkout)  <- decides\n",
				"justify:   required, of kind pagerduty-incident or jira-issue",
			}},
		{name: "denied exits 1", args: []string{"explain", "--config", cfg, "--as", "mallory", "rollback", "checkout", "prod"}, exit: 1,
			stdout: []string{"decision:  DENIED\n", "missing:   a rule such as: p, mallory, prod, checkout, rollback, *\n"}},
		{name: "flags after the arguments", args: []string{"explain", "promote", "checkout", "prod", "--as", "bob", "--config", cfg, "--channel", "#deploys"},
			stdout: []string{"bob promote checkout in prod from #deploys\n", "review:    2 approval(s) from group sre"}},
		{name: "a change under review", args: []string{"explain", "--config", cfg, "--as", "alice", "promote", "checkout", "prod"},
			stdout: []string{
				"decision:  allowed after 2 approvals from sre (the requester does not count)\n",
				"           who may approve: bob, carol, dave, and members of the chat group slack:sre-oncall\n",
			}, noStdout: []string{"WARNING", "NEVER MERGE"}},
		{name: "no channel", args: []string{"explain", "--config", cfg, "--as", "alice", "--channel=", "status", "checkout", "dev"},
			stdout: []string{"alice status checkout in dev (no channel)\n", "decision:  allowed\n"}},
		{name: "environment-wide action", args: []string{"explain", "--config", cfg, "--as", "carol", "freeze", "prod"},
			stdout: []string{"carol freeze prod from #ops\n", "p, sre, *, *, freeze, *  (as sre)  <- decides"}},
		{name: "unknown app and env are noted", args: []string{"explain", "--config", cfg, "--as", "bob", "restart", "chekout", "prd"},
			stdout: []string{"decision:  allowed\n"}, stderr: []string{`has no environment "prd"`, `has no app "chekout"`}},
		{name: "a Slack user group", args: []string{"explain", "--config", cfg, "--as", "erin", "--group", "slack:sre-oncall", "--group", "slack:lunch", "restart", "checkout", "prod"},
			stdout: []string{
				"reason:    erin is in sre in prod, through the chat group slack:sre-oncall\n",
				"groups:    slack:sre-oncall  (chat: erin is in the chat group slack:sre-oncall)\n",
				": p, sre, *, *, *, *  (as sre)  <- decides\n",
			}},
		{name: "the Slack user group's g line is scoped to prod", args: []string{"explain", "--config", cfg, "--as", "erin", "--group", "slack:sre-oncall", "restart", "checkout", "dev"}, exit: 1,
			stdout: []string{"decision:  DENIED\n"}},
		{name: "help", args: []string{"explain", "--config", cfg, "--as", "mallory", "help"},
			stdout: []string{"decision:  allowed\nreason:    help is always allowed\n"}, noStdout: []string{"groups:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runPolicyCmd(tt.args...)
			var code exitCode
			switch {
			case tt.exit == 0 && err != nil:
				t.Fatalf("err = %v, want nil\n%s", err, stdout)
			case tt.exit != 0 && (!errors.As(err, &code) || int(code) != tt.exit):
				t.Fatalf("err = %v, want exitCode(%d)", err, tt.exit)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.noStdout {
				if strings.Contains(stdout, s) {
					t.Errorf("stdout has %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if tt.stderr == nil && stderr != "" {
				t.Errorf("stderr = %q, want nothing", stderr)
			}
		})
	}
}

func TestPolicyUsageErrors(t *testing.T) {
	cfg := policyConfig(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "missing subcommand: explain or test"},
		{[]string{"explian"}, `unknown subcommand "explian"`},
		{[]string{"explain", "--as", "alice", "rollback", "checkout", "prod"}, "--config and --as are required"},
		{[]string{"explain", "--config", cfg, "rollback", "checkout", "prod"}, "--config and --as are required"},
		{[]string{"explain", "--config", cfg, "--as", "alice", "rolback", "checkout", "prod"}, `unknown action "rolback": want one of rollback, restart, promote`},
		{[]string{"explain", "--config", cfg, "--as", "alice", "rollback", "checkout"}, "want ACTION APP ENV, got 2 argument(s)"},
		{[]string{"explain", "--config", cfg, "--as", "alice", "freeze", "checkout", "prod"}, "freeze takes one environment: freeze ENV"},
		{[]string{"explain", "--config", cfg, "--as", "alice"}, "missing ACTION APP ENV"},
		{[]string{"explain", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"test"}, "want one TESTFILE"},
		{[]string{"test", "a.yaml", "b.yaml"}, "want one TESTFILE"},
	} {
		_, _, err := runPolicyCmd(tt.args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("runPolicy(%q) = %v, want a usage error with %q", tt.args, err, tt.want)
		}
	}
	// A config that fails to load is an error, not a usage error.
	_, _, err := runPolicyCmd("explain", "--config", filepath.Join(t.TempDir(), "nope.yaml"), "--as", "a", "status", "x", "y")
	var ue usageError
	if err == nil || errors.As(err, &ue) {
		t.Errorf("missing config: %v", err)
	}
	stdout, _, err := runPolicyCmd("help")
	if err != nil || !strings.Contains(stdout, "shipbot policy test [--config FILE] TESTFILE") {
		t.Errorf("policy help: %v\n%s", err, stdout)
	}
}

func TestPolicyTest(t *testing.T) {
	example := filepath.Join("..", "..", "deploy", "examples", "policy_test.yaml")
	// Without --config: the model and policy the table names.
	stdout, _, err := runPolicyCmd("test", example)
	if err != nil || !strings.HasPrefix(stdout, "ok   "+example+": ") {
		t.Fatalf("policy test %s: %v\n%s", example, err, stdout)
	}
	// With --config: the config's policy.
	cfg := policyConfig(t)
	stdout, _, err = runPolicyCmd("test", "--config", cfg, example)
	if err != nil || !strings.Contains(stdout, "cases passed") {
		t.Fatalf("policy test --config: %v\n%s", err, stdout)
	}

	// A failing case: exit 1, the case's line and what differs.
	bad := filepath.Join(filepath.Dir(cfg), "bad_test.yaml")
	if err := os.WriteFile(bad, []byte("policy: policy.csv\ncases:\n  - {user: alice, action: status, app: checkout, env: prod, allow: true}\n  - {user: mallory, action: status, app: checkout, env: prod, allow: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _, err = runPolicyCmd("test", bad)
	var code exitCode
	if !errors.As(err, &code) || code != 1 {
		t.Fatalf("failing table: err = %v, want exitCode(1)", err)
	}
	for _, s := range []string{"FAIL " + bad + ":4: mallory status checkout in prod\n     denied, want allowed", "FAIL " + bad + ": 2 cases, 1 passed, 1 failed\n"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}

	// A table without a policy needs --config.
	nopol := filepath.Join(filepath.Dir(cfg), "nopol_test.yaml")
	if err := os.WriteFile(nopol, []byte("cases:\n  - {user: a, action: help, allow: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ue usageError
	if _, _, err := runPolicyCmd("test", nopol); !errors.As(err, &ue) || !strings.Contains(err.Error(), "names no policy: give --config FILE") {
		t.Errorf("table without policy: %v", err)
	}
	if _, _, err := runPolicyCmd("test", "--config", cfg, nopol); err != nil {
		t.Errorf("table without policy, with --config: %v", err)
	}
	// An invalid table is an error with file:line.
	if err := os.WriteFile(bad, []byte("cases:\n  - {user: a, action: help, allow: maybe}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runPolicyCmd("test", bad); err == nil || !strings.Contains(err.Error(), bad+":2: allow: want true or false") {
		t.Errorf("invalid table: %v", err)
	}
}

// tightPolicy has two SREs: a prod promotion by one of them can't get its
// two approvals, and a dev promotion needing three never can.
const tightPolicy = `g, alice, team-checkout, *
g, bob, sre, *
g, carol, sre, *
p, team-checkout, *, checkout, *, *
p, sre, *, *, *, *
review, *, prod, *, promote, 2, sre
review, *, dev, *, promote, 3, sre
`

func TestPolicyExplainUnmergeable(t *testing.T) {
	cfg := policyConfigWith(t, tightPolicy)
	for _, tc := range []struct {
		user, env string
		want      []string
		no        []string
	}{
		{"alice", "prod", []string{
			"decision:  allowed after 2 approvals from sre (the requester does not count)\n",
			"           who may approve: bob, carol\n",
		}, []string{"WARNING"}},
		{"bob", "prod", []string{
			"decision:  allowed after 2 approvals from sre (the requester does not count)\nreason:    bob is in sre in prod\n" +
				"WARNING:   THIS CHANGE CAN NEVER MERGE: only 1 of the 2 approvals can ever be given: carol is the only other member of sre allowed to approve; add approvers or lower the count\n",
			"           who may approve: carol\n",
		}, nil},
		{"alice", "dev", []string{
			"WARNING:   THIS CHANGE CAN NEVER MERGE: only 2 of the 3 approvals can ever be given: bob and carol are the only other members of sre allowed to approve; add approvers or lower the count\n",
		}, nil},
	} {
		stdout, stderr, err := runPolicyCmd("explain", "--config", cfg, "--as", tc.user, "promote", "checkout", tc.env)
		if err != nil || stderr != "" {
			t.Errorf("%s promote checkout %s: err = %v (an allowed request exits 0), stderr %q", tc.user, tc.env, err, stderr)
		}
		for _, s := range tc.want {
			if !strings.Contains(stdout, s) {
				t.Errorf("%s promote checkout %s: stdout lacks %q:\n%s", tc.user, tc.env, s, stdout)
			}
		}
		for _, s := range tc.no {
			if strings.Contains(stdout, s) {
				t.Errorf("%s promote checkout %s: stdout has %q:\n%s", tc.user, tc.env, s, stdout)
			}
		}
	}
}

func TestCheckReviewLines(t *testing.T) {
	run := func(cfg string) (string, string, error) {
		var out, errb bytes.Buffer
		// --offline: these configs name a repo that does not exist.
		err := runCheck(context.Background(), []string{"--config", cfg, "--offline"}, &out, &errb)
		return out.String(), errb.String(), err
	}
	cfg := policyConfigWith(t, tightPolicy)
	pol := filepath.Join(filepath.Dir(cfg), "policy.csv")
	stdout, _, err := run(cfg)
	if err == nil {
		t.Fatalf("check of an impossible review line passed:\n%s", stdout)
	}
	for _, s := range []string{
		"policy: " + pol + ":7: review, *, dev, *, promote, 3, sre: for checkout in dev it needs 3 approvals from sre, but only 2 users may approve it (bob, carol): such a change can never merge; ",
		"or lower the count",
	} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("check error lacks %q:\n%v", s, err)
		}
	}
	warning := "warning: " + pol + ":6: review, *, prod, *, promote, 2, sre: for checkout in prod it needs 2 approvals from sre and exactly 2 users may approve (bob, carol): when one of them asks, only 1 can approve and the change can never merge; "
	if !strings.HasPrefix(stdout, warning) {
		t.Errorf("stdout lacks the warning %q:\n%s", warning, stdout)
	}

	// Without the dev line: the warning only, and check passes.
	cfg = policyConfigWith(t, strings.Replace(tightPolicy, "review, *, dev, *, promote, 3, sre\n", "", 1))
	pol = filepath.Join(filepath.Dir(cfg), "policy.csv")
	stdout, _, err = run(cfg)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if !strings.HasPrefix(stdout, "warning: "+pol+":6: review, *, prod, *, promote, 2, sre: for checkout in prod it needs 2 approvals") || !strings.Contains(stdout, "is valid: 2 environments, 1 apps\n") {
		t.Errorf("check stdout:\n%s", stdout)
	}

	// The demo policy: three SREs for two approvals, nothing to say.
	stdout, _, err = run(policyConfig(t))
	if err != nil || strings.Contains(stdout, "review, ") {
		t.Errorf("check of the demo policy: %v\n%s", err, stdout)
	}
}

// chat.confirmKeyFile: check says when the key is missing or too short to
// sign Confirm buttons with.
func TestCheckConfirmKey(t *testing.T) {
	cfg := policyConfigWith(t, "")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(filepath.Dir(cfg), "confirm-key")
	data = bytes.Replace(data, []byte(`chat: {channel: "#ops"}`), []byte(`chat: {channel: "#ops", confirmKeyFile: confirm-key}`), 1)
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, want string }{
		{"", "confirm-key: no such file"},
		{"short\n", "holds 5 bytes; at least 32 random bytes are needed"},
		{strings.Repeat("k", 44) + "\n", ""},
	} {
		os.Remove(key)
		if tc.key != "" {
			if err := os.WriteFile(key, []byte(tc.key), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var out, errb bytes.Buffer
		err := runCheck(context.Background(), []string{"--config", cfg, "--offline"}, &out, &errb)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("key %q: %v", tc.key, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "chat.confirmKeyFile") || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("key %q: err = %v, want %q", tc.key, err, tc.want)
		}
	}
}
