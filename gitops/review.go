package gitops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops/repo"
	"github.com/shipbot/shipbot/templates"
)

// forgeTimeout bounds one call to the forge.
const forgeTimeout = 30 * time.Second

// reviewText says what approvals a decision asks for, for the plan reply.
func (s *Service) reviewText(ctx context.Context, req Request, r Review) string {
	text := fmt.Sprintf("%d approval%s from %s (the requester does not count)", r.Approvals, plural(r.Approvals), groupText(r.Group))
	if s.o.Approvers != nil {
		who, err := s.o.Approvers.Approvers(ctx, req.Env, req.App, r, req.User)
		if err == nil {
			if groups, err := s.o.Approvers.ChatApprovers(req.Env, req.App, r); err == nil {
				for _, g := range groups {
					who = append(who, "members of "+g)
				}
			}
		}
		if len(who) > 0 {
			text += "; who may approve: " + strings.Join(who, ", ")
		}
	}
	return text
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func groupText(g string) string {
	if g == "" || g == "*" {
		return "anyone the policy lets approve"
	}
	return g
}

// canReview refuses, at plan time, a change under review that could never
// merge: no forge to review it on, a freeze (which takes effect at once),
// or fewer possible approvers than approvals needed.
func (s *Service) canReview(ctx context.Context, req Request, r Review) error {
	if r.Approvals <= 0 {
		return nil
	}
	if req.Action == ActionFreeze || req.Action == ActionUnfreeze {
		return Userf("the policy asks for review of %s, but freezes take effect at once and are not reviewed; fix the review line of the policy", req.Action)
	}
	if s.o.Forge == nil || s.o.Approvers == nil {
		return &UserError{Err: ErrNeedsReview, Message: fmt.Sprintf(
			"the policy says %s of %s in %s needs %d approval%s from %s before it merges, and this shipbot has no forge configured to review it on (forge: in shipbot.yaml); nothing was written",
			req.Action, req.App, req.Env, r.Approvals, plural(r.Approvals), groupText(r.Group))}
	}
	who, err := s.o.Approvers.Approvers(ctx, req.Env, req.App, r, req.User)
	if err != nil {
		return fmt.Errorf("list approvers: %w", err)
	}
	if len(who) < r.Approvals {
		if groups, err := s.o.Approvers.ChatApprovers(req.Env, req.App, r); err == nil && len(groups) > 0 {
			// Members of a chat group may make up the count: the policy
			// can't tell how many they are, so the proposal may open.
			return nil
		}
		have := "nobody"
		if len(who) > 0 {
			have = "only " + strings.Join(who, ", ")
		}
		return &UserError{Err: ErrNeedsReview, Message: fmt.Sprintf(
			"%s of %s in %s needs %d approval%s from %s besides you, but %s may approve it under the current policy: it could never merge, so nothing was written. Ask for more approvers in the policy (`shipbot policy explain` shows who may approve)",
			req.Action, req.App, req.Env, r.Approvals, plural(r.Approvals), groupText(r.Group), have)}
	}
	return nil
}

// reviewOp runs one review operation: serialized in the process (the
// records are also written with compare-and-swap pushes, so replicas never
// lose an approval) and bounded in time.
func (s *Service) reviewOp(ctx context.Context, f func(ctx context.Context) Response) Response {
	s.reviewMu.Lock()
	defer s.reviewMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.o.WriteTimeout)
	defer cancel()
	return f(ctx)
}

// propose writes a confirmed plan that needs review as a proposal: the
// signed commit on the proposal branch, the opening record, then the
// proposal on the forge.
func (s *Service) propose(ctx context.Context, log *slog.Logger, p *Plan, d Decision, author Person) Response {
	req := p.Request
	return s.reviewOp(ctx, func(ctx context.Context) Response {
		tip, err := s.o.Repo.FetchAll(ctx)
		if err != nil {
			return s.failed(log, req, err)
		}
		if prop, ok, err := loadProposal(s.o.Repo, req.ID, s.trustRecord); err != nil {
			return s.failed(log, req, err)
		} else if ok {
			// A redelivered confirmation: the proposal exists.
			return s.proposalResponse(ctx, log, prop, "already open")
		}
		j := &job{ctx: ctx, plan: p, author: author, authorizedBy: authorizedBy(d), log: log}
		_, objects, err := s.committer.build(ctx, tip, j)
		if err != nil {
			return s.rejected(log, req, err)
		}
		now := s.o.Now().UTC()
		doc := proposalDoc{
			Request: p.Request, Justification: p.Justification, Summary: p.Summary, Diff: p.Diff,
			From: p.From, To: p.To, Restart: p.Restart, BreakGlass: p.BreakGlass, Base: tip.Hash().String(),
			Review: d.Review, AuthorizedBy: authorizedBy(d), Author: author, Expires: now.Add(s.o.ProposalTTL),
		}
		prop := &proposal{ID: req.ID, Doc: doc, Heads: map[string]string{}, Chat: map[string]record{}}
		open := record{Event: eventOpened, At: now, By: req.User, Name: author.String(), Where: where(req),
			Head: j.commit.String(), Digest: digest(p.Diff), Proposal: &doc}
		rc, err := s.buildRecord(prop, plumbing.ZeroHash, open)
		if err != nil {
			return s.failed(log, req, err)
		}
		err = s.o.Repo.PushRefs(ctx, []repo.RefUpdate{
			{Name: proposalBranchRef(req.ID), New: j.commit},
			{Name: recordRef(req.ID), New: rc.Hash},
		}, append(objects, rc.Objects...))
		if err != nil {
			return s.failed(log, req, fmt.Errorf("push the proposal: %w", err))
		}
		prop.apply(open)
		prop.Ref = rc.Hash
		log.Info("proposal pushed", "branch", ProposalBranch(req.ID), "head", j.commit.String())
		s.supersede(ctx, log, prop)
		headline := "proposal opened"
		if err := s.openOnForge(ctx, log, prop); err != nil {
			headline = fmt.Sprintf("proposal branch pushed, but %s could not open it yet (%s); shipbot retries", s.o.Forge.Name(), userMessage(err))
		}
		return s.proposalResponse(ctx, log, prop, headline)
	})
}

