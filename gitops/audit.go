package gitops

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops/repo"
)

// TrailerApprovedBy names a reviewer who approved the change (one per line).
const TrailerApprovedBy = "Approved-by"

// Signature statuses of an audited commit.
const (
	SignatureGood       = "good"
	SignatureBad        = "bad"
	SignatureUnsigned   = "unsigned"
	SignatureUnknownKey = "unknown-key"
)

// Audit flags.
const (
	FlagNotViaShipbot    = "not-via-shipbot"   // touched a managed path without shipbot's trailers
	FlagSignature        = "signature-"        // + the status, when it is not good
	FlagTrailersMismatch = "trailers-mismatch" // shipbot's trailers say another change than the content shows
	FlagBreakGlass       = "break-glass"       // the change overrode a freeze (its Break-glass trailer)
)

// AuditFlags are every flag an audit record can carry.
var AuditFlags = []string{
	FlagNotViaShipbot, FlagTrailersMismatch,
	FlagSignature + SignatureBad, FlagSignature + SignatureUnsigned, FlagSignature + SignatureUnknownKey,
	FlagBreakGlass,
}

// SignatureChecker verifies a commit's signature against the trusted keys
// and names the key when known.
type SignatureChecker interface {
	CheckCommit(c *object.Commit) (status, key string)
}

