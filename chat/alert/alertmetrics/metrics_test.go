package alertmetrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shipbot/shipbot/chat/alert"
)

// find returns the metric of family name with exactly these labels.
func find(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.Request(alert.SourcePagerDuty, "unauthorized")
	m.Request(alert.SourcePagerDuty, "unauthorized")
	m.Request(alert.SourceAlertmanager, "accepted")
	m.Alert(alert.SourceAlertmanager, alert.OutcomeOpened)
	m.Alert(alert.SourceAlertmanager, alert.OutcomeUnmapped)
	m.Opened(alert.SourceAlertmanager, 1500*time.Millisecond)
	m.Opened(alert.SourceAlertmanager, 300*time.Millisecond)

	if got := find(t, reg, "shipbot_alert_deliveries_total", map[string]string{"source": "pagerduty", "outcome": "unauthorized"}); got.GetCounter().GetValue() != 2 {
		t.Errorf("deliveries{pagerduty,unauthorized} = %v, want 2", got)
	}
	if got := find(t, reg, "shipbot_alerts_total", map[string]string{"source": "alertmanager", "outcome": "unmapped"}); got.GetCounter().GetValue() != 1 {
		t.Errorf("alerts{alertmanager,unmapped} = %v, want 1", got)
	}
	h := find(t, reg, "shipbot_alert_to_incident_seconds", map[string]string{"source": "alertmanager"}).GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 1.8 {
		t.Errorf("histogram count %d sum %v, want 2 and 1.8", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == 1 && b.GetCumulativeCount() != 1 || b.GetUpperBound() == 2 && b.GetCumulativeCount() != 2 {
			t.Errorf("bucket le=%v has %d", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
}
