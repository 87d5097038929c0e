package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"time"
)

// HTTP paths served by Intake.Handler: give them to Alertmanager
// (webhook_configs url), PagerDuty (webhook subscription) and Opsgenie
// (webhook integration).
const (
	PathAlertmanager = "/alerts/alertmanager"
	PathPagerDuty    = "/alerts/pagerduty"
	PathOpsgenie     = "/alerts/opsgenie"
)

// Options are what New needs besides the configuration.
type Options struct {
	Logger  *slog.Logger
	Metrics Metrics // nil: NopMetrics
	// ReadFile reads the secret files the configuration names
	// (os.ReadFile if nil).
	ReadFile func(string) ([]byte, error)
	// Now is the clock (time.Now if nil); it also drives the Grouper
	// unless Config.Incidents.Now is set.
	Now func() time.Time
}

// Intake serves the alert sources' webhooks: it authenticates a delivery,
// decodes it, routes each alert to its app and environment and folds them
// into incidents through its Grouper, before it answers.
type Intake struct {
	cfg       Config
	router    *Router
	grouper   *Grouper
	endpoints map[string]endpoint
	log       *slog.Logger
	metrics   Metrics
	now       func() time.Time
}

// decoder reads one source's payload into alerts; an empty list means the
// delivery carries no alert state (a ping, a note) and is acknowledged.
type decoder interface {
	source() Source
	decode(body []byte) ([]Alert, error)
}

type endpoint struct {
	dec  decoder
	auth authenticator
}

// New validates cfg, reads its secrets and returns the Intake that sends
// incidents to sink.
func New(cfg Config, sink Sink, o Options) (*Intake, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NopMetrics{}
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	gopts := cfg.Incidents
	if gopts.Logger == nil {
		gopts.Logger = o.Logger
	}
	if gopts.Now == nil {
		gopts.Now = o.Now
	}
	grouper, err := NewGrouper(sink, gopts)
	if err != nil {
		return nil, err
	}
	router, err := NewRouter(cfg.Routes, o.Logger)
	if err != nil {
		return nil, err
	}
	in := &Intake{cfg: cfg, router: router, grouper: grouper, log: o.Logger, metrics: o.Metrics, now: o.Now}
	amAuth, err := alertmanagerAuth(cfg.Alertmanager, o.ReadFile)
	if err != nil {
		return nil, err
	}
	pdAuth, err := pagerDutyAuth(cfg.PagerDuty, o.ReadFile)
	if err != nil {
		return nil, err
	}
	ogAuth, err := opsgenieAuth(cfg.Opsgenie, o.ReadFile)
	if err != nil {
		return nil, err
	}
	webURL := DefaultOpsgenieURL
	if cfg.Opsgenie != nil {
		webURL = cfg.Opsgenie.WebURL
	}
	in.endpoints = map[string]endpoint{
		PathAlertmanager: {alertmanagerDecoder{}, amAuth},
		PathPagerDuty:    {pagerDutyDecoder{}, pdAuth},
		PathOpsgenie:     {opsgenieDecoder{webURL: webURL}, ogAuth},
	}
	return in, nil
}

func alertmanagerAuth(c *AlertmanagerConfig, readFile func(string) ([]byte, error)) (anyOf, error) {
	var out anyOf
	if c == nil {
		return out, nil
	}
	if a := c.Authorization; a != nil {
		creds, err := readSecrets(readFile, "alertmanager.authorization.credentialsFiles", a.CredentialsFiles)
		if err != nil {
			return nil, err
		}
		out = append(out, authorization{scheme: a.Type, credentials: creds})
	}
	if b := c.BasicAuth; b != nil {
		pw, err := readSecrets(readFile, "alertmanager.basicAuth.passwordFiles", b.PasswordFiles)
		if err != nil {
			return nil, err
		}
		out = append(out, basicAuth{username: b.Username, passwords: pw})
	}
	return out, nil
}

func pagerDutyAuth(c *PagerDutyConfig, readFile func(string) ([]byte, error)) (anyOf, error) {
	if c == nil {
		return nil, nil
	}
	secrets, err := readSecrets(readFile, "pagerduty.signingSecretFiles", c.SigningSecretFiles)
	if err != nil {
		return nil, err
	}
	return anyOf{pagerDutySignature{secrets: secrets}}, nil
}

func opsgenieAuth(c *OpsgenieConfig, readFile func(string) ([]byte, error)) (anyOf, error) {
	var out anyOf
	if c == nil {
		return out, nil
	}
	if h := c.Header; h != nil {
		values, err := readSecrets(readFile, "opsgenie.header.valueFiles", h.ValueFiles)
		if err != nil {
			return nil, err
		}
		out = append(out, headerSecret{name: h.Name, values: values})
	}
	if b := c.BasicAuth; b != nil {
		pw, err := readSecrets(readFile, "opsgenie.basicAuth.passwordFiles", b.PasswordFiles)
		if err != nil {
			return nil, err
		}
		out = append(out, basicAuth{username: b.Username, passwords: pw})
	}
	return out, nil
}

