package main

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary double as the shipbot command: scripts run
// `exec shipbot ...` exactly as a user types it in a shell.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"shipbot": func() {
			os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

// TestScript runs the end-to-end scripts in testdata/script. Each script
// drives shipbot through its chat on stdin and then inspects the demo
// environment repo with the real git client. The scripts are hand-written:
// there is deliberately no -update flag.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			// git (and go-git) read the user's configuration from HOME:
			// give every script an empty one, and no system config either.
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("XDG_CONFIG_HOME", env.WorkDir+"/.config")
			env.Setenv("GIT_CONFIG_NOSYSTEM", "1")
			// An identity for the commits the scripts make themselves (a
			// human pushing to the environment repo behind shipbot's back).
			env.Setenv("GIT_AUTHOR_NAME", "Human Operator")
			env.Setenv("GIT_AUTHOR_EMAIL", "human@shop.example.com")
			env.Setenv("GIT_COMMITTER_NAME", "Human Operator")
			env.Setenv("GIT_COMMITTER_EMAIL", "human@shop.example.com")
			env.Setenv("TZ", "UTC")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"capture":        cmdCapture,
			"unescape":       cmdUnescape,
			"pagerduty-fake": cmdPagerDutyFake,
			"envsubst":       cmdEnvsubst,
		},
	})
}

// cmdCapture implements `capture NAME REGEXP`: it matches REGEXP (multi-line
// mode, like stdout) against the standard output of the last command and sets
// the environment variable NAME to its first parenthesised group, so that a
// later line can check the same value elsewhere (e.g. the request id of the
// chat reply in the commit's trailers).
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! capture")
	}
	if len(args) != 2 {
		ts.Fatalf("usage: capture NAME REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	if re.NumSubexp() < 1 {
		ts.Fatalf("capture: %q has no (group) to capture", args[1])
	}
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if m == nil {
		ts.Fatalf("capture: no match for %#q in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
	ts.Logf("%s=%s", args[0], m[1])
}

// cmdUnescape implements `unescape FILE...`: it rewrites each file,
// interpreting Go escape sequences (\r, \x0b, \u2028, \\ ...). Scripts use
// it to feed shipbot control and invisible characters that must not appear
// raw in a txtar file.
func cmdUnescape(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! unescape")
	}
	if len(args) == 0 {
		ts.Fatalf("usage: unescape FILE...")
	}
	for _, name := range args {
		s := ts.ReadFile(name)
		var b strings.Builder
		for len(s) > 0 {
			r, multibyte, tail, err := strconv.UnquoteChar(s, 0)
			if err != nil {
				ts.Fatalf("unescape %s: bad escape near %q", name, s[:min(len(s), 10)])
			}
			if r < utf8.RuneSelf || !multibyte {
				b.WriteByte(byte(r))
			} else {
				b.WriteRune(r)
			}
			s = tail
		}
		ts.Check(os.WriteFile(ts.MkAbs(name), []byte(b.String()), 0o644))
	}
}
