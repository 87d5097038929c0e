package alert

import "time"

// Metrics receives what the alert intake counts. chat/alert/alertmetrics
// implements it with Prometheus; nil Options.Metrics means NopMetrics.
type Metrics interface {
	// Request counts a delivery by source and how it was answered:
	// "accepted" (202), "method", "media_type", "too_large",
	// "unauthorized", "malformed", "failed" (503: the Sink failed or time
	// ran out; the sender retries).
	Request(source Source, outcome string)
	// Alert counts an alert of an accepted delivery by what became of it.
	Alert(source Source, outcome Outcome)
	// Opened records, for each incident opened, the time from the
	// delivery's receipt to Sink.Open returning: the alert-to-chat
	// latency (the goal is at most 2 s).
	Opened(source Source, sinceReceipt time.Duration)
}

// NopMetrics discards everything.
type NopMetrics struct{}

func (NopMetrics) Request(Source, string)       {}
func (NopMetrics) Alert(Source, Outcome)        {}
func (NopMetrics) Opened(Source, time.Duration) {}
