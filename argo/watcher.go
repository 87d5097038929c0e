package argo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// RepoURL and Branch are the environment repo and the branch shipbot
	// commits to; discovery needs them. Without RepoURL every target must
	// name its ArgoApp.
	RepoURL string
	Branch  string
	// CacheTTL is how long discovery reuses the list of apps (default 1m).
	CacheTTL time.Duration
	// Timeout bounds one Watch (default 5m).
	Timeout time.Duration
	// Refresh is the refresh asked for right after the commit: "normal"
	// (default) or "hard" (also regenerates manifests: slower).
	Refresh string
	// SyncManual lets shipbot start the sync of an app without automated
	// sync (POST .../sync to the commit). Off: such an app is watched until
	// someone syncs it or the watch times out.
	SyncManual bool
	// BackoffMin and BackoffMax bound the pause between attempts while the
	// watch stream or the server fails (defaults 1s and 15s). The pause
	// doubles with every attempt that got no event.
	BackoffMin, BackoffMax time.Duration
	// StreamIdle reconnects a watch stream that was silent this long
	// (default 60s); every new stream starts with the app's current state.
	StreamIdle time.Duration
	// Logger gets what happened, never the token (default: discard).
	Logger *slog.Logger
	// Now is the clock for discovery's cache (default time.Now).
	Now func() time.Time
}

