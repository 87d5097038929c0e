package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	chatslack "github.com/shipbot/shipbot/chat/slack"
	"github.com/shipbot/shipbot/chat/slack/slackmetrics"
	"github.com/shipbot/shipbot/cmd/shipbot/internal/config"
	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/forge/github"
)

// runServe is `shipbot serve --config FILE`: shipbot in Slack, with
// /healthz, /readyz and /metrics on SHIPBOT_LISTEN. Slack settings come from
// SHIPBOT_SLACK_* environment variables (docs/slack.md). On SIGTERM it stops
// taking requests, finishes the work in flight (a confirmed change is
// committed and its message updated), cancels the plans still waiting for
// an answer, and exits.
func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flags("serve", stderr)
	cfgPath := fs.String("config", "", "config file (shipbot.yaml); its slack: settings can be overridden by SHIPBOT_* environment variables")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return usageError{errors.New("--config is required")}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	// Slack settings: the config file's slack: section, each key
	// overridden by its SHIPBOT_* environment variable.
	scfg, err := chatslack.ConfigFromEnv(func(k string) (string, bool) {
		if v, ok := os.LookupEnv(k); ok {
			return v, true
		}
		v, ok := cfg.Slack[k]
		return v, ok
	})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	log.Info("shipbot serve starting", "version", versionString(), "config", *cfgPath, "slack", scfg)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := slackmetrics.New(reg)

	apiOpts := []slackgo.Option{}
	if scfg.Mode == "socket" {
		apiOpts = append(apiOpts, slackgo.OptionAppLevelToken(scfg.AppToken))
	}
	if scfg.APIURL != "" {
		apiOpts = append(apiOpts, slackgo.OptionAPIURL(scfg.APIURL))
	}
	client := slackgo.New(scfg.BotToken, apiOpts...)
	authCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	auth, err := client.AuthTestContext(authCtx)
	cancel()
	if err != nil {
		return chatslack.AuthTestError(err, chatslack.EnvBotTokenFile, scfg.APIURL)
	}
	log.Info("slack bot identified", "team", auth.Team, "team_id", auth.TeamID, "bot_user", auth.UserID)
	api := chatslack.WithRateLimit(client, chatslack.RateLimit{}, log, metrics)

	dir, err := chatslack.NewDirectory(chatslack.DirectoryOptions{
		API: api, TTL: scfg.CacheTTL, Subjects: scfg.Subjects, EmailDomains: scfg.EmailDomains,
		TeamID: auth.TeamID, Groups: scfg.Groups, Logger: log,
	})
	if err != nil {
		return err
	}
	// The Slack adapter tells requesters about their proposals; it needs
	// the core and the core needs it, so the core gets it through notify.
	notify := &lateNotifier{}
	m, err := newMain(ctx, *cfgPath, log, true, wiring{dir: dir, notifier: notify})
	if err != nil {
		return err
	}
	defer m.Close()

	reviewChannel, _ := lookupSetting(cfg, envReviewChannel)
	adapter, err := chatslack.New(chatslack.Options{
		API: api, Core: m.Service, Directory: dir, Logger: log, Metrics: metrics,
		Command: scfg.Command, BotUserID: auth.UserID, ReviewChannel: reviewChannel,
	})
	if err != nil {
		return err
	}
	notify.set(adapter)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !adapter.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if scfg.Mode == "http" {
		mux.Handle("/slack/", adapter.HTTPHandler(scfg.SigningSecret))
	}
	if g := cfg.Forge; g != nil && g.GitHub != nil && g.GitHub.WebhookSecretFile != "" {
		secret, err := os.ReadFile(g.GitHub.WebhookSecretFile)
		if err != nil {
			return fmt.Errorf("forge.github.webhookSecretFile: %w", err)
		}
		hook, err := github.NewWebhookHandler(github.WebhookOptions{
			Secret: bytes.TrimSpace(secret), Logger: log,
			OnProposal: func(ctx context.Context, branch string) {
				if err := m.Service.ReconcileBranch(ctx, branch); err != nil {
					log.Warn("reconcile after a GitHub webhook", "branch", branch, "err", err)
				}
			},
		})
		if err != nil {
			return fmt.Errorf("forge.github webhooks: %w", err)
		}
		mux.Handle("POST /webhooks/github", hook)
	}
	ln, err := net.Listen("tcp", scfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (%s): %w", scfg.Listen, chatslack.EnvListen, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fatal := make(chan error, 2)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			fatal <- fmt.Errorf("http server: %w", err)
		}
	}()
	log.Info("listening", "addr", ln.Addr().String(), "mode", scfg.Mode)

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	if f := cfg.Forge; f != nil {
		go reconcileLoop(runCtx, m.Service, f.ReconcileInterval, log)
	}
	socketDone := make(chan struct{})
	if scfg.Mode == "socket" {
		sm := socketmode.New(client, socketmode.OptionLog(slog.NewLogLogger(log.Handler(), slog.LevelInfo)))
		go func() {
			defer close(socketDone)
			if err := adapter.RunSocketMode(runCtx, sm); err != nil {
				fatal <- fmt.Errorf("slack socket mode: %w (check %s)", err, chatslack.EnvAppTokenFile)
			}
		}()
	} else {
		close(socketDone)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing the work in flight", "grace", scfg.ShutdownGrace)
	case runErr = <-fatal:
		log.Error("shutting down", "err", runErr)
	}
	// Stop taking requests: no new Socket Mode deliveries, 503 over HTTP
	// (Slack retries events elsewhere or later), /readyz says not ready.
	adapter.StopAccepting()
	stopRun()
	drain, cancelDrain := context.WithTimeout(context.Background(), scfg.ShutdownGrace)
	defer cancelDrain()
	<-socketDone
	if err := adapter.Shutdown(drain); err != nil {
		log.Error("shutdown: work abandoned", "err", err)
		runErr = errors.Join(runErr, fmt.Errorf("shutdown: %w", err))
	}
	if err := srv.Shutdown(drain); err != nil {
		log.Error("shutdown: http server", "err", err)
	}
	log.Info("shipbot serve stopped")
	return runErr
}

// envReviewChannel names the Slack channel (id) where Approve/Reject
// buttons of every proposal are posted too (slack.reviewChannel).
const envReviewChannel = "SHIPBOT_SLACK_REVIEW_CHANNEL"

// lookupSetting reads a serve setting: the environment first, then the
// config file's slack: section.
func lookupSetting(cfg *config.Config, key string) (string, bool) {
	if v, ok := os.LookupEnv(key); ok {
		return v, true
	}
	v, ok := cfg.Slack[key]
	return v, ok
}

// reconcileLoop re-reads every open proposal periodically, so that a lost
// webhook never strands one.
func reconcileLoop(ctx context.Context, svc *gitops.Service, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := svc.Reconcile(ctx); err != nil && ctx.Err() == nil {
			log.Warn("reconcile proposals", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lateNotifier forwards proposal updates to a notifier set after the core
// was built.
type lateNotifier struct {
	n atomic.Pointer[gitops.Notifier]
}

func (l *lateNotifier) set(n gitops.Notifier) { l.n.Store(&n) }

func (l *lateNotifier) ProposalUpdated(ctx context.Context, u gitops.ProposalUpdate) {
	if n := l.n.Load(); n != nil {
		(*n).ProposalUpdated(ctx, u)
	}
}
