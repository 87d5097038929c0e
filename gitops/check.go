package gitops

import (
	"errors"
	"fmt"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/repo"
)

// TargetProblem is what reading one target of the catalog in the
// environment repo found wrong (App and Env are empty for a problem of the
// repo as a whole, such as an unreadable freezes file).
type TargetProblem struct {
	App, Env string
	Problem  string
}

// CheckTargets reads every target of c at snap as status, history and
// plans read it (the path exists, the app's tag can be read), and the
// freezes file, and returns what would trip them. `shipbot check` runs it
// on the tip of branch.
func CheckTargets(snap *repo.Snapshot, branch string, c *Catalog) []TargetProblem {
	var out []TargetProblem
	at := fmt.Sprintf("branch %s at %s", branch, snap.Hash().String()[:10])
	for _, app := range c.AppNames() {
		for _, env := range c.Envs {
			t, ok := c.Apps[app][env.Name]
			if !ok {
				continue
			}
			if _, ok := snap.EntryHash(t.Path); !ok {
				out = append(out, TargetProblem{App: app, Env: env.Name, Problem: fmt.Sprintf("%s is not in the environment repo (%s): fix the path, or add the app's manifests there", t.Path, at)})
				continue
			}
			_, err := edit.CurrentTag(snap, t.Location)
			switch {
			case err == nil, errors.Is(err, edit.ErrNoTag):
				// A tag not written yet is fine: a change writes it.
			case errors.Is(err, edit.ErrNotFound):
				out = append(out, TargetProblem{App: app, Env: env.Name, Problem: fmt.Sprintf("the tag of %s can't be read at %s (%s): %v; check the app's layout and image (and tagPath for helm)", t.Image, t.Path, at, err)})
			default:
				out = append(out, TargetProblem{App: app, Env: env.Name, Problem: fmt.Sprintf("%s can't be read (%s): %v", t.Path, at, err)})
			}
		}
	}
	if _, err := readFreezes(snap); err != nil {
		out = append(out, TargetProblem{Problem: fmt.Sprintf("%v (%s): freeze and unfreeze can't change it, and promotions are refused while it can't be read; fix the file or remove it", err, at)})
	}
	return out
}
