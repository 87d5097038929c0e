package repo

import (
	"strings"
	"testing"
)

// A git child process never inherits shipbot's own settings, which may
// hold secrets (SHIPBOT_SLACK_BOT_TOKEN).
func TestChildEnvKeepsShipbotSettings(t *testing.T) {
	got := childEnv([]string{"PATH=/usr/bin", "SHIPBOT_SLACK_BOT_TOKEN=xoxb-secret", "HOME=/root", "SHIPBOT_LISTEN=:8080", "XSHIPBOT_=kept"})
	want := []string{"PATH=/usr/bin", "HOME=/root", "XSHIPBOT_=kept"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("childEnv = %q, want %q", got, want)
	}
}