// AuditRecord is one change of one app in one environment, as history and
// signatures prove it.
type AuditRecord struct {
	Time        time.Time `json:"time"`
	Commit      string    `json:"commit"`
	Action      string    `json:"action"`
	App         string    `json:"app"`
	Env         string    `json:"env"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	RequestedBy string    `json:"requested_by"`
	ApprovedBy  []string  `json:"approved_by"`
	// AuthorizedBy is the policy decision the change relied on (the
	// Authorized-by trailer; empty for commits before it existed).
	AuthorizedBy  string   `json:"authorized_by"`
	Justification string   `json:"justification"`
	RequestID     string   `json:"request_id"`
	Via           string   `json:"via"`
	Signature     string   `json:"signature"`
	SignedBy      string   `json:"signed_by,omitempty"`
	Flags         []string `json:"flags"`
	// BreakGlass is the freeze the change overrode, as its Break-glass
	// trailer says ("" = none); such a record carries the break-glass flag.
	BreakGlass string `json:"break_glass"`
}

// AuditOptions filter the audit.
type AuditOptions struct {
	Env, App string
	Since    time.Time // zero: everything
	Checker  SignatureChecker
}

// Validate checks the filters against the catalog.
func (o *AuditOptions) Validate(c *Catalog) error {
	if o.App != "" {
		if _, err := c.App(o.App); err != nil {
			return err
		}
	}
	if o.Env != "" {
		if _, err := c.Env(o.Env); err != nil {
			return err
		}
	}
	if o.Checker == nil {
		return fmt.Errorf("audit: no signature checker")
	}
	return nil
}

// Audit reads the environment repo's history and returns one record per
// change of an app in an environment, one per freeze or unfreeze of an
// environment (app "*", left out when o.App is set), and one per pin or
// unpin of an app in an environment (action pin or unpin), newest first. It shares the history
// reader with `history`, and its attribution by field: a commit is an app's
// record when it changed the app's image tag or restart annotation, so a
// commit that changed several apps gives several records, and another
// app's change of a shared file is that app's record only. A commit that
// changed an app's files but no app's field is audited for every app whose
// files it changed (a change of a managed path nobody's field explains is
// never hidden), and so is a commit whose trailers name the app (a claim
// the content does not show is flagged).
func (s *Service) Audit(ctx context.Context, o AuditOptions) ([]AuditRecord, error) {
	if err := o.Validate(s.o.Catalog); err != nil {
		return nil, err
	}
	snap, err := s.o.Repo.Fetch(ctx)
	if err != nil {
		return nil, err
	}
	var near func(Target) []Target // built when first needed
	sigs := map[string][2]string{} // commit -> status, key
	check := func(c *object.Commit) [2]string {
		sig, ok := sigs[c.Hash.String()]
		if !ok {
			st, key := o.Checker.CheckCommit(c)
			sig = [2]string{st, key}
			sigs[c.Hash.String()] = sig
		}
		return sig
	}
	// The audit shows what every commit's trailers claim, as evidence, and
	// trusts none of it by itself: a record is unflagged only when its
	// commit is shipbot's own (committer, a good signature from a trusted
	// key) and its trailers name the app, the environment and the change
	// the content shows (record). Anything else carries a flag.
	h := &historyReader{repo: s.o.Repo, trust: func(*object.Commit) bool { return true }}
	var out []AuditRecord
	var pos []int // history position of each record
	for _, app := range s.o.Catalog.AppNames() {
		if o.App != "" && app != o.App {
			continue
		}
		for _, env := range s.o.Catalog.Envs {
			t, ok := s.o.Catalog.Apps[app][env.Name]
			if !ok || (o.Env != "" && env.Name != o.Env) {
				continue
			}
			// No early stop on dates: they can be forged or out of order.
			// Attribution by field: a commit is this target's record when
			// it changed this target's tag or restart annotation, not
			// because it changed a file another app's fields share.
			sharing := func() []Target {
				if near == nil {
					near = nearTargets(s.o.Catalog)
				}
				return near(t)
			}
			deploys, err := h.deploys(ctx, snap, t, walk{all: true, sharing: sharing})
			if err != nil {
				return nil, fmt.Errorf("audit %s in %s: %w", app, env.Name, err)
			}
			for _, d := range deploys {
				if !o.Since.IsZero() && d.When.Before(o.Since) {
					continue
				}
				if d.Action == string(ActionUnpin) && d.Tag == d.From {
					continue // an unpin restoring automation in the app's files: its pin record says it
				}
				sig := check(d.Object)
				out = append(out, s.record(t, d, sig[0], sig[1]))
				pos = append(pos, d.Pos)
			}
		}
	}
	if o.App == "" {
		recs, at, err := s.auditFreezes(ctx, snap, o, check)
		if err != nil {
			return nil, fmt.Errorf("audit freezes: %w", err)
		}
		out, pos = append(out, recs...), append(pos, at...)
	}
	recs, at, err := s.auditPins(ctx, snap, o, check)
	if err != nil {
		return nil, fmt.Errorf("audit pins: %w", err)
	}
	out, pos = append(out, recs...), append(pos, at...)
	// Newest first in the branch's history (not by commit date).
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return pos[idx[a]] > pos[idx[b]] })
	sorted := make([]AuditRecord, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted, nil
}

func (s *Service) record(t Target, d Deploy, sig, key string) AuditRecord {
	tr := d.Trailers
	r := AuditRecord{
		Time: d.When.UTC(), Commit: d.Commit.String(), Action: d.Action, App: t.App, Env: t.Env,
		From: d.From, To: d.Tag, RequestedBy: d.RequestedBy(), Signature: sig, SignedBy: key,
	}
	if d.Action == string(ActionRestart) {
		r.From, r.To = d.RestartBefore, d.Restart
	}
	s.evidence(&r, d.Object, tr, func() bool {
		return tr[TrailerApp] != t.App || tr[TrailerEnv] != t.Env || (tr[TrailerTo] != "" && tr[TrailerTo] != r.To) || !contentShows(d)
	})
	return r
}

// evidence fills what a record takes from its commit and trailers (the
// approvals, the policy decision, the reason, the request, how it landed)
// and its flags: not-via-shipbot unless shipbot committed it with a
// request id, else trailers-mismatch when mismatch says its trailers claim
// another change than the content shows; the signature; break-glass.
func (s *Service) evidence(r *AuditRecord, c *object.Commit, tr map[string]string, mismatch func() bool) {
	r.ApprovedBy = TrailerValues(c.Message, TrailerApprovedBy)
	if r.ApprovedBy == nil {
		r.ApprovedBy = []string{}
	}
	r.AuthorizedBy, r.Justification, r.RequestID = tr[TrailerAuthorizedBy], tr[TrailerJustification], tr[TrailerRequest]
	r.Via = "direct"
	if len(c.ParentHashes) > 1 {
		r.Via = "merge"
	}
	if v := tr[TrailerProposal]; v != "" {
		// Reviewed: the pull request's URL, or git:shipbot/<request-id>.
		r.Via = v
	}
	r.Flags = []string{}
	if r.RequestID == "" || c.Committer.Email != s.o.Committer.Email {
		r.Flags = append(r.Flags, FlagNotViaShipbot)
	} else if mismatch() {
		r.Flags = append(r.Flags, FlagTrailersMismatch)
	}
	if r.Signature != SignatureGood {
		r.Flags = append(r.Flags, FlagSignature+r.Signature)
	}
	if r.BreakGlass = tr[TrailerBreakGlass]; r.BreakGlass != "" {
		r.Flags = append(r.Flags, FlagBreakGlass)
	}
}

// auditFreezes returns a record per change of an environment's freeze in
// FreezesPath (a freeze set, replaced or lifted), with its history position.
// The action is what the content shows; the trailers are evidence, checked
// against it like an app's. Freezes that had expired when the commit
// dropped them are cleanup, not unfreezes.
func (s *Service) auditFreezes(ctx context.Context, snap *repo.Snapshot, o AuditOptions, check func(*object.Commit) [2]string) ([]AuditRecord, []int, error) {
	var out []AuditRecord
	var at []int
	err := ownedChanges(ctx, s.o.Repo, snap, FreezesPath, o.Since, readFreezes, func(f Freeze) string { return f.Env }, func(ch ownedChange[string, Freeze]) {
		pos, c, tr, before, after, aerr := ch.pos, ch.commit, ch.trailers, ch.before, ch.after, ch.aerr
		claimed := tr[TrailerAction] == string(ActionFreeze) || tr[TrailerAction] == string(ActionUnfreeze)
		var envs []string
		for _, m := range []map[string]*Freeze{before, after} {
			for env := range m {
				if !slices.Contains(envs, env) {
					envs = append(envs, env)
				}
			}
		}
		if claimed && !slices.Contains(envs, tr[TrailerEnv]) {
			envs = append(envs, tr[TrailerEnv]) // a claim the content does not show
		}
		if aerr != nil && len(envs) == 0 {
			envs = append(envs, "*") // the file broken: never a change nobody sees
		}
		sort.Strings(envs)
		for _, env := range envs {
			if o.Env != "" && env != o.Env {
				continue
			}
			b, a := before[env], after[env]
			if b != nil && a != nil && sameFreeze(*b, *a) && !(claimed && tr[TrailerEnv] == env) {
				continue
			}
			if a == nil && b != nil && !b.active(c.Committer.When) && !(claimed && tr[TrailerEnv] == env) {
				continue // an expired freeze dropped on the next change
			}
			action := ActionFreeze
			if a == nil && b != nil {
				action = ActionUnfreeze
			}
			sig := check(c)
			r := AuditRecord{
				Time: c.Committer.When.UTC(), Commit: c.Hash.String(), Action: string(action), App: "*", Env: env,
				From: freezeState(b), To: freezeState(a), RequestedBy: Deploy{Author: c.Author.Name, Trailers: tr}.RequestedBy(),
				Signature: sig[0], SignedBy: sig[1],
			}
			if aerr != nil {
				r.To = "unreadable: " + userMessage(aerr)
			}
			s.evidence(&r, c, tr, func() bool {
				return tr[TrailerAction] != r.Action || tr[TrailerEnv] != env || tr[TrailerTo] != r.To || aerr != nil
			})
			if r.Justification == "" && a != nil {
				r.Justification = Reason(a.Why) // a freeze written by hand: its own reason
			}
			out, at = append(out, r), append(at, pos)
		}
	})
	return out, at, err
}

// sameFreeze reports whether two entries of the freezes file say the same.
func sameFreeze(a, b Freeze) bool {
	return a.Env == b.Env && a.By == b.By && a.Why == b.Why && a.Request == b.Request && a.Since.Equal(b.Since) && a.Until.Equal(b.Until)
}

// contentShows reports whether the field the commit's action is about
// (the tag, or the restart annotation of a restart) changed. A shipbot
// commit listed for a target whose field it did not change (its trailers
// name the target, the content shows nothing) is a claim the content does
// not back.
func contentShows(d Deploy) bool {
	if d.Action == string(ActionRestart) {
		return d.RestartBefore != d.Restart
	}
	return d.From != d.Tag
}

// nearTargets returns, for a target, the other targets of the catalog whose
// paths may share a file with it (the same path, or one directly inside the
// other); the history index then says which truly do.
func nearTargets(c *Catalog) func(Target) []Target {
	byPath := map[string][]Target{}   // path -> targets at that path
	byParent := map[string][]Target{} // directory -> targets at a path directly inside it
	for _, app := range c.AppNames() {
		for _, env := range c.Envs {
			t, ok := c.Apps[app][env.Name]
			if !ok {
				continue
			}
			p := catalogPath(t.Path)
			byPath[p] = append(byPath[p], t)
			byParent[path.Dir(p)] = append(byParent[path.Dir(p)], t)
		}
	}
	return func(t Target) []Target {
		p := catalogPath(t.Path)
		var out []Target
		for _, list := range [][]Target{byPath[p], byPath[path.Dir(p)], byParent[p]} {
			for _, o := range list {
				if o.App != t.App || o.Env != t.Env {
					out = append(out, o)
				}
			}
		}
		return out
	}
}

func catalogPath(p string) string {
	return path.Clean("/" + p)[1:]
}
