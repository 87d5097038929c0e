package gitops

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Watches reports whether landed changes are followed through the controller.
func (s *Service) Watches() bool { return s.o.Watcher != nil }

// Watch follows a landed change until the controller has it Synced and
// Healthy at our commit, reports it Degraded or failed, or the watch times
// out. progress gets a one-line status on every change (a front end updates
// its message in place). The commit stands whatever the outcome.
func (s *Service) Watch(ctx context.Context, p *Plan, commit string, progress func(text string)) Response {
	req := p.Request
	log := s.o.Logger.With("request", req.ID, "app", req.App, "env", req.Env, "commit", commit)
	if s.o.Watcher == nil || req.Action == ActionFreeze || req.Action == ActionUnfreeze {
		return Response{Outcome: OutcomeUnwatched, Text: fmt.Sprintf("[%s] not watched: no GitOps controller is configured", req.ID)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.WatchTimeout)
	defer cancel()
	start := s.o.Now()
	last := ""
	st, err := s.o.Watcher.Watch(ctx, p.Target, commit, func(st SyncStatus) {
		line := fmt.Sprintf("[%s] %s %s: %s, %s%s", req.ID, req.App, req.Env, orDash(st.Sync), orDash(st.Health), phase(st))
		if line != last && progress != nil {
			last = line
			progress(line)
		}
	})
	took := s.o.Now().Sub(start).Round(time.Second)
	what := fmt.Sprintf("%s %s %s", req.App, req.Env, p.To)
	switch {
	case err == nil && st.Sync == "Synced" && st.Health == "Healthy":
		log.Info("change is live and healthy", "after", took)
		return Response{Outcome: OutcomeHealthy, Commit: commit, Text: fmt.Sprintf("[%s] %s is Synced and Healthy (%s after the commit).", req.ID, what, took)}
	case errors.Is(err, ErrDegraded) || st.Health == "Degraded" || st.Phase == "Failed" || st.Phase == "Error" || (err == nil && st.Sync != ""):
		// The controller says what is wrong: the watcher's own error kinds
		// don't matter, the status does.
		log.Warn("change is unhealthy", "sync", st.Sync, "health", st.Health, "message", st.Message)
		text := fmt.Sprintf("[%s] %s is %s / %s after %s: %s", req.ID, what, orDash(st.Sync), orDash(st.Health), took, orDash(OneLine(st.Message)))
		if back := s.rollbackOffer(p); back != "" {
			text += "\nTo roll back: `" + back + "`"
		}
		return Response{Outcome: OutcomeDegraded, Commit: commit, Text: text}
	default:
		log.Warn("watch failed; the commit stands", "err", err)
		return Response{Outcome: OutcomeUnwatched, Commit: commit, Text: fmt.Sprintf(
			"[%s] could not confirm that %s is live: %s. The commit %s stands; check with `status %s` or in Argo CD.",
			req.ID, what, userMessage(err), short(commit), req.App)}
	}
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