// trustRecord accepts only record commits shipbot wrote: committed by
// shipbot and, when a RecordChecker is configured, with a good signature
// from a trusted key.
func (s *Service) trustRecord(c *object.Commit) error {
	if c.Committer.Email != s.o.Committer.Email {
		return fmt.Errorf("committed by %s, not by shipbot: not trusted", c.Committer.Email)
	}
	if s.o.RecordChecker != nil {
		if st, _ := s.o.RecordChecker.CheckCommit(c); st != SignatureGood {
			return fmt.Errorf("signature %s: not trusted", st)
		}
	}
	return nil
}

func (s *Service) badProposal(id string, err error) {
	s.o.Logger.Error("proposal ignored: its records can't be trusted or read", "proposal", id, "err", err)
}

// where names where a chat request came from, for records and trailers.
func where(req Request) string {
	if req.Channel == "" {
		return "chat"
	}
	return "chat " + OneLine(req.Channel)
}

// openOnForge opens the proposal on the forge and records it.
func (s *Service) openOnForge(ctx context.Context, log *slog.Logger, prop *proposal) error {
	doc := prop.Doc
	approvers, _ := s.o.Approvers.Approvers(ctx, doc.Request.Env, doc.Request.App, doc.Review, doc.Request.User)
	checked := ""
	if c := doc.Justification.Checked; c != nil {
		checked = fmt.Sprintf("%s %s %s", c.Source, c.State, c.At.UTC().Format(time.RFC3339))
	}
	body, err := templates.PullRequestBody(templates.PullRequest{
		RequestID: prop.ID, Summary: doc.Summary, Diff: doc.Diff, Requester: doc.Author.String(), Channel: doc.Request.Channel,
		Justification: doc.Justification.Text, Checked: checked, Rule: doc.AuthorizedBy,
		Needed: doc.Review.Approvals, Group: groupName(doc.Review.Group), Approvers: approvers, Expires: doc.Expires,
	})
	if err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, forgeTimeout)
	defer cancel()
	fp, err := s.o.Forge.Open(fctx, ProposalSpec{
		RequestID: prop.ID, Branch: ProposalBranch(prop.ID), Base: s.o.Repo.Branch(), Head: prop.Head,
		Title: doc.Summary, Body: body, Labels: []string{"shipbot", "shipbot/" + string(doc.Request.Action)},
		Reviewers: approvers, Group: doc.Review.Group,
	})
	if err != nil {
		log.Warn("open proposal on the forge failed", "forge", s.o.Forge.Name(), "err", err)
		return err
	}
	if err := s.appendRecord(ctx, prop, record{Event: eventForge, At: s.o.Now().UTC(), Forge: &fp}); err != nil {
		return err
	}
	log.Info("proposal opened", "forge", s.o.Forge.Name(), "url", fp.URL, "number", fp.Number)
	return nil
}

func groupName(g string) string {
	if g == "*" {
		return ""
	}
	return g
}

// buildRecord writes a record commit of prop on parent.
func (s *Service) buildRecord(prop *proposal, parent plumbing.Hash, rec record) (*repo.Commit, error) {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	now := s.o.Now()
	c := object.Signature{Name: s.o.Committer.Name, Email: s.o.Committer.Email, When: now}
	return s.o.Repo.BuildRecord(parent, map[string][]byte{"record.json": append(data, '\n')}, repo.CommitOptions{
		Author: c, Committer: c, Message: recordMessage(prop, rec), Signer: s.o.Signer,
	})
}

// appendRecord adds rec to prop's records with a compare-and-swap push and
// applies it to prop.
func (s *Service) appendRecord(ctx context.Context, prop *proposal, rec record, more ...repo.RefUpdate) error {
	rc, err := s.buildRecord(prop, prop.Ref, rec)
	if err != nil {
		return err
	}
	updates := append([]repo.RefUpdate{{Name: recordRef(prop.ID), Old: prop.Ref, New: rc.Hash}}, more...)
	if err := s.o.Repo.PushRefs(ctx, updates, rc.Objects); err != nil {
		return fmt.Errorf("record %s of %s: %w", rec.Event, prop.ID, err)
	}
	prop.Ref = rc.Hash
	prop.apply(rec)
	return nil
}

// supersede closes the older open proposals for the same app and
// environment: the newer request replaces them.
func (s *Service) supersede(ctx context.Context, log *slog.Logger, newer *proposal) {
	open, err := openProposals(s.o.Repo, s.trustRecord, s.badProposal)
	if err != nil {
		log.Warn("list proposals to supersede", "err", err)
		return
	}
	for _, old := range open {
		r, n := old.Doc.Request, newer.Doc.Request
		if old.ID == newer.ID || r.App != n.App || r.Env != n.Env {
			continue
		}
		reason := fmt.Sprintf("superseded by %s (%s), a newer request for %s in %s", newer.ID, newer.Doc.Summary, n.App, n.Env)
		if err := s.closeProposal(ctx, log, old, eventClosed, reason, Request{}); err != nil {
			log.Warn("close superseded proposal", "proposal", old.ID, "err", err)
		}
	}
}

