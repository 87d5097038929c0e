package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every bad line of a policy is reported in one load, each with its file
// and line, so that `shipbot check` lists them all at once.
func TestEveryBadLineIsReported(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policy.csv")
	body := "g, alice, sre, *\np, sre, prod, checkout\np, sre, *, *, *, *\nq, bob\np, sre, *, *, dance, *\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewEnforcer("", p)
	if err == nil {
		t.Fatal("a policy with three bad lines loaded")
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 3 {
		t.Fatalf("want the three bad lines as three errors, got %v", err)
	}
	for i, want := range []string{p + ":2: p line has 3 fields", p + ":4: unknown rule type \"q\"", p + ":5: "} {
		if got := joined.Unwrap()[i].Error(); !strings.HasPrefix(got, want) {
			t.Errorf("problem %d = %q, want it to start with %q", i, got, want)
		}
	}
	if !strings.HasPrefix(err.Error(), "policy: "+p+":2: ") {
		t.Errorf("error = %q, want it to start with the policy: prefix and the first line", err)
	}
}
