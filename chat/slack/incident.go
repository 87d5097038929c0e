package slack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	slackgo "github.com/slack-go/slack"

	"github.com/shipbot/shipbot/chat/alert"
	"github.com/shipbot/shipbot/gitops"
)

// actionIncidentRollback is the Rollback button of an incident message:
// whoever presses it asks for the rollback as if they had typed it, in the
// incident message's thread (policy, justification, diff and their own
// confirmation, as always).
const actionIncidentRollback = "shipbot_incident_rollback"

// ChangeReader is what an incident message shows about the app: what
// changed for it in the environment (*gitops.Service).
type ChangeReader interface {
	RecentChanges(ctx context.Context, app, env string, limit int) (string, error)
}

var _ ChangeReader = (*gitops.Service)(nil)

// Incidents posts one message per incident of chat/alert in a channel —
// the alert, what changed for the app, a Rollback button — updates it in
// place as alerts join, and marks it resolved: an alert.Sink.
type Incidents struct {
	a       *Adapter
	channel string
	changes ChangeReader
	limit   int
}

var _ alert.Sink = (*Incidents)(nil)

// Incidents returns the alert.Sink that posts incidents in channel (an id).
func (a *Adapter) Incidents(channel string, changes ChangeReader) *Incidents {
	return &Incidents{a: a, channel: channel, changes: changes, limit: 5}
}

// Open posts the incident's message; the ref is where it is.
func (n *Incidents) Open(ctx context.Context, inc alert.Incident) (string, error) {
	log := n.a.log.With("incident_app", inc.App, "incident_env", inc.Env)
	changed, err := n.changes.RecentChanges(ctx, inc.App, inc.Env, n.limit)
	if err != nil {
		log.Warn("incident: what changed could not be read", "err", err)
		changed = "shipbot could not read what changed (" + gitops.OneLine(err.Error()) + "); try `history " + inc.App + " " + inc.Env + "`."
	}
	ch, ts, err := n.a.api.PostMessageContext(ctx, n.channel, incidentMessage(inc, changed, true).options()...)
	if err != nil {
		return "", fmt.Errorf("post the incident message: %w", err)
	}
	log.Info("incident message posted", "channel", ch, "ts", ts)
	return ch + " " + ts + " " + changedRef(changed), nil
}

// The ref carries what changed as first read: the updates show the same.
func changedRef(s string) string { return url.QueryEscape(s) }

func parseRef(ref string) (channel, ts, changed string, err error) {
	parts := strings.SplitN(ref, " ", 3)
	if len(parts) != 3 {
		return "", "", "", errors.New("not an incident message ref")
	}
	changed, err = url.QueryUnescape(parts[2])
	return parts[0], parts[1], changed, err
}

// Update shows the incident as it is now (more alerts, a new title).
func (n *Incidents) Update(ctx context.Context, ref string, inc alert.Incident) error {
	return n.update(ctx, ref, inc, true)
}

// Resolve marks the message resolved and takes its button away.
func (n *Incidents) Resolve(ctx context.Context, ref string, inc alert.Incident) error {
	return n.update(ctx, ref, inc, false)
}

func (n *Incidents) update(ctx context.Context, ref string, inc alert.Incident, open bool) error {
	ch, ts, changed, err := parseRef(ref)
	if err != nil {
		return err
	}
	if _, _, _, err := n.a.api.UpdateMessageContext(ctx, ch, ts, incidentMessage(inc, changed, open).options()...); err != nil {
		return fmt.Errorf("update the incident message: %w", err)
	}
	return nil
}

// incidentMessage renders an incident. Everything the alert says is
// untrusted text: escaped, never a mention or a link but its URL.
func incidentMessage(inc alert.Incident, changed string, open bool) message {
	icon, state := ":rotating_light:", fmt.Sprintf("%d alert(s) firing", inc.Firing)
	if !open || inc.Status == alert.StatusResolved {
		icon, state, open = ":white_check_mark:", "resolved", false
	}
	title := inc.Title
	if title == "" {
		title = "alert"
	}
	head := fmt.Sprintf("%s *%s* — %s in %s, %s, since %s", icon, escape(cutLine(gitops.OneLine(title), 300)),
		escape(inc.App), escape(inc.Env), state, inc.OpenedAt.UTC().Format("15:04 MST"))
	if u := inc.Latest.URL; safeURL(u) {
		head += fmt.Sprintf(" (<%s|details>)", u)
	}
	blocks := []slackgo.Block{section(head)}
	for _, s := range textSections("What changed:\n" + changed) {
		blocks = append(blocks, section(s))
	}
	if open {
		btn := slackgo.NewButtonBlockElement(actionIncidentRollback, rollbackValue(inc),
			slackgo.NewTextBlockObject(slackgo.PlainTextType, "Rollback "+truncateRunes(inc.App, 30)+" in "+truncateRunes(inc.Env, 20)+"…", false, false))
		btn.Style = slackgo.StyleDanger
		blocks = append(blocks,
			contextBlock("Rollback plans the rollback to the version before the last change, with this incident as the justification: the policy decides, you see the diff and confirm it."),
			slackgo.NewActionBlock("shipbot_incident", btn))
	}
	return message{text: fallback(fmt.Sprintf("%s in %s: %s (%s)", inc.App, inc.Env, title, state)), blocks: blocks}
}

// safeURL is a link the message may show: http(s), no spaces or Slack
// link syntax.
func safeURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != "" && !strings.ContainsAny(u, " <>|\n\t\"'")
}

// rollbackValue is the command the Rollback button stands for: the app, the
// environment and the incident (its URL, else its title) as the reason.
func rollbackValue(inc alert.Incident) string {
	why := inc.Why
	if why == "" {
		why = inc.Latest.URL
	}
	if why == "" || (strings.Contains(why, "://") && !safeURL(why)) {
		why = "alert: " + inc.Title
	}
	cmd := "rollback " + inc.App + " " + inc.Env + " --why " + quoteWhy(why)
	return truncateRunes(cmd, maxButtonValue-10)
}

// quoteWhy makes untrusted text one double-quoted argument of the command
// language: quotes and backslashes dropped, one line, bounded.
func quoteWhy(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '"', '\\', '`':
			return -1
		}
		return r
	}, gitops.OneLine(s))
	return `"` + truncateRunes(s, 200) + `"`
}

// incidentRollback turns a press of an incident's Rollback button into the
// presser's own rollback request, answered in the incident's thread.
func (a *Adapter) incidentRollback(c click) {
	log := a.log.With("slack_user", c.user, "slack_channel", c.channel)
	if !strings.HasPrefix(c.value, "rollback ") {
		log.Warn("incident button with a value that is not a rollback", "value", cutLine(c.value, 80))
		return
	}
	log.Info("rollback asked from an incident message")
	// One request per incident message and user: a second press is the
	// same request (already planned or landed), not another rollback.
	a.handleMessage(inbound{kind: "mention", team: c.team, channel: c.channel, user: c.user,
		text: c.value, ts: c.messageTS + "/" + c.user, threadTS: c.messageTS})
}
