// Package slackmetrics exports what the Slack adapter counts as Prometheus
// metrics.
package slackmetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	chatslack "github.com/shipbot/shipbot/chat/slack"
	"github.com/shipbot/shipbot/gitops"
)

// Metrics implements chat/slack.Metrics.
type Metrics struct {
	requests    *prometheus.CounterVec
	denials     *prometheus.CounterVec
	commit      *prometheus.HistogramVec
	rejected    *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	retries     prometheus.Counter
	healthy     prometheus.Histogram
	watched     *prometheus.CounterVec
}

var _ chatslack.Metrics = (*Metrics)(nil)

// New registers shipbot's metrics with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipbot_requests_total",
			Help: "Chat requests answered, by action (rollback, restart, promote, status, history, help, invalid) and outcome (committed, denied, rejected, cancelled, expired, failed, answered, confirm).",
		}, []string{"action", "outcome"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipbot_denials_total",
			Help: "Requests and answers refused, by reason: policy, identity, channel, not_requester, busy.",
		}, []string{"reason"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shipbot_time_to_commit_seconds",
			Help:    "Time until a change was committed and pushed: from the request (since=request, includes the human's answer) or from the Confirm click (since=confirm).",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"since"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipbot_slack_http_rejected_total",
			Help: "HTTP requests refused before reaching shipbot, by reason: signature, stale, headers, too_large, method, malformed.",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipbot_slack_rate_limited_total",
			Help: "Slack Web API calls answered 429, by method.",
		}, []string{"method"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shipbot_push_retries_total",
			Help: "Pushes of landed changes beyond the first: the branch moved under shipbot and the change was re-planned on the new tip.",
		}),
		healthy: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shipbot_time_to_healthy_seconds",
			Help:    "Time from a change's commit until Argo CD reported it Synced and Healthy at that commit.",
			Buckets: []float64{1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600},
		}),
		watched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipbot_watch_outcomes_total",
			Help: "How the watches of landed changes ended: healthy, degraded, unwatched (timed out, or Argo CD could not be asked).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.denials, m.commit, m.rejected, m.rateLimited, m.retries, m.healthy, m.watched)
	return m
}

func (m *Metrics) Request(action, outcome string) { m.requests.WithLabelValues(action, outcome).Inc() }
func (m *Metrics) Denied(reason string)           { m.denials.WithLabelValues(reason).Inc() }
func (m *Metrics) Rejected(reason string)         { m.rejected.WithLabelValues(reason).Inc() }
func (m *Metrics) RateLimited(method string)      { m.rateLimited.WithLabelValues(method).Inc() }

func (m *Metrics) Committed(sinceRequest, sinceConfirm time.Duration) {
	m.commit.WithLabelValues("request").Observe(sinceRequest.Seconds())
	m.commit.WithLabelValues("confirm").Observe(sinceConfirm.Seconds())
}

func (m *Metrics) PushRetries(n int) {
	if n > 0 {
		m.retries.Add(float64(n))
	}
}

func (m *Metrics) Watched(outcome string, sinceCommit time.Duration) {
	m.watched.WithLabelValues(outcome).Inc()
	if outcome == string(gitops.OutcomeHealthy) {
		m.healthy.Observe(sinceCommit.Seconds())
	}
}
