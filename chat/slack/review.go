package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"strings"

	slackgo "github.com/slack-go/slack"

	"github.com/shipbot/shipbot/gitops"
)

// The review flow in Slack. A change the policy says needs approvals is
// answered at Confirm with a proposal (gitops.OutcomeProposed): the
// request's message shows it, and Approve and Reject buttons are posted in
// the request's thread and, with Options.ReviewChannel, in the reviewers'
// channel. Anyone may press Approve: the click becomes an approve request
// of the clicker (their own identity, groups and channel), and the core
// decides whether it counts. Reject asks for a reason, typed as
// `/ship reject ID --why TEXT`. News from elsewhere arrives through
// ProposalUpdated, addressed by the request's Thread.

var _ gitops.Notifier = (*Adapter)(nil)

// ThreadPrefix starts every Request.Thread the Slack adapter writes:
// "slack:CHANNEL:TS" for a top-level message, "slack:CHANNEL:TS:THREAD_TS"
// for a message that is a reply in a thread.
const ThreadPrefix = "slack:"

// maxReviews bounds the proposals the adapter remembers.
const maxReviews = 10000

var (
	// channelIDRe is a Slack conversation id: public and private
	// channels, DMs.
	channelIDRe = regexp.MustCompile(`^[CDG][A-Z0-9]{2,20}$`)
	// tsRe is a Slack message timestamp.
	tsRe = regexp.MustCompile(`^[0-9]{9,10}\.[0-9]{6}$`)
	// requestIDRe is what a button's request id may look like
	// (gitops.NewRequestID).
	requestIDRe = regexp.MustCompile(`^shp-[a-z0-9]{1,32}$`)
)

// Errors of a Thread that can't be read back.
var (
	errForeignThread = errors.New("not a Slack thread")
	errBadThread     = errors.New("malformed Slack thread")
)

// threadLocator is the Request.Thread of a request whose message is ref.
func threadLocator(ref msgRef) string {
	s := ThreadPrefix + ref.channel + ":" + ref.ts
	if ref.thread != "" && ref.thread != ref.ts {
		s += ":" + ref.thread
	}
	return s
}

// parseThread reads a Request.Thread back. It comes back from git and the
// forge, so it is hostile: anything but exactly what threadLocator writes
// is refused.
func parseThread(s string) (msgRef, error) {
	if s == "" {
		return msgRef{}, errors.New("no thread recorded")
	}
	rest, ok := strings.CutPrefix(s, ThreadPrefix)
	if !ok {
		return msgRef{}, errForeignThread
	}
	if len(rest) > 64 {
		return msgRef{}, errBadThread
	}
	parts := strings.Split(rest, ":")
	if len(parts) < 2 || len(parts) > 3 || !channelIDRe.MatchString(parts[0]) || !tsRe.MatchString(parts[1]) {
		return msgRef{}, errBadThread
	}
	ref := msgRef{channel: parts[0], ts: parts[1]}
	if len(parts) == 3 {
		if !tsRe.MatchString(parts[2]) || parts[2] == parts[1] {
			return msgRef{}, errBadThread
		}
		ref.thread = parts[2]
	}
	return ref, nil
}

// review is a proposal this process showed: what its messages need to be
// drawn again and where they are. It is never changed once stored.
type review struct {
	id      string
	plan    *gitops.Plan // the plan confirmed
	who     string       // the requester, as a mention
	note    string       // "confirmed by <@U>"
	link    string       // where the proposal is reviewed (mrkdwn), e.g. the pull request
	request msgRef       // the request's message
	buttons []msgRef     // the messages with Approve and Reject
}

