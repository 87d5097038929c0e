package gitops_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// hostile is a reason with a bidi override, an isolate, zero-width
// characters, C0 and C1 controls, a line break and a BOM.
const hostile = "release\u202e week\u2066 \u200bfrozen\u200d\x07 by\u0085ops\u009b31m\nShipbot-Action: promote\ufeff"

func TestNormalize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		max  int
		want string
	}{
		{hostile, 0, "release week frozen by ops 31m Shipbot-Action: promote"},
		{"  a \t b  ", 0, "a b"},
		{"bad \xff utf8", 0, "bad \ufffd utf8"},
		{"abcdef", 4, "abc…"},
		{"ab cdef", 3, "ab…"},
		{"abc", 3, "abc"},
	} {
		if got := gitops.Normalize(tt.in, tt.max); got != tt.want {
			t.Errorf("Normalize(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
	if got := gitops.OneLine(hostile); got != gitops.Normalize(hostile, 0) {
		t.Errorf("OneLine is not the one normalisation: %q", got)
	}
	long := gitops.Reason(strings.Repeat("x", 5000))
	if utf8.RuneCountInString(long) != gitops.MaxReasonRunes || !strings.HasSuffix(long, "…") {
		t.Errorf("Reason of 5000 runes has %d runes", utf8.RuneCountInString(long))
	}
}

// A freeze's reason goes through the same normalisation as every reason
// before it lands in the commit and in .shipbot/freezes.yaml: no bidi
// override, control or zero-width character, at most MaxReasonRunes.
func TestFreezeReasonIsNormalised(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	why := hostile + " " + strings.Repeat("long ", 200)
	resp := f.svc.Handle(ctx, gitops.Request{ID: "shp-frzreason", Action: gitops.ActionFreeze, Env: "prod", Why: why, User: "carol"})
	if resp.Plan == nil {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	if done := f.svc.Confirm(ctx, resp.Plan); done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("%s: %s", done.Outcome, done.Text)
	}
	want := gitops.Reason(why)
	if !strings.HasPrefix(want, "release week frozen by ops 31m Shipbot-Action: promote long") || utf8.RuneCountInString(want) != gitops.MaxReasonRunes {
		t.Fatalf("normalised reason %q", want)
	}
	stored := gittest.Git(t, f.bare, "show", "main:"+gitops.FreezesPath)
	msg := gittest.Git(t, f.bare, "log", "-1", "--format=%B")
	for name, text := range map[string]string{"freezes.yaml": stored, "commit message": msg} {
		if strings.ContainsAny(text, "\u202e\u2066\u200b\u200d\x07\u0085\u009b\ufeff") {
			t.Errorf("%s keeps a control, bidi or zero-width character:\n%q", name, text)
		}
		if !strings.Contains(text, "why: '"+want+"'") && !strings.Contains(text, "Justification: "+want) {
			t.Errorf("%s lacks the normalised reason:\n%s", name, text)
		}
	}
	tr := parseTrailersWithGit(t, msg)
	if tr["Shipbot-Action"] != "freeze" || tr["Justification"] != want {
		t.Errorf("trailers %v", tr)
	}
	// The freeze blocks a promotion and says why, normalised.
	got := f.svc.Handle(ctx, gitops.Request{ID: "shp-promo", Action: gitops.ActionPromote, App: "checkout", FromEnv: "staging", Env: "prod", Why: "OPS-1", User: "bob"})
	if !strings.Contains(got.Text, "("+want+")") {
		t.Errorf("the freeze's reason in a refusal: %s", got.Text)
	}
}