// closeProposal records the end of a proposal without a merge, deletes its
// branch in the same atomic push, closes it on the forge and tells its
// thread.
func (s *Service) closeProposal(ctx context.Context, log *slog.Logger, prop *proposal, event, reason string, by Request) error {
	return s.closeProposalTelling(ctx, log, prop, event, reason, by, fmt.Sprintf("[%s] %s: %s. Nothing was merged.", prop.ID, closedWord(event), reason))
}

// closeProposalTelling is closeProposal with the text the thread is told.
func (s *Service) closeProposalTelling(ctx context.Context, log *slog.Logger, prop *proposal, event, reason string, by Request, tell string) error {
	rec := record{Event: event, At: s.o.Now().UTC(), Reason: Reason(reason)}
	if by.User != "" {
		rec.By, rec.Where = by.User, where(by)
	}
	var more []repo.RefUpdate
	if h, ok := s.o.Repo.Ref(proposalBranchRef(prop.ID)); ok && h.String() == prop.Head {
		more = append(more, repo.RefUpdate{Name: proposalBranchRef(prop.ID), Old: h})
	}
	if err := s.appendRecord(ctx, prop, rec, more...); err != nil {
		return err
	}
	if prop.Forge != nil {
		fctx, cancel := context.WithTimeout(ctx, forgeTimeout)
		defer cancel()
		if err := s.o.Forge.Close(fctx, *prop.Forge, reason); err != nil {
			log.Warn("close proposal on the forge", "proposal", prop.ID, "err", err)
		}
	}
	log.Info("proposal closed", "proposal", prop.ID, "event", event, "reason", reason)
	s.notify(ctx, prop, by, tell, OutcomeCancelled, nil, "")
	return nil
}

func closedWord(event string) string {
	if event == eventRejected {
		return "rejected"
	}
	return "closed"
}

// notify tells the requester's thread about a proposal, unless the news
// is the answer to a request made in that very thread.
func (s *Service) notify(ctx context.Context, prop *proposal, by Request, text string, outcome Outcome, p *Plan, commit string) {
	if s.o.Notifier == nil {
		return
	}
	r := prop.Doc.Request
	if by.User != "" && by.Thread == r.Thread && by.Channel == r.Channel {
		return
	}
	s.o.Notifier.ProposalUpdated(ctx, ProposalUpdate{
		RequestID: prop.ID, Thread: r.Thread, Channel: r.Channel, Text: text, Outcome: outcome, Plan: p, Commit: commit,
	})
}

// findProposal fetches and loads the proposal an approve or reject names.
func (s *Service) findProposal(ctx context.Context, req Request) (*proposal, error) {
	if !ValidRequestID(req.Proposal) {
		return nil, Userf("%q is not a request id (they look like shp-abcde23456); `proposals` lists the open ones", req.Proposal)
	}
	if s.o.Forge == nil {
		return nil, Userf("this shipbot reviews no changes (no forge configured), so there is nothing to %s", req.Action)
	}
	if _, err := s.o.Repo.FetchAll(ctx); err != nil {
		return nil, err
	}
	prop, ok, err := loadProposal(s.o.Repo, req.Proposal, s.trustRecord)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, Userf("there is no proposal %s; `proposals` lists the open ones", req.Proposal)
	}
	if !prop.open() {
		switch prop.State {
		case eventMerged:
			return nil, Userf("proposal %s is merged already (commit %s)", prop.ID, short(prop.Closing.Commit))
		default:
			return nil, Userf("proposal %s is %s: %s", prop.ID, closedWord(prop.State), prop.Closing.Reason)
		}
	}
	return prop, nil
}

// mayReview asks the policy whether req's user may approve (or reject) prop.
func (s *Service) mayReview(ctx context.Context, prop *proposal, sub Subject) (Decision, error) {
	r := prop.Doc.Request
	env, err := s.o.Catalog.Env(r.Env)
	if err != nil {
		return Decision{}, err
	}
	return s.o.Approvers.MayApprove(ctx, AuthzQuery{Subject: sub, Env: r.Env, Cluster: env.Cluster, App: r.App, Action: ActionApprove}, prop.Doc.Review)
}

// approve records a chat approval and merges when the policy is satisfied.
func (s *Service) approve(ctx context.Context, log *slog.Logger, req Request) Response {
	return s.reviewOp(ctx, func(ctx context.Context) Response {
		prop, err := s.findProposal(ctx, req)
		if err != nil {
			return s.rejected(log, req, err)
		}
		if req.User == prop.Doc.Request.User {
			log.Warn("approval refused: the requester", "proposal", prop.ID)
			return Response{Outcome: OutcomeDenied, Text: fmt.Sprintf("[%s] you asked for this change: the requester never counts as an approver. %d approval%s from %s needed; see `proposals`.",
				prop.ID, prop.Doc.Review.Approvals, plural(prop.Doc.Review.Approvals), groupText(prop.Doc.Review.Group))}
		}
		d, err := s.mayReview(ctx, prop, req.subject())
		if err != nil {
			return s.failed(log, req, err)
		}
		if !d.Allowed {
			log.Warn("approval refused by policy", "proposal", prop.ID, "reason", d.Reason)
			return Response{Outcome: OutcomeDenied, Text: fmt.Sprintf("[%s] your approval can't count: %s", prop.ID, d.Reason)}
		}
		headline := req.User + " approved"
		if prev, ok := prop.Chat[req.User]; ok && prev.Event == eventApproved && prev.Digest == prop.Digest {
			headline = req.User + " approved already (one person counts once)"
		} else {
			person, err := s.o.Directory.Person(ctx, req.User)
			if err != nil {
				return s.rejected(log, req, err)
			}
			rec := record{Event: eventApproved, At: s.o.Now().UTC(), By: req.User, Name: person.String(), Where: where(req),
				Head: prop.Head, Digest: prop.Digest, Reason: authorizedBy(d)}
			if err := s.appendRecord(ctx, prop, rec); err != nil {
				return s.failed(log, req, err)
			}
			log.Info("approval recorded", "proposal", prop.ID, "rule", d.Rule)
		}
		return s.advance(ctx, log, prop, req, headline)
	})
}

