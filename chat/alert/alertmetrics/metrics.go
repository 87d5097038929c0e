// Package alertmetrics exports what the alert intake counts as Prometheus
// metrics.
package alertmetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shipbot/shipbot/chat/alert"
)

// Metrics implements alert.Metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	alerts   *prometheus.CounterVec
	opened   *prometheus.HistogramVec
}

var _ alert.Metrics = (*Metrics)(nil)

// New registers the alert intake's metrics with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipbot_alert_deliveries_total",
			Help: "Alert webhook deliveries, by source (alertmanager, pagerduty, opsgenie) and answer: accepted, method, media_type, too_large, unauthorized, malformed, failed.",
		}, []string{"source", "outcome"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shipbot_alerts_total",
			Help: "Alerts of accepted deliveries, by source and outcome: opened, updated, resolved, duplicate, stale, unknown, overflow, unmapped, failed.",
		}, []string{"source", "outcome"}),
		opened: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shipbot_alert_to_incident_seconds",
			Help:    "Time from an alert delivery's receipt until the chat posted the incident it opened (goal: 2s).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10},
		}, []string{"source"}),
	}
	reg.MustRegister(m.requests, m.alerts, m.opened)
	return m
}

func (m *Metrics) Request(source alert.Source, outcome string) {
	m.requests.WithLabelValues(string(source), outcome).Inc()
}

func (m *Metrics) Alert(source alert.Source, outcome alert.Outcome) {
	m.alerts.WithLabelValues(string(source), string(outcome)).Inc()
}

func (m *Metrics) Opened(source alert.Source, d time.Duration) {
	m.opened.WithLabelValues(string(source)).Observe(d.Seconds())
}
