package gitops

import (
	"context"
	"fmt"
	"strings"
)

// WatchedChange is a landed change as a ChangeWatcher follows it: what the
// core knows about it beyond the commit, so that the watcher can tell the
// pods of this change from those of the revision before, and a newer commit
// that contains it from an unrelated one.
type WatchedChange struct {
	Target Target
	Commit string
	// Tag is the image tag the change deploys (rollback, promote), of the
	// image Target.Image; "" for a restart.
	Tag string
	// Restart is the value of the RestartAnnotation a restart sets on the
	// pod template; "" for a tag change.
	Restart string
	// Ancestry says whether a newer revision the controller synced contains
	// Commit (CI pushed on top of it); nil: only Commit itself counts.
	Ancestry Ancestry
}

// Ancestry answers whether one commit of the environment repo contains
// another. The core answers it from its git cache (*Service implements it).
type Ancestry interface {
	// IsAncestor reports whether ancestor is descendant or one of its
	// ancestors. Both are full commit hashes; a commit the cache does not
	// know is looked for on the remote first.
	IsAncestor(ctx context.Context, ancestor, descendant string) (bool, error)
}

// ChangeWatcher is a SyncWatcher that takes the whole WatchedChange. The
// core prefers it when its Watcher implements it. It returns like
// SyncWatcher.Watch, and SyncStatus.Revision is the revision that went live:
// the commit, or a newer one that contains it (then the core checks that
// the target's field still has the change's value there).
type ChangeWatcher interface {
	WatchChange(ctx context.Context, c WatchedChange, progress func(SyncStatus)) (SyncStatus, error)
}

// RolloutFailure is a watch that ended early because pods of the change's
// revision can't start or don't become ready (image pull errors, crash
// loops, failing readiness), before the controller itself calls the app
// Degraded (a Deployment's progress deadline is 10 minutes by default). A
// watcher returns it wrapped in its error; errors.Is(err, ErrDegraded)
// holds, so the reply offers the rollback.
type RolloutFailure struct {
	App      string // the controller's app, e.g. "checkout-prod"
	Revision string // the revision whose pods fail
	Pods     []PodFailure
}

// PodFailure is one pod of the change's revision in trouble.
type PodFailure struct {
	Pod      string // "namespace/name"
	Workload string // what runs it, e.g. "Deployment shop/checkout"
	// Reason is the container state: ErrImagePull, ImagePullBackOff,
	// CrashLoopBackOff, CreateContainerConfigError, ... or "Readiness" for
	// a readiness probe that keeps failing.
	Reason string
	// Message is the pod's own words, e.g. `Failed to pull image
	// "registry.example.com/shop/checkout:does-not-exist": ... not found`.
	Message  string
	Image    string // the image of the change the pod runs
	Restarts int
}

func (p PodFailure) String() string {
	s := "Pod " + p.Pod + ": " + p.Reason
	if p.Message != "" {
		s += ": " + p.Message
	}
	if p.Restarts > 0 && !strings.Contains(p.Message, "restart") {
		s += fmt.Sprintf(" (%d restarts)", p.Restarts)
	}
	return s
}

func (e *RolloutFailure) Error() string {
	var pods []string
	for _, p := range e.Pods {
		pods = append(pods, p.String())
	}
	return fmt.Sprintf("pods of %s fail: %s", short(e.Revision), strings.Join(pods, "; "))
}

// Is makes a RolloutFailure an ErrDegraded.
func (e *RolloutFailure) Is(target error) bool { return target == ErrDegraded }

// Summary is the first pod's reason and message, for a one-line reply.
func (e *RolloutFailure) Summary() string {
	if len(e.Pods) == 0 {
		return "pods fail"
	}
	s := e.Pods[0].String()
	if n := len(e.Pods) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more pod%s)", n, map[bool]string{true: "s"}[n > 1])
	}
	return s
}
