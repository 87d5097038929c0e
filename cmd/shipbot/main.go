// Command shipbot is a ChatOps bot for GitOps: rollbacks, restarts and
// promotions typed in chat become confirmed, minimal commits in the
// environment repo. This package only wires: flags + config -> the parts.
package main

import (
	"bytes"
	"context"

	"errors"
	"flag"
	"fmt"
	git "github.com/go-git/go-git/v5"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shipbot/shipbot/argo"
	"github.com/shipbot/shipbot/chat/local"
	"github.com/shipbot/shipbot/cmd/shipbot/internal/config"
	"github.com/shipbot/shipbot/cmd/shipbot/internal/demo"
	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/forge/github"
	"github.com/shipbot/shipbot/gitops/forge/gitonly"
	"github.com/shipbot/shipbot/gitops/registry"
	"github.com/shipbot/shipbot/gitops/repo"
	"github.com/shipbot/shipbot/gitops/sign"
	"github.com/shipbot/shipbot/policy"
)

const usage = `shipbot: ChatOps for GitOps environment repos.

Usage:
  shipbot demo [--dir DIR] [--as USER]        run the local demo (creates DIR once, default .shipbot-demo)
  shipbot chat --config FILE --as USER [--channel CH] [--log FILE]
                                              chat on stdin/stdout against the configured repo
  shipbot serve --config FILE                 run shipbot in Slack (SHIPBOT_* environment: serve --help)
  shipbot check --config FILE [--offline]     validate a config and everything it names (policy, keys, tokens,
                                              Slack settings, the repo's apps), report every problem, then exit
  shipbot policy explain --config FILE --as USER [--channel CH] ACTION APP ENV
                                              the decision and the rules behind it (exit 1: denied)
  shipbot policy test [--config FILE] TESTFILE
                                              run a table of expected decisions (policy as code)
  shipbot audit [--config FILE] [--env E] [--app A] [--since DATE] [--format table|json|csv]
                [--fail-on FLAG,...]          every change of a managed app, freeze and unfreeze from the
                                              repo's history, with signature checks and flags (exit 1
                                              when a record carries a --fail-on flag)
  shipbot version                             the version, commit and toolchain of this binary

shipbot COMMAND --help shows the flags of a command. In chat, type "help" for the commands,
"/as USER" to switch who is speaking.
`

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one shipbot command and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdin, stdout, stderr)
	case "chat":
		err = runChat(ctx, args[1:], stdin, stdout, stderr)
	case "check":
		err = runCheck(ctx, args[1:], stdout, stderr)
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	case "audit":
		err = runAudit(ctx, args[1:], stdout, stderr)
	case "policy":
		err = runPolicy(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionString())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "shipbot: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	var code exitCode
	var help helpShown
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.text) // asked for with --help: not an error
		return 0
	case errors.As(err, &code):
		return int(code) // the command printed its result already
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "shipbot %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "shipbot %s: %v\n", args[0], err)
		return 1
	}
}

type usageError struct{ error }

