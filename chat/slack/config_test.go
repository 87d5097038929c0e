package slack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	botToken = "xoxb-1111-2222-SECRETBOT"
	appToken = "xapp-1-A1-3333-SECRETAPP"
	signing  = "SECRETSIGNING0123456789abcdef"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	bot := writeFile(t, dir, "bot", botToken+"\n")
	app := writeFile(t, dir, "app", appToken)
	sig := writeFile(t, dir, "sig", signing+"\n")
	subj := writeFile(t, dir, "subjects", "# email subject\nFrank.ONeil@acme.example frank\n\nzoe@acme.example  zoe # contractor\n")

	c, err := ConfigFromEnv(envOf(map[string]string{
		EnvBotTokenFile: bot, EnvAppTokenFile: app, EnvEmailDomains: "acme.example, @corp.example",
		EnvSubjectsFile: subj, EnvUserGroups: "S1=team-checkout, S2=sre, S3=slack:release", EnvCacheTTL: "90s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != "socket" || c.Listen != "127.0.0.1:8080" || c.Command != "/ship" || c.BotToken != botToken || c.AppToken != appToken ||
		c.CacheTTL != 90*time.Second || c.ShutdownGrace != 3*time.Minute ||
		strings.Join(c.EmailDomains, ",") != "acme.example,corp.example" ||
		c.Subjects["frank.oneil@acme.example"] != "frank" || c.Subjects["zoe@acme.example"] != "zoe" ||
		c.Groups["S1"] != "team-checkout" || c.Groups["S2"] != "sre" || c.Groups["S3"] != "slack:release" {
		t.Errorf("config = %+v", c)
	}
	// Secrets never show in logs or %v.
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c.LogValue())} {
		if leaked(s) {
			t.Errorf("secret in %q", s)
		}
	}

	c, err = ConfigFromEnv(envOf(map[string]string{EnvMode: "http", EnvBotTokenFile: bot, EnvSigningSecretFile: sig, EnvListen: ":9090", EnvUserGroups: ""}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != "http" || c.SigningSecret != signing || c.AppToken != "" || c.Listen != ":9090" || c.Groups == nil || len(c.Groups) != 0 {
		t.Errorf("http config = %+v (groups %v)", c, c.Groups)
	}
	// Secrets may come from the environment itself.
	c, err = ConfigFromEnv(envOf(map[string]string{"SHIPBOT_SLACK_BOT_TOKEN": botToken, "SHIPBOT_SLACK_APP_TOKEN": " " + appToken + "\n"}))
	if err != nil || c.BotToken != botToken || c.AppToken != appToken {
		t.Fatalf("secrets from the environment: %v", err)
	}
	if leaked(fmt.Sprint(c)) || leaked(fmt.Sprintf("%+v", c)) {
		t.Error("printing the config shows a secret")
	}
	c, _ = ConfigFromEnv(envOf(map[string]string{EnvBotTokenFile: bot, EnvAppTokenFile: app}))
	if c.Groups != nil {
		t.Error("SHIPBOT_SLACK_USERGROUPS unset should mean every group (nil)")
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	dir := t.TempDir()
	bot := writeFile(t, dir, "bot", botToken)
	wrong := writeFile(t, dir, "wrong", appToken) // an app token where the bot token goes
	empty := writeFile(t, dir, "empty", "\n")
	twoLines := writeFile(t, dir, "two", botToken+"\n"+botToken+"\n")
	badSubj := writeFile(t, dir, "subjects", "alice@acme.example\nbob@acme.example b o b\n")

	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing", map[string]string{}, []string{EnvBotTokenFile + " (or SHIPBOT_SLACK_BOT_TOKEN) is required", EnvAppTokenFile + " (or SHIPBOT_SLACK_APP_TOKEN) is required"}},
		{"http needs a signing secret", map[string]string{EnvMode: "http", EnvBotTokenFile: bot}, []string{EnvSigningSecretFile + " (or SHIPBOT_SLACK_SIGNING_SECRET) is required"}},
		{"a secret both ways", map[string]string{"SHIPBOT_SLACK_BOT_TOKEN": botToken, EnvBotTokenFile: bot, EnvAppTokenFile: bot},
			[]string{"SHIPBOT_SLACK_BOT_TOKEN and SHIPBOT_SLACK_BOT_TOKEN_FILE are both set", "does not hold a app-level token"}},
		{"wrong secrets in the environment", map[string]string{"SHIPBOT_SLACK_BOT_TOKEN": appToken, "SHIPBOT_SLACK_APP_TOKEN": "xapp-1 SECRETAPP"},
			[]string{`SHIPBOT_SLACK_BOT_TOKEN does not hold a bot token (it should start with "xoxb-")`, "SHIPBOT_SLACK_APP_TOKEN must hold one secret on one line"}},
		{"wrong token kind", map[string]string{EnvBotTokenFile: wrong, EnvAppTokenFile: bot}, []string{`should start with "xoxb-"`, `should start with "xapp-"`}},
		{"missing file", map[string]string{EnvBotTokenFile: filepath.Join(dir, "nope"), EnvAppTokenFile: empty}, []string{"can't read", "is empty"}},
		{"two secrets in one file", map[string]string{EnvBotTokenFile: twoLines, EnvAppTokenFile: dir}, []string{"one secret on one line", "not a small regular file"}},
		{"bad values", map[string]string{EnvBotTokenFile: bot, EnvMode: "rtm", EnvListen: "8080", EnvCommand: "ship", EnvCacheTTL: "soon",
			EnvEmailDomains: "acme", EnvUserGroups: "S1,S2=a:b:c", EnvSubjectsFile: badSubj, EnvAPIURL: "slack.com"},
			[]string{"use socket or http", "want host:port", "a slash command", "positive duration", `"acme" is not a domain`, "SLACK_GROUP_ID=policy-group", `"S2=a:b:c"`, "line 1", "line 2", "want a URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ConfigFromEnv(envOf(tc.env))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a ConfigError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if leaked(err.Error()) {
				t.Errorf("a secret leaked into the error:\n%v", err)
			}
		})
	}
}

// leaked reports whether s shows any part of a test secret.
func leaked(s string) bool {
	for _, m := range []string{"SECRETBOT", "SECRETAPP", "SECRETSIGNING"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}