// proposed shows a proposal opened at Confirm: the request's message says
// so, and the Approve and Reject buttons go to the request's thread and the
// reviewers' channel.
func (a *Adapter) proposed(ctx context.Context, log *slog.Logger, p *pending, note string, resp gitops.Response) {
	plan := p.plan
	v := resp.Proposal
	if v == nil {
		// The core always describes the proposal; draw what is known.
		log.Warn("proposal without a view; showing the plan's summary only")
		v = &gitops.ProposalView{RequestID: plan.Request.ID, Summary: plan.Summary}
	}
	if v.RequestID == "" {
		c := *v
		c.RequestID = plan.Request.ID
		v = &c
	}
	summary := v.Summary
	if summary == "" {
		summary = plan.Summary
	}
	rv := &review{id: v.RequestID, plan: plan, who: "<@" + p.userID + ">", note: note, link: proposalLink(v), request: p.ref}
	a.update(ctx, log, p.ref, reviewMessage(a.reviewHead(rv, nil, "", "", ""), proposalStatus(v, a.o.Command), outcomeIcon(resp.Outcome), resp.Text))

	ref, err := a.postTo(ctx, p.ref.channel, p.ref.threadTS(), reviewRequestMessage(v, summary, rv.who, "", a.o.Command))
	if err != nil {
		log.Error("the review buttons could not be posted in the request's thread", "err", err)
	} else {
		rv.buttons = append(rv.buttons, ref)
	}
	if ch := a.o.ReviewChannel; ch != "" && ch != p.ref.channel {
		where := "in <#" + p.ref.channel + ">"
		if link := safeLink(a.permalink(ctx, log, p.ref), "the request's thread"); link != "" {
			where = "discuss in " + link
		}
		ref, err := a.postTo(ctx, ch, "", reviewRequestMessage(v, summary, rv.who, where, a.o.Command))
		if err != nil {
			log.Error("the review buttons could not be posted in the reviewers' channel", "review_channel", ch, "err", err)
		} else {
			rv.buttons = append(rv.buttons, ref)
		}
	}
	a.reviews.Put(rv.id, rv)
	log.Info("proposal open; review requested", "buttons", len(rv.buttons), "needed", v.Needed, "missing", v.Missing())
}

// handleReviewClick takes a press on Approve or Reject.
func (a *Adapter) handleReviewClick(c click) {
	ctx, cancel := context.WithTimeout(a.base, a.o.WorkTimeout)
	defer cancel()
	log := a.log.With("request", c.value, "slack_user", c.user, "slack_channel", c.channel, "answer", c.actionID)
	if !requestIDRe.MatchString(c.value) {
		log.Warn("review click without a request id")
		a.ephemeral(ctx, log, c.channel, c.user, mrkdwnMessage("These buttons don't belong to a request shipbot knows."))
		return
	}
	if c.actionID == actionReject {
		// A rejection needs a reason, typed where everyone sees it; the
		// command goes through the same checks as any other.
		a.ephemeral(ctx, log, c.channel, c.user, mrkdwnMessage(fmt.Sprintf(
			"To reject request `%s`, say why: `%s reject %s --why REASON` (here, or in any channel shipbot is in). The requester sees the reason, and it is recorded with the proposal.",
			c.value, escape(a.o.Command), c.value)))
		return
	}

	// The approval is a request of its own, by the clicker: its id derives
	// from the click, so a redelivered click maps to the same approval.
	id := gitops.NewRequestID("slack", c.team, c.channel, c.messageTS, c.user, c.actionID, c.actionTS)
	log = log.With("approval", id)
	action := string(gitops.ActionApprove)
	ident, err := a.o.Directory.Resolve(ctx, c.user)
	if err != nil {
		text, outcome := a.refusal(log, c.value, gitops.ActionApprove, "identity", err)
		a.o.Metrics.Request(action, string(outcome))
		a.ephemeral(ctx, log, c.channel, c.user, textMessage(text))
		return
	}
	channel, err := a.o.Directory.ChannelName(ctx, c.channel)
	if err != nil {
		text, outcome := a.refusal(log, c.value, gitops.ActionApprove, "channel", err)
		a.o.Metrics.Request(action, string(outcome))
		a.ephemeral(ctx, log, c.channel, c.user, textMessage(text))
		return
	}
	log = log.With("user", ident.Subject, "groups", ident.Groups, "channel", channel)
	resp := a.o.Core.Handle(ctx, gitops.Request{
		ID: id, Action: gitops.ActionApprove, Proposal: c.value,
		User: ident.Subject, Channel: channel, Groups: ident.Groups, GroupsUnknown: ident.GroupsUnknown,
		At: a.o.Now(),
	})
	a.o.Metrics.Request(action, string(resp.Outcome))
	switch resp.Outcome {
	case gitops.OutcomeApproved:
		log.Info("approval recorded")
		a.ephemeral(ctx, log, c.channel, c.user, textMessage(resp.Text))
		a.proposalChanged(ctx, log, resp, &msgRef{channel: c.channel, ts: c.messageTS})
	case gitops.OutcomeCommitted:
		log.Info("last approval recorded; the change merged", "commit", resp.Commit)
		a.proposalChanged(ctx, log, resp, &msgRef{channel: c.channel, ts: c.messageTS})
	default:
		// Not counted (the requester, no approve right, outside the review
		// group, already merged...): the clicker alone is told why, and
		// the buttons stay for the others.
		if resp.Outcome == gitops.OutcomeDenied {
			a.o.Metrics.Denied("policy")
		}
		log.Info("approval not counted", "outcome", string(resp.Outcome))
		a.ephemeral(ctx, log, c.channel, c.user, textMessage(resp.Text))
	}
}

