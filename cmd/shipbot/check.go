package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/shipbot/shipbot/argo"
	chatslack "github.com/shipbot/shipbot/chat/slack"
	"github.com/shipbot/shipbot/cmd/shipbot/internal/config"
	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/registry"
	"github.com/shipbot/shipbot/gitops/repo"
	"github.com/shipbot/shipbot/gitops/sign"
	"github.com/shipbot/shipbot/policy"
)

// runCheck is `shipbot check --config FILE [--offline]`: it validates every
// setting and file that chat, serve and audit read (the config, the
// policy, the signing and trusted keys, the live justification checks,
// Argo CD, the registry, the forge, serve's Slack settings with their
// SHIPBOT_* overrides), then the environment repo (every app's path and
// tag, the freezes file), and reports every problem at once, each with
// where it is and how to fix it. It exits non-zero when there is one.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flags("check", stderr)
	cfgPath := fs.String("config", "", "config file (shipbot.yaml)")
	offline := fs.Bool("offline", false, "do not read the environment repo (its apps' paths and tags)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return usageError{errors.New("--config is required")}
	}
	cfg, err := config.LoadForCheck(*cfgPath)
	var cerr *config.Error
	if cfg == nil {
		return err // not readable, or not YAML
	}
	c := &configCheck{cfg: cfg, log: slog.New(slog.DiscardHandler), env: os.LookupEnv, offline: *offline}
	if errors.As(err, &cerr) {
		c.problems = append(c.problems, cerr.Problems...)
	} else if err != nil {
		return err
	}
	c.policy(ctx)
	c.signing()
	if _, err := readConfirmKey(cfg.ConfirmKeyFile); err != nil {
		c.addf(cfg.Where("chat.confirmKeyFile"), "%v (serve signs plans' Confirm buttons with it)", err)
	}
	c.live()
	c.argo()
	c.registry()
	c.render()
	c.forge()
	c.slack()
	c.catalog()
	for _, w := range c.warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if len(c.problems) > 0 {
		return c.failure()
	}
	if !*offline {
		c.repo(ctx)
		if len(c.problems) > 0 {
			return c.failure()
		}
	}
	fmt.Fprintf(stdout, "%s is valid: %d environments, %d apps\n", *cfgPath, len(cfg.Catalog.Envs), len(cfg.Catalog.Apps))
	for _, n := range c.notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	return nil
}

// configCheck collects what `shipbot check` finds.
type configCheck struct {
	cfg      *config.Config
	log      *slog.Logger
	env      func(string) (string, bool)
	problems []string
	warnings []string
	notes    []string
	offline  bool // --offline: the environment repo is not read
	readRepo bool // the environment repo was read
}

func (c *configCheck) addf(where, format string, args ...any) {
	c.problems = append(c.problems, where+": "+fmt.Sprintf(format, args...))
}

// failure is the error listing every problem; a single problem of the
// policy is said as the policy loader says it.
func (c *configCheck) failure() error {
	var msg string
	if len(c.problems) == 1 && strings.HasPrefix(c.problems[0], "policy: ") {
		msg = c.problems[0]
	} else {
		msg = (&config.Error{File: c.cfg.Path, Problems: c.problems}).Error()
	}
	if !c.readRepo && !c.offline {
		msg += "\n(the environment repo was not read: it is checked once these are fixed)"
	}
	return errors.New(msg)
}

