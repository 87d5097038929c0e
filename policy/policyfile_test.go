package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// v1Model is the model of policy v1: allow rules only, subjects matched
// exactly, app patterns as plain globs. Deployments may still have a copy.
const v1Model = `[request_definition]
r = sub, dom, obj, act, chan

[policy_definition]
p = sub, dom, obj, act, chan

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = (r.sub == p.sub || g(r.sub, p.sub, r.dom)) && globMatch(r.dom, p.dom) && globMatch(r.obj, p.obj) && globMatch(r.act, p.act) && globMatch(r.chan, p.chan)
`

func writeModel(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestV1ModelKeepsWorking loads the example policy (which has review and
// justify lines but no deny line) with the v1 model: the decisions are
// today's.
func TestV1ModelKeepsWorking(t *testing.T) {
	e, err := NewEnforcer(writeModel(t, v1Model), examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	caps := e.cur.Load().caps
	if caps.hasEft || caps.denyWins || caps.anySubject || caps.namespaces {
		t.Errorf("v1 model capabilities = %+v, want none", caps)
	}
	for _, tt := range []struct {
		q       []string
		allowed bool
	}{
		{[]string{"alice", "#ops", "rollback", "checkout", "prod"}, true},
		{[]string{"alice", "#ops", "promote", "payments", "prod"}, false},
		{[]string{"alice", "#ops", "promote", "checkout", "staging"}, true},
		{[]string{"bob", "#ops", "promote", "payments", "prod"}, true},
		{[]string{"mallory", "#ops", "status", "checkout", "prod"}, false},
	} {
		d, err := e.Authorize(context.Background(), query(tt.q[0], tt.q[1], tt.q[2], tt.q[3], tt.q[4]))
		if err != nil || d.Allowed != tt.allowed {
			t.Errorf("%v: %+v, %v; want allowed %v", tt.q, d, err, tt.allowed)
		}
	}
	d, _ := e.Authorize(context.Background(), query("bob", "#ops", "promote", "payments", "prod"))
	if d.Review.Approvals != 2 || d.Review.Group != "sre" {
		t.Errorf("review lines apply with the v1 model too: %+v", d.Review)
	}
}

// TestModelCapabilities refuses policy lines the model cannot honour.
func TestModelCapabilities(t *testing.T) {
	allowOnlyEft := strings.Replace(DefaultModel,
		"e = some(where (p.eft == allow)) && !some(where (p.eft == deny))", "e = some(where (p.eft == allow))", 1)
	tests := []struct {
		name, model, line, want string
	}{
		{"deny with v1 model", v1Model, "p, bob, prod, *, *, *, deny", "deny rules need a model where deny wins"},
		{"deny with allow-only effect", allowOnlyEft, "p, bob, prod, *, *, *, deny", "deny rules need a model where deny wins"},
		{"anyone with v1 model", v1Model, "p, *, prod, *, status, *", `subject * (anyone) needs a model whose matcher accepts it`},
		{"namespace with v1 model", v1Model, "p, bob, prod, shop/*, status, *", `field obj "shop/*" names a namespace, but the matcher of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := writePolicy(t, "p.csv", "g, bob, sre, *\n"+tt.line+"\n")
			_, err := NewEnforcer(writeModel(t, tt.model), pol)
			if err == nil || !strings.Contains(err.Error(), pol+":2: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %s:2: ... %s", err, pol, tt.want)
			}
		})
	}
	// An explicit allow on the v1 model is fine.
	pol := writePolicy(t, "p.csv", "p, bob, prod, *, status, *, allow\n")
	if _, err := NewEnforcer(writeModel(t, v1Model), pol); err != nil {
		t.Errorf("explicit allow with the v1 model: %v", err)
	}
}

func TestModelShape(t *testing.T) {
	pol := writePolicy(t, "p.csv", "p, bob, *, *, *, *\n")
	for _, tt := range []struct {
		name, from, to, want string
	}{
		{"seven policy fields", "p = sub, dom, obj, act, chan, eft", "p = sub, dom, obj, act, chan, eft, x", "policy_definition must be"},
		{"sixth field not eft", "p = sub, dom, obj, act, chan, eft", "p = sub, dom, obj, act, chan, x", "policy_definition must be"},
		{"matcher denies exact rules", "m = (p.sub", "m = false && (p.sub", "a request that is exactly a policy rule is denied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(DefaultModel, tt.from, tt.to, 1)
			if text == DefaultModel {
				t.Fatalf("%q not in DefaultModel", tt.from)
			}
			_, err := NewEnforcer(writeModel(t, text), pol)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPolicyLineDetails(t *testing.T) {
	pol := writePolicy(t, "p.csv", strings.Join([]string{
		"g, bob, sre, *",
		"p, bob, prod, checkout, status, *",
		"p, bob, prod, checkout, status, *, allow", // the same rule: the first line stands for it
		"p, bob, prod, checkout, status, *, deny",  // not the same: deny wins
		"review, *, prod, *, promote, 0, *",        // explicit: no review
		"justify, *, *, *, opsgenie-alert|text",
	}, "\n"))
	e, err := NewEnforcer("", pol)
	if err != nil {
		t.Fatal(err)
	}
	st := e.cur.Load()
	if len(st.pol.perms) != 2 {
		t.Errorf("perms = %d, want 2 (a duplicate is dropped)", len(st.pol.perms))
	}
	if got := st.pol.perms[0].src.Pos(); got != pol+":2" {
		t.Errorf("first rule at %s, want line 2", got)
	}
	d, _ := e.Authorize(context.Background(), query("bob", "#ops", "status", "checkout", "prod"))
	if d.Allowed || !strings.Contains(d.Reason, "p, bob, prod, checkout, status, *, deny") {
		t.Errorf("deny should win: %+v", d)
	}
}
