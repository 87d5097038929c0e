package main

import (
	"flag"
	"fmt"
	"strings"

	chatslack "github.com/shipbot/shipbot/chat/slack"
)

// helpShown is what parsing a subcommand's flags returns for --help or -h:
// run prints text on stdout and exits 0.
type helpShown struct{ text string }

func (h helpShown) Error() string { return "help" }

// helpFor is the answer to `shipbot NAME --help`: the subcommand's lines
// of the usage, its flags, and what else it reads (serve: its environment).
func helpFor(fs *flag.FlagSet) helpShown {
	name := strings.TrimPrefix(fs.Name(), "shipbot ")
	var b strings.Builder
	b.WriteString("Usage:\n")
	b.WriteString(synopsis(name))
	var defaults strings.Builder
	fs.SetOutput(&defaults)
	fs.PrintDefaults()
	fs.SetOutput(nil)
	if defaults.Len() > 0 {
		b.WriteString("\nFlags:\n")
		b.WriteString(defaults.String())
	}
	if extra := helpExtra[name]; extra != "" {
		b.WriteString("\n")
		b.WriteString(extra)
	}
	return helpShown{text: b.String()}
}

// synopsis returns the lines of the top-level usage about one subcommand:
// the line starting "  shipbot NAME" and the lines continuing it.
func synopsis(name string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(usage, "\n") {
		switch {
		case strings.HasPrefix(l, "  shipbot "+name+" ") || l == "  shipbot "+name:
			in = true
		case in && strings.HasPrefix(l, "   "):
		default:
			in = false
		}
		if in {
			b.WriteString(l)
			b.WriteString("\n")
		}
	}
	if b.Len() == 0 {
		return "  shipbot " + name + "\n"
	}
	return b.String()
}

// helpExtra is more help for a subcommand, after its flags.
var helpExtra = map[string]string{
	"serve": serveEnvHelp(),
	"chat": `In a terminal, the line is edited with the arrow keys, Home/End, Ctrl-A/E/K/U/W; Up and Down
recall earlier lines; Ctrl-D (or Ctrl-C) quits. Piped, every line is one message.
`,
	"demo": `In a terminal, the line is edited with the arrow keys, Home/End, Ctrl-A/E/K/U/W; Up and Down
recall earlier lines (kept in DIR/history); Ctrl-D (or Ctrl-C) quits. Piped, every line is one
message. The logs go to DIR/shipbot.log.
`,
}

// serveEnvVars lists the environment serve reads. Each setting can also be a
// key of the config's slack: section; the environment wins.
var serveEnvVars = [][2]string{
	{chatslack.EnvBotTokenFile, "file holding the bot token (xoxb-...); required"},
	{strings.TrimSuffix(chatslack.EnvBotTokenFile, "_FILE"), "the bot token itself, instead of the file"},
	{chatslack.EnvAppTokenFile, "file holding the app-level token (xapp-...); required in socket mode"},
	{strings.TrimSuffix(chatslack.EnvAppTokenFile, "_FILE"), "the app-level token itself, instead of the file"},
	{chatslack.EnvSigningSecretFile, "file holding the signing secret; required in http mode"},
	{strings.TrimSuffix(chatslack.EnvSigningSecretFile, "_FILE"), "the signing secret itself, instead of the file"},
	{chatslack.EnvMode, "socket (default: Socket Mode, no public URL) or http (Events API)"},
	{chatslack.EnvListen, "address of /healthz, /readyz, /metrics (and /slack/ in http mode); default 127.0.0.1:8080"},
	{chatslack.EnvEmailDomains, "comma-separated email domains accepted, e.g. acme.example; default any"},
	{chatslack.EnvSubjectsFile, "file of `email subject` lines mapping Slack users to policy subjects"},
	{chatslack.EnvUserGroups, "S0123ABC=sre,...: only these Slack user groups, under these policy names; unset: all, as slack:HANDLE; empty: none"},
	{envReviewChannel, "channel id where every proposal's Approve/Reject buttons are posted too"},
	{chatslack.EnvCommand, "the slash command; default /ship"},
	{chatslack.EnvCacheTTL, "how long users, channels and groups are cached; default 5m"},
	{chatslack.EnvShutdownGrace, "how long SIGTERM waits for the work in flight; default 3m"},
	{chatslack.EnvAPIURL, "Slack Web API base URL (a proxy, tests); default Slack's"},
}

func serveEnvHelp() string {
	var b strings.Builder
	b.WriteString("Environment (each also a key of the config's slack: section; the environment wins;\n")
	b.WriteString("docs/slack.md has the details):\n")
	width := 0
	for _, e := range serveEnvVars {
		width = max(width, len(e[0]))
	}
	for _, e := range serveEnvVars {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, e[0], e[1])
	}
	return b.String()
}
