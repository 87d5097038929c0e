package slack

import (
	"log/slog"
	"testing"

	"github.com/slack-go/slack/socketmode"
)

// Connection states are applied in the order they arrive: the last one wins,
// so readiness follows the connection (a late "connecting" handled in its own
// goroutine used to overwrite "connected").
func TestConnectionStateInOrder(t *testing.T) {
	a := &Adapter{log: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		events []socketmode.EventType
		ready  bool
	}{
		{[]socketmode.EventType{socketmode.EventTypeConnecting, socketmode.EventTypeConnected}, true},
		{[]socketmode.EventType{socketmode.EventTypeConnected, socketmode.EventTypeDisconnect}, false},
		{[]socketmode.EventType{socketmode.EventTypeConnected, socketmode.EventTypeConnectionError, socketmode.EventTypeConnecting, socketmode.EventTypeConnected}, true},
		{[]socketmode.EventType{socketmode.EventTypeConnected, socketmode.EventTypeInvalidAuth}, false},
	} {
		for _, e := range tc.events {
			if !a.connectionState(socketmode.Event{Type: e}) {
				t.Fatalf("%s not taken as a connection state", e)
			}
		}
		if got := a.Ready(); got != tc.ready {
			t.Errorf("after %v: Ready() = %v, want %v", tc.events, got, tc.ready)
		}
	}
	if a.connectionState(socketmode.Event{Type: socketmode.EventTypeSlashCommand}) {
		t.Error("a slash command was taken as a connection state")
	}
}
