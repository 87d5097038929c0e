package argo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
	// TreeInterval is how often the resource tree is read while our
	// revision rolls out, to report pods that can't pull their image or
	// crash at once (default 2s). Pods change without the Application
	// changing, so the tree is read on this clock as well as on events.
	TreeInterval time.Duration
	// ReadinessFailures is how many failed readiness probes of a running
	// pod of our revision make it a failure (default 3, Kubernetes' own
	// failureThreshold).
	ReadinessFailures int
	// Ancestry tells whether a newer revision Argo CD synced contains the
	// commit, for watches that bring none of their own
	// (gitops.WatchedChange.Ancestry wins); nil: only the commit counts.
	Ancestry gitops.Ancestry
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
	if o.TreeInterval <= 0 {
		o.TreeInterval = 2 * time.Second
	}
	if o.ReadinessFailures <= 0 {
		o.ReadinessFailures = 3
	}
	if o.Now == nil {
		o.Now = time.Now
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
// (for a multi-source app, the revisions of the environment repo's source;
// with an Ancestry, "commit" is the commit or a newer one that contains it:
// CI pushing on top of shipbot's commit). It fails when the sync operation
// for the commit fails (Failed, Error), when the app is Degraded after
// syncing the commit (the failing resources' messages and the app's
// conditions go into SyncStatus.Message), as soon as pods of our revision
// can't pull their image, crash-loop or keep failing readiness (a
// *gitops.RolloutFailure: see rollout.go), when a sync window holds the
// sync beyond the watch (a *gitops.SyncHeldError), and at the timeout.
type Watcher struct {
	client *Client
	finder *Finder // nil without RepoURL
	opts   WatcherOptions
}

var (
	_ gitops.SyncWatcher   = (*Watcher)(nil)
	_ gitops.ChangeWatcher = (*Watcher)(nil)
)

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

// Watch implements gitops.SyncWatcher: WatchChange with the target and the
// commit alone (no pod is blamed early: see rollout.go).
func (w *Watcher) Watch(ctx context.Context, t gitops.Target, commit string, progress func(gitops.SyncStatus)) (gitops.SyncStatus, error) {
	return w.WatchChange(ctx, gitops.WatchedChange{Target: t, Commit: commit}, progress)
}

// WatchChange implements gitops.ChangeWatcher. It returns the last status
// seen and nil once the change is Synced and Healthy (status.Revision is
// the commit or a newer one that contains it); otherwise a
// *gitops.UserError wrapping ErrDegraded (with a *gitops.RolloutFailure
// when pods of our revision fail), ErrSyncFailed, ErrTimeout,
// ErrAppDeleted, ErrNoApp, ErrAmbiguousApp, a *gitops.SyncHeldError (a
// sync window holds the sync beyond the watch), or the API error that made
// watching impossible (token refused, permission denied), or the context's
// error when ctx was cancelled. progress is called whenever the status
// changes.
func (w *Watcher) WatchChange(ctx context.Context, c gitops.WatchedChange, progress func(gitops.SyncStatus)) (gitops.SyncStatus, error) {
	commit, t := c.Commit, c.Target
	if commit == "" {
		return gitops.SyncStatus{}, errors.New("argo: watch: no commit")
	}
	if progress == nil {
		progress = func(gitops.SyncStatus) {}
	}
	if c.Ancestry == nil {
		c.Ancestry = w.opts.Ancestry
	}
	r := &run{
		w: w, t: t, change: c, commit: commit, progress: progress, start: time.Now(),
		source: -1, log: w.opts.Logger.With("app", t.App, "env", t.Env, "commit", commit),
		revs: map[string]bool{}, pods: newPodChecks(),
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
	change   gitops.WatchedChange
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
	// targetOnly: Argo CD refused a sync to a revision for want of the
	// override privilege; shipbot syncs the app's targetRevision instead.
	targetOnly bool
	last       gitops.SyncStatus
	reported   bool

	// revs are the revisions asked about: true when it contains commit.
	revs map[string]bool
	// pods are the rollout checks; podsDue says the tree is read on the
	// clock too (our revision rolls out).
	pods    *podChecks
	podsDue bool
	// windowsRead says the sync windows were read once; holdNote says
	// what holds the sync, for progress messages.
	windowsRead bool
	holdNote    string
	holdEnd     time.Time // when the hold ends, on the real clock
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
	if r.podsDue && (!ok || r.pods.next.Before(at)) {
		at, ok = r.pods.next, true
	}
	return at, ok
}

// seen reports whether Argo CD has compared app against our commit (or runs
// an operation for it): then one refresh was enough.
func (r *run) seen(app *Application) bool {
	return r.isOurs(app.SyncedRevision(r.source)) || r.ours(app)
}

// isOurs reports whether rev is the commit, or a newer revision known to
// contain it.
func (r *run) isOurs(rev string) bool {
	return sameRevision(rev, r.commit) || r.revs[strings.ToLower(rev)]
}

// ancestryTimeout bounds one question to the Ancestry (a fetch at most).
const ancestryTimeout = 15 * time.Second

// learn asks the Ancestry about the revisions app names that are not the
// commit: whether they contain it. An answer is kept; a failure is asked
// again with the next event.
func (r *run) learn(ctx context.Context, app *Application) {
	if r.change.Ancestry == nil || app == nil {
		return
	}
	for _, rev := range []string{app.SyncedRevision(r.source), app.requestedRevision(r.source), app.resultRevision(r.source)} {
		k := strings.ToLower(rev)
		if _, asked := r.revs[k]; asked || !isCommitHash(rev) || sameRevision(rev, r.commit) {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, ancestryTimeout)
		ok, err := r.change.Ancestry.IsAncestor(actx, r.commit, rev)
		cancel()
		if err != nil {
			r.log.Warn("can't tell whether a revision contains the commit", "revision", rev, "err", err)
			continue
		}
		r.revs[k] = ok
		if ok {
			r.log.Info("Argo CD is at a newer commit that contains ours", "revision", rev)
		}
	}
}

// isCommitHash reports whether rev is a full git commit hash (not a tag,
// branch or Helm chart version).
func isCommitHash(rev string) bool {
	if len(rev) != 40 {
		return false
	}
	for _, c := range rev {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
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
	r.learn(ctx, app)
	st, v := assess(app, r.commit, r.isOurs, r.source)
	r.podsDue = false
	if v == pending && !app.AutomatedSync() && !r.w.opts.SyncManual && !r.ours(app) {
		st.Message = joinMessages([]string{"no automated sync: waiting for someone to sync it", st.Message})
	}
	switch v {
	case healthy:
		r.report(st)
		r.log.Info("commit is live")
		return true, nil
	case degraded:
		var failing *gitops.RolloutFailure
		if tree, err := r.w.client.Tree(ctx, r.ref); err != nil {
			r.log.Debug("no resource tree", "err", err)
		} else {
			failing = r.podFailures(ctx, tree)
			st.Message = joinMessages([]string{st.Message, r.treeMessages(ctx, tree, st.Message)})
		}
		if failing != nil {
			return true, r.failing(st, failing)
		}
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
	if err := r.windows(ctx, app); err != nil {
		r.report(st)
		return true, err
	}
	if r.holdNote != "" && time.Now().After(r.holdEnd) {
		r.holdNote = "" // the window let go
	}
	if r.holdNote != "" && !r.ours(app) {
		st.Message = joinMessages([]string{r.holdNote, st.Message})
	}
	if r.rollingOut(app, st) {
		r.podsDue = true
		if failing := r.checkPodsWhenDue(ctx); failing != nil {
			return true, r.failing(st, failing)
		}
	}
	r.report(st)
	return false, nil
}

// failing ends the watch on pods of our revision that fail: the pods'
// messages lead the status message.
func (r *run) failing(st gitops.SyncStatus, f *gitops.RolloutFailure) error {
	var pods []string
	for _, p := range f.Pods {
		pods = append(pods, p.String())
	}
	st.Message = joinMessages(append(pods, st.Message))
	r.report(st)
	r.log.Warn("pods of the commit fail", "pods", strings.Join(pods, "; "))
	return &gitops.UserError{
		Message: fmt.Sprintf("%s: pods of %s fail %s after the commit: %s", r.ref, short(f.Revision), gitops.Elapsed(time.Since(r.start)), strings.Join(pods, "; ")),
		Err:     fmt.Errorf("%w: %w", ErrDegraded, f),
	}
}

// windows reads the sync windows once, when one may be why nothing
// happens: Argo CD has our commit but starts no automated sync, someone
// has to sync by hand, or our sync operation waits with "blocked by sync
// window". A hold that outlasts the watch ends it with a
// *gitops.SyncHeldError; a shorter one is said in the progress.
func (r *run) windows(ctx context.Context, app *Application) error {
	op := app.Status.OperationState
	manual := !app.AutomatedSync()
	switch {
	case r.windowsRead:
		return nil
	case r.ours(app):
		if op.Phase != PhaseRunning || !containsFold(op.Message, "sync window") {
			return nil
		}
	case manual && !r.w.opts.SyncManual:
	case !manual && r.isOurs(app.SyncedRevision(r.source)) && app.Status.Sync.Status != SyncSynced && (op == nil || op.Phase != PhaseRunning):
	default:
		return nil
	}
	r.windowsRead = true
	now := r.w.opts.Now()
	hold, err := r.w.hold(ctx, r.ref, manual, now)
	if err != nil {
		r.log.Debug("sync windows not read", "err", err)
		return nil
	}
	if !hold.Held {
		return nil
	}
	return r.held(ctx, hold, now, nil)
}

// held says that a sync window holds the sync: until a time within the
// watch, in the progress (nil error); beyond it, as the watch's end.
// refusal is Argo CD's refusal of shipbot's sync, when there was one.
func (r *run) held(ctx context.Context, hold gitops.SyncHold, now time.Time, refusal error) error {
	r.holdNote = hold.Describe(now)
	r.holdEnd = time.Now().Add(hold.Until.Sub(now))
	r.log.Info("a sync window holds the sync", "until", hold.Until, "windows", hold.Windows)
	if !hold.Until.IsZero() {
		// now is the Now option's clock; the deadline is the real one.
		if deadline, ok := ctx.Deadline(); !ok || hold.Until.Sub(now) < time.Until(deadline) {
			return nil
		}
	}
	he := &gitops.SyncHeldError{Hold: hold, At: now}
	var err error = he
	if refusal != nil {
		he.ServerMessage = refusal.Error()
		var ae *APIError
		if errors.As(refusal, &ae) {
			he.ServerMessage = ae.Message
		}
		err = fmt.Errorf("%w: %w", he, refusal)
	}
	return &gitops.UserError{
		Message: fmt.Sprintf("%s is not synced to %s: %s", r.ref, short(r.commit), hold.Describe(now)),
		Err:     err,
	}
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
			r.learn(ctx, got)
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
	// A newer commit on top of ours that Argo CD compares is synced as it
	// is: syncing ours would take the newer one's changes back.
	rev := r.commit
	synced := app.SyncedRevision(r.source)
	if r.isOurs(synced) {
		rev = synced
	}
	var got *Application
	var err error
	switch {
	case r.targetOnly && !r.isOurs(synced):
		// Only the app's targetRevision may be synced, and Argo CD does
		// not resolve it to our commit yet: syncing it now would deploy
		// an older one. The refresh goes on; shipbot syncs once it does.
		r.nextSync = time.Now().Add(r.backoff(r.syncTries))
		r.syncTries++
		return nil, nil
	case r.targetOnly:
		got, err = r.w.client.SyncTarget(ctx, r.ref)
		rev = synced
	case app.MultiSource():
		got, err = r.w.client.SyncSource(ctx, r.ref, r.source, rev)
	default:
		got, err = r.w.client.Sync(ctx, r.ref, rev)
	}
	if err == nil {
		r.synced = true
		r.log.Info("sync started", "revision", rev, "targetRevisionOnly", r.targetOnly)
		return got, nil
	}
	if errors.Is(err, ErrOverrideRequired) && !r.targetOnly {
		// Argo CD (application.sync.requireOverridePrivilegeForRevisionSync)
		// lets shipbot's account sync only the app's own targetRevision.
		// Where that resolves to our commit or a newer one on top of it,
		// syncing it deploys our change: no override privilege needed.
		r.targetOnly = true
		r.log.Info("Argo CD demands the override privilege to sync a revision; syncing the app's targetRevision once it resolves to our commit", "err", err)
		r.report(withMessage(r.last, "Argo CD lets shipbot sync only the app's target revision: syncing it once Argo CD resolves it to our commit"))
		return r.nudge(ctx, app)
	}
	if errors.Is(err, ErrSyncWindow) {
		return nil, r.syncRefusedByWindow(ctx, err)
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
	return r.isOurs(app.requestedRevision(r.source)) || r.isOurs(app.resultRevision(r.source))
}

// syncRefusedByWindow handles Argo CD's refusal of shipbot's sync because a
// sync window blocks it (PermissionDenied, "cannot sync: blocked by sync
// window"): never a permission problem. When the window lets the sync
// through within the watch, shipbot syncs then; otherwise the watch ends
// with the window and until when it holds.
func (r *run) syncRefusedByWindow(ctx context.Context, err error) error {
	now := r.w.opts.Now()
	hold, herr := r.w.hold(ctx, r.ref, true, now)
	if herr != nil || !hold.Held {
		// The server knows best: held, until shipbot can't tell.
		r.log.Warn("sync refused by a sync window shipbot could not read", "err", herr)
		hold = gitops.SyncHold{Held: true, App: r.ref, Manual: true, Windows: hold.Windows}
	}
	if end := r.held(ctx, hold, now, err); end != nil {
		return end
	}
	r.nextSync = time.Now().Add(hold.Until.Sub(now) + time.Second)
	r.report(withMessage(r.last, r.holdNote+": shipbot syncs it then"))
	return nil
}

// treeMessages are the reasons the resource tree of a Degraded app gives
// that have does not: the Pods under a Degraded Deployment say why (image
// pull, crash loop). A pod known not to run our change (the ReplicaSet
// before) is left out.
func (r *run) treeMessages(ctx context.Context, tree *Tree, have string) string {
	var msgs []string
	for i := range tree.Nodes {
		n := &tree.Nodes[i]
		if n.Health == nil || n.Health.Status != HealthDegraded || n.Health.Message == "" {
			continue
		}
		if n.Kind == "Pod" && r.expects() && !r.podIsOurs(ctx, n) {
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
	case errors.Is(err, ErrSyncWindow):
		why = "a sync window blocks it now (" + why + ")"
	case errors.Is(err, ErrUnauthenticated):
		why = "shipbot's Argo CD token was refused (expired or revoked?)"
	case errors.Is(err, ErrPermissionDenied):
		why = "permission denied: shipbot's Argo CD account needs get and sync on it, or it does not exist"
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
				name, short(r.commit), gitops.Elapsed(time.Since(r.start)), describe(r.last)),
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
