package gitops

import (
	"context"
	"sort"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops/repo"
)

// auditPins returns a record per change of an app's pin in PinsPath (a pin
// set by a rollback, re-pinned by another, lifted by unpin), with its
// history position, like auditFreezes does for freezes. A pin is the
// rollback's when the commit's trailers say that rollback of that app and
// environment and the pin names its request; an unpin, when they say an
// unpin of it. Pins that had expired when a commit dropped them are
// cleanup, not unpins.
func (s *Service) auditPins(ctx context.Context, snap *repo.Snapshot, o AuditOptions, check func(*object.Commit) [2]string) ([]AuditRecord, []int, error) {
	type key struct{ app, env string }
	var out []AuditRecord
	var at []int
	err := ownedChanges(ctx, s.o.Repo, snap, PinsPath, o.Since, readPins, func(p Pin) key { return key{p.App, p.Env} }, func(ch ownedChange[key, Pin]) {
		pos, c, tr, before, after, aerr := ch.pos, ch.commit, ch.trailers, ch.before, ch.after, ch.aerr
		claimed := tr[TrailerAction] == string(ActionRollback) || tr[TrailerAction] == string(ActionUnpin)
		claim := key{tr[TrailerApp], tr[TrailerEnv]}
		var keys []key
		seen := map[key]bool{}
		for _, m := range []map[key]*Pin{before, after} {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
		if claimed && tr[TrailerAction] == string(ActionUnpin) && !seen[claim] {
			keys = append(keys, claim) // a claim the content does not show
		}
		if aerr != nil && len(keys) == 0 {
			keys = append(keys, key{"*", "*"}) // the file broken: never a change nobody sees
		}
		sort.Slice(keys, func(i, j int) bool {
			if keys[i].env != keys[j].env {
				return keys[i].env < keys[j].env
			}
			return keys[i].app < keys[j].app
		})
		for _, k := range keys {
			if (o.Env != "" && k.env != o.Env) || (o.App != "" && k.app != o.App) {
				continue
			}
			b, a := before[k], after[k]
			ours := claimed && claim == k
			if b != nil && a != nil && samePin(*b, *a) && !ours {
				continue
			}
			if a == nil && b != nil && !b.active(c.Committer.When) && len(b.Held) == 0 && !ours {
				continue // an expired pin dropped on the next change
			}
			action := ActionPin
			if a == nil && b != nil {
				action = ActionUnpin
			}
			if a == nil && b == nil && tr[TrailerAction] == string(ActionUnpin) {
				action = ActionUnpin
			}
			sig := check(c)
			r := AuditRecord{
				Time: c.Committer.When.UTC(), Commit: c.Hash.String(), Action: string(action), App: k.app, Env: k.env,
				From: pinState(b), To: pinState(a), RequestedBy: Deploy{Author: c.Author.Name, Trailers: tr}.RequestedBy(),
				Signature: sig[0], SignedBy: sig[1],
			}
			if aerr != nil {
				r.To = "unreadable: " + userMessage(aerr)
			}
			s.evidence(&r, c, tr, func() bool {
				if aerr != nil || !ours {
					return true
				}
				if action == ActionUnpin {
					return tr[TrailerAction] != string(ActionUnpin)
				}
				return tr[TrailerAction] != string(ActionRollback) || a.Request != tr[TrailerRequest] || a.Tag != tr[TrailerTo]
			})
			if r.Justification == "" && a != nil {
				r.Justification = Reason(a.Why) // a pin written by hand: its own reason
			}
			out, at = append(out, r), append(at, pos)
		}
	})
	return out, at, err
}

// samePin reports whether two entries of the pins file say the same.
func samePin(a, b Pin) bool {
	if len(a.Held) != len(b.Held) {
		return false
	}
	for i := range a.Held {
		if a.Held[i] != b.Held[i] {
			return false
		}
	}
	return a.App == b.App && a.Env == b.Env && a.Tag == b.Tag && a.By == b.By && a.Why == b.Why && a.Request == b.Request &&
		a.Since.Equal(b.Since) && a.Until.Equal(b.Until)
}
