package slack

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestManifest keeps deploy/slack/manifest.yaml in step with the adapter:
// the command it registers, the events it handles, the minimal scopes.
func TestManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "slack", "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Features struct {
			SlashCommands []struct {
				Command string `yaml:"command"`
			} `yaml:"slash_commands"`
			AppHome struct {
				MessagesTab bool `yaml:"messages_tab_enabled"`
			} `yaml:"app_home"`
		} `yaml:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Events struct {
				BotEvents []string `yaml:"bot_events"`
			} `yaml:"event_subscriptions"`
			Interactivity struct {
				Enabled bool `yaml:"is_enabled"`
			} `yaml:"interactivity"`
			SocketMode bool `yaml:"socket_mode_enabled"`
		} `yaml:"settings"`
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Features.SlashCommands) != 1 || m.Features.SlashCommands[0].Command != "/ship" {
		t.Errorf("slash commands %+v, want /ship", m.Features.SlashCommands)
	}
	scopes := slices.Sorted(slices.Values(m.OAuth.Scopes.Bot))
	want := []string{"app_mentions:read", "channels:read", "chat:write", "commands", "groups:read", "im:history", "usergroups:read", "users:read", "users:read.email"}
	if !slices.Equal(scopes, want) {
		t.Errorf("scopes %v, want exactly %v", scopes, want)
	}
	if events := slices.Sorted(slices.Values(m.Settings.Events.BotEvents)); !slices.Equal(events, []string{"app_mention", "message.im"}) {
		t.Errorf("events %v", events)
	}
	if !m.Settings.Interactivity.Enabled || !m.Settings.SocketMode || !m.Features.AppHome.MessagesTab {
		t.Errorf("interactivity %v, socket mode %v, messages tab %v: all must be on", m.Settings.Interactivity.Enabled, m.Settings.SocketMode, m.Features.AppHome.MessagesTab)
	}
}
