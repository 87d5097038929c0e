package slack

import (
	"context"
	"errors"
	"sync"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// RunSocketMode receives Slack's deliveries over a Socket Mode connection
// until ctx ends (then it returns nil) or the connection can't be opened
// (bad app token). The client reconnects by itself when Slack asks.
// Every envelope is acknowledged first; the work runs after the ack.
func (a *Adapter) RunSocketMode(ctx context.Context, client *socketmode.Client) error {
	h := socketmode.NewSocketmodeHandler(client)
	h.HandleSlashCommand(a.o.Command, a.socketSlash)
	h.HandleInteractionBlockAction(actionConfirm, a.socketClick(actionConfirm))
	h.HandleInteractionBlockAction(actionCancel, a.socketClick(actionCancel))
	h.HandleInteractionBlockAction(actionApprove, a.socketClick(actionApprove))
	h.HandleInteractionBlockAction(actionReject, a.socketClick(actionReject))
	h.HandleInteractionBlockAction(actionIncidentRollback, a.socketClick(actionIncidentRollback))
	h.HandleEvents(slackevents.AppMention, a.socketEvent)
	h.HandleEvents(slackevents.Message, a.socketEvent)
	h.HandleDefault(func(evt *socketmode.Event, c *socketmode.Client) {
		// Acknowledge whatever else Slack sends so it isn't redelivered.
		if evt.Request != nil && evt.Request.EnvelopeID != "" {
			a.ack(c, evt)
		}
		a.log.Debug("slack socket mode event ignored", "type", string(evt.Type))
	})
	// Our own loop: the connection's state events are applied here, in the
	// order they arrive (slack-go's handler runs every handler in its own
	// goroutine, so a late "connecting" could overwrite "connected" and keep
	// /readyz false while shipbot works); everything else goes to the handlers.
	go func() {
		for {
			select {
			case evt, ok := <-client.Events:
				if !ok {
					return
				}
				if !a.connectionState(evt) {
					h.DispatchEvent(evt)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	err := client.RunContext(ctx)
	a.connected.Store(false)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return err
}

// connectionState applies a connection event in order and reports whether
// evt was one. Each is logged with its cause, when the event carries one
// (why a connection failed, how long until the next attempt).
func (a *Adapter) connectionState(evt socketmode.Event) bool {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		a.connected.Store(true)
		a.log.Info("slack socket mode connected")
	case socketmode.EventTypeConnecting:
		a.connected.Store(false)
		attrs := []any{"state", string(evt.Type)}
		if c, ok := evt.Data.(*slackgo.ConnectingEvent); ok && c != nil {
			attrs = append(attrs, "attempt", c.Attempt)
		}
		a.log.Info("slack socket mode not connected", attrs...)
	case socketmode.EventTypeConnectionError:
		a.connected.Store(false)
		attrs := []any{"state", string(evt.Type)}
		if c, ok := evt.Data.(*slackgo.ConnectionErrorEvent); ok && c != nil {
			if c.ErrorObj != nil {
				attrs = append(attrs, "err", c.ErrorObj.Error())
			}
			attrs = append(attrs, "attempt", c.Attempt, "retry_in", c.Backoff.String())
		} else {
			attrs = append(attrs, "err", "unknown (the client gave no cause)")
		}
		a.log.Warn("slack socket mode not connected", attrs...)
	case socketmode.EventTypeDisconnect:
		a.connected.Store(false)
		attrs := []any{"state", string(evt.Type), "cause", "slack asked to reconnect"}
		if evt.Request != nil && evt.Request.Reason != "" {
			attrs = append(attrs, "reason", evt.Request.Reason)
		}
		a.log.Info("slack socket mode not connected", attrs...)
	case socketmode.EventTypeInvalidAuth:
		a.connected.Store(false)
		a.log.Error("slack socket mode: the app token was refused (invalid_auth)")
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed, socketmode.EventTypeErrorBadMessage:
		// Not a state change: the client reconnects if it must, and says so.
		a.log.Warn("slack socket mode error", "state", string(evt.Type), "err", eventCause(evt))
	default:
		return false
	}
	return true
}

// eventCause is the error a socket mode error event carries.
func eventCause(evt socketmode.Event) string {
	switch d := evt.Data.(type) {
	case *slackgo.IncomingEventError:
		if d != nil && d.ErrorObj != nil {
			return d.ErrorObj.Error()
		}
	case *socketmode.ErrorWriteFailed:
		if d != nil && d.Cause != nil {
			return d.Cause.Error()
		}
	case *socketmode.ErrorBadMessage:
		if d != nil && d.Cause != nil {
			return d.Cause.Error()
		}
	case error:
		return d.Error()
	}
	return "unknown"
}

func (a *Adapter) ack(c *socketmode.Client, evt *socketmode.Event) {
	if evt.Request == nil {
		return
	}
	if err := c.Ack(*evt.Request); err != nil {
		a.log.Error("slack socket mode ack failed", "envelope", evt.Request.EnvelopeID, "err", err)
	}
}

func (a *Adapter) socketSlash(evt *socketmode.Event, c *socketmode.Client) {
	a.ack(c, evt)
	cmd, ok := evt.Data.(slackgo.SlashCommand)
	if !ok {
		return
	}
	a.receive(slashInbound(a.o.Command, cmd), "")
}

func slashInbound(command string, cmd slackgo.SlashCommand) inbound {
	return inbound{
		kind: "slash", team: cmd.TeamID, channel: cmd.ChannelID, user: cmd.UserID,
		text: trimCommand(command, cmd.Text), trigger: cmd.TriggerID, responseURL: cmd.ResponseURL,
	}
}

// confirmAckWithin is when a Confirm click is acknowledged at the latest
// (Slack allows 3 s). Until then, and until the confirmed change was
// written, it is not: if this process dies between the click and the
// push, Slack delivers the click again — on the Socket Mode connection of
// the replica that leads next — and the confirmation lands exactly once
// (the button's token re-plans it; a request that landed is answered with
// its commit).
const confirmAckWithin = 2500 * time.Millisecond

func (a *Adapter) socketClick(actionID string) socketmode.SocketmodeHandlerFunc {
	return func(evt *socketmode.Event, c *socketmode.Client) {
		ack := sync.OnceFunc(func() { a.ack(c, evt) })
		if actionID == actionConfirm {
			time.AfterFunc(confirmAckWithin, ack)
		} else {
			ack()
		}
		cb, ok := evt.Data.(slackgo.InteractionCallback)
		if !ok {
			ack()
			return
		}
		n := 0
		for _, cl := range clicks(cb) {
			if cl.actionID == actionID {
				cl.ack = ack
				a.receiveClick(cl)
				n++
			}
		}
		if n == 0 {
			ack()
		}
	}
}

// clicks extracts shipbot's button presses from an interaction.
func clicks(cb slackgo.InteractionCallback) []click {
	if cb.Type != slackgo.InteractionTypeBlockActions {
		return nil
	}
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	msgTS := cb.Container.MessageTs
	if msgTS == "" {
		msgTS = cb.Message.Timestamp
	}
	team := cb.Team.ID
	if team == "" {
		team = cb.User.TeamID
	}
	var out []click
	for _, act := range cb.ActionCallback.BlockActions {
		switch act.ActionID {
		case actionConfirm, actionCancel, actionApprove, actionReject, actionIncidentRollback:
		default:
			continue
		}
		actionTS := act.ActionTs
		if actionTS == "" {
			actionTS = cb.ActionTs
		}
		out = append(out, click{
			team: team, channel: channel, user: cb.User.ID,
			actionID: act.ActionID, value: act.Value,
			messageTS: msgTS, actionTS: actionTS, triggerID: cb.TriggerID,
		})
	}
	return out
}

func (a *Adapter) socketEvent(evt *socketmode.Event, c *socketmode.Client) {
	a.ack(c, evt)
	ev, ok := evt.Data.(slackevents.EventsAPIEvent)
	if !ok {
		return
	}
	var eventID string
	if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
		eventID = cb.EventID
	}
	if evt.Request != nil && evt.Request.RetryAttempt > 0 {
		a.log.Info("slack redelivery", "event", eventID, "retry", evt.Request.RetryAttempt, "reason", evt.Request.RetryReason)
	}
	a.event(ev, eventID)
}

// event handles an Events API event, whatever way it came.
func (a *Adapter) event(ev slackevents.EventsAPIEvent, eventID string) {
	key := ""
	if eventID != "" {
		key = "event:" + eventID
	}
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.AppMentionEvent:
		if a.isOwnMessage(e.User, e.BotID, "") {
			return
		}
		a.receive(inbound{kind: "mention", team: ev.TeamID, channel: e.Channel, user: e.User, text: e.Text, ts: e.TimeStamp, threadTS: e.ThreadTimeStamp}, key)
	case *slackevents.MessageEvent:
		// Only direct messages; channel messages reach shipbot as mentions.
		if e.ChannelType != slackevents.ChannelTypeIM || a.isOwnMessage(e.User, e.BotID, e.SubType) {
			return
		}
		a.receive(inbound{kind: "dm", team: ev.TeamID, channel: e.Channel, user: e.User, text: e.Text, ts: e.TimeStamp, threadTS: e.ThreadTimeStamp}, key)
	}
}
