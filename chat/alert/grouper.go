package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"
)

// Incident is one (app, env) group of alerts as the Sink sees it: a
// snapshot the Sink may keep (its alerts' maps are shared: read only).
type Incident struct {
	App   string
	Env   string
	Route string // the route that mapped the alert that opened it
	// Why is the reason a rollback from this incident gives (the route's
	// why for the alert that opened it); "" = none.
	Why string
	// Status is firing while any of its alerts fires.
	Status Status
	// Title is the title of the alert that fired last.
	Title string
	// Latest is the alert this event is about.
	Latest Alert
	// Alerts are the incident's alerts in their latest state, in the
	// order they joined.
	Alerts   []Alert
	Firing   int // how many of Alerts fire
	Resolved int // how many of Alerts are resolved
	OpenedAt time.Time
	// UpdatedAt is when this event happened (shipbot's clock).
	UpdatedAt time.Time
}

// Sink is where incidents go: the chat front end posts a message on Open
// and edits it in place on Update and Resolve. ref is whatever the Sink
// needs to find its message again (e.g. a Slack channel and timestamp);
// the Grouper only hands it back. Calls for one incident never overlap;
// calls for different incidents may. ctx bounds each call.
type Sink interface {
	Open(ctx context.Context, inc Incident) (ref string, err error)
	Update(ctx context.Context, ref string, inc Incident) error
	Resolve(ctx context.Context, ref string, inc Incident) error
}

// GrouperOptions bound what the Grouper keeps. Validate fills defaults.
type GrouperOptions struct {
	// MaxOpen is how many incidents may be open at once (default 1000).
	// When a new one would exceed it, the open incident quiet for the
	// longest is forgotten (its message stays as it was).
	MaxOpen int `yaml:"maxOpen"`
	// MaxAlerts is how many alerts one incident tracks (default 500);
	// further alerts are dropped (OutcomeOverflow).
	MaxAlerts int `yaml:"maxAlertsPerIncident"`
	// ResolvedTTL is how long the alerts of a resolved incident are
	// remembered to drop their redeliveries (default 1h), MaxResolved how
	// many at most (default 10,000).
	ResolvedTTL time.Duration `yaml:"resolvedTTL"`
	MaxResolved int           `yaml:"maxResolved"`
	// StaleAfter forgets an open incident that heard nothing, not even a
	// redelivery, for this long (default 24h; Alertmanager repeats firing
	// alerts every repeat_interval, 4h by default).
	StaleAfter time.Duration `yaml:"staleAfter"`

	Logger *slog.Logger     `yaml:"-"`
	Now    func() time.Time `yaml:"-"`
}