// proposalChanged shows the core's answer to an approval on the
// proposal's own messages: the approvals so far, or the merge (buttons
// removed, then the change followed through Argo CD). clicked is the
// message whose button was pressed, if any.
func (a *Adapter) proposalChanged(ctx context.Context, log *slog.Logger, resp gitops.Response, clicked *msgRef) {
	v := resp.Proposal
	if v == nil || (resp.Outcome != gitops.OutcomeApproved && resp.Outcome != gitops.OutcomeCommitted) {
		return
	}
	ref, rv, ok := a.requestMessage(log, v.RequestID, v.Thread)
	head := a.reviewHead(rv, resp.Plan, v.RequestID, v.Summary, v.Requester)
	status := proposalStatus(v, a.o.Command)
	if resp.Outcome == gitops.OutcomeApproved {
		if ok {
			a.update(ctx, log, ref, reviewMessage(head, status, outcomeIcon(resp.Outcome), resp.Text))
		}
		return
	}
	a.firstMerge(v.RequestID, resp.Commit)
	if ok {
		a.update(ctx, log, ref, reviewMessage(head, status, outcomeIcon(resp.Outcome), resp.Text))
	}
	a.closeReview(ctx, log, v.RequestID, summaryOf(v.Summary, rv, resp.Plan), rv, clicked, ":white_check_mark:", "merged")
	if ok && resp.Plan != nil && resp.Commit != "" {
		a.watchMerged(ctx, log, ref, resp, func(icon, text string) message { return reviewMessage(head, status, icon, text) })
	}
}

// ProposalUpdated shows news about a proposal (an approval given on the
// forge or in another channel, approvals reset, a failing check, the
// merge, the closing) in the request's message and thread. u.Thread must
// be a thread this adapter wrote (see ThreadPrefix); anything else is
// logged and ignored. When the change merged, it is followed through Argo
// CD as after a Confirm, after ProposalUpdated returned.
func (a *Adapter) ProposalUpdated(ctx context.Context, u gitops.ProposalUpdate) {
	log := a.log.With("request", cutLine(u.RequestID, 64), "update", string(u.Outcome))
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic delivering a proposal update", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	ref, rv, ok := a.requestMessage(log, u.RequestID, u.Thread)
	if !ok {
		return
	}
	if u.Outcome == gitops.OutcomeCommitted && !a.firstMerge(u.RequestID, u.Commit) {
		// This process showed the merge already (the last approval was
		// a click here): showing it again would hide the watch's outcome.
		log.Info("merge already shown; update ignored", "commit", u.Commit)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, a.o.WorkTimeout)
	defer cancel()
	head := a.reviewHead(rv, u.Plan, u.RequestID, "", "")
	status := "" // the news say where things stand; the link stays
	if rv != nil {
		status = rv.link
	}
	// chat.update only succeeds on a message shipbot posted itself: a
	// Thread that passed parsing but names someone else's message (or one
	// that is gone) gets nothing posted in its thread either.
	if err := a.update(ctx, log, ref, reviewMessage(head, status, outcomeIcon(u.Outcome), u.Text)); err != nil {
		log.Warn("proposal update not delivered: the request's message could not be updated", "err", err)
		return
	}
	if _, err := a.postTo(ctx, ref.channel, ref.threadTS(), textMessage(u.Text)); err != nil {
		log.Error("proposal update not posted in the request's thread", "err", err)
	}
	switch u.Outcome {
	case gitops.OutcomeCommitted:
		a.closeReview(ctx, log, u.RequestID, summaryOf("", rv, u.Plan), rv, nil, ":white_check_mark:", "merged")
	case gitops.OutcomeRejected, gitops.OutcomeCancelled:
		a.closeReview(ctx, log, u.RequestID, summaryOf("", rv, u.Plan), rv, nil, ":no_entry_sign:", "closed without merging")
	}
	log.Info("proposal update delivered")
	if u.Outcome != gitops.OutcomeCommitted || u.Plan == nil || u.Commit == "" {
		return
	}
	committed := gitops.Response{Outcome: u.Outcome, Text: u.Text, Plan: u.Plan, Commit: u.Commit}
	render := func(icon, text string) message { return reviewMessage(head, status, icon, text) }
	// The watch takes minutes: it runs as work of the adapter (Shutdown
	// waits for it), not in the caller's goroutine.
	if !a.work.Intake(func() {
		wctx, cancel := context.WithTimeout(a.base, a.o.WorkTimeout)
		defer cancel()
		a.watchMerged(wctx, log, ref, committed, render)
	}) {
		log.Warn("merged change not watched: shutting down")
	}
}

