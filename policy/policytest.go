package policy

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shipbot/shipbot/gitops"
)

// TestFile is a policy test table (see deploy/examples/policy_test.yaml):
//
//	model: model.conf    # optional: the model to test with, relative to this file
//	policy: policy.csv   # optional: the policy to test, relative to this file
//	cases:
//	  - {user: alice, channel: "#ops", action: rollback, app: checkout, env: prod,
//	     allow: true, approvals: 0, justify: [pagerduty-incident, jira-issue]}
//	  - {user: mallory, action: status, app: checkout, env: prod, allow: false}
//
// Each case is one request and the decision expected for it. user, action,
// env and allow are required; app too, except for freeze and unfreeze
// (environment-wide) and help. channel is optional (no channel when left
// out). The other keys are checked only when given, and only for allow: true:
//
//	approvals:  N       Review.Approvals (0 = lands directly)
//	approvers:  GROUP   Review.Group (* = anyone allowed to approve)
//	justify:    [KINDS] [] = no justification required, [any] = required,
//	                    any kind, else required with exactly these kinds
//	breakglass: BOOL    Decision.BreakGlass
//
// and for any case:
//
//	rule:   LINE        the deciding line: the allow line that allowed, or
//	                    the deny line that denied ("" = denied by default)
//	reason: TEXT        a substring of Decision.Reason
//	name:   TEXT        what the case is about, shown when it fails
type TestFile struct {
	File   string
	Model  string // "" = not given (resolved against the file's directory)
	Policy string // "" = not given (resolved against the file's directory)
	Cases  []TestCase
}

// TestCase is one case of a TestFile.
type TestCase struct {
	Line                            int
	Name                            string
	User, Channel, Action, App, Env string
	Groups                          []string // the chat platform's groups of the user
	Allow                           bool
	Approvals                       *int
	Approvers                       *string
	Justify                         *[]string
	BreakGlass                      *bool
	Rule                            *string
	Reason                          *string
}

// Report is the outcome of a test table.
type Report struct {
	File     string
	Cases    int
	Failures []TestFailure
}

// TestFailure is a case whose decision is not the expected one.
type TestFailure struct {
	Pos         string   // "policy_test.yaml:12", the line of the case
	Case        string   // the case's name, or its request
	Problems    []string // e.g. "allowed, want denied"
	Explanation Explanation
}

// OK reports whether every case passed.
func (r Report) OK() bool { return len(r.Failures) == 0 }

// Passed is the number of cases that passed.
func (r Report) Passed() int { return r.Cases - len(r.Failures) }

// String lists the failures, each with the explanation of its decision, and
// a summary line.
func (r Report) String() string {
	var b strings.Builder
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "FAIL %s: %s\n", f.Pos, f.Case)
		for _, p := range f.Problems {
			fmt.Fprintf(&b, "     %s\n", p)
		}
		for line := range strings.Lines(f.Explanation.String()) {
			fmt.Fprintf(&b, "       | %s", line)
		}
	}
	if r.OK() {
		fmt.Fprintf(&b, "ok   %s: %d cases passed\n", r.File, r.Cases)
	} else {
		fmt.Fprintf(&b, "FAIL %s: %d cases, %d passed, %d failed\n", r.File, r.Cases, r.Passed(), len(r.Failures))
	}
	return b.String()
}

// RunTests reads the test table file and checks every case against e. A
// case whose decision differs is a failure in the Report (with the file:line
// of the case); an unreadable or invalid file is an error (with file:line).
// The file's model and policy keys are not used: e is what is tested.
func RunTests(e *Enforcer, file string) (Report, error) {
	tf, err := LoadTests(file)
	if err != nil {
		return Report{}, err
	}
	return tf.Run(e), nil
}

// Run checks every case against e.
func (tf *TestFile) Run(e *Enforcer) Report {
	r := Report{File: tf.File, Cases: len(tf.Cases)}
	for _, c := range tf.Cases {
		x := e.Explain(c.query())
		if problems := c.check(x); len(problems) > 0 {
			r.Failures = append(r.Failures, TestFailure{
				Pos: fmt.Sprintf("%s:%d", tf.File, c.Line), Case: c.describe(), Problems: problems, Explanation: x,
			})
		}
	}
	return r
}

func (c TestCase) query() gitops.AuthzQuery {
	return gitops.AuthzQuery{
		Subject: gitops.Subject{User: c.User, Channel: c.Channel, Groups: c.Groups},
		Env:     c.Env, App: c.App, Action: gitops.Action(c.Action),
	}
}

func (c TestCase) describe() string {
	if c.Name != "" {
		return c.Name
	}
	s := c.User + " " + c.Action
	if c.App != "" {
		s += " " + c.App + " in"
	}
	s += " " + c.Env
	if c.Channel != "" {
		s += " from " + c.Channel
	}
	if len(c.Groups) > 0 {
		s += " (chat groups " + strings.Join(c.Groups, ", ") + ")"
	}
	return s
}