// reject records a rejection and closes the proposal. Whoever may approve
// may reject; the requester may withdraw their own proposal.
func (s *Service) reject(ctx context.Context, log *slog.Logger, req Request) Response {
	return s.reviewOp(ctx, func(ctx context.Context) Response {
		prop, err := s.findProposal(ctx, req)
		if err != nil {
			return s.rejected(log, req, err)
		}
		if strings.TrimSpace(req.Why) == "" {
			return s.rejected(log, req, Userf("say why: `reject %s --why TEXT` (the reason goes to the requester and the record)", prop.ID))
		}
		if req.User != prop.Doc.Request.User {
			d, err := s.mayReview(ctx, prop, req.subject())
			if err != nil {
				return s.failed(log, req, err)
			}
			if !d.Allowed {
				return Response{Outcome: OutcomeDenied, Text: fmt.Sprintf("[%s] you may not reject it: %s", prop.ID, d.Reason)}
			}
		}
		reason := fmt.Sprintf("%s rejected it: %s", req.User, Reason(req.Why))
		if err := s.closeProposal(ctx, log, prop, eventRejected, reason, req); err != nil {
			return s.failed(log, req, err)
		}
		return Response{Outcome: OutcomeCancelled, Text: fmt.Sprintf("[%s] rejected: %s. Nothing was merged; the requester is told.", prop.ID, Reason(req.Why))}
	})
}

// verdict is a proposal's evaluation: who counts, what blocks it.
type verdict struct {
	view   ProposalView
	notes  []string
	ready  bool
	status ForgeStatus
	// byUser: where each counted approver approved, for Approved-by.
	byUser map[string][]string
	names  map[string]string // chat user -> "Name <email>" when recorded
}

// evaluate counts the approvals of prop (chat records and forge reviews,
// one per human, the requester never) and says what blocks the merge.
func (s *Service) evaluate(ctx context.Context, prop *proposal) (verdict, error) {
	doc := prop.Doc
	v := verdict{byUser: map[string][]string{}, names: map[string]string{}}
	if prop.Forge != nil {
		fctx, cancel := context.WithTimeout(ctx, forgeTimeout)
		st, err := s.o.Forge.Status(fctx, *prop.Forge)
		cancel()
		if err != nil {
			return v, fmt.Errorf("read %s from %s: %w", prop.ID, s.o.Forge.Name(), err)
		}
		v.status = st
	}
	var blocked []string
	for user, rec := range prop.Chat {
		if rec.Event == eventApproved && rec.Digest == prop.Digest {
			v.byUser[user] = append(v.byUser[user], rec.Where)
			v.names[user] = rec.Name
		}
	}
	// The forge's reviews: the latest per person wins; a dismissed review
	// withdraws the earlier one; comments change nothing.
	latest := map[string]ForgeReview{}
	var logins []string
	for _, rv := range v.status.Reviews {
		key := strings.ToLower(rv.Login)
		switch rv.State {
		case ReviewCommented:
			continue
		case ReviewDismissed:
			delete(latest, key)
			continue
		}
		if _, seen := latest[key]; !seen {
			logins = append(logins, key)
		}
		latest[key] = rv
	}
	for _, key := range logins {
		rv, ok := latest[key]
		if !ok {
			continue
		}
		where := fmt.Sprintf("%s @%s", s.o.Forge.Name(), rv.Login)
		if rv.User == "" {
			v.notes = append(v.notes, fmt.Sprintf("@%s reviewed on %s but has no chat identity in shipbot's mapping, so it doesn't count", rv.Login, s.o.Forge.Name()))
			continue
		}
		if rv.User == doc.Request.User {
			if rv.State == ReviewApproved {
				v.notes = append(v.notes, fmt.Sprintf("%s (%s) asked for the change: the requester's approval doesn't count", rv.User, where))
			}
			continue
		}
		d, err := s.mayReview(ctx, prop, Subject{User: rv.User})
		if err != nil {
			return v, err
		}
		if !d.Allowed {
			v.notes = append(v.notes, fmt.Sprintf("%s's review (%s) doesn't count: %s", rv.User, where, d.Reason))
			continue
		}
		switch rv.State {
		case ReviewChangesRequested:
			blocked = append(blocked, fmt.Sprintf("%s requested changes (%s)", rv.User, where))
		case ReviewApproved:
			if prop.Heads[rv.Commit] != prop.Digest {
				v.notes = append(v.notes, fmt.Sprintf("%s approved an earlier version (%s); approve again", rv.User, where))
				continue
			}
			if !slices.Contains(v.byUser[rv.User], where) {
				v.byUser[rv.User] = append(v.byUser[rv.User], where)
			}
			if v.names[rv.User] == "" {
				// An approver seen only on the forge: their git identity
				// names them in Approved-by, as a chat approval's record does.
				if p, err := s.o.Directory.Person(ctx, rv.User); err == nil {
					v.names[rv.User] = p.String()
				}
			}
		}
	}
	if h, ok := s.o.Repo.Ref(proposalBranchRef(prop.ID)); !ok || h.String() != prop.Head {
		blocked = append(blocked, fmt.Sprintf("the proposal branch %s was changed outside shipbot (it should point at %s): nothing unreviewed merges; reject it and ask again", ProposalBranch(prop.ID), short(prop.Head)))
	} else if v.status.Head != "" && v.status.Head != prop.Head {
		blocked = append(blocked, fmt.Sprintf("%s shows head %s, not the reviewed %s: nothing unreviewed merges", s.o.Forge.Name(), short(v.status.Head), short(prop.Head)))
	}
	switch v.status.Checks {
	case ChecksFailure:
		blocked = append(blocked, "failing check"+plural(len(v.status.Failing))+": "+strings.Join(v.status.Failing, ", "))
	case ChecksPending:
		blocked = append(blocked, "waiting for check"+plural(len(v.status.Failing))+": "+strings.Join(v.status.Failing, ", "))
	}
	if v.status.Conflict {
		blocked = append(blocked, s.o.Forge.Name()+" reports a conflict with "+s.o.Repo.Branch())
	}
	users := make([]string, 0, len(v.byUser))
	for u := range v.byUser {
		users = append(users, u)
	}
	sort.Strings(users)
	v.view = s.view(ctx, prop)
	for _, u := range users {
		v.view.Approvals = append(v.view.Approvals, ApprovalView{User: u, Where: v.byUser[u]})
	}
	v.view.Approvers = slices.DeleteFunc(v.view.Approvers, func(u string) bool { return v.byUser[u] != nil })
	v.view.Blocked = strings.Join(blocked, "; ")
	v.ready = len(users) >= doc.Review.Approvals && len(blocked) == 0
	return v, nil
}