// policy loads the policy as chat and serve do, with every bad line, and
// reports review lines that could never be satisfied.
func (c *configCheck) policy(ctx context.Context) {
	cfg := c.cfg
	if cfg.PolicyFile == "" || cfg.HasProblem("policy") {
		return
	}
	authz, err := policy.NewEnforcer(cfg.PolicyModel, cfg.PolicyFile)
	if err != nil {
		c.problems = append(c.problems, splitErrors("policy: ", err)...)
		return
	}
	// Review lines whose approvals can't all be given, in the environments
	// each app is deployed to: an error; a quorum a requester who is one of
	// the approvers would break: a warning.
	apps := map[string][]string{}
	for app, envs := range cfg.Catalog.Apps {
		for env := range envs {
			apps[app] = append(apps[app], env)
		}
	}
	errs, warnings, err := authz.ReviewProblems(ctx, apps)
	if err != nil {
		c.problems = append(c.problems, "policy: "+err.Error())
		return
	}
	c.warnings = append(c.warnings, warnings...)
	for _, e := range errs {
		c.problems = append(c.problems, "policy: "+e)
	}
	if cfg.Forge == nil && authz.HasReviews() {
		c.warnings = append(c.warnings, fmt.Sprintf("the policy has review lines but %s has no forge: section, so changes they match are refused", cfg.Path))
	}
}

// splitErrors returns one line per error joined in err (errors.Join, maybe
// wrapped once), each with prefix unless it has it already.
func splitErrors(prefix string, err error) []string {
	var list []error
	for e := err; e != nil; e = errors.Unwrap(e) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
			break
		}
	}
	if len(list) == 0 {
		list = []error{err}
	}
	var out []string
	for _, e := range list {
		msg := strings.TrimPrefix(e.Error(), prefix)
		out = append(out, prefix+msg)
	}
	return out
}

// signing loads the signing key as chat and serve do, reads the trusted
// keys as audit does, and checks that they trust shipbot's own key.
func (c *configCheck) signing() {
	cfg, s := c.cfg, c.cfg.Signing
	var signer sign.Signer
	if s.Required && s.Key != "" && !cfg.HasProblem("signing.key") && !cfg.HasProblem("signing.format") && !cfg.HasProblem("signing.mode") {
		var err error
		if signer, err = loadSigner(s); err != nil {
			c.addf(cfg.Where("signing.key"), "%v", err)
		}
	}
	trustedOK := true
	fix := func(f, what string) string {
		if _, err := os.Stat(f); err != nil {
			return "create it (" + what + "), or fix the path"
		}
		return "fix it: " + what
	}
	for i, f := range s.TrustedAllowedSigners {
		if _, err := sign.NewVerifier(nil, []string{f}); err != nil {
			trustedOK = false
			c.addf(cfg.Where(fmt.Sprintf("signing.trusted.allowedSigners[%d]", i)), "%v: audit reads it (with a forge, chat and serve too); %s", err, fix(f, "one line per key, `EMAIL namespaces=\"git\" KEY`, shipbot's own key among them"))
		}
	}
	for i, f := range s.TrustedOpenPGP {
		if _, err := sign.NewVerifier([]string{f}, nil); err != nil {
			trustedOK = false
			c.addf(cfg.Where(fmt.Sprintf("signing.trusted.openpgpKeys[%d]", i)), "%v: audit reads it (with a forge, chat and serve too); %s", err, fix(f, "armored public keys, gpg --export --armor KEYID"))
		}
	}
	if signer == nil || !trustedOK {
		return
	}
	if _, err := recordChecker(s, signer); err != nil {
		how := "add shipbot's public key to signing.trusted"
		if pk, ok := signer.(interface{ PublicKey() ssh.PublicKey }); ok {
			how = fmt.Sprintf("add this line to an allowedSigners file of signing.trusted: %s namespaces=\"git\" %s", cfg.Committer.Email, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk.PublicKey()))))
		}
		trusted := len(s.TrustedAllowedSigners)+len(s.TrustedOpenPGP) > 0
		msg := fmt.Sprintf("does not trust shipbot's own key %s: `shipbot audit` reports every commit shipbot signs as signature-unknown-key, and shipbot tells its own commits from copies by their committer only; %s", signer.Identity(), how)
		switch {
		case cfg.Forge != nil:
			c.addf(cfg.Where("signing.trusted"), "%s (with a forge, chat and serve refuse to start: approvals are records shipbot signs)", msg)
		case trusted:
			c.addf(cfg.Where("signing.trusted"), "%s", msg)
		default:
			c.warnings = append(c.warnings, "signing.trusted is empty: it "+msg)
		}
	}
}