// flags returns a flag set that reports errors once, through run.
func flags(name string, _ io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("shipbot "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		if errors.Is(err, flag.ErrHelp) {
			return helpFor(fs)
		}
		return usageError{fmt.Errorf("%w\nflags:\n%s", err, b.String())}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	return nil
}

func runDemo(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flags("demo", stderr)
	dir := fs.String("dir", ".shipbot-demo", "demo directory (created once, reused after)")
	as := fs.String("as", "alice", "who you are in the chat")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := local.ValidUser(*as); err != nil {
		return usageError{err}
	}
	cfgPath, created, err := demo.Setup(*dir)
	if err != nil {
		return err
	}
	repoPath, _ := filepath.Abs(filepath.Join(*dir, demo.RepoDir))
	if created {
		fmt.Fprintf(stdout, "created the demo environment repo %s (apps checkout, payments, search in dev, staging, prod)\n", repoPath)
	}
	fmt.Fprintf(stdout, "config %s; log %s\ninspect with: git -C %s log --format='%%h %%an: %%s'\nverify signatures: %s\n",
		cfgPath, filepath.Join(*dir, "shipbot.log"), repoPath, demo.VerifyCommand(*dir))
	logFile, err := os.OpenFile(filepath.Join(*dir, "shipbot.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	return chat(ctx, cfgPath, *as, "", stdin, stdout, slog.New(slog.NewJSONHandler(logFile, nil)), filepath.Join(*dir, "history"))
}

func runChat(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flags("chat", stderr)
	cfgPath := fs.String("config", "", "config file (shipbot.yaml)")
	as := fs.String("as", "", "who you are in the chat (policy subject)")
	channel := fs.String("channel", "", "chat channel (default: chat.channel of the config)")
	logTo := fs.String("log", "", "JSON log file, - for stderr (default: shipbot.log beside the config when stderr is a terminal, else stderr)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" || *as == "" {
		return usageError{errors.New("--config and --as are required")}
	}
	if err := local.ValidUser(*as); err != nil {
		return usageError{err}
	}
	log, logPath, closeLog, err := chatLog(*logTo, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	if logPath != "" {
		fmt.Fprintf(stderr, "shipbot chat: logs go to %s\n", logPath)
	}
	return chat(ctx, *cfgPath, *as, *channel, stdin, stdout, log, "")
}

// Main is a wired shipbot.
type Main struct {
	Config  *config.Config
	Service *gitops.Service
	repo    *repo.Repo
}

// Close releases what Main holds open.
// Background looks for the outcome of unknown pushes stop first.
func (m *Main) Close() error {
	m.Service.Close()
	return m.repo.Close()
}

// loadSigner opens the signing key; with signing required, a key that
// can't sign stops shipbot before it writes anything.
func loadSigner(s config.Signing) (sign.Signer, error) {
	if !s.Required {
		return nil, nil
	}
	var signer sign.Signer
	var err error
	switch s.Format {
	case "openpgp":
		signer, err = sign.LoadOpenPGP(s.Key, s.PassphraseFile)
	default:
		signer, err = sign.LoadSSH(s.Key, s.PassphraseFile)
	}
	if err != nil {
		return nil, fmt.Errorf("signing is required, but the %s key %s can't sign: %w (fix signing.key, or set signing.mode: off)", s.Format, s.Key, err)
	}
	return signer, nil
}

// NewMain loads the config and wires the core with its adapters, with the
// local directory for commit authors. withSigner loads the signing key
// (every command that writes needs it).
func NewMain(ctx context.Context, cfgPath string, log *slog.Logger, withSigner bool) (*Main, error) {
	return NewMainWith(ctx, cfgPath, log, withSigner, nil)
}

// NewMainWith is NewMain with the directory that maps chat users to commit
// authors (nil: the local one, user@identity.emailDomain). It is the one
// place where shipbot is wired, for every front end.
func NewMainWith(ctx context.Context, cfgPath string, log *slog.Logger, withSigner bool, dir gitops.Directory) (*Main, error) {
	return newMain(ctx, cfgPath, log, withSigner, wiring{dir: dir})
}

// wiring is what a front end brings to the core.
type wiring struct {
	dir      gitops.Directory // nil: the local one
	notifier gitops.Notifier  // nil: none
	// fence, when set, is asked before every push (shipbot serve with a
	// Kubernetes Lease: only the holder writes).
	fence interface{ Held() bool }
}

func newMain(ctx context.Context, cfgPath string, log *slog.Logger, withSigner bool, w wiring) (*Main, error) {
	dir := w.dir
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	var signer sign.Signer
	if withSigner {
		if signer, err = loadSigner(cfg.Signing); err != nil {
			return nil, err
		}
		if signer != nil {
			log.Info("signing commits", "format", signer.Format(), "key", signer.Identity())
		} else {
			log.Warn("commit signing is off (signing.mode: off): commits will not be verifiable")
		}
	}
	authz, err := policy.NewEnforcer(cfg.PolicyModel, cfg.PolicyFile)
	if err != nil {
		return nil, err
	}
	var justifier gitops.Justifier = policy.PatternJustifier{}
	var tracer gitops.Tracer
	if cfg.Live != nil {
		live := *cfg.Live
		live.Logger = log
		if err := live.Validate(); err != nil {
			return nil, fmt.Errorf("%s: justification: %w", cfgPath, err)
		}
		lj, err := policy.NewLiveJustifier(live)
		if err != nil {
			return nil, fmt.Errorf("%s: justification: %w", cfgPath, err)
		}
		tt, err := policy.NewTicketTracer(live)
		if err != nil {
			return nil, fmt.Errorf("%s: justification: %w", cfgPath, err)
		}
		justifier, tracer = lj, tt
	}
	go authz.Watch(ctx, 0, log) // reload the policy on change; an invalid one is refused, the old stays
	if dir == nil {
		dir = local.Directory{Domain: cfg.EmailDomain}
	}
	var watcher gitops.SyncWatcher
	var live gitops.LiveStatus
	var watchTimeout time.Duration
	if a := cfg.Argo; a != nil {
		opts := argo.ClientOptions{Server: a.Server, TokenFile: a.TokenFile, CAFile: a.CAFile, InsecureSkipVerify: a.InsecureSkipVerify}
		if a.TokenEnv != "" {
			if opts.Token = os.Getenv(a.TokenEnv); strings.TrimSpace(opts.Token) == "" {
				return nil, fmt.Errorf("%s: argo.tokenEnv: the environment variable %s is not set or empty", cfgPath, a.TokenEnv)
			}
		}
		client, err := argo.NewClient(opts)
		if err != nil {
			return nil, fmt.Errorf("%s: argo: %w", cfgPath, err)
		}
		w, err := argo.NewWatcher(client, argo.WatcherOptions{RepoURL: cfg.RepoURL, Branch: cfg.Branch, Timeout: a.Timeout, SyncManual: a.SyncManual, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("%s: argo: %w", cfgPath, err)
		}
		watcher, live = w, w
		watchTimeout = a.Timeout
	}
	var reg gitops.Registry
	var onError gitops.RegistryOnError
	if rc := cfg.Registry; rc != nil {
		c, err := registry.New(registry.Options{DockerConfig: rc.DockerConfig, Insecure: rc.Insecure, Timeout: rc.Timeout})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfgPath, err)
		}
		reg, onError = c, rc.OnError
		log.Info("rollback and promote check tags in the registry", "docker_config", rc.DockerConfig, "insecure", rc.Insecure, "on_error", string(rc.OnError))
	}
	render, err := renderOptions(cfg.Render, log)
	if err != nil {
		return nil, fmt.Errorf("%s: render: %w", cfgPath, err)
	}
	var gh *github.Forge
	ropts := repo.Options{URL: cfg.RepoURL, Branch: cfg.Branch, CacheDir: cfg.CacheDir, Maintenance: cfg.Maintenance, Logger: log, Fence: w.fence}
	if f := cfg.Forge; f != nil && f.GitHub != nil {
		if gh, err = newGitHubForge(f.GitHub, log); err != nil {
			return nil, fmt.Errorf("%s: forge.github: %w", cfgPath, err)
		}
		if strings.HasPrefix(cfg.RepoURL, "https://") {
			ropts.Auth = gh.GitAuth() // push proposal branches with the forge's credentials
		}
	}
	r, err := repo.Open(ctx, ropts)
	if err != nil {
		return nil, err
	}
	var forge gitops.Forge
	var ttl time.Duration
	var records gitops.SignatureChecker
	if signer != nil {
		// Proposals' records (approvals) are acted on only when shipbot
		// signed them: with a forge, the trusted keys must include
		// shipbot's own. The same check tells shipbot's own commits (their
		// trailers: "already landed", history) from copies.
		records, err = recordChecker(cfg.Signing, signer)
		switch {
		case err != nil && cfg.Forge != nil:
			r.Close()
			return nil, fmt.Errorf("%s: forge: %w", cfgPath, err)
		case err != nil:
			log.Warn("signing.trusted does not trust shipbot's own key: shipbot's commits are told from others by their committer and content only; add the key to signing.trusted", "err", err)
			records = nil
		}
	}
	if f := cfg.Forge; f != nil {
		ttl = f.ProposalTTL
		if gh != nil {
			forge = gh
		} else {
			forge = gitonly.New(r)
		}
		log.Info("changes that need review become proposals", "forge", forge.Name(), "ttl", ttl)
	}
	confirmKey, err := readConfirmKey(cfg.ConfirmKeyFile)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: chat.confirmKeyFile: %w", cfgPath, err)
	}
	svc, err := gitops.NewService(gitops.ServiceOptions{
		ConfirmKey:      confirmKey,
		Catalog:         cfg.Catalog,
		Repo:            r,
		Authorizer:      authz,
		Justifier:       justifier,
		Tracer:          tracer,
		Directory:       dir,
		Watcher:         watcher,
		WatchTimeout:    watchTimeout,
		Live:            live,
		Forge:           forge,
		Approvers:       authz,
		Notifier:        w.notifier,
		ProposalTTL:     ttl,
		RecordChecker:   records,
		Registry:        reg,
		RegistryOnError: onError,
		Render:          render,
		Committer:       cfg.Committer,
		Signer:          signerOrNil(signer),
		FreezeWindows:   cfg.FreezeWindows,
		FreezeBlocks:    cfg.FreezeBlocks,
		Logger:          log,
		ConfirmTimeout:  cfg.ConfirmTimeout,
		PushTimeout:     cfg.PushTimeout,
		ResolveTimeout:  cfg.ResolveTimeout,
		ResolveBackoff:  cfg.ResolveBackoff,
	})
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	return &Main{Config: cfg, Service: svc, repo: r}, nil
}

// recordChecker verifies proposal records with the trusted keys, after
// checking that they trust shipbot's own signature.
func recordChecker(s config.Signing, signer sign.Signer) (gitops.SignatureChecker, error) {
	v, err := sign.NewVerifier(s.TrustedOpenPGP, s.TrustedAllowedSigners)
	if err != nil {
		return nil, err
	}
	probe := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor shipbot <probe> 0 +0000\ncommitter shipbot <probe> 0 +0000\n\nprobe\n")
	sig, err := signer.Sign(bytes.NewReader(probe))
	if err != nil {
		return nil, err
	}
	if st, _ := v.Verify(probe, string(sig)); st != sign.StatusGood {
		return nil, fmt.Errorf("approvals are recorded as commits signed by shipbot and verified with signing.trusted, but signing.trusted does not trust shipbot's key %s (signature %s): add its public key there", signer.Identity(), st)
	}
	return checker{v}, nil
}

// readConfirmKey reads the key that signs plans' Confirm buttons ("" = no
// key: plans wait in memory only).
func readConfirmKey(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key = bytes.TrimSpace(key)
	if len(key) < 32 {
		return nil, fmt.Errorf("%s holds %d bytes; at least 32 random bytes are needed, e.g. `head -c 32 /dev/urandom | base64 > %s`", path, len(key), path)
	}
	return key, nil
}

// newGitHubForge reads the GitHub credentials and builds the forge.
func newGitHubForge(g *config.GitHub, log *slog.Logger) (*github.Forge, error) {
	o := github.Options{BaseURL: g.BaseURL, Owner: g.Owner, Repo: g.Repo, Logins: g.Logins, Teams: g.Teams, Labels: g.Labels, Logger: log}
	if g.TokenFile != "" {
		tok, err := os.ReadFile(g.TokenFile)
		if err != nil {
			return nil, err
		}
		o.Token = strings.TrimSpace(string(tok))
	} else {
		key, err := os.ReadFile(g.PrivateKeyFile)
		if err != nil {
			return nil, err
		}
		o.App = &github.AppAuth{AppID: g.AppID, InstallationID: g.InstallationID, PrivateKeyPEM: key}
	}
	return github.New(o)
}

// signerOrNil keeps a nil sign.Signer a nil git.Signer (not a typed nil).
func signerOrNil(s sign.Signer) git.Signer {
	if s == nil {
		return nil
	}
	return s
}

// chat runs the local chat; history, when set, is the file that keeps the
// lines typed in a terminal.
func chat(ctx context.Context, cfgPath, user, channel string, stdin io.Reader, stdout io.Writer, log *slog.Logger, history string) error {
	notify := &lateNotifier{}
	m, err := newMain(ctx, cfgPath, log, true, wiring{notifier: notify})
	if err != nil {
		return err
	}
	defer m.Close()
	if channel == "" {
		channel = m.Config.Channel
	}
	cio, err := openChatIO(stdin, stdout, history)
	if err != nil {
		return err
	}
	defer cio.close() // the terminal leaves raw mode before anything else is printed
	c, err := local.New(m.Service, cio.out, local.Options{User: user, Channel: channel, Interactive: cio.interactive, Logger: log})
	if err != nil {
		return usageError{err}
	}
	notify.set(c) // late news (a push's outcome, a proposal's) go to the chat
	if cio.lines != nil {
		return c.RunLines(ctx, cio.lines)
	}
	return c.Run(ctx, cio.in)
}