// view is the part of a ProposalView that needs no forge.
func (s *Service) view(ctx context.Context, prop *proposal) ProposalView {
	r := prop.Doc.Request
	v := ProposalView{
		RequestID: prop.ID, Summary: prop.Doc.Summary, App: r.App, Env: r.Env, Requester: r.User,
		Channel: r.Channel, Thread: r.Thread, Via: prop.via(), Head: prop.Head,
		Needed: prop.Doc.Review.Approvals, Group: groupName(prop.Doc.Review.Group),
		Opened: prop.Opened, Expires: prop.Doc.Expires,
	}
	if prop.Forge != nil {
		v.URL = prop.Forge.URL
	}
	if who, err := s.o.Approvers.Approvers(ctx, r.Env, r.App, prop.Doc.Review, r.User); err == nil {
		v.Approvers = who
	}
	return v
}

// render is the chat text of a proposal's state.
func render(v ProposalView, headline string, notes []string) (string, error) {
	var approvals []string
	for _, a := range v.Approvals {
		approvals = append(approvals, fmt.Sprintf("%s (%s)", a.User, strings.Join(a.Where, ", ")))
	}
	return templates.ProposalReply(proposalData(v, headline, approvals, notes))
}

func proposalData(v ProposalView, headline string, approvals, notes []string) templates.Proposal {
	return templates.Proposal{
		RequestID: v.RequestID, Headline: headline, Summary: v.Summary, Requester: v.Requester, URL: v.URL, Via: v.Via,
		Needed: v.Needed, Group: v.Group, Approvals: approvals, Missing: v.Missing(), Approvers: v.Approvers,
		Blocked: v.Blocked, Notes: notes, Expires: v.Expires,
	}
}

// proposalResponse answers with a proposal's state (no merge attempted).
func (s *Service) proposalResponse(ctx context.Context, log *slog.Logger, prop *proposal, headline string) Response {
	v, err := s.evaluate(ctx, prop)
	if err != nil {
		log.Warn("evaluate proposal", "proposal", prop.ID, "err", err)
		v.view = s.view(ctx, prop)
		v.notes = append(v.notes, "could not read its reviews and checks just now: "+userMessage(err))
	}
	text, err := render(v.view, headline, v.notes)
	if err != nil {
		return s.failed(log, prop.Doc.Request, err)
	}
	return Response{Outcome: OutcomeProposed, Text: text, Proposal: &v.view}
}

// advance evaluates prop after an event and merges it when the policy is
// satisfied. req is who caused the event ("" for a reconcile).
func (s *Service) advance(ctx context.Context, log *slog.Logger, prop *proposal, req Request, headline string) Response {
	v, err := s.evaluate(ctx, prop)
	if err != nil {
		if errors.Is(err, ErrForgeRateLimited) {
			log.Warn("forge rate limit", "proposal", prop.ID, "err", err)
		} else {
			log.Error("evaluate proposal", "proposal", prop.ID, "err", err)
		}
		v.view = s.view(ctx, prop)
		text, _ := render(v.view, headline, []string{"could not read its reviews and checks just now (" + userMessage(err) + "); shipbot checks again shortly"})
		return Response{Outcome: OutcomeApproved, Text: text, Proposal: &v.view}
	}
	if ended, err := s.forgeEnded(ctx, log, prop, v.status); ended {
		if err != nil {
			return s.failed(log, prop.Doc.Request, err)
		}
		return s.rejected(log, req, Userf("proposal %s: %s", prop.ID, prop.Closing.Reason))
	}
	if !v.ready {
		text, err := render(v.view, headline, v.notes)
		if err != nil {
			return s.failed(log, prop.Doc.Request, err)
		}
		// Tell the requester's thread what changed: an approval given
		// elsewhere, or (on a reconcile) new approvals on the forge or a
		// check that started failing; the same state is told once.
		state := fmt.Sprintf("%d|%s", len(v.view.Approvals), v.view.Blocked)
		if req.User != "" || s.blocked[prop.ID] != state {
			s.notify(ctx, prop, req, text, OutcomeApproved, nil, "")
		}
		s.blocked[prop.ID] = state
		return Response{Outcome: OutcomeApproved, Text: text, Proposal: &v.view}
	}
	return s.merge(ctx, log, prop, v, req)
}

