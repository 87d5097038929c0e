package slack

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"

	"github.com/shipbot/shipbot/gitops"
)

// Slack's limits (https://api.slack.com/reference/block-kit/blocks): a
// section's text is at most 3000 characters, a message at most 50 blocks.
// shipbot keeps well inside them and counts bytes, which are never fewer
// than characters.
const (
	maxSectionBytes = 2900
	maxTextSections = 20
	maxFallback     = 300
	defaultMaxDiff  = 40

	actionConfirm = "shipbot_confirm"
	actionCancel  = "shipbot_cancel"
	blockActions  = "shipbot_answer"

	// A proposal's buttons: anyone may press them, the core decides.
	actionApprove = "shipbot_approve"
	actionReject  = "shipbot_reject"
	blockReview   = "shipbot_review"

	// maxNames bounds the approvers a proposal's status lists.
	maxNames = 10
)

// escaper turns text into Slack mrkdwn that shows exactly that text: no
// @channel, user mention or link can be smuggled in by chat input or repo
// content.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escape(s string) string { return escaper.Replace(s) }

// unescaper undoes Slack's encoding of message text (one pass, so "&amp;lt;"
// becomes "&lt;", not "<").
var unescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// cutLine shortens one line to at most n bytes on a rune boundary.
func cutLine(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:max(n, 0)] + "…"
}

// cutLines keeps whole lines of s while there are at most maxLines of them
// and they fit in maxBytes; it returns them and how many lines it dropped.
func cutLines(s string, maxLines, maxBytes int) (string, int) {
	lines := strings.Split(s, "\n")
	var b strings.Builder
	kept := 0
	for _, l := range lines {
		l = cutLine(l, maxBytes)
		extra := len(l)
		if kept > 0 {
			extra++
		}
		if kept == maxLines || b.Len()+extra > maxBytes {
			break
		}
		if kept > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
		kept++
	}
	return b.String(), len(lines) - kept
}

// diffText renders a diff as a code block of at most maxLines lines; a
// longer diff ends with "… N more lines".
func diffText(diff string, maxLines int) string {
	diff = strings.TrimRight(diff, "\n")
	if diff == "" {
		return "_(no diff)_"
	}
	const frame = len("```\n\n```") + len("\n… 1000000 more lines")
	kept, more := cutLines(escape(diff), maxLines, maxSectionBytes-frame)
	if more > 0 {
		kept += fmt.Sprintf("\n… %d more lines", more)
	}
	return "```\n" + kept + "\n```"
}

// textSections splits a reply into mrkdwn sections that each fit Slack's
// limit, at line boundaries, closing and reopening a ``` block that spans
// two sections. Past maxTextSections it ends with "… N more lines".
func textSections(text string) []string {
	lines := strings.Split(escape(strings.TrimRight(text, "\n")), "\n")
	var out []string
	var b strings.Builder
	inCode := false
	// Room for a closing fence, an opening one and the "more" note.
	budget := maxSectionBytes - len("\n```") - len("```\n") - len("\n… 1000000 more lines")
	flush := func() {
		if inCode {
			b.WriteString("\n```")
		}
		out = append(out, b.String())
		b.Reset()
		if inCode {
			b.WriteString("```\n")
		}
	}
	for i, l := range lines {
		l = cutLine(l, budget)
		if b.Len() > 0 && b.Len()+1+len(l) > budget {
			if len(out) == maxTextSections-1 {
				if inCode {
					b.WriteString("\n```")
				}
				fmt.Fprintf(&b, "\n… %d more lines", len(lines)-i)
				return append(out, b.String())
			}
			flush()
		}
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "```\n") {
			b.WriteByte('\n')
		}
		b.WriteString(l)
		if strings.Count(l, "```")%2 == 1 {
			inCode = !inCode
		}
	}
	if b.Len() > 0 || len(out) == 0 {
		out = append(out, b.String())
	}
	return out
}

func section(text string) slackgo.Block {
	return slackgo.NewSectionBlock(slackgo.NewTextBlockObject(slackgo.MarkdownType, text, false, false), nil, nil)
}

func contextBlock(text string) slackgo.Block {
	return slackgo.NewContextBlock("", slackgo.NewTextBlockObject(slackgo.MarkdownType, text, false, false))
}

// fallback is the plain notification text of a message with blocks.
func fallback(s string) string {
	s = gitops.OneLine(s)
	return escape(cutLine(s, maxFallback))
}

// message is one rendered chat message: blocks and the notification text.
type message struct {
	text   string
	blocks []slackgo.Block
}

