package argo

import (
	"context"
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // windows name IANA zones; a slim image may have no zoneinfo

	"github.com/robfig/cron/v3"

	"github.com/shipbot/shipbot/gitops"
)

// Sync windows (AppProject spec.syncWindows) are judged the way Argo CD's
// v1alpha1.SyncWindows.CanSync does (v2.14 and v3 agree): the schedule is
// a five-field cron (robfig/cron/v3, Argo CD's own parser) evaluated in the
// window's time zone; a window is active from a start for its duration. An
// active deny window blocks (a manual sync passes when every active deny
// window has manualSync); else an active allow window lets it through;
// else, when the app has allow windows, none being active blocks (a manual
// sync passes when all of them have manualSync); else it may sync.
//
// v3.3's syncOverrun only lets an operation already running go on, which
// never concerns a sync shipbot is about to start or wait for.

// WindowHold says whether a sync at a given time is held, and until when.
type WindowHold struct {
	Held bool
	// Until is the first time after the one asked about at which the sync
	// may run; zero when not held, or beyond the horizon (Beyond), or when
	// the windows change too often to follow that far.
	Until  time.Time
	Beyond bool
	// By are the windows that hold it: the active deny windows, or the
	// (inactive) allow windows.
	By []SyncWindow
}

// WindowHorizon is how far Hold looks for the end of a hold: a monthly
// allow window is found, a permanent deny window is not.
const WindowHorizon = 32 * 24 * time.Hour

// maxWindowSteps bounds the transitions Hold looks at (a window starting
// every minute for a month has 46,080).
const maxWindowSteps = 200_000

var windowParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// window is a SyncWindow parsed.
type window struct {
	w     SyncWindow
	sched cron.Schedule
	dur   time.Duration
	loc   *time.Location
}

func parseWindows(ws []SyncWindow) ([]window, error) {
	out := make([]window, 0, len(ws))
	for _, w := range ws {
		s, err := windowParser.Parse(w.Schedule)
		if err != nil {
			return nil, fmt.Errorf("sync window %s: schedule: %w", w, err)
		}
		d, err := time.ParseDuration(w.Duration)
		if err != nil {
			return nil, fmt.Errorf("sync window %s: duration: %w", w, err)
		}
		loc := time.UTC
		if w.TimeZone != "" {
			// Argo CD falls back to UTC for a zone it does not know.
			if l, err := time.LoadLocation(w.TimeZone); err == nil {
				loc = l
			}
		}
		out = append(out, window{w: w, sched: s, dur: d, loc: loc})
	}
	return out, nil
}

