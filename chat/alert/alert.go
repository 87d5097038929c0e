// Package alert takes alerts in from Alertmanager, PagerDuty (v3 webhooks)
// and Opsgenie (outgoing webhooks), normalises them into one Alert, maps
// each to the app and environment it is about (Router, configured routes)
// and folds them into incidents, one per open (app, env) group (Grouper),
// which a chat front end posts once and updates in place (Sink).
//
// Every delivery is authenticated before its body is read as JSON: a
// bearer token or basic auth for Alertmanager, the X-PagerDuty-Signature
// HMAC for PagerDuty, a header secret or basic auth for Opsgenie, all
// compared in constant time. A source with no credentials configured is
// refused (401): there are no unauthenticated alerts.
//
// What is kept only in memory: the open incidents (which alerts belong to
// which incident, the Sink's reference to each incident's chat message) and,
// for a while, the alerts of resolved incidents (to drop redeliveries). A
// restart forgets them all: the next firing alert of an incident that was
// open opens a new incident (a new chat message), and a resolution of an
// alert shipbot no longer knows is dropped, so the old message is never
// marked resolved. Nothing a user relies on for a change lives here: an
// incident is news, not a record.
package alert

import (
	"errors"
	"time"
)

// Source is where an alert came from.
type Source string

const (
	SourceAlertmanager Source = "alertmanager"
	SourcePagerDuty    Source = "pagerduty"
	SourceOpsgenie     Source = "opsgenie"
)

// Status is an alert's or an incident's state.
type Status string

const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Alert is one alert from any source, normalised. Its text fields (Title,
// Text, Labels, Annotations) are hostile data: render them as data, never
// interpret them.
type Alert struct {
	Source Source
	// Key identifies the alert within its source and is the dedup key:
	// Alertmanager's fingerprint (or a hash of the labels when the
	// sender has none), the PagerDuty incident ID, the Opsgenie alertId
	// (or its alias when there is no alertId).
	Key    string
	Status Status
	Title  string // one line: summary, incident title, alert message
	Text   string // longer description, may be empty
	// Labels are what routes match: Alertmanager's labels; for PagerDuty
	// service, service_id, priority, urgency, incident_key,
	// incident_number, teams, event_type; for Opsgenie the alert's details
	// plus entity, source, priority, alias, tiny_id and tags
	// (comma-separated).
	Labels map[string]string
	// Annotations are Alertmanager's annotations (empty for the others);
	// text routes search them too.
	Annotations map[string]string
	URL         string // where a human reads more (generator, incident, alert)
	StartedAt   time.Time
	EndedAt     time.Time // zero while firing
	// At is when the alert entered Status as its source tells it (zero if
	// the source does not say): an older state arriving after a newer one
	// is dropped as stale.
	At time.Time
}

// id is an alert's identity across sources.
type alertID struct {
	source Source
	key    string
}

func (a Alert) id() alertID { return alertID{a.Source, a.Key} }

// Target is what a route maps an alert to.
type Target struct {
	App   string
	Env   string
	Route string // the route's name (or "routes[i]")
	Why   string // the route's why, expanded ("" = none)
}

// Outcome says what became of one alert.
type Outcome string

const (
	// OutcomeOpened: the alert opened an incident (Sink.Open); in a batch,
	// the first alert that changed the incident.
	OutcomeOpened Outcome = "opened"
	// OutcomeUpdated: the alert changed an open incident (Sink.Update), or
	// joined the incident its batch opened.
	OutcomeUpdated Outcome = "updated"
	// OutcomeResolved: the alert's resolution, with its batch, resolved
	// its incident: all the incident's alerts are resolved (Sink.Resolve).
	OutcomeResolved Outcome = "resolved"
	// OutcomeDuplicate: a redelivery (same source, key and status).
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeStale: older than the state shipbot already has.
	OutcomeStale Outcome = "stale"
	// OutcomeUnknown: the resolution of an alert shipbot does not know
	// (never seen, or forgotten by a restart or an expiry).
	OutcomeUnknown Outcome = "unknown"
	// OutcomeOverflow: the incident already tracks as many alerts as it
	// may; this one is counted nowhere.
	OutcomeOverflow Outcome = "overflow"
	// OutcomeUnmapped: no route maps the alert to an app and environment.
	OutcomeUnmapped Outcome = "unmapped"
	// OutcomeFailed: the Sink failed or time ran out; the sender is asked
	// to retry (503) and the retry is processed as new.
	OutcomeFailed Outcome = "failed"
)

// ErrFull is returned when a new incident cannot be opened because as many
// incidents as allowed are open and each of them is busy.
var ErrFull = errors.New("too many open incidents")