func allowedText(b bool) string {
	if b {
		return "allowed"
	}
	return "denied"
}

// check compares the decision with the case.
func (c TestCase) check(x Explanation) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	d := x.Decision
	if x.Err != nil {
		add("the policy could not be evaluated: %v", x.Err)
	}
	if d.Allowed != c.Allow {
		add("%s, want %s (reason: %s)", allowedText(d.Allowed), allowedText(c.Allow), d.Reason)
		return problems
	}
	if c.Rule != nil {
		got := d.Rule
		if !d.Allowed {
			got = ""
			if len(x.Deny) > 0 {
				got = x.Deny[0].Rule
			}
		}
		if got != *c.Rule {
			add("decided by %q, want %q", got, *c.Rule)
		}
	}
	if c.Reason != nil && !strings.Contains(d.Reason, *c.Reason) {
		add("reason %q does not contain %q", d.Reason, *c.Reason)
	}
	if c.Approvals != nil && d.Review.Approvals != *c.Approvals {
		add("needs %d approval(s), want %d", d.Review.Approvals, *c.Approvals)
	}
	if c.Approvers != nil {
		want := *c.Approvers
		if want == "*" {
			want = ""
		}
		if d.Review.Group != want {
			add("approvers from %s, want %s", groupText(d.Review.Group), groupText(want))
		}
	}
	if c.Justify != nil {
		want := *c.Justify
		got := justifyText(d.Justification)
		switch {
		case len(want) == 0 && d.Justification.Required,
			len(want) == 1 && want[0] == "any" && (!d.Justification.Required || len(d.Justification.Kinds) > 0),
			len(want) > 0 && want[0] != "any" && (!d.Justification.Required || !sameSet(want, d.Justification.Kinds)):
			add("justification %s, want %s", got, justifyText(wantJustification(want)))
		}
	}
	if c.BreakGlass != nil && d.BreakGlass != *c.BreakGlass {
		add("break-glass %v, want %v", d.BreakGlass, *c.BreakGlass)
	}
	return problems
}

func groupText(g string) string {
	if g == "" {
		return "anyone allowed to approve (*)"
	}
	return "group " + g
}

func wantJustification(want []string) gitops.JustificationRule {
	switch {
	case len(want) == 0:
		return gitops.JustificationRule{}
	case want[0] == "any":
		return gitops.JustificationRule{Required: true}
	}
	return gitops.JustificationRule{Required: true, Kinds: want}
}