// forgeEnded closes a proposal that was closed or merged on the forge by
// someone else, and reports whether it did.
func (s *Service) forgeEnded(ctx context.Context, log *slog.Logger, prop *proposal, st ForgeStatus) (bool, error) {
	switch st.State {
	case ForgeClosed:
		return true, s.closeProposal(ctx, log, prop, eventClosed, "closed on "+s.o.Forge.Name(), Request{})
	case ForgeMerged:
		// shipbot records its own merges before the forge sees them, so
		// this merge was made by hand, outside the policy: say so loudly.
		log.Error("proposal merged on the forge by hand, not by shipbot", "url", prop.Forge.URL)
		reason := fmt.Sprintf("merged by hand on %s (%s), outside shipbot's policy and without shipbot's signature", s.o.Forge.Name(), prop.Forge.URL)
		return true, s.closeProposalTelling(ctx, log, prop, eventClosed, reason, Request{},
			fmt.Sprintf("[%s] :rotating_light: %s: the change may be on %s without the approvals it needs; check it (shipbot audit flags it).", prop.ID, reason, s.o.Repo.Branch()))
	}
	return false, nil
}

// planOf re-plans a proposal on tip, with the approved target pinned: a
// rollback or promotion lands the tag the approvers saw, or nothing.
func (s *Service) planOf(ctx context.Context, prop *proposal, tip *repo.Snapshot) (*Plan, error) {
	doc := prop.Doc
	t, env, err := s.o.Catalog.Target(doc.Request.App, doc.Request.Env)
	if err != nil {
		return nil, err
	}
	req := doc.Request
	if req.Action == ActionRollback || req.Action == ActionPromote {
		req.Tag = doc.To
	}
	p := &Plan{Request: req, Target: t, Environment: env, Justification: doc.Justification, Restart: doc.Restart, BreakGlass: doc.BreakGlass, pinned: doc.To}
	if err := s.compute(ctx, tip, p); err != nil {
		return nil, err
	}
	p.Request = doc.Request
	if p.To != doc.To || (req.Action != ActionRestart && p.From != doc.From) {
		return nil, &UserError{Err: ErrStale, Message: fmt.Sprintf("%s in %s changed since the proposal (now %s -> %s, proposed %s -> %s)", req.App, req.Env, p.From, p.To, doc.From, doc.To)}
	}
	return p, nil
}

// merge lands an approved proposal: re-planned on the branch's tip, the
// same change as a signed commit with Approved-by trailers, pushed
// atomically with the proposal branch and the merged record
// (compare-and-swap on all three); retried when the branch moved.
func (s *Service) merge(ctx context.Context, log *slog.Logger, prop *proposal, v verdict, by Request) Response {
	req := prop.Doc.Request
	var lastErr error
	for attempt := 1; attempt <= s.o.MaxAttempts; attempt++ {
		tip, err := s.o.Repo.Head()
		if attempt > 1 {
			tip, err = s.o.Repo.FetchAll(ctx)
			if err == nil {
				var ok bool
				if prop, ok, err = loadProposal(s.o.Repo, prop.ID, s.trustRecord); err == nil && (!ok || !prop.open()) {
					return s.rejected(log, req, Userf("proposal %s was closed or merged meanwhile", req.ID))
				}
			}
		}
		if err != nil {
			return s.failed(log, req, err)
		}
		p, err := s.planOf(ctx, prop, tip)
		if err != nil {
			reason := "the change no longer applies: " + userMessage(err)
			if cerr := s.closeProposal(ctx, log, prop, eventClosed, reason, Request{}); cerr != nil {
				log.Warn("close proposal", "err", cerr)
			}
			return s.rejected(log, req, Userf("proposal %s had its approvals, but %s. It was closed; nothing was merged. Ask again to see the new diff.", prop.ID, reason))
		}
		if d := digest(p.Diff); d != prop.Digest {
			return s.rebase(ctx, log, prop, p, tip)
		}
		j := &job{ctx: ctx, plan: p, author: prop.Doc.Author, authorizedBy: prop.Doc.AuthorizedBy, log: log, extra: approvedBy(v, prop)}
		_, objects, err := s.committer.build(ctx, tip, j)
		if err != nil {
			return s.rejected(log, req, err)
		}
		if tip.Hash().String() == prop.Doc.Base || s.parentOf(prop.Head) == tip.Hash() {
			// Nothing else moved: the tree must be exactly the approved one.
			if !s.sameTree(j.commit, prop.Head) {
				return s.failed(log, req, fmt.Errorf("merge %s: the re-planned tree differs from the approved head %s", prop.ID, prop.Head))
			}
		}
		rec := record{Event: eventMerged, At: s.o.Now().UTC(), Commit: j.commit.String(), Head: prop.Head, Digest: prop.Digest}
		rc, err := s.buildRecord(prop, prop.Ref, rec)
		if err != nil {
			return s.failed(log, req, err)
		}
		err = s.o.Repo.PushRefs(ctx, []repo.RefUpdate{
			{Name: s.o.Repo.BranchRef(), Old: tip.Hash(), New: j.commit},
			{Name: proposalBranchRef(prop.ID), Old: plumbing.NewHash(prop.Head), New: j.commit},
			{Name: recordRef(prop.ID), Old: prop.Ref, New: rc.Hash},
		}, append(objects, rc.Objects...))
		if errors.Is(err, repo.ErrNonFastForward) {
			log.Info("branch moved; re-planning the approved change on the new tip", "attempt", attempt)
			lastErr = err
			continue
		}
		if err != nil {
			return s.failed(log, req, fmt.Errorf("merge %s: %w", prop.ID, err))
		}
		prop.Ref = rc.Hash
		prop.apply(rec)
		commit := j.commit.String()
		log.Info("proposal merged", "proposal", prop.ID, "commit", commit, "approvals", len(v.byUser))
		resp := s.done(log, p, commit, attempt)
		resp.Proposal = &v.view
		if prop.Forge != nil {
			fctx, cancel := context.WithTimeout(ctx, forgeTimeout)
			if err := s.o.Forge.Merged(fctx, *prop.Forge, commit); err != nil {
				log.Warn("forge did not record the merge", "proposal", prop.ID, "err", err)
				resp.Text = strings.TrimRight(resp.Text, "\n") + fmt.Sprintf("\n(%s has not marked %s merged yet: %s. The change stands.)", s.o.Forge.Name(), prop.Forge.URL, userMessage(err))
			}
			cancel()
		}
		var names []string
		for _, a := range v.view.Approvals {
			names = append(names, a.User)
		}
		resp.Text = fmt.Sprintf("[%s] approved by %s: merged.\n", prop.ID, strings.Join(names, " and ")) + resp.Text
		if note := s.trace(&job{plan: p, log: log}, commit); note != "" {
			resp.Text = strings.TrimRight(resp.Text, "\n") + "\n" + note
		}
		resp.Plan = p
		s.notify(ctx, prop, by, resp.Text, OutcomeCommitted, p, commit)
		return resp
	}
	return s.failed(log, req, fmt.Errorf("gave up merging %s after %d attempts, the branch kept moving: %w", prop.ID, s.o.MaxAttempts, lastErr))
}

