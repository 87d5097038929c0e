package gitops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/repo"
)

// verify renders the app before and after the change of p and refuses a
// change whose rendered effect is not what was asked (the image of the
// app's containers, the restart of exactly its workloads). p.Checked says
// what was checked, or why the app wasn't rendered.
func (s *Service) verify(ctx context.Context, snap *repo.Snapshot, p *Plan) error {
	if len(p.Changes) == 0 {
		return nil
	}
	want := edit.Want{Tag: p.To, Digest: p.Digest}
	if p.Request.Action == ActionRestart {
		want = edit.Want{Restart: p.Restart}
	}
	key := snap.Hash().String() + "\x00" + edit.Diff(p.Changes)
	if p.verified != "" && p.verified == key {
		return nil
	}
	v, err := edit.Verify(ctx, snap, p.Changes, p.Target.Location, want, s.o.Render)
	if errors.Is(err, edit.ErrWrongEffect) {
		return &UserError{Message: fmt.Sprintf("not changing %s in %s: %v", p.Request.App, p.Request.Env, err), Err: err}
	}
	if err != nil {
		return fmt.Errorf("verify %s/%s: %w", p.Request.App, p.Request.Env, err)
	}
	p.verified = key
	// What the app runs, rendered, is the From that counts: a patch or a
	// component can set the image where the layout doesn't look.
	if p.Request.Action != ActionRestart && len(v.Before) == 1 && v.Before[0] != "" && v.Before[0] != p.From {
		written := fromText(p.From)
		p.From = v.Before[0]
		p.Summary = strings.Replace(p.Summary, ": "+written+" -> ", ": "+p.From+" -> ", 1)
		defer func() {
			p.Checked += fmt.Sprintf(" (before the change it runs %s; the field the layout reads says %s: something else in the build sets the image)", p.From, written)
		}()
	}
	switch {
	case !v.Rendered:
		p.Checked = "not checked by rendering: " + v.Reason
	case len(v.Workloads) > 0:
		p.Checked = fmt.Sprintf("checked by rendering (%s): %s %s, nothing else changes", v.Renderer, strings.Join(v.Workloads, ", "), effect(p, len(v.Workloads)))
	default:
		p.Checked = fmt.Sprintf("checked by rendering (%s): nothing else changes", v.Renderer)
	}
	return nil
}

// effect is what the change does to the app's workloads, for Checked.
func effect(p *Plan, n int) string {
	verb := map[bool]string{true: "restarts", false: "restart"}[n == 1]
	if p.Request.Action != ActionRestart {
		verb = map[bool]string{true: "runs", false: "run"}[n == 1] + " " + p.To
	}
	return verb
}