func justifyText(j gitops.JustificationRule) string {
	switch {
	case !j.Required:
		return "not required"
	case len(j.Kinds) == 0:
		return "required, any kind"
	}
	return "required, " + strings.Join(j.Kinds, "|")
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// LoadTests reads and validates a test table. Every problem is reported as
// "<file>:<line>: ...": an unknown key, a value of the wrong type, a missing
// required key, an unknown action or justification kind.
func LoadTests(file string) (*TestFile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("policy tests: %w", err)
	}
	tf := &TestFile{File: file}
	fail := func(n *yaml.Node, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", file, n.Line, fmt.Sprintf(format, args...))
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fail(&extra, "a second YAML document; the file holds one")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: want a mapping with model, policy and cases", file)
	}
	dir := filepath.Dir(file)
	var cases *yaml.Node
	err = eachKey(doc.Content[0], fail, func(key string, k, v *yaml.Node) error {
		switch key {
		case "model", "policy":
			var s string
			if err := decodeScalar(v, &s, "!!str"); err != nil || s == "" {
				return fail(v, "%s: want a file name", key)
			}
			if !filepath.IsAbs(s) {
				s = filepath.Join(dir, s)
			}
			if key == "model" {
				tf.Model = s
			} else {
				tf.Policy = s
			}
		case "cases":
			if v.Kind != yaml.SequenceNode {
				return fail(v, "cases: want a list of cases")
			}
			cases = v
		default:
			return fail(k, "unknown key %q (want model, policy or cases)", key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if cases == nil || len(cases.Content) == 0 {
		return nil, fmt.Errorf("%s: no cases", file)
	}
	for _, n := range cases.Content {
		c, err := parseCase(n, fail)
		if err != nil {
			return nil, err
		}
		tf.Cases = append(tf.Cases, c)
	}
	return tf, nil
}

type failFunc func(n *yaml.Node, format string, args ...any) error

// eachKey calls f for each key of a mapping, refusing duplicate keys.
func eachKey(m *yaml.Node, fail failFunc, f func(key string, k, v *yaml.Node) error) error {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return fail(k, "want a plain key")
		}
		if seen[k.Value] {
			return fail(k, "key %q given twice", k.Value)
		}
		seen[k.Value] = true
		if err := f(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

// decodeScalar decodes a scalar of the given YAML tag into out.
func decodeScalar(v *yaml.Node, out any, tag string) error {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != tag {
		return errors.New("wrong type")
	}
	return v.Decode(out)
}

var caseKeys = []string{"name", "user", "groups", "channel", "action", "app", "env", "allow", "approvals", "approvers", "justify", "breakglass", "rule", "reason"}

func parseCase(n *yaml.Node, fail failFunc) (TestCase, error) {
	c := TestCase{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		return c, fail(n, "a case must be a mapping such as {user: alice, action: status, app: checkout, env: prod, allow: true}")
	}
	var allow *bool
	str := func(v *yaml.Node, key string, out *string) error {
		if err := decodeScalar(v, out, "!!str"); err != nil {
			return fail(v, "%s: want a string", key)
		}
		return nil
	}
	err := eachKey(n, fail, func(key string, k, v *yaml.Node) error {
		switch key {
		case "name":
			return str(v, key, &c.Name)
		case "user":
			return str(v, key, &c.User)
		case "channel":
			return str(v, key, &c.Channel)
		case "groups":
			if v.Kind != yaml.SequenceNode {
				return fail(v, "groups: want a list of the chat platform's groups, e.g. [slack:sre-oncall]")
			}
			for _, g := range v.Content {
				var name string
				if err := decodeScalar(g, &name, "!!str"); err != nil || name == "" {
					return fail(g, "groups: want a group name such as slack:sre-oncall")
				}
				c.Groups = append(c.Groups, name)
			}
		case "action":
			if err := str(v, key, &c.Action); err != nil {
				return err
			}
			if a := gitops.Action(c.Action); a != gitops.ActionHelp && !slices.Contains(policyActions, a) {
				return fail(v, "unknown action %q (want help or one of %s)", c.Action, strings.Join(actionNames(), ", "))
			}
		case "app":
			return str(v, key, &c.App)
		case "env":
			return str(v, key, &c.Env)
		case "allow", "breakglass":
			var b bool
			if err := decodeScalar(v, &b, "!!bool"); err != nil {
				return fail(v, "%s: want true or false", key)
			}
			if key == "allow" {
				allow = &b
			} else {
				c.BreakGlass = &b
			}
		case "approvals":
			var a int
			if err := decodeScalar(v, &a, "!!int"); err != nil || a < 0 {
				return fail(v, "approvals: want a whole number, 0 or more")
			}
			c.Approvals = &a
		case "approvers":
			var g string
			if err := str(v, key, &g); err != nil {
				return err
			}
			c.Approvers = &g
		case "justify":
			kinds, err := parseKinds(v)
			if err != nil {
				return fail(v, "justify: %v", err)
			}
			c.Justify = &kinds
		case "rule", "reason":
			var s string
			if err := str(v, key, &s); err != nil {
				return err
			}
			if key == "rule" {
				c.Rule = &s
			} else {
				c.Reason = &s
			}
		default:
			return fail(k, "unknown key %q (want %s)", key, strings.Join(caseKeys, ", "))
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	a := gitops.Action(c.Action)
	var missing []string
	if c.User == "" {
		missing = append(missing, "user")
	}
	if c.Action == "" {
		missing = append(missing, "action")
	}
	if c.App == "" && a != gitops.ActionHelp && !slices.Contains(envWideActions, a) {
		missing = append(missing, "app")
	}
	if c.Env == "" && a != gitops.ActionHelp {
		missing = append(missing, "env")
	}
	if allow == nil {
		missing = append(missing, "allow")
	}
	if len(missing) > 0 {
		return c, fail(n, "the case has no %s", strings.Join(missing, ", "))
	}
	c.Allow = *allow
	if !c.Allow && (c.Approvals != nil || c.Approvers != nil || c.Justify != nil || c.BreakGlass != nil) {
		return c, fail(n, "approvals, approvers, justify and breakglass describe an allowed request: they need allow: true")
	}
	return c, nil
}

// parseKinds reads a justify list: [], [any] or known kinds.
func parseKinds(v *yaml.Node) ([]string, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, errors.New("want a list: [] (not required), [any], or kinds such as [pagerduty-incident, jira-issue]")
	}
	kinds := []string{}
	for _, k := range v.Content {
		var s string
		if err := decodeScalar(k, &s, "!!str"); err != nil {
			return nil, errors.New("want a list of kinds")
		}
		switch {
		case s == "any":
			if len(v.Content) != 1 {
				return nil, errors.New("any stands alone")
			}
		case !slices.Contains(justifyKinds, s):
			return nil, fmt.Errorf("unknown kind %q (want any, or %s)", s, strings.Join(justifyKinds, ", "))
		case slices.Contains(kinds, s):
			return nil, fmt.Errorf("kind %q given twice", s)
		}
		kinds = append(kinds, s)
	}
	return kinds, nil
}