// shifted is t as Argo CD evaluates the schedule: the UTC clock moved by
// the zone's offset at t.
func (w *window) shifted(t time.Time) time.Time {
	_, off := t.In(w.loc).Zone()
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// active reports whether w is active at t: it started less than its
// duration before t.
func (w *window) active(t time.Time) bool {
	st := w.shifted(t)
	return w.sched.Next(st.Add(-w.dur)).Before(st)
}

// canSync is Argo CD's CanSync at t for the given windows.
func canSync(ws []window, manual bool, t time.Time) (ok bool, by []SyncWindow) {
	if len(ws) == 0 {
		return true, nil
	}
	var deny, allow, inactiveAllow []SyncWindow
	denyManual, allowManual := true, true
	for i := range ws {
		w := &ws[i]
		on := w.active(t)
		switch {
		case w.w.Kind == "deny" && on:
			deny = append(deny, w.w)
			denyManual = denyManual && w.w.ManualSync
		case w.w.Kind == "allow" && on:
			allow = append(allow, w.w)
		case w.w.Kind == "allow":
			inactiveAllow = append(inactiveAllow, w.w)
			allowManual = allowManual && w.w.ManualSync
		}
	}
	switch {
	case len(deny) > 0:
		return manual && denyManual, deny
	case len(allow) > 0:
		return true, nil
	case len(inactiveAllow) > 0:
		return manual && allowManual, inactiveAllow
	}
	return true, nil
}

// Hold says whether a sync at now is held by the windows (those that apply
// to the app: the assignedWindows of its syncwindows answer, with their
// time zones), and when it may run: the first window start or end after
// now at which CanSync holds, within WindowHorizon. manual is for a manual
// sync (shipbot's or a person's), else Argo CD's automated sync.
func Hold(ws []SyncWindow, manual bool, now time.Time) (WindowHold, error) {
	parsed, err := parseWindows(ws)
	if err != nil {
		return WindowHold{}, err
	}
	ok, by := canSync(parsed, manual, now)
	if ok {
		return WindowHold{}, nil
	}
	h := WindowHold{Held: true, By: by}
	end := now.Add(WindowHorizon)
	// The transitions of each window, in order: starts, and ends (start +
	// duration). A start up to a duration before now may end after it.
	type stream struct {
		w     *window
		start time.Time // next start (UTC), shifted back
		ends  []time.Time
	}
	streams := make([]*stream, len(parsed))
	for i := range parsed {
		w := &parsed[i]
		s := &stream{w: w}
		s.start = w.nextStart(now.Add(-w.dur))
		streams[i] = s
	}
	for steps := 0; steps < maxWindowSteps; steps++ {
		// The earliest pending transition of any window.
		var at time.Time
		for _, s := range streams {
			if len(s.ends) > 0 && (at.IsZero() || s.ends[0].Before(at)) {
				at = s.ends[0]
			}
			if !s.start.IsZero() && (at.IsZero() || s.start.Before(at)) {
				at = s.start
			}
		}
		if at.IsZero() || at.After(end) {
			h.Beyond = true
			return h, nil
		}
		// Only a deny window ending or an allow window starting can let a
		// sync through.
		opens := false
		for _, s := range streams {
			for len(s.ends) > 0 && !s.ends[0].After(at) {
				s.ends = s.ends[1:]
				// With a later end pending, a later start keeps it active.
				opens = opens || (s.w.w.Kind == "deny" && len(s.ends) == 0)
			}
			for !s.start.IsZero() && !s.start.After(at) {
				s.ends = append(s.ends, s.start.Add(s.w.dur))
				s.start = s.w.nextStart(s.start)
				opens = opens || s.w.w.Kind == "allow"
			}
		}
		if !opens || !at.After(now) {
			continue
		}
		// A window is active strictly after its start and up to (not at)
		// its end: judge just after the transition.
		if ok, _ := canSync(parsed, manual, at.Add(time.Second)); ok {
			h.Until = at
			return h, nil
		}
	}
	return h, nil
}

// nextStart is the first start of w after t (real time); zero when the
// schedule has none (an impossible date).
func (w *window) nextStart(t time.Time) time.Time {
	// Starts are found on Argo CD's shifted clock; undo the shift with the
	// offset at that start (it may differ from the one at t across DST).
	from := w.shifted(t)
	for range 4 {
		st := w.sched.Next(from)
		if st.IsZero() {
			return time.Time{}
		}
		real := st
		for range 2 {
			_, off := real.In(w.loc).Zone()
			real = st.Add(-time.Duration(off) * time.Second)
		}
		if real.After(t) {
			return real
		}
		from = st
	}
	return time.Time{}
}

var _ gitops.SyncWindows = (*Watcher)(nil)

// SyncHold implements gitops.SyncWindows: it reads the windows that apply
// to the app that deploys t and says whether a sync at now would be held:
// Argo CD's automated sync for an app with automated sync, a manual one
// (shipbot's or a person's) otherwise.
func (w *Watcher) SyncHold(ctx context.Context, t gitops.Target, now time.Time) (gitops.SyncHold, error) {
	name, app, err := w.appOf(ctx, t)
	if err != nil {
		return gitops.SyncHold{}, err
	}
	return w.hold(ctx, name, !app.AutomatedSync(), now)
}

// appOf is the Application that deploys t: argoApp, or found by its source.
func (w *Watcher) appOf(ctx context.Context, t gitops.Target) (string, *Application, error) {
	if name := t.ArgoApp; name != "" {
		app, err := w.client.Get(ctx, name, "")
		return name, app, err
	}
	if w.finder == nil {
		return "", nil, fmt.Errorf("%s in %s: no argoApp and no repo to discover it by: %w", t.App, t.Env, ErrNoApp)
	}
	m, err := w.finder.Find(ctx, t)
	if err != nil {
		return "", nil, err
	}
	return refOf(&m.App), &m.App, nil
}

// hold reads the app's windows and judges them at now. The application's
// syncwindows answer (get on the application suffices) names the windows
// that apply; their time zones come from the project when shipbot may read
// it, else UTC is assumed (and said).
func (w *Watcher) hold(ctx context.Context, name string, manual bool, now time.Time) (gitops.SyncHold, error) {
	res := gitops.SyncHold{App: name, Manual: manual}
	aw, err := w.client.AppSyncWindows(ctx, name)
	if err != nil {
		return res, err
	}
	ws := aw.AssignedWindows
	if len(ws) == 0 {
		return res, nil
	}
	res.ZoneAssumed = !w.zones(ctx, name, ws)
	h, err := Hold(ws, manual, now)
	if err != nil {
		return res, err
	}
	if manual && aw.CanSync != nil && *aw.CanSync == h.Held {
		// The server judged a manual sync now otherwise: trust it for now,
		// and don't guess when.
		w.opts.Logger.Warn("sync windows: Argo CD's canSync differs from shipbot's reading", "app", name, "canSync", *aw.CanSync)
		h = WindowHold{Held: !*aw.CanSync, By: aw.ActiveWindows}
	}
	res.Held, res.Until, res.Beyond = h.Held, h.Until, h.Beyond
	for _, b := range h.By {
		res.Windows = append(res.Windows, b.String())
	}
	if h.Held && !manual {
		if ok, _ := Hold(ws, true, now); !ok.Held {
			res.ManualOverride = true
		}
	}
	return res, nil
}

// zones fills in the time zones (and descriptions) of ws from the app's
// project; false when the project can't be read.
func (w *Watcher) zones(ctx context.Context, name string, ws []SyncWindow) bool {
	proj, err := w.client.ProjectOf(ctx, name)
	if err == nil && proj == "" {
		proj = "default"
	}
	var p *AppProject
	if err == nil {
		p, err = w.client.Project(ctx, proj)
	}
	if err != nil {
		if !errors.Is(err, ErrPermissionDenied) {
			w.opts.Logger.Warn("sync windows: project not readable, assuming UTC", "app", name, "err", err)
		}
		return false
	}
	for i := range ws {
		for _, pw := range p.Spec.SyncWindows {
			if ws[i].same(pw) {
				ws[i].TimeZone, ws[i].Description = pw.TimeZone, pw.Description
				break
			}
		}
	}
	return true
}
