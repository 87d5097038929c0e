package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/cmd/shipbot/internal/config"
	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/policy"
)

const policyUsage = `usage:
  shipbot policy explain --config FILE --as USER [--channel CH] [--group G]... ACTION APP ENV
  shipbot policy explain --config FILE --as USER [--channel CH] [--group G]... freeze|unfreeze ENV
      why the policy allows or denies the request, and with which review and
      justification; exits 1 when it is denied. A change under review lists
      who may approve it, and a WARNING says when its approvals can never
      all be given (exit 0: the request itself is allowed). --channel defaults to the
      config's chat.channel; --channel= asks from no channel. --group adds a
      group the chat platform vouches for, e.g. --group slack:sre-oncall
      (a Slack user group of USER).
  shipbot policy test [--config FILE] TESTFILE
      run a policy test table (deploy/examples/policy_test.yaml shows the
      format) against the config's policy, or without --config against the
      model and policy the table names; exits 1 when a case fails.`

// exitCode is returned by a command that has already reported its outcome
// (a denial, failed policy tests) and only needs the process to exit with
// this status, without an error message. run turns it into the status.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// runPolicy runs `shipbot policy explain|test`.
func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("missing subcommand: explain or test\n" + policyUsage)}
	}
	switch args[0] {
	case "explain":
		return runPolicyExplain(ctx, args[1:], stdout, stderr)
	case "test":
		return runPolicyTest(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, policyUsage)
		return nil
	}
	return usageError{fmt.Errorf("unknown subcommand %q: want explain or test\n%s", args[0], policyUsage)}
}

func runPolicyExplain(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flags("policy explain", stderr)
	cfgPath := fs.String("config", "", "config file (shipbot.yaml)")
	as := fs.String("as", "", "who asks (the policy subject)")
	channel := fs.String("channel", "", "chat channel the request comes from (default: chat.channel of the config)")
	var groups []string
	fs.Func("group", "a group of USER as the chat platform knows it, e.g. slack:sre-oncall (repeatable)", func(v string) error {
		if v = strings.TrimSpace(v); v == "" {
			return errors.New("empty group")
		}
		groups = append(groups, v)
		return nil
	})
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *cfgPath == "" || *as == "" {
		return usageError{errors.New("--config and --as are required\n" + policyUsage)}
	}
	q, err := explainQuery(*as, pos)
	if err != nil {
		return usageError{fmt.Errorf("%w\n%s", err, policyUsage)}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	q.Subject.Channel = cfg.Channel
	q.Subject.Groups = groups
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "channel" {
			q.Subject.Channel = *channel
		}
	})
	if env, err := cfg.Catalog.Env(q.Env); err == nil {
		q.Cluster = env.Cluster
	} else if q.Env != "" {
		fmt.Fprintf(stderr, "note: %s has no environment %q; explaining anyway\n", *cfgPath, q.Env)
	}
	if _, ok := cfg.Catalog.Apps[q.App]; !ok && q.App != "" {
		fmt.Fprintf(stderr, "note: %s has no app %q; explaining anyway\n", *cfgPath, q.App)
	}
	e, err := policy.NewEnforcer(cfg.PolicyModel, cfg.PolicyFile)
	if err != nil {
		return err
	}
	return explainTo(stdout, e, q)
}

// explainTo prints the explanation of q and turns a denial into exit
// status 1.
func explainTo(stdout io.Writer, e *policy.Enforcer, q gitops.AuthzQuery) error {
	x := e.Explain(q)
	fmt.Fprint(stdout, x.String())
	switch {
	case x.Err != nil:
		return x.Err
	case !x.Decision.Allowed:
		return exitCode(1)
	}
	return nil
}

// explainQuery reads ACTION APP ENV (ACTION ENV for an environment-wide
// action, ACTION alone for help).
func explainQuery(user string, pos []string) (gitops.AuthzQuery, error) {
	q := gitops.AuthzQuery{Subject: gitops.Subject{User: user}}
	if len(pos) == 0 {
		return q, errors.New("missing ACTION APP ENV")
	}
	act := gitops.Action(pos[0])
	q.Action = act
	envWide := act == gitops.ActionFreeze || act == gitops.ActionUnfreeze
	switch {
	case act == gitops.ActionHelp:
		if len(pos) != 1 {
			return q, errors.New("help takes no app or environment (it is always allowed)")
		}
	case !slices.Contains(policy.Actions(), act):
		names := make([]string, 0, len(policy.Actions()))
		for _, a := range policy.Actions() {
			names = append(names, string(a))
		}
		return q, fmt.Errorf("unknown action %q: want one of %s", pos[0], strings.Join(names, ", "))
	case envWide && len(pos) == 2:
		q.Env = pos[1]
	case envWide && len(pos) != 2:
		return q, fmt.Errorf("%s takes one environment: %s ENV", act, act)
	case len(pos) != 3:
		return q, fmt.Errorf("want ACTION APP ENV, got %d argument(s)", len(pos))
	default:
		q.App, q.Env = pos[1], pos[2]
	}
	return q, nil
}

func runPolicyTest(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flags("policy test", stderr)
	cfgPath := fs.String("config", "", "config file whose policy to test (default: the model and policy the test file names)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{errors.New("want one TESTFILE\n" + policyUsage)}
	}
	tf, err := policy.LoadTests(pos[0])
	if err != nil {
		return err
	}
	modelPath, policyPath := tf.Model, tf.Policy
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		modelPath, policyPath = cfg.PolicyModel, cfg.PolicyFile
	} else if policyPath == "" {
		return usageError{fmt.Errorf("%s names no policy: give --config FILE, or add \"policy: policy.csv\" to it", pos[0])}
	}
	e, err := policy.NewEnforcer(modelPath, policyPath)
	if err != nil {
		return err
	}
	return testReportTo(stdout, tf.Run(e))
}

// testReportTo prints a report and turns failures into exit status 1.
func testReportTo(stdout io.Writer, r policy.Report) error {
	fmt.Fprint(stdout, r.String())
	if !r.OK() {
		return exitCode(1)
	}
	return nil
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			var b strings.Builder
			fs.SetOutput(&b)
			fs.PrintDefaults()
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpFor(fs)
			}
			return nil, usageError{fmt.Errorf("%w\nflags:\n%s", err, b.String())}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
