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

	"github.com/shipbot/shipbot/chat/alert"
	"github.com/shipbot/shipbot/chat/alert/alertmetrics"
	chatslack "github.com/shipbot/shipbot/chat/slack"
	"github.com/shipbot/shipbot/chat/slack/slackmetrics"
	"github.com/shipbot/shipbot/cmd/shipbot/internal/config"
	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/forge/github"
	"github.com/shipbot/shipbot/gitops/lease"
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
	elector, err := newElector(cfg, log, reg)
	if err != nil {
		return err
	}
	w := wiring{dir: dir, notifier: notify}
	if elector != nil {
		w.fence = elector // only the Lease's holder pushes
	}
	m, err := newMain(ctx, *cfgPath, log, true, w)
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
		switch {
		case elector != nil && !elector.Held() && scfg.Mode == "http":
			// Slack's requests go to the Lease's holder only.
			http.Error(w, "standby: "+elector.Holder()+" holds the lease", http.StatusServiceUnavailable)
		case elector != nil && !elector.Held() && adapter.Accepting():
			_, _ = io.WriteString(w, "ready (standby)\n")
		case !adapter.Ready():
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		default:
			_, _ = io.WriteString(w, "ready\n")
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if scfg.Mode == "http" {
		mux.Handle("/slack/", adapter.HTTPHandler(scfg.SigningSecret))
	}
	if cfg.Alerts != nil {
		// Alerts become incident messages with what changed and a
		// Rollback button (chat/alert decides what is one incident).
		intake, err := alert.New(*cfg.Alerts, adapter.Incidents(cfg.AlertsChannel, m.Service), alert.Options{Logger: log, Metrics: alertmetrics.New(reg)})
		if err != nil {
			return fmt.Errorf("%s: alerts: %w", *cfgPath, err)
		}
		mux.Handle("/alerts/", intake.Handler())
		log.Info("alert intake on", "paths", []string{alert.PathAlertmanager, alert.PathPagerDuty, alert.PathOpsgenie}, "channel", cfg.AlertsChannel)
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

	// The leader's work: the Slack Socket Mode connection and the
	// proposals' reconcile loop (watches follow confirmed writes). Without
	// HA this replica leads from the start; with it, once it holds the
	// Lease, until the Lease is lost or shipbot stops.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	lead := func(leadCtx context.Context) {
		lctx, cancel := context.WithCancel(leadCtx)
		defer cancel()
		stop := context.AfterFunc(runCtx, cancel)
		defer stop()
		if f := cfg.Forge; f != nil {
			go reconcileLoop(lctx, m.Service, f.ReconcileInterval, log)
		}
		// Changes the previous leader (or this process before a restart)
		// was following through Argo CD: follow them again, in their threads.
		go func() {
			list, err := m.Service.Unfinished(lctx, 0)
			if err != nil {
				log.Warn("changes in flight could not be listed; their threads get no report", "err", err)
			}
			if n := adapter.FollowUnfinished(list); n > 0 {
				log.Info("following changes in flight again", "changes", n)
			}
		}()
		if scfg.Mode == "socket" {
			sm := socketmode.New(client, socketmode.OptionLog(slog.NewLogLogger(log.Handler(), slog.LevelInfo)))
			if err := adapter.RunSocketMode(lctx, sm); err != nil && lctx.Err() == nil {
				fatal <- fmt.Errorf("slack socket mode: %w (check %s)", err, chatslack.EnvAppTokenFile)
			}
			return
		}
		<-lctx.Done()
	}
	// The Lease is released only after the confirmed writes in flight
	// finished (electCtx ends after the adapter's shutdown).
	electCtx, stopElect := context.WithCancel(context.Background())
	defer stopElect()
	leadDone := make(chan struct{})
	go func() {
		defer close(leadDone)
		if elector == nil {
			lead(runCtx)
			return
		}
		if err := elector.Run(electCtx, lead); err != nil {
			fatal <- fmt.Errorf("ha: %w: stopping, to start again as a standby", err)
		}
	}()

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
	if err := adapter.Shutdown(drain); err != nil {
		log.Error("shutdown: work abandoned", "err", err)
		runErr = errors.Join(runErr, fmt.Errorf("shutdown: %w", err))
	}
	stopElect() // confirmed writes are done: hand the Lease over
	<-leadDone
	if err := srv.Shutdown(drain); err != nil {
		log.Error("shutdown: http server", "err", err)
	}
	log.Info("shipbot serve stopped")
	return runErr
}

// newElector is the Lease election of cfg.HA (nil without HA): the
// API server, CA and token of the pod's service account; the identity is
// the pod's name (POD_NAME from the downward API, else the host name).
func newElector(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*lease.Elector, error) {
	h := cfg.HA
	if h == nil {
		return nil, nil
	}
	var o lease.Options
	var err error
	if h.Server != "" {
		o, err = lease.External(h.Server, h.TokenFile, h.CAFile)
	} else {
		o, err = lease.InCluster()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: ha: %w", cfg.Path, err)
	}
	if h.Namespace != "" {
		o.Namespace = h.Namespace
	}
	o.Name, o.LeaseDuration, o.RenewDeadline, o.RetryPeriod, o.Logger = h.Lease, h.LeaseDuration, h.RenewDeadline, h.RetryPeriod, log
	if o.Identity = os.Getenv("POD_NAME"); o.Identity == "" {
		if o.Identity, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("ha: no identity: set POD_NAME: %w", err)
		}
	}
	leading := prometheus.NewGauge(prometheus.GaugeOpts{Name: "shipbot_lease_leading", Help: "1 while this replica holds the environment repo's Lease (it writes, holds the Slack connection and watches), else 0."})
	reg.MustRegister(leading)
	o.Observe = func(now bool) {
		if now {
			leading.Set(1)
		} else {
			leading.Set(0)
		}
	}
	log.Info("high availability: the Lease's holder writes", "lease", o.Namespace+"/"+o.Name, "identity", o.Identity)
	return lease.New(o)
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