// approvedBy is the Approved-by trailers of a merge, one per counted
// approver, naming where they approved, and the link to the proposal.
func approvedBy(v verdict, prop *proposal) []templates.Trailer {
	var out []templates.Trailer
	for _, a := range v.view.Approvals {
		name := v.names[a.User]
		if name == "" {
			name = a.User
		}
		out = append(out, templates.Trailer{Key: TrailerApprovedBy, Value: fmt.Sprintf("%s (%s)", name, strings.Join(a.Where, ", "))})
	}
	return append(out, templates.Trailer{Key: TrailerProposal, Value: prop.via()})
}

func (s *Service) parentOf(h string) plumbing.Hash {
	c, err := s.o.Repo.CommitObject(plumbing.NewHash(h))
	if err != nil || len(c.ParentHashes) == 0 {
		return plumbing.ZeroHash
	}
	return c.ParentHashes[0]
}

func (s *Service) sameTree(a plumbing.Hash, b string) bool {
	ca, err1 := s.o.Repo.CommitObject(a)
	cb, err2 := s.o.Repo.CommitObject(plumbing.NewHash(b))
	return err1 == nil && err2 == nil && ca.TreeHash == cb.TreeHash
}

// rebase moves a proposal whose diff changed on the branch's new tip: a
// new signed head, approvals reset, approvers told.
func (s *Service) rebase(ctx context.Context, log *slog.Logger, prop *proposal, p *Plan, tip *repo.Snapshot) Response {
	req := prop.Doc.Request
	j := &job{ctx: ctx, plan: p, author: prop.Doc.Author, authorizedBy: prop.Doc.AuthorizedBy, log: log}
	_, objects, err := s.committer.build(ctx, tip, j)
	if err != nil {
		return s.rejected(log, req, err)
	}
	rec := record{Event: eventRebased, At: s.o.Now().UTC(), Head: j.commit.String(), Digest: digest(p.Diff),
		Reason: fmt.Sprintf("%s moved and the diff changed: approvals reset", s.o.Repo.Branch())}
	rc, err := s.buildRecord(prop, prop.Ref, rec)
	if err != nil {
		return s.failed(log, req, err)
	}
	if err := s.o.Repo.PushRefs(ctx, []repo.RefUpdate{
		{Name: proposalBranchRef(prop.ID), Old: plumbing.NewHash(prop.Head), New: j.commit},
		{Name: recordRef(prop.ID), Old: prop.Ref, New: rc.Hash},
	}, append(objects, rc.Objects...)); err != nil {
		return s.failed(log, req, fmt.Errorf("rebase %s: %w", prop.ID, err))
	}
	prop.Ref = rc.Hash
	prop.apply(rec)
	log.Info("proposal rebased; approvals reset", "proposal", prop.ID, "head", j.commit.String())
	text := fmt.Sprintf("[%s] %s moved under the proposal and its diff changed, so the approvals were reset: please review the new diff and approve again.\n```\n%s```", prop.ID, s.o.Repo.Branch(), p.Diff)
	if prop.Forge != nil {
		fctx, cancel := context.WithTimeout(ctx, forgeTimeout)
		if err := s.o.Forge.Comment(fctx, *prop.Forge, "shipbot: "+s.o.Repo.Branch()+" moved and this change's diff changed; approvals were reset. Please review again."); err != nil {
			log.Warn("comment on the forge", "err", err)
		}
		cancel()
	}
	s.notify(ctx, prop, Request{}, text, OutcomeProposed, nil, "")
	resp := s.proposalResponse(ctx, log, prop, "approvals reset: the diff changed")
	resp.Text = text + "\n" + resp.Text
	return resp
}

