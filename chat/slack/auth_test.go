package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// A token Slack refuses is told from Slack not being reached: only the
// first says "refused the bot token" (issue 14 item 10).
func TestAuthTestError(t *testing.T) {
	dial := &url.Error{Op: "Post", URL: "https://slack.com/api/auth.test", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}}
	for _, tc := range []struct {
		err       error
		want, not string
	}{
		{slackgo.SlackErrorResponse{Err: "invalid_auth"}, "slack refused the bot token (auth.test: invalid_auth); check SHIPBOT_SLACK_BOT_TOKEN_FILE", ""},
		{slackgo.SlackErrorResponse{Err: "token_revoked"}, "slack refused the bot token (auth.test: token_revoked)", ""},
		{slackgo.SlackErrorResponse{Err: "fatal_error"}, `slack answered auth.test with the error "fatal_error"; the bot token may be fine`, "refused"},
		{dial, "could not reach slack's API at https://slack.com/api/ (auth.test: Post \"https://slack.com/api/auth.test\": dial tcp: connect: connection refused); a network problem, not the token", "refused the bot token"},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), "could not reach slack's API", "refused the bot token"},
		{slackgo.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}, "slack's API at https://slack.com/api/ failed (auth.test: HTTP 503); the bot token was not checked", "refused"},
		{&slackgo.RateLimitedError{RetryAfter: 30 * time.Second}, "slack rate-limited auth.test (retry after 30s)", "refused"},
	} {
		got := AuthTestError(tc.err, EnvBotTokenFile, "").Error()
		if !strings.Contains(got, tc.want) || tc.not != "" && strings.Contains(got, tc.not) {
			t.Errorf("AuthTestError(%v) = %q\nwant it to contain %q (and not %q)", tc.err, got, tc.want, tc.not)
		}
	}
}

// A lost connection is logged with its cause and the next attempt, not a
// bare "connection_error" (issue 14 item 10).
func TestConnectionErrorsAreLoggedWithTheirCause(t *testing.T) {
	var buf bytes.Buffer
	a := &Adapter{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	a.connectionState(socketmode.Event{Type: socketmode.EventTypeConnecting, Data: &slackgo.ConnectingEvent{Attempt: 2}})
	a.connectionState(socketmode.Event{Type: socketmode.EventTypeConnectionError, Data: &slackgo.ConnectionErrorEvent{
		Attempt: 2, Backoff: 7 * time.Second, ErrorObj: errors.New("dial tcp 203.0.113.9:443: i/o timeout")}})
	a.connectionState(socketmode.Event{Type: socketmode.EventTypeIncomingError, Data: &slackgo.IncomingEventError{ErrorObj: errors.New("websocket: close 1006 (abnormal closure)")}})
	a.connectionState(socketmode.Event{Type: socketmode.EventTypeDisconnect, Request: &socketmode.Request{Reason: "refresh_requested"}})
	log := buf.String()
	for _, want := range []string{
		`"msg":"slack socket mode not connected","state":"connecting","attempt":2`,
		`"level":"WARN","msg":"slack socket mode not connected","state":"connection_error","err":"dial tcp 203.0.113.9:443: i/o timeout","attempt":2,"retry_in":"7s"`,
		`"msg":"slack socket mode error","state":"incoming_error","err":"websocket: close 1006 (abnormal closure)"`,
		`"state":"disconnect","cause":"slack asked to reconnect","reason":"refresh_requested"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s\n%s", want, log)
		}
	}
	if a.Ready() {
		t.Error("ready after a connection error")
	}
}
