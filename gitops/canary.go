package gitops

import (
	"context"
	"fmt"
)

// Canaries is the optional part of a SyncWatcher that sees progressive
// rollouts (Argo Rollouts through Argo CD): a rollback of an app whose
// Rollout is in the middle of a canary aborts it — the stable pods take
// all traffic at once — and reverts the tag in git, in one request.
type Canaries interface {
	// Canary says whether a Rollout of the app that deploys t is in the
	// middle of an update (nil: none).
	Canary(ctx context.Context, t Target) (*Canary, error)
	// AbortCanary aborts it (Argo CD's "abort" resource action).
	AbortCanary(ctx context.Context, c Canary) error
}

// Canary is a Rollout in the middle of an update.
type Canary struct {
	ArgoApp         string // the Argo CD Application that manages it
	Namespace, Name string
	Health, Message string // Argo CD's health of the Rollout, e.g. Suspended, "CanaryPauseStep"
}

func (c Canary) String() string {
	s := fmt.Sprintf("Rollout %s/%s is %s", c.Namespace, c.Name, c.Health)
	if c.Message != "" {
		s += " (" + OneLine(c.Message) + ")"
	}
	return s
}

// canaryCheck notes in a rollback's plan a canary in progress, which the
// confirmation aborts before the tag is reverted. A canary that can't be
// read is logged: the rollback in git still brings the stable version back.
func (s *Service) canaryCheck(ctx context.Context, p *Plan) {
	cs, ok := s.o.Watcher.(Canaries)
	if !ok || p.Request.Action != ActionRollback {
		return
	}
	c, err := cs.Canary(ctx, p.Target)
	if err != nil {
		s.o.Logger.Warn("rollouts of the app could not be read", "request", p.Request.ID, "err", err)
		return
	}
	p.Canary = c
	if c != nil {
		p.Warnings = append(p.Warnings, fmt.Sprintf("CANARY IN PROGRESS: %s: confirming aborts it through Argo CD (all traffic to the stable pods), then reverts the tag in git", c))
	}
}

// abortCanary aborts the canary the plan found, right before the rollback
// is written; it returns a line for the reply.
func (s *Service) abortCanary(ctx context.Context, p *Plan) string {
	cs, ok := s.o.Watcher.(Canaries)
	if !ok || p.Canary == nil {
		return ""
	}
	if err := cs.AbortCanary(ctx, *p.Canary); err != nil {
		s.o.Logger.Warn("canary abort failed; the rollback in git proceeds", "request", p.Request.ID, "rollout", p.Canary.Name, "err", err)
		return fmt.Sprintf("The canary of Rollout %s/%s could not be aborted (%s); Argo Rollouts rolls back when it sees the reverted tag.", p.Canary.Namespace, p.Canary.Name, userMessage(err))
	}
	s.o.Logger.Info("canary aborted", "request", p.Request.ID, "rollout", p.Canary.Namespace+"/"+p.Canary.Name)
	return fmt.Sprintf("Aborted the canary of Rollout %s/%s: the stable pods take all traffic.", p.Canary.Namespace, p.Canary.Name)
}
