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
	// PushRetries counts the pushes of a landed change beyond the first:
	// the branch moved and the change was re-planned on the new tip.
	PushRetries(n int)
	// Watched records how a landed change's watch through Argo CD ended
	// (a gitops.Outcome: healthy, degraded, unwatched) and how long after
	// the commit.
	Watched(outcome string, sinceCommit time.Duration)
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
func (NopMetrics) PushRetries(int)                        {}
func (NopMetrics) Watched(string, time.Duration)          {}
func (NopMetrics) Rejected(string)                        {}
func (NopMetrics) RateLimited(string)                     {}