// live checks the justification: section as chat and serve build it
// (token files and variables, URLs).
func (c *configCheck) live() {
	cfg := c.cfg
	if cfg.Live == nil || cfg.HasProblem("justification") {
		return
	}
	live := *cfg.Live
	live.Logger = c.log
	if err := live.Validate(); err != nil {
		for _, p := range splitErrors("", err) {
			c.addf(cfg.Where("justification"), "%s", p)
		}
		return
	}
	if _, err := policy.NewLiveJustifier(live); err != nil {
		c.addf(cfg.Where("justification"), "%v", err)
	}
	if _, err := policy.NewTicketTracer(live); err != nil {
		c.addf(cfg.Where("justification"), "%v", err)
	}
}

// argo checks the argo: section: the token (its file, or its variable set
// here), the CA file.
func (c *configCheck) argo() {
	cfg := c.cfg
	a := cfg.Argo
	if a == nil || cfg.HasProblem("argo") {
		return
	}
	opts := argo.ClientOptions{Server: a.Server, TokenFile: a.TokenFile, CAFile: a.CAFile, InsecureSkipVerify: a.InsecureSkipVerify}
	if a.TokenEnv != "" {
		v, _ := c.env(a.TokenEnv)
		if strings.TrimSpace(v) == "" {
			c.addf(cfg.Where("argo.tokenEnv"), "the environment variable %s is not set (or empty) here: chat, serve and audit refuse to start without it; set it where shipbot runs (and where check runs), or name a file with argo.tokenFile", a.TokenEnv)
			return
		}
		opts.Token = v
	}
	if _, err := argo.NewClient(opts); err != nil {
		c.addf(cfg.Where("argo"), "%v", err)
	}
}

func (c *configCheck) registry() {
	cfg := c.cfg
	r := cfg.Registry
	if r == nil || cfg.HasProblem("registry") {
		return
	}
	if _, err := registry.New(registry.Options{DockerConfig: r.DockerConfig, Insecure: r.Insecure, Timeout: r.Timeout}); err != nil {
		c.addf(cfg.Where("registry"), "%v", err)
	}
}

func (c *configCheck) render() {
	cfg := c.cfg
	if cfg.HasProblem("render") {
		return
	}
	if _, err := renderOptions(cfg.Render, c.log); err != nil {
		c.addf(cfg.Where("render.helm"), "%v: name the helm binary, or auto (helm on PATH) or off", err)
	}
}

func (c *configCheck) forge() {
	cfg := c.cfg
	if cfg.Forge == nil || cfg.Forge.GitHub == nil || cfg.HasProblem("forge") {
		return
	}
	if _, err := newGitHubForge(cfg.Forge.GitHub, c.log); err != nil {
		c.addf(cfg.Where("forge.github"), "%v", err)
	}
}

// slack checks serve's Slack settings as serve reads them: the slack:
// section, each key overridden by its SHIPBOT_* variable. Without either,
// the config is for chat and audit only, and check says what serve needs.
func (c *configCheck) slack() {
	cfg := c.cfg
	vars := config.SlackVariables()
	fromEnv := map[string]bool{} // set in the environment: it wins over the file
	inEnv := false               // one is set to something
	for _, k := range append(vars, chatslack.EnvShutdownGrace) {
		if v, ok := c.env(k); ok {
			fromEnv[k] = true
			inEnv = inEnv || v != ""
		}
	}
	if len(cfg.Slack) == 0 && !inEnv {
		c.notes = append(c.notes, "no Slack settings (a slack: section or SHIPBOT_SLACK_* variables): fine for chat and audit; `shipbot serve` needs at least slack.botTokenFile and slack.appTokenFile (docs/slack.md)")
		return
	}
	if cfg.HasProblem("slack") {
		return
	}
	_, err := chatslack.ConfigFromEnv(func(k string) (string, bool) {
		if v, ok := c.env(k); ok {
			return v, true
		}
		v, ok := cfg.Slack[k]
		return v, ok
	})
	var se *chatslack.ConfigError
	if err == nil {
		return
	}
	if !errors.As(err, &se) {
		c.addf("slack", "%v", err)
		return
	}
	// Each problem names the variable serve read; say where its value came
	// from: the file's key (and line), or the environment.
	names := append(vars, chatslack.EnvShutdownGrace)
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	for _, p := range se.Problems {
		where := "slack"
		if n := variableOf(p, names); n != "" {
			if key := config.SlackKey(n); fromEnv[n] {
				where = "environment variable " + n
			} else if key != "" {
				where = cfg.Where(key)
			}
		}
		c.addf(where, "%s", p)
	}
}