// Validate checks o and fills its defaults.
func (o *GrouperOptions) Validate() error {
	if o.MaxOpen < 0 || o.MaxAlerts < 0 || o.MaxResolved < 0 || o.ResolvedTTL < 0 || o.StaleAfter < 0 {
		return errors.New("alert incidents: limits must not be negative")
	}
	if o.MaxOpen == 0 {
		o.MaxOpen = 1000
	}
	if o.MaxAlerts == 0 {
		o.MaxAlerts = 500
	}
	if o.ResolvedTTL == 0 {
		o.ResolvedTTL = time.Hour
	}
	if o.MaxResolved == 0 {
		o.MaxResolved = 10000
	}
	if o.StaleAfter == 0 {
		o.StaleAfter = 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Grouper turns a stream of alerts into incident events: the first firing
// alert for an (app, env) opens an incident (Sink.Open); later alerts for
// it update it (Sink.Update) with the count of alerts and the latest
// title; when all its alerts are resolved it resolves (Sink.Resolve) and is
// closed: the next firing alert opens a new one. A redelivery (same
// source, key and status) and a state older than the one known are
// no-ops. It is safe for concurrent use; Sink calls for one incident are
// serialised, for different incidents they run in parallel.
//
// Everything the Grouper knows is in memory and bounded (GrouperOptions);
// see the package documentation for what a restart forgets.
type Grouper struct {
	sink Sink
	o    GrouperOptions
	log  *slog.Logger

	mu        sync.Mutex
	open      map[groupKey]*group
	index     map[alertID]groupKey // alert -> the open group tracking it
	gone      map[alertID]tombstone
	goneQ     []goneEntry // gone in expiry order (may hold superseded entries)
	lastSweep time.Time
}

type groupKey struct{ app, env string }

// group is one open incident. Its fields change only while its sem is
// held, and under Grouper.mu.
type group struct {
	key      groupKey
	sem      chan struct{} // held while the group's state changes and its Sink is called
	opened   bool          // Sink.Open succeeded
	ref      string
	route    string
	why      string
	title    string
	openedAt time.Time
	lastSeen time.Time // last alert for it, redeliveries included
	alerts   map[alertID]Alert
	order    []alertID
}

// tombstone remembers an alert of a resolved incident.
type tombstone struct {
	key     groupKey
	route   string
	at      time.Time // the alert's At when it resolved
	expires time.Time
}

type goneEntry struct {
	id      alertID
	expires time.Time
}

// sweepEvery is how often stale open incidents are looked for.
const sweepEvery = time.Minute

// NewGrouper returns a Grouper that sends incidents to sink.
func NewGrouper(sink Sink, o GrouperOptions) (*Grouper, error) {
	if sink == nil {
		return nil, errors.New("alert grouper: a Sink is required")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Grouper{
		sink: sink, o: o, log: o.Logger,
		open:  map[groupKey]*group{},
		index: map[alertID]groupKey{},
		gone:  map[alertID]tombstone{},
	}, nil
}

// Lookup returns the target of the incident that tracks a (open, or
// resolved and still remembered). An alert stays with its incident even
// when its labels change: Opsgenie, for one, sends an alert's details
// only with Create, so its Close could not be routed again.
func (g *Grouper) Lookup(a Alert) (Target, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	id := a.id()
	if k, ok := g.index[id]; ok {
		if gr := g.open[k]; gr != nil {
			return Target{App: k.app, Env: k.env, Route: gr.route}, true
		}
	}
	if t, ok := g.gone[id]; ok {
		return Target{App: t.key.app, Env: t.key.env, Route: t.route}, true
	}
	return Target{}, false
}

// OpenIncidents reports how many incidents are open.
func (g *Grouper) OpenIncidents() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, gr := range g.open {
		if gr.opened {
			n++
		}
	}
	return n
}

// Event is what a Handle call did to an incident.
type Event string

const (
	EventNone    Event = "none"    // nothing changed (redeliveries, stale or unknown alerts)
	EventOpen    Event = "open"    // Sink.Open
	EventUpdate  Event = "update"  // Sink.Update
	EventResolve Event = "resolve" // Sink.Resolve
)

// Result is what a Handle call did: at most one Sink call (Event) for the
// whole batch, and what became of each alert (Outcomes, in the batch's
// order). Of the alerts that changed the incident, the first one of an
// opening batch is OutcomeOpened, the others OutcomeUpdated; in a
// resolving batch they are OutcomeResolved.
type Result struct {
	Event    Event
	Outcomes []Outcome
}

// Handle folds a batch of alerts, all mapped to t, into t's incident with
// at most one Sink call: Alertmanager sends a group's alerts together, and
// they become one chat message, not one per alert. An error (the Sink's,
// or ctx's) leaves the incident as it was: the same alerts delivered again
// are processed as new.
func (g *Grouper) Handle(ctx context.Context, t Target, alerts ...Alert) (Result, error) {
	res := Result{Event: EventNone, Outcomes: make([]Outcome, len(alerts))}
	for i, a := range alerts {
		if a.Status != StatusFiring && a.Status != StatusResolved {
			return res, fmt.Errorf("alerts[%d] %s/%s: status %q is neither firing nor resolved", i, a.Source, clip(a.Key, 100), a.Status)
		}
	}
	if len(alerts) == 0 {
		return res, nil
	}
	k := groupKey{t.App, t.Env}
	for {
		g.mu.Lock()
		now := g.o.Now()
		g.maintainLocked(now)
		gr := g.open[k]
		if gr == nil {
			need := false
			for i, a := range alerts {
				out, done := g.withoutGroupLocked(a)
				res.Outcomes[i] = out // "" when undecided
				need = need || !done
			}
			if !need {
				g.mu.Unlock()
				return res, nil
			}
			if len(g.open) >= g.o.MaxOpen && !g.evictLocked() {
				g.mu.Unlock()
				return failed(res), ErrFull
			}
			gr = &group{key: k, sem: make(chan struct{}, 1), lastSeen: now, alerts: map[alertID]Alert{}}
			g.open[k] = gr
		}
		g.mu.Unlock()

		select {
		case gr.sem <- struct{}{}:
		case <-ctx.Done():
			return failed(res), fmt.Errorf("incident %s/%s busy: %w", k.app, k.env, ctx.Err())
		}
		res, err, retry := g.step(ctx, gr, t, alerts)
		<-gr.sem
		if !retry {
			return res, err
		}
	}
}

// failed marks every alert not decided yet as failed.
func failed(res Result) Result {
	for i, o := range res.Outcomes {
		if o == "" {
			res.Outcomes[i] = OutcomeFailed
		}
	}
	return res
}

// withoutGroupLocked decides about an alert that no open group tracks: a
// resolution is a redelivery or unknown, a firing alert may be stale.
// done is false when the alert should open an incident.
func (g *Grouper) withoutGroupLocked(a Alert) (out Outcome, done bool) {
	t, remembered := g.gone[a.id()]
	switch {
	case a.Status == StatusResolved && remembered:
		return OutcomeDuplicate, true
	case a.Status == StatusResolved:
		return OutcomeUnknown, true
	case remembered && stale(t.at, a.At):
		return OutcomeStale, true
	}
	return "", false
}

// stale reports whether a state at next is older than one known at prev.
func stale(prev, next time.Time) bool {
	return !prev.IsZero() && !next.IsZero() && next.Before(prev)
}

// step handles alerts with gr's sem held. retry is set when gr was closed
// or forgotten meanwhile: the batch must be handled again from the start.
func (g *Grouper) step(ctx context.Context, gr *group, t Target, alerts []Alert) (res Result, err error, retry bool) {
	res = Result{Event: EventNone, Outcomes: make([]Outcome, len(alerts))}
	g.mu.Lock()
	if g.open[gr.key] != gr {
		g.mu.Unlock()
		return res, nil, true
	}
	now := g.o.Now()
	gr.lastSeen = now

	// Apply the batch to a copy; it becomes the incident's state once the
	// Sink took the event.
	work := maps.Clone(gr.alerts)
	order := slices.Clone(gr.order)
	title := gr.title
	var changed []int
	for i, a := range alerts {
		id := a.id()
		prev, known := work[id]
		switch {
		case known && prev.Status == a.Status:
			res.Outcomes[i] = OutcomeDuplicate
			continue
		case known && stale(prev.At, a.At):
			res.Outcomes[i] = OutcomeStale
			continue
		case !known:
			if out, done := g.withoutGroupLocked(a); done {
				res.Outcomes[i] = out
				continue
			}
			if len(work) >= g.o.MaxAlerts {
				res.Outcomes[i] = OutcomeOverflow
				continue
			}
			order = append(order, id)
		}
		work[id] = a
		if a.Status == StatusFiring {
			title = a.Title
		}
		changed = append(changed, i)
	}
	firing := 0
	for _, x := range work {
		if x.Status == StatusFiring {
			firing++
		}
	}
	if len(changed) == 0 || (!gr.opened && firing == 0) {
		// Nothing new; or an incident that came and went within one
		// delivery, which is not news.
		for _, i := range changed {
			res.Outcomes[i] = OutcomeUnknown
		}
		if !gr.opened {
			delete(g.open, gr.key)
		}
		g.mu.Unlock()
		return res, nil, false
	}
	switch {
	case !gr.opened:
		res.Event = EventOpen
	case firing == 0:
		res.Event = EventResolve
	default:
		res.Event = EventUpdate
	}
	inc := Incident{
		App: gr.key.app, Env: gr.key.env, Route: gr.route, Why: gr.why, Status: StatusFiring,
		Title: title, Latest: alerts[changed[len(changed)-1]], OpenedAt: gr.openedAt, UpdatedAt: now,
		Alerts: make([]Alert, 0, len(order)), Firing: firing, Resolved: len(order) - firing,
	}
	if res.Event == EventOpen {
		inc.Route, inc.Why, inc.OpenedAt = t.Route, t.Why, now
	}
	if res.Event == EventResolve {
		inc.Status = StatusResolved
	}
	for _, id := range order {
		inc.Alerts = append(inc.Alerts, work[id])
	}
	ref := gr.ref
	g.mu.Unlock()

	switch res.Event {
	case EventOpen:
		ref, err = g.sink.Open(ctx, inc)
	case EventUpdate:
		err = g.sink.Update(ctx, ref, inc)
	case EventResolve:
		err = g.sink.Resolve(ctx, ref, inc)
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		if res.Event == EventOpen && g.open[gr.key] == gr {
			delete(g.open, gr.key) // the next firing alert tries again
		}
		for _, i := range changed {
			res.Outcomes[i] = OutcomeFailed
		}
		ev := res.Event
		res.Event = EventNone
		return res, fmt.Errorf("%s incident %s/%s: %w", ev, gr.key.app, gr.key.env, err), false
	}
	for n, i := range changed {
		switch {
		case res.Event == EventOpen && n == 0:
			res.Outcomes[i] = OutcomeOpened
		case res.Event == EventResolve:
			res.Outcomes[i] = OutcomeResolved
		default:
			res.Outcomes[i] = OutcomeUpdated
		}
	}
	gr.alerts, gr.order, gr.title = work, order, title
	if res.Event == EventOpen {
		gr.opened, gr.ref, gr.route, gr.why, gr.openedAt = true, ref, t.Route, t.Why, now
	}
	if g.open[gr.key] != gr {
		return res, nil, false // cannot happen: only idle groups are removed
	}
	for _, i := range changed {
		g.index[alerts[i].id()] = gr.key
	}
	if res.Event == EventResolve {
		g.removeLocked(gr)
		for _, id := range gr.order {
			g.rememberLocked(id, gr.key, gr.route, gr.alerts[id].At, now)
		}
	}
	return res, nil, false
}

// removeLocked drops an open group and its alerts from the index.
func (g *Grouper) removeLocked(gr *group) {
	if g.open[gr.key] == gr {
		delete(g.open, gr.key)
	}
	for _, aid := range gr.order {
		if g.index[aid] == gr.key {
			delete(g.index, aid)
		}
	}
}

// rememberLocked keeps a resolved alert for ResolvedTTL.
func (g *Grouper) rememberLocked(id alertID, k groupKey, route string, at, now time.Time) {
	exp := now.Add(g.o.ResolvedTTL)
	g.gone[id] = tombstone{key: k, route: route, at: at, expires: exp}
	g.goneQ = append(g.goneQ, goneEntry{id, exp})
	for len(g.gone) > g.o.MaxResolved {
		g.popGoneLocked()
	}
	if len(g.goneQ) > 2*g.o.MaxResolved+64 {
		g.compactGoneLocked()
	}
}

// popGoneLocked drops the oldest entry of goneQ, and its alert if the
// entry is current.
func (g *Grouper) popGoneLocked() {
	e := g.goneQ[0]
	g.goneQ = g.goneQ[1:]
	if t, ok := g.gone[e.id]; ok && t.expires.Equal(e.expires) {
		delete(g.gone, e.id)
	}
}

// compactGoneLocked rebuilds goneQ from gone, without superseded entries.
func (g *Grouper) compactGoneLocked() {
	q := make([]goneEntry, 0, len(g.gone))
	for id, t := range g.gone {
		q = append(q, goneEntry{id, t.expires})
	}
	sort.Slice(q, func(i, j int) bool { return q[i].expires.Before(q[j].expires) })
	g.goneQ = q
}

// maintainLocked expires remembered alerts and, every sweepEvery, forgets
// open incidents quiet for StaleAfter.
func (g *Grouper) maintainLocked(now time.Time) {
	for len(g.goneQ) > 0 && !g.goneQ[0].expires.After(now) {
		g.popGoneLocked()
	}
	if now.Sub(g.lastSweep) < sweepEvery {
		return
	}
	g.lastSweep = now
	for _, gr := range g.open {
		if now.Sub(gr.lastSeen) < g.o.StaleAfter || !tryLock(gr) {
			continue
		}
		g.removeLocked(gr)
		<-gr.sem
		if gr.opened {
			g.log.Info("open incident forgotten: no alert for it in a long time",
				"app", gr.key.app, "env", gr.key.env, "quiet_for", now.Sub(gr.lastSeen).Round(time.Second), "alerts", len(gr.alerts))
		}
	}
}

// evictLocked forgets the idle open incident quiet for the longest, to
// make room; false when every incident is busy.
func (g *Grouper) evictLocked() bool {
	var victim *group
	for _, gr := range g.open {
		if victim == nil || gr.lastSeen.Before(victim.lastSeen) {
			if tryLock(gr) {
				if victim != nil {
					<-victim.sem
				}
				victim = gr
			}
		}
	}
	if victim == nil {
		return false
	}
	g.removeLocked(victim)
	<-victim.sem
	g.log.Warn("open incident forgotten to make room: too many open incidents",
		"app", victim.key.app, "env", victim.key.env, "max_open", g.o.MaxOpen)
	return true
}

// tryLock takes gr's sem if no one holds it.
func tryLock(gr *group) bool {
	select {
	case gr.sem <- struct{}{}:
		return true
	default:
		return false
	}
}
