package gitops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SyncWindows says whether the GitOps controller would hold a sync of a
// target now (Argo CD's sync windows), so that a plan can say so before
// anything is committed: "an Argo CD sync window holds syncs of
// checkout-prod until 18:00 UTC". The Argo CD watcher implements it.
type SyncWindows interface {
	// SyncHold reads the windows that apply to the app that deploys t and
	// says whether a sync at now would be held, and until when.
	SyncHold(ctx context.Context, t Target, now time.Time) (SyncHold, error)
}

// SyncHold is whether, and until when, a sync window holds syncs of an app.
type SyncHold struct {
	Held bool
	App  string // the controller's app, e.g. "checkout-prod"
	// Until is when a sync is allowed again; zero when not held, held
	// beyond the horizon the windows were read for (Beyond), or unknown.
	Until time.Time
	// Beyond says the hold lasts longer than the horizon (a month).
	Beyond bool
	// Windows are the windows that hold the sync, e.g.
	// `deny "0 16 * * 1-5" for 2h (Europe/Berlin)`.
	Windows []string
	// Manual says the hold was judged for a manual sync (an app without
	// automated sync, synced by shipbot or a person); false: for Argo CD's
	// automated sync.
	Manual bool
	// ManualOverride says a manual sync would still pass (the windows allow
	// manual syncs) although the automated one is held.
	ManualOverride bool
	// ZoneAssumed says the windows' time zone could not be read (no
	// permission on the project) and UTC was assumed for Until.
	ZoneAssumed bool
}

// Describe says it in one sentence for a plan or a reply, e.g. "an Argo CD
// sync window holds syncs of checkout-prod until 18:00 UTC"; "" when
// nothing is held.
func (h SyncHold) Describe(now time.Time) string {
	if !h.Held {
		return ""
	}
	app := h.App
	if app == "" {
		app = "the app"
	}
	s := "an Argo CD sync window holds syncs of " + app
	switch {
	case !h.Until.IsZero():
		s += " until " + clockTime(h.Until, now)
		if h.ZoneAssumed {
			s += " (if its schedule is in UTC)"
		}
	case h.Beyond:
		s += " for more than a month"
	default:
		s += " now (shipbot can't tell until when)"
	}
	if h.ManualOverride {
		s += "; a manual sync may pass"
	}
	return s
}

// clockTime writes t in UTC, with the day when it is not within a day of now.
func clockTime(t, now time.Time) string {
	t = t.UTC()
	if d := t.Sub(now); d >= 0 && d < 24*time.Hour {
		return t.Format("15:04 MST")
	}
	return t.Format("Mon 2 Jan 15:04 MST")
}

// ErrSyncHeld: a sync window holds the sync of the change's revision.
var ErrSyncHeld = errors.New("held by a sync window")

// SyncHeldError is a watch that ended because a sync window holds the sync
// beyond the watch's time: the commit stands and syncs when the window
// lets it. errors.Is(err, ErrSyncHeld) holds.
type SyncHeldError struct {
	Hold SyncHold
	// At is when the hold was read (for Describe).
	At time.Time
	// ServerMessage is the controller's own answer, e.g. "cannot sync:
	// blocked by sync window", when it refused a sync.
	ServerMessage string
}

func (e *SyncHeldError) Error() string {
	s := e.Hold.Describe(e.At)
	if s == "" {
		s = "a sync window holds the sync"
	}
	if len(e.Hold.Windows) > 0 {
		s += " (" + strings.Join(e.Hold.Windows, ", ") + ")"
	}
	if e.ServerMessage != "" {
		s += fmt.Sprintf("; Argo CD: %q", e.ServerMessage)
	}
	return s
}

// Is makes a SyncHeldError an ErrSyncHeld.
func (e *SyncHeldError) Is(target error) bool { return target == ErrSyncHeld }