// Handler serves PathAlertmanager, PathPagerDuty and PathOpsgenie. Each
// delivery must be a POST (405), of type application/json (415), at most
// MaxBodyBytes (413) and authenticated (401); a body that is not the
// source's payload gets 400 with what is wrong. Otherwise its alerts are
// routed and grouped within Timeout and it is answered 202, or 503 when
// the Sink failed or time ran out (the sender retries; redeliveries are
// dropped, so a retry does only what failed).
func (in *Intake) Handler() http.Handler {
	mux := http.NewServeMux()
	for path, e := range in.endpoints {
		mux.Handle(path, in.serve(e))
	}
	return mux
}

// Grouper is the Intake's Grouper (for metrics of open incidents).
func (in *Intake) Grouper() *Grouper { return in.grouper }

func (in *Intake) serve(e endpoint) http.Handler {
	src := e.dec.source()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received := in.now()
		log := in.log.With("source", src, "remote", r.RemoteAddr)
		refuse := func(status int, outcome, msg string) {
			in.metrics.Request(src, outcome)
			http.Error(w, msg, status)
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			refuse(http.StatusMethodNotAllowed, "method", "POST only")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			refuse(http.StatusUnsupportedMediaType, "media_type", "Content-Type must be application/json")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, in.cfg.MaxBodyBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				log.Warn("alert delivery refused: body too large", "limit", in.cfg.MaxBodyBytes)
				refuse(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body larger than %d bytes", in.cfg.MaxBodyBytes))
				return
			}
			refuse(http.StatusBadRequest, "malformed", "could not read the body")
			return
		}
		if ok, reason := e.auth.authenticate(r, body); !ok {
			log.Warn("alert delivery refused: not authenticated", "reason", reason)
			refuse(http.StatusUnauthorized, "unauthorized", "unauthorized")
			return
		}
		alerts, err := e.dec.decode(body)
		if err != nil {
			msg := fmt.Sprintf("malformed %s payload: %s", src, clip(err.Error(), 300))
			log.Warn("alert delivery refused: malformed", "err", clip(err.Error(), 300), "bytes", len(body))
			refuse(http.StatusBadRequest, "malformed", msg)
			return
		}

		// The sender hanging up must not cut a Sink call in half.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), in.cfg.Timeout)
		defer cancel()
		sum, err := in.process(ctx, log, alerts, received)
		if err != nil {
			log.Error("alert delivery failed; the sender will retry", "err", err)
			in.metrics.Request(src, "failed")
			w.Header().Set("Retry-After", "5")
			http.Error(w, "alerts could not be processed now; retry", http.StatusServiceUnavailable)
			return
		}
		in.metrics.Request(src, "accepted")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(sum)
	})
}

// summary is the 202 answer: how many alerts of the delivery had each
// outcome.
type summary struct {
	Alerts   int             `json:"alerts"`
	Outcomes map[Outcome]int `json:"outcomes,omitempty"`
}

// batch is the alerts of one delivery that go to one target.
type batch struct {
	target Target
	alerts []Alert
}

// process routes alerts and hands them to the Grouper, one batch per
// target, in the order targets first appear. Every batch is tried; the
// first error is returned.
func (in *Intake) process(ctx context.Context, log *slog.Logger, alerts []Alert, received time.Time) (summary, error) {
	sum := summary{Alerts: len(alerts), Outcomes: map[Outcome]int{}}
	var batches []*batch
	byTarget := map[groupKey]*batch{}
	for _, a := range alerts {
		t, ok := in.grouper.Lookup(a)
		if !ok {
			t, ok = in.router.Route(a)
		}
		if !ok {
			log.Info("alert matched no route: no incident", "key", clip(a.Key, 100), "status", a.Status, "title", clip(a.Title, 200))
			in.metrics.Alert(a.Source, OutcomeUnmapped)
			sum.Outcomes[OutcomeUnmapped]++
			continue
		}
		k := groupKey{t.App, t.Env}
		b := byTarget[k]
		if b == nil {
			b = &batch{target: t}
			byTarget[k] = b
			batches = append(batches, b)
		}
		b.alerts = append(b.alerts, a)
	}
	var firstErr error
	for _, b := range batches {
		res, err := in.grouper.Handle(ctx, b.target, b.alerts...)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		for i, out := range res.Outcomes {
			if out == "" {
				out = OutcomeFailed
			}
			in.metrics.Alert(b.alerts[i].Source, out)
			sum.Outcomes[out]++
		}
		if res.Event == EventOpen {
			d := in.now().Sub(received)
			in.metrics.Opened(b.alerts[0].Source, d)
			log.Info("incident opened", "app", b.target.App, "env", b.target.Env, "route", b.target.Route,
				"alerts", len(b.alerts), "latency", d)
		} else if res.Event != EventNone {
			log.Info("incident changed", "event", res.Event, "app", b.target.App, "env", b.target.Env)
		}
	}
	return sum, firstErr
}
