package command

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
)

// Independent oracles for the invariants: regular expressions written from
// the grammars, not the hand-written checks Parse uses.
var (
	dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	ociTagRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

func FuzzParse(f *testing.F) {
	for _, tc := range parseTests {
		f.Add(tc.line)
	}
	for _, s := range []string{
		"rollback a b to c --why d",
		"<@UABC|x>:ship promote a b to c --why=\"d\"",
		"history a b 5 --why '",
		"rollback a b to -h",
		"'--why' x",
		"\"\" \"\" ''",
		"ship ship status x",
		"promote a b to --help",
		"rollback a b --why c to d",
		"rollback a b --why 'c to d' --break-glass",
		"rollback a b --why \u201cc\u201d to d",
		"freeze a --why b until 4h",
		"rollback a b --why c --break-glass d",
		"restart a b \u2014break-glass --why x",
		"unpin a b --why c",
		"unpin a b --why 'c --break-glass'",
		"pins a",
		"pins --why x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		req, err := Parse(line)
		req2, err2 := Parse(line)
		if !reflect.DeepEqual(req, req2) || (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("Parse(%q) is not deterministic: (%+v, %v) then (%+v, %v)", line, req, err, req2, err2)
		}
		if err != nil {
			var ue *gitops.UserError
			if !errors.As(err, &ue) || ue.Message == "" {
				t.Fatalf("Parse(%q): error %T %v is not a *gitops.UserError with a message", line, err, err)
			}
			if !reflect.DeepEqual(req, gitops.Request{}) {
				t.Fatalf("Parse(%q): non-zero request %+v with error %v", line, req, err)
			}
			return
		}
		checkRequest(t, line, req)

		// The canonical rendering of a parsed request parses back to it.
		if canon, ok := render(req); ok {
			back, err := Parse(canon)
			if err != nil || !reflect.DeepEqual(back, req) {
				t.Fatalf("Parse(%q) = %+v; its rendering %q parses to (%+v, %v)", line, req, canon, back, err)
			}
		}
	})
}

// checkRequest asserts the invariants of a successfully parsed request.
func checkRequest(t *testing.T, line string, req gitops.Request) {
	t.Helper()
	fail := func(format string, a ...any) {
		t.Helper()
		t.Fatalf("Parse(%q) = %+v: "+format, append([]any{line, req}, a...)...)
	}
	if len(line) > maxLineBytes {
		fail("accepted a line of %d bytes", len(line))
	}
	if req.ID != "" || req.User != "" || req.Channel != "" || !req.At.IsZero() {
		fail("set a field reserved for the front end")
	}
	if Usage(req.Action) == "" {
		fail("invalid action %q", req.Action)
	}
	for field, v := range map[string]string{"App": req.App, "Env": req.Env, "FromEnv": req.FromEnv} {
		if v != "" && !dnsLabelRE.MatchString(v) {
			fail("%s %q is not a DNS label", field, v)
		}
	}
	if req.Tag != "" && (!ociTagRE.MatchString(req.Tag) || ValidTag(req.Tag) != nil) {
		fail("tag %q is not a valid OCI tag", req.Tag)
	}
	if strings.IndexByte(req.Why, 0) >= 0 || req.Why != strings.TrimSpace(req.Why) ||
		req.Why != "" && strings.TrimSpace(req.Why) == "" {
		fail("bad Why %q", req.Why)
	}
	if req.Tag != "" && req.Action != gitops.ActionRollback {
		fail("Tag set for %s", req.Action)
	}
	if req.FromEnv != "" && req.Action != gitops.ActionPromote {
		fail("FromEnv set for %s", req.Action)
	}
	if req.Limit != 0 && (req.Action != gitops.ActionHistory || req.Limit < 1 || req.Limit > maxLimit) {
		fail("bad Limit %d", req.Limit)
	}
	switch req.Action {
	case gitops.ActionRollback, gitops.ActionRestart, gitops.ActionHistory:
		if req.App == "" || req.Env == "" {
			fail("missing App or Env")
		}
	case gitops.ActionPromote:
		if req.App == "" || req.Env == "" || req.FromEnv == "" || req.FromEnv == req.Env {
			fail("bad promote environments")
		}
	case gitops.ActionStatus:
		if req.App == "" || req.Env != "" {
			fail("status takes exactly an app")
		}
	case gitops.ActionUnpin:
		if req.App == "" || req.Env == "" || req.Why == "" || req.BreakGlass {
			fail("unpin takes an app, an environment and a reason")
		}
	case gitops.ActionPins:
		if req.App != "" || req.BreakGlass {
			fail("pins takes at most an environment")
		}
	case gitops.ActionHelp:
		if req.App != "" && Usage(gitops.Action(req.App)) == "" {
			fail("help topic %q is not a command", req.App)
		}
		if req.Env != "" {
			fail("help with an Env")
		}
	}
}

// render writes req back as a canonical chat line (Spell). It reports
// false when no quoting keeps the reason whole, or the line is too long.
func render(req gitops.Request) (string, bool) {
	s, ok := spell(req)
	return s, ok && len(s) <= maxLineBytes
}
