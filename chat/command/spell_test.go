package command

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
)

func TestSpell(t *testing.T) {
	for _, tc := range []struct {
		req  R
		want string
	}{
		{R{Action: rollback, App: "checkout", Env: "prod", Tag: "1.3.0", Why: "OPS-1"}, "rollback checkout prod to 1.3.0 --why OPS-1"},
		{R{Action: rollback, App: "checkout", Env: "prod", Why: "OPS-1 to 1.3.0"}, `rollback checkout prod --why "OPS-1 to 1.3.0"`},
		{R{Action: rollback, App: "checkout", Env: "prod", Why: `say "to" now`}, `rollback checkout prod --why say "to" now`},
		{R{Action: rollback, App: "checkout", Env: "prod", Why: `OPS-1 "quoted" to 1.2`}, `rollback checkout prod --why 'OPS-1 "quoted" to 1.2'`},
		{R{Action: restart, App: "checkout", Env: "prod", BreakGlass: true, Why: "see --force"}, `restart checkout prod --break-glass --why "see --force"`},
		{R{Action: promote, App: "checkout", FromEnv: "staging", Env: "prod", Why: "CHG-42"}, "promote checkout staging to prod --why CHG-42"},
		{R{Action: gitops.ActionFreeze, Env: "prod", Until: "4h", Why: "release week"}, "freeze prod until 4h --why release week"},
		{R{Action: rollback, App: "a", Env: "to", BreakGlass: true}, "rollback --break-glass a to"},
		{R{Action: history, App: "checkout", Env: "prod", Limit: 5}, "history checkout prod 5"},
		{R{Action: gitops.ActionUnpin, App: "checkout", Env: "prod", Why: "fixed in 1.4.3"}, "unpin checkout prod --why fixed in 1.4.3"},
		{R{Action: gitops.ActionPins, Env: "prod"}, "pins prod"},
	} {
		got := Spell(tc.req)
		if got != tc.want {
			t.Errorf("Spell(%+v) = %q, want %q", tc.req, got, tc.want)
		}
		if back, err := Parse(got); err != nil || !reflect.DeepEqual(back, tc.req) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", got, back, err, tc.req)
		}
	}
}

// TestParseSpellRoundTrip parses many lines made of the words that matter
// to the grammar (quotes of every kind, flags, smart dashes, clause
// keywords): every request parsed is valid, and its spelling parses back to
// it. A deterministic companion of FuzzParse.
func TestParseSpellRoundTrip(t *testing.T) {
	parts := []string{"rollback", "restart", "promote", "freeze", "status", "history", "unpin", "pins", "a", "b", "c", "to", "until", "TO",
		"--why", "--why=", "\u2014why", "'", "\"", "\u201c", "\u201d", "\u2018", "\u2019", " ", "\t", "\n",
		"--break-glass", "\u2014break-glass", "\u2014until", "--until", "x", "4h", "1.2", "-h", "=", "--x", "\u2014", "é", "it's", "reason"}
	r := rand.New(rand.NewSource(14))
	n := 100000
	if testing.Short() {
		n = 10000
	}
	for i := 0; i < n; i++ {
		var b strings.Builder
		for k := r.Intn(12); k >= 0; k-- {
			b.WriteString(parts[r.Intn(len(parts))])
			if r.Intn(2) == 0 {
				b.WriteString(" ")
			}
		}
		line := b.String()
		req, err := Parse(line)
		if err != nil {
			continue
		}
		checkRequest(t, line, req)
		if canon, ok := render(req); ok {
			if back, err := Parse(canon); err != nil || !reflect.DeepEqual(back, req) {
				t.Fatalf("Parse(%q) = %+v; its spelling %q parses to (%+v, %v)", line, req, canon, back, err)
			}
		}
	}
}