// Validate fills defaults and checks the options.
func (o *WatcherOptions) Validate() error {
	switch o.Refresh {
	case "":
		o.Refresh = RefreshNormal
	case RefreshNormal, RefreshHard:
	default:
		return fmt.Errorf("argo: watcher: refresh %q: want normal or hard", o.Refresh)
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = time.Second
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(15*time.Second, o.BackoffMin)
	}
	if o.StreamIdle <= 0 {
		o.StreamIdle = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Watcher is shipbot's gitops.SyncWatcher for Argo CD. After a commit it
// asks Argo CD to refresh the app at once, syncs it when the app has no
// automated sync and SyncManual allows, then follows the app on the watch
// stream — falling back to polling with backoff whenever the stream fails
// — until the commit is live:
//
//	status.operationState.phase == Succeeded
//	status.operationState.syncResult.revision == commit
//	status.sync.revision == commit
//	status.sync.status == Synced
//	status.health.status == Healthy
//
// (for a multi-source app, the revisions of the environment repo's source).
// It fails when the sync operation for the commit fails (Failed, Error),
// when the app is Degraded after syncing the commit (the failing resources'
// messages and the app's conditions go into SyncStatus.Message), and at
// the timeout.
//
// Limitation: only the commit itself counts. If a newer commit lands on
// the branch before Argo CD syncs ours, Argo CD syncs the newer one (which
// contains ours) and the watch times out; shipbot does not ask git whether
// the synced revision descends from ours.
type Watcher struct {
	client *Client
	finder *Finder // nil without RepoURL
	opts   WatcherOptions
}

var _ gitops.SyncWatcher = (*Watcher)(nil)

// NewWatcher makes a Watcher that talks through c.
func NewWatcher(c *Client, o WatcherOptions) (*Watcher, error) {
	if c == nil {
		return nil, errors.New("argo: watcher: no client")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	w := &Watcher{client: c, opts: o}
	if o.RepoURL != "" {
		f, err := NewFinder(c, FinderOptions{RepoURL: o.RepoURL, Branch: o.Branch, CacheTTL: o.CacheTTL, Now: o.Now})
		if err != nil {
			return nil, err
		}
		w.finder = f
	}
	return w, nil
}

var (
	errWatchTimeout = errors.New("watch timeout")
	errStreamIdle   = errors.New("watch stream silent")
)

// Watch implements gitops.SyncWatcher. It returns the last status seen and
// nil once commit is Synced and Healthy; otherwise a *gitops.UserError
// wrapping ErrDegraded, ErrSyncFailed, ErrTimeout, ErrAppDeleted, ErrNoApp,
// ErrAmbiguousApp or the API error that made watching impossible (token
// refused, permission denied), or the context's error when ctx was
// cancelled. progress is called whenever the status changes.
func (w *Watcher) Watch(ctx context.Context, t gitops.Target, commit string, progress func(gitops.SyncStatus)) (gitops.SyncStatus, error) {
	if commit == "" {
		return gitops.SyncStatus{}, errors.New("argo: watch: no commit")
	}
	if progress == nil {
		progress = func(gitops.SyncStatus) {}
	}
	r := &run{
		w: w, t: t, commit: commit, progress: progress, start: time.Now(),
		source: -1, log: w.opts.Logger.With("app", t.App, "env", t.Env, "commit", commit),
	}
	ctx, cancel := context.WithTimeoutCause(ctx, w.opts.Timeout, errWatchTimeout)
	defer cancel()
	if err := r.resolve(ctx); err != nil {
		return r.last, err
	}
	return r.loop(ctx)
}

// run is one Watch.
type run struct {
	w        *Watcher
	t        gitops.Target
	commit   string
	progress func(gitops.SyncStatus)
	start    time.Time
	log      *slog.Logger

	ref         string // the app, "name" or "namespace/name"
	source      int    // the environment repo's source (multi-source apps), else -1
	sourceKnown bool

	app                     *Application // the last seen
	refreshed, synced       bool
	refreshTries, syncTries int
	nextRefresh, nextSync   time.Time
	last                    gitops.SyncStatus
	reported                bool
}

// resolve finds the app: the target's ArgoApp, or discovery (retried while
// Argo CD can't be reached).
func (r *run) resolve(ctx context.Context) error {
	if r.t.ArgoApp != "" {
		r.ref = r.t.ArgoApp
		r.log = r.log.With("argoApp", r.ref)
		return nil
	}
	if r.w.finder == nil {
		return &gitops.UserError{
			Message: fmt.Sprintf("shipbot doesn't know which Argo CD Application deploys %s in %s: set argoApp in shipbot.yaml", r.t.App, r.t.Env),
			Err:     ErrNoApp,
		}
	}
	for n := 0; ; n++ {
		m, err := r.w.finder.Find(ctx, r.t)
		if err == nil {
			r.ref, r.source, r.sourceKnown = refOf(&m.App), m.Source, true
			r.log = r.log.With("argoApp", r.ref)
			return nil
		}
		if errors.Is(err, ErrNoApp) || errors.Is(err, ErrAmbiguousApp) {
			return err
		}
		if permanent(err) {
			return r.refused(err, "list applications")
		}
		if ctx.Err() != nil {
			return r.end(ctx)
		}
		r.unreachable(err)
		if !r.sleep(ctx, n) {
			return r.end(ctx)
		}
	}
}

// loop refreshes at once, then follows the stream; whenever the stream
// fails it polls once and pauses before the next stream.
func (r *run) loop(ctx context.Context) (gitops.SyncStatus, error) {
	r.log.Info("watching Argo CD app")
	if done, err := r.observe(ctx, nil); done {
		return r.last, err
	}
	for n := 0; ; n++ {
		delivered, done, err := r.stream(ctx)
		if done {
			return r.last, err
		}
		if ctx.Err() != nil {
			return r.last, r.end(ctx)
		}
		if delivered > 0 {
			n = 0 // the stream worked for a while: no penalty
		}
		r.log.Debug("watch stream ended, polling", "err", err, "events", delivered)
		app, err := r.w.client.Get(ctx, r.ref, "")
		switch {
		case err == nil:
			if done, err := r.observe(ctx, app); done {
				return r.last, err
			}
		case ctx.Err() != nil:
			return r.last, r.end(ctx)
		case permanent(err):
			return r.last, r.refused(err, "read")
		default:
			r.log.Warn("Argo CD unreachable, retrying", "err", err)
			r.unreachable(err)
		}
		if !r.sleep(ctx, n) {
			return r.last, r.end(ctx)
		}
	}
}

// stream follows the watch stream until the watch is over (done) or the
// stream fails, is closed, or stays silent for StreamIdle. A refresh or
// sync that failed for now is tried again when due, events or not.
func (r *run) stream(ctx context.Context) (delivered int, done bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The gateway sends headers with the first event: a server that has
	// none to send counts as silent.
	connecting := time.AfterFunc(r.w.opts.StreamIdle, cancel)
	s, err := r.w.client.Watch(sctx, r.ref)
	if !connecting.Stop() && ctx.Err() == nil {
		if s != nil {
			s.Close()
		}
		return 0, false, errStreamIdle
	}
	if err != nil {
		return 0, false, err
	}
	defer s.Close()
	type next struct {
		ev  WatchEvent
		err error
	}
	events := make(chan next)
	go func() {
		for {
			ev, err := s.Next()
			select {
			case events <- next{ev, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// Timers since Go 1.23 need no draining after Stop or before Reset.
	idle := time.NewTimer(r.w.opts.StreamIdle)
	defer idle.Stop()
	nudge := time.NewTimer(time.Hour)
	nudge.Stop()
	defer nudge.Stop()
	want := parseRef(r.ref)
	for {
		var due <-chan time.Time
		if at, ok := r.nextNudge(); ok {
			nudge.Reset(time.Until(at))
			due = nudge.C
		}
		select {
		case <-ctx.Done():
			return delivered, false, ctx.Err()
		case <-idle.C:
			return delivered, false, errStreamIdle
		case <-due:
			if done, err := r.observe(ctx, r.app); done {
				return delivered, true, err
			}
			continue // not an event: the idle clock runs on
		case n := <-events:
			if n.err != nil {
				return delivered, false, n.err
			}
			delivered++
			ev := n.ev
			switch {
			case ev.Application.Metadata.Name != want.name:
			case ev.Type == "DELETED":
				r.report(gitops.SyncStatus{Message: "the Application was deleted"})
				return delivered, true, &gitops.UserError{
					Message: fmt.Sprintf("Argo CD Application %s was deleted while shipbot waited for %s", r.ref, short(r.commit)),
					Err:     ErrAppDeleted,
				}
			case ev.Type == "ADDED", ev.Type == "MODIFIED":
				if done, err := r.observe(ctx, &ev.Application); done {
					return delivered, true, err
				}
			}
		}
		nudge.Stop()
		idle.Reset(r.w.opts.StreamIdle)
	}
}

// nextNudge says when a refresh or sync that failed for now is due again.
func (r *run) nextNudge() (time.Time, bool) {
	var at time.Time
	ok := false
	if !r.refreshed {
		at, ok = r.nextRefresh, true
	}
	if r.wantSync(r.app) && (!ok || r.nextSync.Before(at)) {
		at, ok = r.nextSync, true
	}
	return at, ok
}

// seen reports whether Argo CD has compared app against our commit (or runs
// an operation for it): then one refresh was enough.
func (r *run) seen(app *Application) bool {
	return sameRevision(app.SyncedRevision(r.source), r.commit) || r.ours(app)
}

// wantSync reports whether shipbot still has to start the sync of app.
func (r *run) wantSync(app *Application) bool {
	return app != nil && !r.synced && r.w.opts.SyncManual && !app.AutomatedSync() && !r.ours(app)
}

// observe judges app (nil: nothing seen yet), then refreshes or syncs when
// due and judges the answer. done says the watch is over, with err nil
// only when the commit is Synced and Healthy.
func (r *run) observe(ctx context.Context, app *Application) (done bool, err error) {
	for {
		if app != nil {
			if done, err := r.judge(ctx, app); done {
				return true, err
			}
		}
		next, err := r.nudge(ctx, app)
		if err != nil {
			return true, err
		}
		if next == nil {
			return false, nil
		}
		app = next
	}
}

func (r *run) judge(ctx context.Context, app *Application) (bool, error) {
	if !r.sourceKnown {
		if app.MultiSource() {
			if r.w.finder == nil {
				return true, &gitops.UserError{
					Message: fmt.Sprintf("Argo CD Application %s has several sources: shipbot needs the environment repo's URL to tell which one to watch", r.ref),
					Err:     ErrNoApp,
				}
			}
			i, err := r.w.finder.Source(app, r.t)
			if err != nil {
				return true, err
			}
			r.source = i
		}
		r.sourceKnown = true
	}
	r.app = app
	st, v := assess(app, r.commit, r.source)
	if v == pending && !app.AutomatedSync() && !r.w.opts.SyncManual {
		st.Message = joinMessages([]string{"no automated sync: waiting for someone to sync it", st.Message})
	}
	switch v {
	case healthy:
		r.report(st)
		r.log.Info("commit is live")
		return true, nil
	case degraded:
		st.Message = joinMessages([]string{st.Message, r.treeMessages(ctx, st.Message)})
		r.report(st)
		return true, &gitops.UserError{
			Message: fmt.Sprintf("%s is Degraded after syncing %s: %s", r.ref, short(r.commit), orNone(st.Message)),
			Err:     ErrDegraded,
		}
	case failed:
		r.report(st)
		return true, &gitops.UserError{
			Message: fmt.Sprintf("Argo CD's sync of %s to %s ended %s: %s", r.ref, short(r.commit), st.Phase, orNone(st.Message)),
			Err:     ErrSyncFailed,
		}
	}
	r.report(st)
	return false, nil
}

// nudge asks for the refresh (until one went through) and, for an app
// without automated sync, the sync (once), each when due. It returns the
// app as the answer shows it, or nil when nothing was due or it failed for
// now; an error only when Argo CD refused for good.
func (r *run) nudge(ctx context.Context, app *Application) (*Application, error) {
	now := time.Now()
	if !r.refreshed && !now.Before(r.nextRefresh) {
		got, err := r.w.client.Get(ctx, r.ref, r.w.opts.Refresh)
		if err == nil {
			if r.seen(got) {
				r.refreshed = true
			} else {
				// Argo CD answered but has not compared our commit yet (its
				// repo-server failed or was slow): ask again later, or it
				// waits for its own poll (180 s by default).
				r.log.Info("Argo CD has not seen the commit yet; refreshing again", "revision", got.SyncedRevision(r.source))
				r.nextRefresh = time.Now().Add(r.backoff(r.refreshTries))
				r.refreshTries++
			}
			return got, nil
		}
		if permanent(err) {
			return nil, r.refused(err, "refresh")
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		r.log.Warn("refresh failed, retrying", "err", err)
		r.unreachable(err)
		r.nextRefresh = time.Now().Add(r.backoff(r.refreshTries))
		r.refreshTries++
	}
	if !r.wantSync(app) || now.Before(r.nextSync) {
		return nil, nil
	}
	var got *Application
	var err error
	if app.MultiSource() {
		got, err = r.w.client.SyncSource(ctx, r.ref, r.source, r.commit)
	} else {
		got, err = r.w.client.Sync(ctx, r.ref, r.commit)
	}
	if err == nil {
		r.synced = true
		r.log.Info("sync started")
		return got, nil
	}
	if permanent(err) {
		return nil, r.refused(err, "sync")
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	r.log.Warn("sync not started, retrying", "err", err)
	if errors.Is(err, ErrOperationInProgress) {
		r.report(withMessage(r.last, "another operation is running: shipbot syncs when it ends"))
	} else {
		r.unreachable(err)
	}
	r.nextSync = time.Now().Add(r.backoff(r.syncTries))
	r.syncTries++
	return nil, nil
}

func (r *run) ours(app *Application) bool {
	return sameRevision(app.requestedRevision(r.source), r.commit) || sameRevision(app.resultRevision(r.source), r.commit)
}

// treeMessages asks for the resource tree of a Degraded app: the Pods under
// a Degraded Deployment say why (image pull, crash loop). Best effort.
func (r *run) treeMessages(ctx context.Context, have string) string {
	tree, err := r.w.client.ResourceTree(ctx, r.ref)
	if err != nil {
		r.log.Debug("no resource tree", "err", err)
		return ""
	}
	var msgs []string
	for _, n := range tree.Nodes {
		if n.Health == nil || n.Health.Status != HealthDegraded || n.Health.Message == "" {
			continue
		}
		m := resourceName(n.Kind, n.Namespace, n.Name) + ": " + n.Health.Message
		if !containsFold(have, m) {
			msgs = append(msgs, m)
		}
	}
	return joinMessages(limit(msgs))
}

// refused turns an answer that won't change into an error for the chat user.
func (r *run) refused(err error, what string) error {
	why := err.Error()
	switch {
	case errors.Is(err, ErrUnauthenticated):
		why = "shipbot's Argo CD token was refused (expired or revoked?)"
	case errors.Is(err, ErrPermissionDenied):
		why = "permission denied: shipbot's Argo CD account needs get and sync (and override, if the server demands it for a revision) on it, or it does not exist"
	case errors.Is(err, ErrNotFound):
		why = "not found (is the server URL right?)"
	}
	name := r.ref
	if name == "" {
		name = "apps"
	}
	return &gitops.UserError{Message: fmt.Sprintf("Argo CD refused to %s %s: %s", what, name, why), Err: err}
}

// end explains why ctx ended.
func (r *run) end(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errWatchTimeout) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		name := r.ref
		if name == "" {
			name = fmt.Sprintf("the Argo CD Application of %s in %s", r.t.App, r.t.Env)
		}
		return &gitops.UserError{
			Message: fmt.Sprintf("%s was not Synced and Healthy at %s after %s; last seen: %s",
				name, short(r.commit), time.Since(r.start).Round(time.Second), describe(r.last)),
			Err: ErrTimeout,
		}
	}
	return fmt.Errorf("argo: watch %s: %w", r.ref, context.Cause(ctx))
}

// unreachable reports that Argo CD can't be reached right now.
func (r *run) unreachable(err error) {
	r.report(withMessage(r.last, "can't reach Argo CD, retrying: "+err.Error()))
}

func (r *run) report(st gitops.SyncStatus) {
	if r.reported && st == r.last {
		return
	}
	r.last, r.reported = st, true
	r.progress(st)
}

func (r *run) backoff(n int) time.Duration {
	d := r.w.opts.BackoffMin
	for ; n > 0 && d < r.w.opts.BackoffMax; n-- {
		d *= 2
	}
	return min(d, r.w.opts.BackoffMax)
}

// sleep pauses for the n-th backoff; false when ctx ended first.
func (r *run) sleep(ctx context.Context, n int) bool {
	t := time.NewTimer(r.backoff(n))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func withMessage(st gitops.SyncStatus, msg string) gitops.SyncStatus {
	st.Message = msg
	return st
}

func orNone(s string) string {
	if s == "" {
		return "Argo CD gave no reason"
	}
	return s
}

// describe renders a status for a message: "OutOfSync/Progressing at
// 1a2b3c4 (Running): waiting for ...".
func describe(st gitops.SyncStatus) string {
	if st == (gitops.SyncStatus{}) {
		return "nothing (Argo CD did not answer)"
	}
	s := orDash(st.Sync) + "/" + orDash(st.Health)
	if st.Revision != "" {
		s += " at " + short(st.Revision)
	}
	if st.Phase != "" {
		s += " (" + st.Phase + ")"
	}
	if st.Message != "" {
		s += ": " + st.Message
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
