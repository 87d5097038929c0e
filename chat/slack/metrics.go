package slack

import "time"

// Metrics receives what the Slack adapter counts. chat/slack/slackmetrics
// implements it with Prometheus; the zero Options use NopMetrics.
type Metrics interface {
	// Request counts a request that got an answer: action is the parsed
	// command ("rollback", ..., or "invalid"), outcome a gitops.Outcome or
	// "cancelled"/"expired" for plans that were never confirmed.
	Request(action, outcome string)
	// Denied counts a refusal: "policy", "identity", "channel",
	// "not_requester", "busy".
	Denied(reason string)
	// Committed records the time from the request to its commit, and from
	// the Confirm click to its commit.
	Committed(sinceRequest, sinceConfirm time.Duration)
	// Rejected counts an HTTP request refused before it reached shipbot:
	// "signature", "stale", "headers", "too_large", "method", "malformed".
	Rejected(reason string)
	// RateLimited counts a 429 from Slack for a Web API method.
	RateLimited(method string)
}

// NopMetrics discards everything.
type NopMetrics struct{}

func (NopMetrics) Request(string, string)                 {}
func (NopMetrics) Denied(string)                          {}
func (NopMetrics) Committed(time.Duration, time.Duration) {}
func (NopMetrics) Rejected(string)                        {}
func (NopMetrics) RateLimited(string)                     {}