// proposals lists the open proposals the user may see.
func (s *Service) proposals(ctx context.Context, log *slog.Logger, req Request) Response {
	if s.o.Forge == nil {
		return Response{Outcome: OutcomeAnswered, Text: "no open proposals: this shipbot reviews no changes (no forge configured)."}
	}
	if req.App != "" {
		if _, err := s.o.Catalog.App(req.App); err != nil {
			return s.rejected(log, req, err)
		}
	}
	if req.Env != "" {
		if _, err := s.o.Catalog.Env(req.Env); err != nil {
			return s.rejected(log, req, err)
		}
	}
	if _, err := s.o.Repo.FetchAll(ctx); err != nil {
		return s.failed(log, req, err)
	}
	open, err := openProposals(s.o.Repo, s.trustRecord, s.badProposal)
	if err != nil {
		return s.failed(log, req, err)
	}
	data := templates.Proposals{Filter: strings.TrimSpace(strings.Join(slices.DeleteFunc([]string{req.App, inEnv(req.Env)}, func(s string) bool { return s == "" }), " "))}
	for _, prop := range open {
		r := prop.Doc.Request
		if (req.App != "" && r.App != req.App) || (req.Env != "" && r.Env != req.Env) {
			continue
		}
		env, err := s.o.Catalog.Env(r.Env)
		if err != nil {
			continue
		}
		if d, err := s.o.Authorizer.Authorize(ctx, AuthzQuery{Subject: req.subject(), Env: r.Env, Cluster: env.Cluster, App: r.App, Action: ActionStatus}); err != nil || !d.Allowed {
			continue
		}
		v, err := s.evaluate(ctx, prop)
		notes := v.notes
		if err != nil {
			v.view = s.view(ctx, prop)
			notes = append(notes, "could not read its reviews and checks just now: "+userMessage(err))
		}
		var approvals []string
		for _, a := range v.view.Approvals {
			approvals = append(approvals, fmt.Sprintf("%s (%s)", a.User, strings.Join(a.Where, ", ")))
		}
		data.Items = append(data.Items, proposalData(v.view, "", approvals, notes))
	}
	text, err := templates.ProposalsReply(data)
	if err != nil {
		return s.failed(log, req, err)
	}
	return Response{Outcome: OutcomeAnswered, Text: text}
}

func inEnv(env string) string {
	if env == "" {
		return ""
	}
	return "in " + env
}

// Reconcile brings every open proposal up to date: opens it on the forge if
// that failed before, closes it when it expired or was closed on the forge,
// resets approvals when the branch moved and its diff changed, and merges
// it when the policy is satisfied. It is run periodically and on webhooks,
// so a lost webhook never strands a proposal.
func (s *Service) Reconcile(ctx context.Context) error {
	if s.o.Forge == nil {
		return nil
	}
	var errs []error
	s.reviewOp(ctx, func(ctx context.Context) Response {
		if _, err := s.o.Repo.FetchAll(ctx); err != nil {
			errs = append(errs, err)
			return Response{}
		}
		open, err := openProposals(s.o.Repo, s.trustRecord, s.badProposal)
		if err != nil {
			errs = append(errs, err)
			return Response{}
		}
		for _, prop := range open {
			if err := s.reconcile(ctx, prop); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", prop.ID, err))
			}
		}
		return Response{}
	})
	return errors.Join(errs...)
}

// ReconcileBranch reconciles the proposal of one proposal branch (a
// webhook named it). Other branches are ignored.
func (s *Service) ReconcileBranch(ctx context.Context, branch string) error {
	id, ok := strings.CutPrefix(branch, ProposalBranchPrefix)
	if !ok || !ValidRequestID(id) || s.o.Forge == nil {
		return nil
	}
	var err error
	s.reviewOp(ctx, func(ctx context.Context) Response {
		if _, err = s.o.Repo.FetchAll(ctx); err != nil {
			return Response{}
		}
		var prop *proposal
		var found bool
		if prop, found, err = loadProposal(s.o.Repo, id, s.trustRecord); err != nil || !found || !prop.open() {
			return Response{}
		}
		err = s.reconcile(ctx, prop)
		return Response{}
	})
	return err
}

func (s *Service) reconcile(ctx context.Context, prop *proposal) error {
	log := s.requestLogger(prop.Doc.Request).With("proposal", prop.ID, "reconcile", true)
	if prop.Forge == nil {
		if err := s.openOnForge(ctx, log, prop); err != nil {
			return err
		}
	}
	if s.o.Now().After(prop.Doc.Expires) {
		return s.closeProposal(ctx, log, prop, eventClosed, fmt.Sprintf("expired: not enough approvals by %s", prop.Doc.Expires.UTC().Format(time.RFC3339)), Request{})
	}
	fctx, cancel := context.WithTimeout(ctx, forgeTimeout)
	st, err := s.o.Forge.Status(fctx, *prop.Forge)
	cancel()
	if err != nil {
		return err
	}
	if ended, err := s.forgeEnded(ctx, log, prop, st); ended {
		return err
	}
	tip, err := s.o.Repo.Head()
	if err != nil {
		return err
	}
	if tip.Hash() != s.parentOf(prop.Head) {
		// The branch moved: approvals stand only while the diff is the same.
		p, err := s.planOf(ctx, prop, tip)
		if err != nil {
			return s.closeProposal(ctx, log, prop, eventClosed, "the change no longer applies: "+userMessage(err), Request{})
		}
		if digest(p.Diff) != prop.Digest {
			if resp := s.rebase(ctx, log, prop, p, tip); resp.Outcome == OutcomeFailed {
				return errors.New(resp.Text)
			}
			return nil
		}
	}
	resp := s.advance(ctx, log, prop, Request{}, "")
	if resp.Outcome == OutcomeFailed {
		return errors.New(resp.Text)
	}
	return nil
}
