package slack

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// maxBody bounds a request from Slack; real ones are a few KiB.
const maxBody = 1 << 20

// HTTP paths served by HTTPHandler; give them to Slack as the Events API
// request URL, the slash command's request URL and the interactivity
// request URL.
const (
	PathEvents      = "/slack/events"
	PathCommands    = "/slack/commands"
	PathInteractive = "/slack/interactive"
)

// HTTPHandler serves Slack's HTTP deliveries (Events API, slash commands,
// interactivity) on PathEvents, PathCommands and PathInteractive. Every
// request must carry a valid signature made with signingSecret and a
// timestamp within 5 minutes (slack.NewSecretsVerifier); anything else gets
// 401 and never reaches the core. Valid requests are answered 200 at once
// and handled after the answer.
func (a *Adapter) HTTPHandler(signingSecret string) http.Handler {
	a.connected.Store(true)
	mux := http.NewServeMux()
	mux.Handle(PathEvents, a.verified(signingSecret, a.serveEvents))
	mux.Handle(PathCommands, a.verified(signingSecret, a.serveCommand))
	mux.Handle(PathInteractive, a.verified(signingSecret, a.serveInteractive))
	return mux
}

// verified checks method, size and signature before next sees the body.
func (a *Adapter) verified(secret string, next func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			a.o.Metrics.Rejected("method")
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			a.o.Metrics.Rejected("too_large")
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		sv, err := slackgo.NewSecretsVerifier(r.Header, secret)
		if err == nil {
			_, _ = sv.Write(body)
			err = sv.Ensure()
		}
		if err != nil {
			reason := "signature"
			switch {
			case errors.Is(err, slackgo.ErrExpiredTimestamp):
				reason = "stale"
			case errors.Is(err, slackgo.ErrMissingHeaders):
				reason = "headers"
			}
			a.o.Metrics.Rejected(reason)
			a.log.Warn("slack request refused", "path", r.URL.Path, "reason", reason, "remote", r.RemoteAddr)
			http.Error(w, "invalid Slack signature", http.StatusUnauthorized)
			return
		}
		if !a.Accepting() {
			// Slack retries events; another replica or the restarted
			// shipbot takes them, and the request id stays the same.
			w.Header().Set("Retry-After", "10")
			http.Error(w, "shipbot is shutting down", http.StatusServiceUnavailable)
			return
		}
		next(w, r, body)
	})
}

func (a *Adapter) serveCommand(w http.ResponseWriter, _ *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		a.o.Metrics.Rejected("malformed")
		http.Error(w, "malformed form", http.StatusBadRequest)
		return
	}
	cmd := slackgo.SlashCommand{
		TeamID: form.Get("team_id"), ChannelID: form.Get("channel_id"), UserID: form.Get("user_id"),
		Command: form.Get("command"), Text: form.Get("text"), TriggerID: form.Get("trigger_id"),
		ResponseURL: form.Get("response_url"),
	}
	w.WriteHeader(http.StatusOK) // the ack: an empty 200; replies come through the Web API
	if cmd.Command != a.o.Command {
		a.log.Warn("unknown slash command ignored", "command", cmd.Command)
		return
	}
	a.receive(slashInbound(a.o.Command, cmd), "")
}

func (a *Adapter) serveInteractive(w http.ResponseWriter, _ *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	var cb slackgo.InteractionCallback
	if err == nil {
		err = json.Unmarshal([]byte(form.Get("payload")), &cb)
	}
	if err != nil {
		a.o.Metrics.Rejected("malformed")
		http.Error(w, "malformed interaction payload", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	for _, c := range clicks(cb) {
		a.receiveClick(c)
	}
}

func (a *Adapter) serveEvents(w http.ResponseWriter, r *http.Request, body []byte) {
	// The signature was checked; the legacy verification token is not.
	ev, err := slackevents.ParseEvent(body, slackevents.OptionNoVerifyToken())
	if err != nil {
		// Unknown inner event types are not errors for Slack: ack them.
		var outer struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(body, &outer) == nil && outer.Type == slackevents.CallbackEvent {
			w.WriteHeader(http.StatusOK)
			return
		}
		a.o.Metrics.Rejected("malformed")
		http.Error(w, "malformed event", http.StatusBadRequest)
		return
	}
	switch ev.Type {
	case slackevents.URLVerification:
		uv, _ := ev.Data.(*slackevents.EventsAPIURLVerificationEvent)
		if uv == nil {
			http.Error(w, "malformed url_verification", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, uv.Challenge)
		return
	case slackevents.CallbackEvent:
	default:
		w.WriteHeader(http.StatusOK)
		return
	}
	var eventID string
	if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
		eventID = cb.EventID
	}
	if n, _ := strconv.Atoi(r.Header.Get("X-Slack-Retry-Num")); n > 0 {
		a.log.Info("slack redelivery", "event", eventID, "retry", n, "reason", r.Header.Get("X-Slack-Retry-Reason"))
	}
	w.WriteHeader(http.StatusOK)
	a.event(ev, eventID)
}