// variableOf returns the variable of names (longest first) that problem p
// starts with.
func variableOf(p string, names []string) string {
	for _, n := range names {
		if strings.HasPrefix(p, n) && (len(p) == len(n) || !isNameByte(p[len(n)])) {
			return n
		}
	}
	return ""
}

func isNameByte(b byte) bool {
	return b == '_' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// catalog warns of an app that skips an environment between two of its
// own: `promote` goes to the next environment the app is in, so the
// skipped one is never passed through.
func (c *configCheck) catalog() {
	cfg := c.cfg
	if cfg.HasProblem("environments") {
		return
	}
	for _, app := range cfg.Catalog.AppNames() {
		if cfg.HasProblem("apps." + app) {
			continue
		}
		targets := cfg.Catalog.Apps[app]
		var in []string
		var missing []string
		for _, e := range cfg.Catalog.Envs {
			if _, ok := targets[e.Name]; ok {
				if len(missing) > 0 && len(in) > 0 {
					c.warnings = append(c.warnings, fmt.Sprintf("%s: %s is not in %s, between %s and %s: `promote %s %s to %s` skips %s; add apps.%s.envs.%s if it runs there",
						cfg.Where("apps."+app+".envs"), app, strings.Join(missing, ", "), in[len(in)-1], e.Name, app, in[len(in)-1], e.Name, strings.Join(missing, ", "), app, missing[0]))
				}
				in, missing = append(in, e.Name), nil
			} else {
				missing = append(missing, e.Name)
			}
		}
	}
}

// repo reads the environment repo's tip as chat, serve and audit do, and
// every app's path and tag there.
func (c *configCheck) repo(ctx context.Context) {
	cfg := c.cfg
	c.readRepo = true
	ropts := repo.Options{URL: cfg.RepoURL, Branch: cfg.Branch, CacheDir: cfg.CacheDir}
	if f := cfg.Forge; f != nil && f.GitHub != nil && strings.HasPrefix(cfg.RepoURL, "https://") {
		if gh, err := newGitHubForge(f.GitHub, c.log); err == nil {
			ropts.Auth = gh.GitAuth()
		}
	}
	r, err := repo.Open(ctx, ropts)
	if err != nil {
		c.addf(cfg.Where("repo.url"), "%s can't be read: %v (--offline skips the repo)", cfg.RepoURL, err)
		return
	}
	defer r.Close()
	snap, err := r.Fetch(ctx)
	if err != nil {
		c.addf(cfg.Where("repo.branch"), "branch %s of %s can't be fetched: %v", cfg.Branch, cfg.RepoURL, err)
		return
	}
	for _, p := range gitops.CheckTargets(snap, cfg.Branch, cfg.Catalog) {
		where := gitops.FreezesPath
		if p.App != "" {
			where = cfg.Where(fmt.Sprintf("apps.%s.envs.%s.path", p.App, p.Env))
			if !cfg.Set(fmt.Sprintf("apps.%s.envs.%s.path", p.App, p.Env)) {
				where = cfg.Where(fmt.Sprintf("apps.%s.envs.%s", p.App, p.Env))
			}
		}
		c.addf(where, "%s", p.Problem)
	}
	c.notes = append(c.notes, fmt.Sprintf("the environment repo was read: branch %s at %s, %d app(s) in %d environment(s)", cfg.Branch, snap.Hash().String()[:10], len(cfg.Catalog.Apps), len(cfg.Catalog.Envs)))
}