func (m message) options() []slackgo.MsgOption {
	return []slackgo.MsgOption{
		slackgo.MsgOptionText(m.text, false),
		slackgo.MsgOptionBlocks(m.blocks...),
		slackgo.MsgOptionDisableLinkUnfurl(),
		slackgo.MsgOptionDisableMediaUnfurl(),
	}
}

// mrkdwnMessage is a short message shipbot wrote itself in mrkdwn (with
// mentions); any untrusted part of it must already be escaped.
func mrkdwnMessage(mrkdwn string) message {
	return message{text: cutLine(gitops.OneLine(mrkdwn), maxFallback), blocks: []slackgo.Block{section(cutLine(mrkdwn, maxSectionBytes))}}
}

// textMessage renders a plain-text reply (status, history, errors): every
// character shows as itself, nothing is a mention or a link.
func textMessage(text string) message {
	m := message{text: fallback(firstLine(text))}
	for _, s := range textSections(text) {
		m.blocks = append(m.blocks, section(s))
	}
	return m
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// workingMessage is shown while shipbot computes a plan.
func workingMessage(id, userID string, req gitops.Request) message {
	what := describe(req)
	return message{
		text: fallback(fmt.Sprintf("[%s] %s: working on it", id, what)),
		blocks: []slackgo.Block{
			section(fmt.Sprintf(":hourglass_flowing_sand: `[%s]` <@%s> asked: `%s`: working on it…", id, userID, escape(what))),
		},
	}
}

// describe is a request in a few safe words (parsed names only, no --why).
func describe(req gitops.Request) string {
	parts := []string{string(req.Action), req.App}
	switch {
	case req.Action == gitops.ActionPromote:
		parts = append(parts, req.FromEnv, "to", req.Env)
	case req.Env != "":
		parts = append(parts, req.Env)
	}
	if req.Tag != "" {
		parts = append(parts, "to", req.Tag)
	}
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

// planBlocks are the parts of a plan message that stay through its life:
// summary, who and why, the diff.
func planBlocks(p *gitops.Plan, userID string, maxDiff int) []slackgo.Block {
	return planBlocksBy(p, "<@"+userID+">", maxDiff)
}

// planBlocksBy is planBlocks with the requester as mrkdwn that is safe
// already: a mention, or an escaped policy subject when the Slack user is
// not known (a proposal shown again after a restart).
func planBlocksBy(p *gitops.Plan, who string, maxDiff int) []slackgo.Block {
	head := fmt.Sprintf("*`[%s]` %s*\nrequested by %s", escape(p.Request.ID), escape(p.Summary), who)
	if why := p.Justification.Text; why != "" {
		head += "\nwhy: " + escape(why)
	}
	if r := p.Review; r.Approvals > 0 {
		from := "anyone the policy lets approve"
		if r.Group != "" && r.Group != "*" {
			from = r.Group
		}
		head += fmt.Sprintf("\n:busts_in_silhouette: *needs review:* %d approval%s from %s (the requester does not count); Confirm opens a proposal, it merges once approved", r.Approvals, map[bool]string{true: "", false: "s"}[r.Approvals == 1], escape(from))
	}
	for _, w := range p.Warnings {
		head += "\n:warning: *" + escape(w) + "*"
	}
	for _, n := range p.Notes {
		head += "\n" + escape(n)
	}
	blocks := []slackgo.Block{section(head), section(diffText(p.Diff, maxDiff))}
	if p.Checked != "" {
		blocks = append(blocks, contextBlock(escape(p.Checked)))
	}
	return blocks
}

// planMessage asks the requester to confirm or cancel.
// value is what the buttons carry (the request id, or a confirmation
// token from which any replica can act on the answer).
func planMessage(p *gitops.Plan, userID, timeout, value string, maxDiff int) message {
	blocks := planBlocks(p, userID, maxDiff)
	note := fmt.Sprintf("Only <@%s> can confirm. Nothing is written before Confirm; this plan is cancelled after %s.", userID, timeout)
	if p.Environment.Protected {
		note = fmt.Sprintf("*%s is protected.* ", escape(p.Environment.Name)) + note
	}
	confirm := slackgo.NewButtonBlockElement(actionConfirm, value, slackgo.NewTextBlockObject(slackgo.PlainTextType, "Confirm", false, false))
	confirm.Style = slackgo.StylePrimary
	if p.Confirmation != "" {
		// A plan that needs an explicit answer (a tag never deployed): the
		// button asks again in Slack's own confirmation dialog, whose
		// confirm text is that answer; the click counts as typing it.
		confirm.Text = slackgo.NewTextBlockObject(slackgo.PlainTextType, "Deploy anyway…", false, false)
		confirm.Style = slackgo.StyleDanger
		confirm.Confirm = slackgo.NewConfirmationBlockObject(
			slackgo.NewTextBlockObject(slackgo.PlainTextType, "Deploy a tag never deployed?", false, false),
			slackgo.NewTextBlockObject(slackgo.MarkdownType, escape(p.To)+" is not in the repo's history of "+escape(p.Request.App)+" in any environment. Deploy it anyway?", false, false),
			slackgo.NewTextBlockObject(slackgo.PlainTextType, truncateRunes(p.Confirmation, 30), false, false),
			slackgo.NewTextBlockObject(slackgo.PlainTextType, "Cancel", false, false))
		note = "*" + escape(p.To) + " was never deployed:* Confirm asks once more. " + note
	}
	cancel := slackgo.NewButtonBlockElement(actionCancel, value, slackgo.NewTextBlockObject(slackgo.PlainTextType, "Cancel", false, false))
	cancel.Style = slackgo.StyleDanger
	blocks = append(blocks, contextBlock(note), slackgo.NewActionBlock(blockActions, confirm, cancel))
	return message{text: fallback(fmt.Sprintf("[%s] %s: confirm or cancel", p.Request.ID, p.Summary)), blocks: blocks}
}

// progressMessage replaces the buttons once an answer is being acted on;
// note is mrkdwn, status the same in plain words for notifications.
func progressMessage(p *gitops.Plan, userID, note, status string, maxDiff int) message {
	blocks := append(planBlocks(p, userID, maxDiff), contextBlock(note))
	return message{text: fallback(fmt.Sprintf("[%s] %s: %s", p.Request.ID, p.Summary, status)), blocks: blocks}
}

// resultMessage shows the plan and what became of it.
func resultMessage(p *gitops.Plan, userID, icon, note, result string, maxDiff int) message {
	blocks := planBlocks(p, userID, maxDiff)
	if note != "" {
		blocks = append(blocks, contextBlock(note))
	}
	secs := textSections(result)
	if len(secs) > 0 {
		secs[0] = icon + " " + secs[0]
	}
	for _, s := range secs {
		blocks = append(blocks, section(s))
	}
	return message{text: fallback(firstLine(result)), blocks: blocks}
}

// safeLink is a mrkdwn link to raw labelled label, or "" when raw is not a
// plain http(s) URL: a forge's or Slack's URL is shown, never trusted to
// carry mrkdwn of its own.
func safeLink(raw, label string) string {
	if raw == "" || len(raw) > 2000 || strings.ContainsAny(raw, "|<> \t\r\n") {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return ""
	}
	return "<" + escape(raw) + "|" + escape(label) + ">"
}

// names lists escaped names, at most maxNames of them.
func names(list []string) string {
	out := make([]string, 0, min(len(list), maxNames)+1)
	for i, n := range list {
		if i == maxNames {
			out = append(out, fmt.Sprintf("and %d more", len(list)-maxNames))
			break
		}
		out = append(out, escape(cutLine(gitops.OneLine(n), 80)))
	}
	return strings.Join(out, ", ")
}

// proposalStatus is a proposal's state in mrkdwn: where to review it,
// approvals so far, how many are missing, who may still approve.
func proposalStatus(v *gitops.ProposalView, command string) string {
	var lines []string
	if l := proposalLink(v); l != "" {
		lines = append(lines, l)
	}
	approved := fmt.Sprintf("approvals: %d of %d from %s", len(v.Approvals), v.Needed, approversFrom(v))
	if len(v.Approvals) > 0 {
		var who []string
		for _, ap := range v.Approvals {
			w := ap.User
			if len(ap.Where) > 0 {
				w += " (" + strings.Join(ap.Where, ", ") + ")"
			}
			who = append(who, w)
		}
		approved += ": " + names(who)
	}
	lines = append(lines, approved)
	if m := v.Missing(); m > 0 {
		missing := fmt.Sprintf("*%d missing*", m)
		if len(v.Approvers) > 0 {
			missing += "; may approve: " + names(v.Approvers)
		}
		lines = append(lines, missing+fmt.Sprintf(" (the requester doesn't count; `%s approve %s`)", escape(command), escape(v.RequestID)))
	}
	if v.Blocked != "" {
		lines = append(lines, "blocked: "+escape(cutLine(gitops.OneLine(v.Blocked), 300)))
	}
	return cutLine(strings.Join(lines, "\n"), maxSectionBytes)
}

// proposalLink is where a proposal is reviewed, in mrkdwn ("" = nowhere
// to show).
func proposalLink(v *gitops.ProposalView) string {
	if link := safeLink(v.URL, "the pull request"); link != "" {
		return "review: " + link
	}
	if v.Via != "" {
		return "proposal: `" + escape(cutLine(gitops.OneLine(v.Via), 200)) + "`"
	}
	return ""
}

// approversFrom says whose approvals count, in mrkdwn.
func approversFrom(v *gitops.ProposalView) string {
	if v.Group != "" && v.Group != "*" {
		return "group " + escape(cutLine(gitops.OneLine(v.Group), 80))
	}
	return "anyone the policy lets approve"
}

// reviewMessage is a request's message while its change is under review
// and after: the request (head), the proposal's status (mrkdwn, may be
// ""), and the latest news as plain text with an icon.
func reviewMessage(head []slackgo.Block, status, icon, result string) message {
	blocks := append([]slackgo.Block(nil), head...)
	if status != "" {
		blocks = append(blocks, contextBlock(status))
	}
	secs := textSections(result)
	if len(secs) > 0 {
		secs[0] = icon + " " + secs[0]
	}
	for _, s := range secs {
		blocks = append(blocks, section(s))
	}
	return message{text: fallback(firstLine(result)), blocks: blocks}
}

// reviewRequestMessage asks for approvals: the proposal, its status and
// the Approve and Reject buttons (value: the request id). where (mrkdwn,
// may be "") links the request's thread from the reviewers' channel.
func reviewRequestMessage(v *gitops.ProposalView, summary, who, where, command string) message {
	id := escape(v.RequestID)
	head := fmt.Sprintf(":mag: *Review requested:* `[%s]` %s\nrequested by %s", id, escape(summary), who)
	if where != "" {
		head += "\n" + where
	}
	approve := slackgo.NewButtonBlockElement(actionApprove, v.RequestID, slackgo.NewTextBlockObject(slackgo.PlainTextType, "Approve", false, false))
	approve.Style = slackgo.StylePrimary
	reject := slackgo.NewButtonBlockElement(actionReject, v.RequestID, slackgo.NewTextBlockObject(slackgo.PlainTextType, "Reject", false, false))
	reject.Style = slackgo.StyleDanger
	// What stays true while the buttons are shown; the approvals so far
	// are in the request's message.
	needs := fmt.Sprintf("needs %d approval(s) from %s", v.Needed, approversFrom(v))
	if len(v.Approvers) > 0 {
		needs += "; may approve: " + names(v.Approvers)
	}
	if l := proposalLink(v); l != "" {
		needs = l + "\n" + needs
	}
	note := fmt.Sprintf("The policy decides whose approval counts; the requester's never does. To reject, say why: `%s reject %s --why REASON`.", escape(command), id)
	return message{
		text: fallback(fmt.Sprintf("[%s] %s: review requested", v.RequestID, summary)),
		blocks: []slackgo.Block{
			section(cutLine(head, maxSectionBytes)), contextBlock(cutLine(needs, maxSectionBytes)), contextBlock(note),
			slackgo.NewActionBlock(blockReview, approve, reject),
		},
	}
}

// reviewClosedMessage replaces a review request once the proposal merged
// or closed: no buttons left.
func reviewClosedMessage(id, summary, icon, what string) message {
	line := fmt.Sprintf("%s `[%s]` %s: %s; the review is closed.", icon, escape(id), escape(summary), escape(what))
	return message{text: fallback(fmt.Sprintf("[%s] %s: %s", id, summary, what)), blocks: []slackgo.Block{section(cutLine(line, maxSectionBytes))}}
}

// outcomeIcon is the icon of a proposal's news.
func outcomeIcon(o gitops.Outcome) string {
	switch o {
	case gitops.OutcomeCommitted, gitops.OutcomeHealthy:
		return ":white_check_mark:"
	case gitops.OutcomeProposed, gitops.OutcomeApproved:
		return ":eyes:"
	case gitops.OutcomeRejected, gitops.OutcomeCancelled:
		return ":no_entry_sign:"
	case gitops.OutcomeDenied:
		return ":no_entry:"
	case gitops.OutcomeFailed, gitops.OutcomeDegraded:
		return ":x:"
	case gitops.OutcomeUnknown:
		return ":warning:"
	}
	return ":information_source:"
}

// truncateRunes cuts s to at most n runes (Slack limits button texts).
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
