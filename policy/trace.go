package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shipbot/shipbot/gitops"
)

// TicketTracer is a gitops.Tracer that writes what shipbot did onto the
// justification's source, dispatching on Justification.Kind:
//
//   - pagerduty-incident: a note on the incident (POST /incidents/{id}/notes,
//     From: PagerDutyOptions.FromEmail);
//   - jira-issue: a comment on the issue (POST /rest/api/2/issue/{key}/comment),
//     only for issues of JiraOptions.Projects;
//   - opsgenie-alert: a note on the alert (POST /v2/alerts/{id}/notes).
//
// The text reads e.g. "shipbot: alice rolled back checkout in prod (1.4.2 ->
// 1.4.1), commit 0123456789ab, outcome committed, request shp-7k3q9x2m4a".
// Every value taken from the event is data: normalised to one line, capped,
// and for Jira escaped so that wiki markup (links, mentions, macros) is shown
// as typed. A justification of kind "text" or without a kind has nothing to
// trace onto: Trace returns nil. A kind whose service is not configured gives
// an error wrapping ErrNotConfigured. Every call is bounded by
// LiveOptions.Timeout; failures are *gitops.UserError as for the checks.
//
// A TicketTracer is safe for concurrent use.
type TicketTracer struct {
	l *liveClients
}

var _ gitops.Tracer = (*TicketTracer)(nil)

// NewTicketTracer validates o (see LiveOptions.Validate) and builds the
// tracer. At least one service must be configured, and PagerDuty notes need
// PagerDutyOptions.FromEmail.
func NewTicketTracer(o LiveOptions) (*TicketTracer, error) {
	l, err := o.build()
	if err != nil {
		return nil, err
	}
	if l.pd == nil && l.jira == nil && l.og == nil {
		return nil, errors.New("traces: no service configured: set pagerduty, jira or opsgenie")
	}
	if l.pd != nil && l.pd.from == "" {
		return nil, errors.New("pagerduty.fromEmail: required to add incident notes: the email of a PagerDuty user, which PagerDuty requires as the From header")
	}
	return &TicketTracer{l: l}, nil
}

// Trace implements gitops.Tracer.
func (t *TicketTracer) Trace(ctx context.Context, j gitops.Justification, e gitops.TraceEvent) error {
	switch j.Kind {
	case "", KindText:
		return nil
	case KindPagerDuty:
		if t.l.pd == nil {
			return fmt.Errorf("no note on PagerDuty incident %s: PagerDuty is %w", display(j.Ref), ErrNotConfigured)
		}
		return t.l.pd.note(ctx, j.Ref, traceText(e, plainText))
	case KindJira:
		if t.l.jira == nil {
			return fmt.Errorf("no comment on Jira issue %s: Jira is %w", display(j.Ref), ErrNotConfigured)
		}
		return t.l.jira.comment(ctx, j.Ref, traceText(e, wikiEscape))
	case KindOpsgenie:
		if t.l.og == nil {
			return fmt.Errorf("no note on Opsgenie alert %s: Opsgenie is %w", display(j.Ref), ErrNotConfigured)
		}
		return t.l.og.note(ctx, j.Ref, traceText(e, plainText))
	}
	return fmt.Errorf("trace: unknown justification kind %q", display(j.Kind))
}

func plainText(s string) string { return s }

// pastTense is how a committed action reads in a trace.
var pastTense = map[gitops.Action]string{
	gitops.ActionRollback: "rolled back",
	gitops.ActionRestart:  "restarted",
	gitops.ActionPromote:  "promoted",
}

// traceText renders an event as one line; esc escapes each value for the
// target's markup.
func traceText(e gitops.TraceEvent, esc func(string) string) string {
	val := func(s string, max int) string { return esc(normalize(s, max)) }
	req := e.Request
	user := val(req.User, 64)
	if user == "" {
		user = "someone"
	}
	action := gitops.Action(normalize(string(req.Action), 32))

	// What was done: from the summary "<action> <what>[: <from> -> <to>]",
	// else from the request.
	what, from, to := "", "", ""
	summary := normalize(e.Summary, 300)
	if rest, ok := strings.CutPrefix(summary, string(action)+" "); ok && action != "" {
		what = rest
		if i := strings.LastIndex(rest, ": "); i >= 0 {
			if f, t, ok := strings.Cut(rest[i+2:], " -> "); ok && f != "" && t != "" && !strings.Contains(t, " -> ") {
				what, from, to = rest[:i], f, t
			}
		}
	} else if summary == "" {
		what = fmt.Sprintf("%s in %s", normalize(req.App, 64), normalize(req.Env, 64))
	}

	var b strings.Builder
	b.WriteString("shipbot: ")
	b.WriteString(user)
	switch {
	case what == "":
		b.WriteString(": " + val(summary, 300))
	case e.Outcome == gitops.OutcomeCommitted && pastTense[action] != "":
		b.WriteString(" " + pastTense[action] + " " + val(what, 200))
	default:
		b.WriteString(" asked to " + esc(string(action)) + " " + val(what, 200))
	}
	if from != "" {
		b.WriteString(" (" + val(from, 64) + " -> " + val(to, 64) + ")")
	}
	if c := normalize(e.Commit, 64); c != "" {
		if len(c) > 12 && isHexString(c) {
			c = c[:12]
		}
		b.WriteString(", commit " + esc(c))
	}
	if o := normalize(string(e.Outcome), 32); o != "" {
		b.WriteString(", outcome " + esc(o))
	}
	if id := normalize(req.ID, 64); id != "" {
		b.WriteString(", request " + esc(id))
	}
	return b.String()
}

func isHexString(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}
