package slackmetrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gather returns the metric families of reg by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// find returns the metric of mf with exactly these labels.
func find(mf *dto.MetricFamily, labels map[string]string) *dto.Metric {
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		ok := true
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				ok = false
			}
		}
		if ok {
			return m
		}
	}
	return nil
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.Request("rollback", "committed")
	m.Request("rollback", "committed")
	m.Request("status", "answered")
	m.Denied("policy")
	m.Rejected("signature")
	m.RateLimited("chat.update")
	m.Committed(90*time.Second, 2*time.Second)
	m.PushRetries(0)
	m.PushRetries(2)
	m.Watched("healthy", 3*time.Second)
	m.Watched("degraded", 16*time.Second)

	mfs := gather(t, reg)
	for name, tc := range map[string]struct {
		labels map[string]string
		want   float64
	}{
		"shipbot_requests_total":            {map[string]string{"action": "rollback", "outcome": "committed"}, 2},
		"shipbot_denials_total":             {map[string]string{"reason": "policy"}, 1},
		"shipbot_slack_http_rejected_total": {map[string]string{"reason": "signature"}, 1},
		"shipbot_slack_rate_limited_total":  {map[string]string{"method": "chat.update"}, 1},
		"shipbot_push_retries_total":        {map[string]string{}, 2},
		"shipbot_watch_outcomes_total":      {map[string]string{"outcome": "degraded"}, 1},
	} {
		mf := mfs[name]
		if mf == nil {
			t.Errorf("%s not exported", name)
			continue
		}
		if got := find(mf, tc.labels); got == nil || got.GetCounter().GetValue() != tc.want {
			t.Errorf("%s%v = %v, want %v", name, tc.labels, got, tc.want)
		}
	}
	if h := find(mfs["shipbot_time_to_healthy_seconds"], map[string]string{}); h == nil || h.GetHistogram().GetSampleCount() != 1 || h.GetHistogram().GetSampleSum() != 3 {
		t.Errorf("time to healthy: %v (only the healthy watch counts)", h)
	}
	h := mfs["shipbot_time_to_commit_seconds"]
	for since, want := range map[string]float64{"request": 90, "confirm": 2} {
		got := find(h, map[string]string{"since": since})
		if got == nil || got.GetHistogram().GetSampleCount() != 1 || got.GetHistogram().GetSampleSum() != want {
			t.Errorf("time to commit since %s: %v", since, got)
		}
	}
}