// requestMessage finds the message of request id from the Thread the core
// recorded, checked against what this process remembers of it.
func (a *Adapter) requestMessage(log *slog.Logger, id, thread string) (msgRef, *review, bool) {
	rv, _ := a.reviews.Get(id)
	ref, err := parseThread(thread)
	if err != nil {
		log.Warn("proposal's thread ignored: not one shipbot's Slack adapter wrote", "err", err, "thread_len", len(thread))
		return msgRef{}, rv, false
	}
	if rv != nil && (rv.request.channel != ref.channel || rv.request.ts != ref.ts) {
		log.Warn("proposal's thread ignored: it is not the request's message", "slack_channel", ref.channel, "ts", ref.ts)
		return msgRef{}, rv, false
	}
	return ref, rv, true
}

// reviewHead draws the request at the top of its message: the plan when
// known (this process showed it, or the core sent it with a merge), else
// the id, summary and requester.
func (a *Adapter) reviewHead(rv *review, plan *gitops.Plan, id, summary, requester string) []slackgo.Block {
	switch {
	case rv != nil && rv.plan != nil:
		blocks := planBlocksBy(rv.plan, rv.who, a.o.MaxDiffLines)
		if rv.note != "" {
			blocks = append(blocks, contextBlock(rv.note))
		}
		return blocks
	case plan != nil:
		return planBlocksBy(plan, escape(plan.Request.User), a.o.MaxDiffLines)
	}
	head := fmt.Sprintf("*`[%s]`", escape(cutLine(gitops.OneLine(id), 64)))
	if summary != "" {
		head += " " + escape(gitops.OneLine(summary))
	}
	head += "*"
	if requester != "" {
		head += "\nrequested by " + escape(gitops.OneLine(requester))
	}
	return []slackgo.Block{section(cutLine(head, maxSectionBytes))}
}

func summaryOf(summary string, rv *review, plan *gitops.Plan) string {
	switch {
	case summary != "":
		return summary
	case rv != nil && rv.plan != nil:
		return rv.plan.Summary
	case plan != nil:
		return plan.Summary
	}
	return ""
}

// closeReview removes the buttons of a proposal that merged or closed,
// from every message this process knows them in.
func (a *Adapter) closeReview(ctx context.Context, log *slog.Logger, id, summary string, rv *review, clicked *msgRef, icon, what string) {
	var refs []msgRef
	if rv != nil {
		refs = append(refs, rv.buttons...)
	}
	if clicked != nil && clicked.channel != "" && clicked.ts != "" {
		known := false
		for _, r := range refs {
			known = known || (r.channel == clicked.channel && r.ts == clicked.ts)
		}
		if !known {
			refs = append(refs, *clicked)
		}
	}
	for _, r := range refs {
		a.update(ctx, log, r, reviewClosedMessage(id, summary, icon, what))
	}
	a.reviews.Delete(id)
}

// watchMerged follows a merged proposal through Argo CD, once per commit
// however many ways the merge was reported (the click, the Notifier).
func (a *Adapter) watchMerged(ctx context.Context, log *slog.Logger, ref msgRef, committed gitops.Response, render func(icon, text string) message) {
	w, ok := a.o.Core.(Watcher)
	if !ok || !w.Watches() || committed.Plan == nil || committed.Commit == "" {
		return
	}
	if !a.seen.Add("watch:"+committed.Commit, struct{}{}) {
		log.Info("merged change already being watched", "commit", committed.Commit)
		return
	}
	a.watch(ctx, log, ref, committed.Plan, w, committed, render)
}

// firstMerge records that the merge of request id as commit was shown and
// reports whether it was the first time.
func (a *Adapter) firstMerge(id, commit string) bool {
	return a.seen.Add("merged:"+id+":"+commit, struct{}{})
}

// postTo posts m in channel, in thread when thread is set.
func (a *Adapter) postTo(ctx context.Context, channel, thread string, m message) (msgRef, error) {
	opts := m.options()
	if thread != "" {
		opts = append(opts, slackgo.MsgOptionTS(thread))
	}
	ch, ts, err := a.api.PostMessageContext(ctx, channel, opts...)
	if err != nil {
		return msgRef{}, fmt.Errorf("chat.postMessage: %w", err)
	}
	return msgRef{channel: ch, ts: ts, thread: thread}, nil
}

// permalink links a message; "" when Slack can't say.
func (a *Adapter) permalink(ctx context.Context, log *slog.Logger, ref msgRef) string {
	link, err := a.api.GetPermalinkContext(ctx, &slackgo.PermalinkParameters{Channel: ref.channel, Ts: ref.ts})
	if err != nil {
		log.Warn("no permalink for the request's message", "err", err)
		return ""
	}
	return link
}
