package gitops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Watches reports whether landed changes are followed through the controller.
func (s *Service) Watches() bool { return s.o.Watcher != nil }

// Watch follows a landed change until the controller has it Synced and
// Healthy at our commit (or at a newer commit that contains it and still
// sets our value), reports it Degraded, failing to roll out (pods of our
// revision that can't pull their image or crash) or failed, or says that a
// sync window holds it, or the watch times out. progress gets a one-line
// status on every change (a front end updates its message in place). The
// commit stands whatever the outcome.
func (s *Service) Watch(ctx context.Context, p *Plan, commit string, progress func(text string)) Response {
	req := p.Request
	log := s.o.Logger.With("request", req.ID, "app", req.App, "env", req.Env, "commit", commit)
	if s.o.Watcher == nil || req.Action == ActionFreeze || req.Action == ActionUnfreeze {
		return Response{Outcome: OutcomeUnwatched, Text: fmt.Sprintf("[%s] not watched: no GitOps controller is configured", req.ID)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.WatchTimeout)
	defer cancel()
	start := s.o.Now()
	anc := &ancestryCache{a: s, known: map[[2]string]bool{}}
	last := ""
	report := func(st SyncStatus) {
		line := progressLine(ctx, req, commit, st, anc)
		if line != last && progress != nil {
			last = line
			progress(line)
		}
	}
	var st SyncStatus
	var err error
	if cw, ok := s.o.Watcher.(ChangeWatcher); ok {
		st, err = cw.WatchChange(ctx, watchedChange(p, commit, anc), report)
	} else {
		st, err = s.o.Watcher.Watch(ctx, p.Target, commit, report)
	}
	took := Elapsed(s.o.Now().Sub(start))
	// The watch's time may be up: what is left to read gets its own.
	after, cancelAfter := context.WithTimeout(context.WithoutCancel(ctx), afterWatchTimeout)
	defer cancelAfter()
	what := fmt.Sprintf("%s %s %s", req.App, req.Env, p.To)
	var failing *RolloutFailure
	var held *SyncHeldError
	ours := st.Revision == "" || sameCommit(st.Revision, commit) || anc.contains(after, commit, st.Revision)
	switch {
	case err == nil && st.Sync == "Synced" && st.Health == "Healthy":
		return s.liveReply(after, log, p, commit, st, what, took)
	case errors.As(err, &failing):
		log.Warn("change fails to roll out", "revision", failing.Revision, "pods", failing.Error())
		text := fmt.Sprintf("[%s] %s fails to roll out (%s after the commit): %s", req.ID, what, took, orDash(OneLine(failing.Summary())))
		back := s.rollbackOffer(p)
		if back != "" {
			text += "\nTo roll back: `" + back + "`"
		}
		return Response{Outcome: OutcomeDegraded, Commit: commit, Text: text, Rollback: s.rollbackCommand(p)}
	case errors.As(err, &held):
		log.Info("a sync window holds the change", "hold", held.Error())
		then := "Argo CD syncs it when the window lets it"
		if held.Hold.Manual {
			then = "sync the app in Argo CD once the window lets it"
		}
		return Response{Outcome: OutcomeUnwatched, Commit: commit, Text: fmt.Sprintf(
			"[%s] %s is not live yet: %s. The commit %s stands: %s; check with `status %s`.",
			req.ID, what, held.Error(), short(commit), then, req.App)}
	case errors.Is(err, ErrDegraded) || (ours && (st.Health == "Degraded" || st.Phase == "Failed" || st.Phase == "Error" || (err == nil && st.Sync != ""))):
		// The controller says what is wrong: the watcher's own error kinds
		// don't matter, the status does — when it is about our revision (a
		// rollback often starts from a Degraded app).
		log.Warn("change is unhealthy", "sync", st.Sync, "health", st.Health, "message", st.Message)
		text := fmt.Sprintf("[%s] %s is %s / %s after %s: %s", req.ID, what, orDash(st.Sync), orDash(st.Health), took, orDash(OneLine(st.Message)))
		back := s.rollbackOffer(p)
		if back != "" {
			text += "\nTo roll back: `" + back + "`"
		}
		return Response{Outcome: OutcomeDegraded, Commit: commit, Text: text, Rollback: s.rollbackCommand(p)}
	default:
		log.Warn("watch failed; the commit stands", "err", err)
		return Response{Outcome: OutcomeUnwatched, Commit: commit, Text: fmt.Sprintf(
			"[%s] could not confirm that %s is live: %s. The commit %s stands; check with `status %s` or in Argo CD.",
			req.ID, what, userMessage(err), short(commit), req.App)}
	}
}

// afterWatchTimeout bounds the reads after a watch (the field at a newer
// commit, which may need a fetch).
const afterWatchTimeout = 30 * time.Second

// liveReply is the reply for a change Synced and Healthy at st.Revision: our
// commit, or a newer one on top of it (CI pushing to the branch), where the
// target's field must still have our value for the change to be live.
func (s *Service) liveReply(ctx context.Context, log *slog.Logger, p *Plan, commit string, st SyncStatus, what, took string) Response {
	req := p.Request
	rev := st.Revision
	if rev == "" || sameCommit(rev, commit) {
		log.Info("change is live and healthy", "after", took)
		return Response{Outcome: OutcomeHealthy, Commit: commit, Text: fmt.Sprintf("[%s] %s is Synced and Healthy (%s after the commit).", req.ID, what, took)}
	}
	got, err := s.fieldAt(ctx, p, rev)
	switch {
	case err != nil:
		log.Warn("live at a newer commit; its field could not be read", "revision", rev, "err", err)
		return Response{Outcome: OutcomeHealthy, Commit: commit, Text: fmt.Sprintf(
			"[%s] %s is Synced and Healthy (%s after the commit) at %s, a newer commit that contains ours (shipbot could not read it to check that it still sets %s).",
			req.ID, what, took, short(rev), p.To)}
	case got != p.To:
		log.Warn("superseded by a newer commit", "revision", rev, "value", got)
		return Response{Outcome: OutcomeUnwatched, Commit: commit, Text: fmt.Sprintf(
			"[%s] %s was superseded: Argo CD synced %s, a newer commit on top of ours that sets %s instead (Synced and Healthy %s after our commit).",
			req.ID, what, short(rev), orDash(got), took)}
	}
	log.Info("change is live and healthy in a newer commit", "after", took, "revision", rev)
	return Response{Outcome: OutcomeHealthy, Commit: commit, Text: fmt.Sprintf(
		"[%s] %s is Synced and Healthy (%s after the commit), in %s, a newer commit on top of ours.", req.ID, what, took, short(rev))}
}

// watchedChange is what a ChangeWatcher gets to know about p.
func watchedChange(p *Plan, commit string, anc Ancestry) WatchedChange {
	c := WatchedChange{Target: p.Target, Commit: commit, Ancestry: anc}
	if p.Request.Action == ActionRestart {
		c.Restart = p.Restart
	} else {
		c.Tag = p.To
	}
	return c
}

// progressLine is one line of progress. The controller's Synced and Healthy
// are shown only for our commit (or a newer one that contains it): before
// the controller has it, the line says where the controller is instead of
// showing the previous revision's state as if it were ours.
func progressLine(ctx context.Context, req Request, commit string, st SyncStatus, anc *ancestryCache) string {
	line := fmt.Sprintf("[%s] %s %s: ", req.ID, req.App, req.Env)
	switch {
	case st.Revision == "" || sameCommit(st.Revision, commit):
		line += orDash(st.Sync) + ", " + orDash(st.Health) + phase(st)
	case anc.contains(ctx, commit, st.Revision):
		line += orDash(st.Sync) + ", " + orDash(st.Health) + phase(st) + " at " + short(st.Revision) + " (contains " + short(commit) + ")"
	default:
		line += "not synced yet: Argo CD is at " + short(st.Revision) + ", shipbot's commit is " + short(commit)
	}
	if m := Normalize(st.Message, maxProgressMessage); m != "" {
		line += ": " + m
	}
	return line
}

// maxProgressMessage caps the controller's message in a progress line.
const maxProgressMessage = 240

// ancestryCache is the Ancestry a watch shares with its progress lines: each
// question is asked once (an error is not kept, so it is asked again).
type ancestryCache struct {
	a     Ancestry
	mu    sync.Mutex
	known map[[2]string]bool
}

func (c *ancestryCache) IsAncestor(ctx context.Context, ancestor, descendant string) (bool, error) {
	k := [2]string{strings.ToLower(ancestor), strings.ToLower(descendant)}
	c.mu.Lock()
	v, ok := c.known[k]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := c.a.IsAncestor(ctx, ancestor, descendant)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.known[k] = v
	c.mu.Unlock()
	return v, nil
}

// contains reports whether rev is known to contain commit; false when it
// can't be told.
func (c *ancestryCache) contains(ctx context.Context, commit, rev string) bool {
	if len(rev) != 40 || len(commit) != 40 {
		return false
	}
	ok, err := c.IsAncestor(ctx, commit, rev)
	return err == nil && ok
}

// sameCommit reports whether two revisions name the same commit; one may be
// abbreviated (7 hex digits at least).
func sameCommit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return len(a) >= 7 && strings.EqualFold(a, b[:len(a)])
}

// Elapsed writes a measured duration for chat: to a tenth of a second under
// 10 s ("0.9 s"), whole seconds under a minute ("42 s"), then minutes and
// seconds ("4 min 05 s").
func Elapsed(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d = d.Round(100 * time.Millisecond); d < 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	if d = d.Round(time.Second); d < time.Minute {
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
	if d < time.Hour {
		return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
}

// ErrDegraded is returned by a SyncWatcher when the app is unhealthy or the
// sync failed; the SyncStatus carries the controller's reason.
var ErrDegraded = errors.New("degraded")

// rollbackOffer is the one ready command that undoes a landed tag change.
func (s *Service) rollbackOffer(p *Plan) string {
	switch p.Request.Action {
	case ActionRollback, ActionPromote:
		if p.From != "" {
			return fmt.Sprintf("rollback %s %s to %s --why <incident>", p.Request.App, p.Request.Env, p.From)
		}
	case ActionRestart:
		return fmt.Sprintf("rollback %s %s --why <incident>", p.Request.App, p.Request.Env)
	}
	return ""
}

// rollbackCommand is rollbackOffer ready to send: the change's own
// justification as the reason (a one-line, quote-free argument).
func (s *Service) rollbackCommand(p *Plan) string {
	back := s.rollbackOffer(p)
	if back == "" {
		return ""
	}
	why := strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r == '`' {
			return -1
		}
		return r
	}, OneLine(p.Justification.Text))
	if r := []rune(why); len(r) > 300 {
		why = string(r[:300])
	}
	if why == "" {
		why = "the change " + p.Request.ID + " fails to roll out"
	}
	return strings.Replace(back, "<incident>", `"`+why+`"`, 1)
}

func phase(st SyncStatus) string {
	if st.Phase == "" {
		return ""
	}
	return " (operation " + st.Phase + ")"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(h string) string {
	if len(h) > 10 {
		return h[:10]
	}
	return h
}
