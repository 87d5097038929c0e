package slack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config is how `shipbot serve` talks to Slack. It comes from environment
// variables (SHIPBOT_SLACK_*, SHIPBOT_LISTEN); secrets come only from the
// files they name. Keys in shipbot.yaml come later.
type Config struct {
	Mode          string // "socket" (default) or "http"
	BotToken      string // xoxb-...: secret
	AppToken      string // xapp-...: secret, socket mode only
	SigningSecret string // secret, http mode only
	Listen        string // health, readiness, metrics (and Slack's requests in http mode)
	APIURL        string // Slack Web API base URL (tests, proxies); "" = Slack's
	Command       string
	EmailDomains  []string
	Subjects      map[string]string // email -> policy subject
	Groups        map[string]string // Slack user group id -> policy group; nil = all, as slack:HANDLE
	CacheTTL      time.Duration
	ShutdownGrace time.Duration
}

// Environment variables read by ConfigFromEnv.
const (
	EnvMode              = "SHIPBOT_SLACK_MODE"
	EnvBotTokenFile      = "SHIPBOT_SLACK_BOT_TOKEN_FILE"
	EnvAppTokenFile      = "SHIPBOT_SLACK_APP_TOKEN_FILE"
	EnvSigningSecretFile = "SHIPBOT_SLACK_SIGNING_SECRET_FILE"
	EnvListen            = "SHIPBOT_LISTEN"
	EnvAPIURL            = "SHIPBOT_SLACK_API_URL"
	EnvCommand           = "SHIPBOT_SLACK_COMMAND"
	EnvEmailDomains      = "SHIPBOT_SLACK_EMAIL_DOMAINS"
	EnvSubjectsFile      = "SHIPBOT_SLACK_SUBJECTS_FILE"
	EnvUserGroups        = "SHIPBOT_SLACK_USERGROUPS"
	EnvCacheTTL          = "SHIPBOT_SLACK_CACHE_TTL"
	EnvShutdownGrace     = "SHIPBOT_SHUTDOWN_GRACE"
)

// LogValue shows the configuration without its secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("mode", c.Mode), slog.String("listen", c.Listen), slog.String("command", c.Command),
		slog.String("api_url", c.APIURL), slog.Any("email_domains", c.EmailDomains),
		slog.Int("subject_mappings", len(c.Subjects)), slog.Int("usergroups", len(c.Groups)),
		slog.Duration("cache_ttl", c.CacheTTL), slog.Duration("shutdown_grace", c.ShutdownGrace),
	)
}

// String never prints secrets either.
func (c Config) String() string { return c.LogValue().String() }

// ConfigFromEnv reads the configuration; lookupEnv is os.LookupEnv
// outside tests. Every problem is reported, none carries a secret.
func ConfigFromEnv(lookupEnv func(string) (string, bool)) (Config, error) {
	getenv := func(k string) string { v, _ := lookupEnv(k); return v }
	c := Config{
		Mode:          strings.ToLower(strings.TrimSpace(getenv(EnvMode))),
		Listen:        strings.TrimSpace(getenv(EnvListen)),
		APIURL:        strings.TrimSpace(getenv(EnvAPIURL)),
		Command:       strings.TrimSpace(getenv(EnvCommand)),
		CacheTTL:      5 * time.Minute,
		ShutdownGrace: 3 * time.Minute,
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch c.Mode {
	case "":
		c.Mode = "socket"
	case "socket", "http":
	default:
		add("%s=%q: use socket or http", EnvMode, c.Mode)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	} else if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("%s=%q: want host:port, e.g. 127.0.0.1:8080 or :8080", EnvListen, c.Listen)
	}
	if c.APIURL != "" {
		if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("%s=%q: want a URL like https://slack.com/api/", EnvAPIURL, c.APIURL)
		} else if !strings.HasSuffix(c.APIURL, "/") {
			c.APIURL += "/"
		}
	}
	if c.Command == "" {
		c.Command = "/ship"
	} else if !strings.HasPrefix(c.Command, "/") || strings.ContainsAny(c.Command, " \t") {
		add("%s=%q: a slash command like /ship", EnvCommand, c.Command)
	}

	// A secret comes from the file named by SHIPBOT_..._FILE (a mounted
	// Secret; rotation needs a restart) or from SHIPBOT_... itself, never
	// both. Messages name the variable or the file, never the value.
	secret := func(fileEnv, prefix, what string, required bool) string {
		valueEnv := strings.TrimSuffix(fileEnv, "_FILE")
		path, value := strings.TrimSpace(getenv(fileEnv)), strings.TrimSpace(getenv(valueEnv))
		var s, from string
		switch {
		case path != "" && value != "":
			add("%s and %s are both set: give the %s one way", valueEnv, fileEnv, what)
			return ""
		case value != "":
			s, from = value, valueEnv
			if strings.ContainsAny(s, "\n\r\t ") {
				add("%s must hold one secret on one line", valueEnv)
				return ""
			}
		case path != "":
			var err error
			if s, err = readSecret(path); err != nil {
				add("%s: %v", fileEnv, err)
				return ""
			}
			from = fileEnv + ": " + path
			if s == "" {
				add("%s is empty", from)
				return ""
			}
		default:
			if required {
				add("%s (or %s) is required: the %s", fileEnv, valueEnv, what)
			}
			return ""
		}
		if prefix != "" && !strings.HasPrefix(s, prefix) {
			add("%s does not hold a %s (it should start with %q)", from, what, prefix)
		}
		return s
	}
	c.BotToken = secret(EnvBotTokenFile, "xoxb-", "bot token", true)
	c.AppToken = secret(EnvAppTokenFile, "xapp-", "app-level token", c.Mode == "socket")
	c.SigningSecret = secret(EnvSigningSecretFile, "", "signing secret", c.Mode == "http")

	for _, d := range strings.Split(getenv(EnvEmailDomains), ",") {
		if d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@")); d != "" {
			if strings.ContainsAny(d, "@ /") || !strings.Contains(d, ".") {
				add("%s: %q is not a domain", EnvEmailDomains, d)
			}
			c.EmailDomains = append(c.EmailDomains, d)
		}
	}
	if path := strings.TrimSpace(getenv(EnvSubjectsFile)); path != "" {
		m, err := readSubjects(path)
		if err != nil {
			add("%s: %v", EnvSubjectsFile, err)
		}
		c.Subjects = m
	}
	// SHIPBOT_SLACK_USERGROUPS unset: every user group, as slack:HANDLE;
	// set but empty: groups off.
	if v, ok := lookupEnv(EnvUserGroups); ok {
		c.Groups = map[string]string{}
		for _, pair := range strings.Split(v, ",") {
			if pair = strings.TrimSpace(pair); pair == "" {
				continue
			}
			id, name, ok := strings.Cut(pair, "=")
			id, name = strings.TrimSpace(id), strings.TrimSpace(name)
			if !ok || id == "" || !groupNameRe.MatchString(name) {
				add("%s: %q: want SLACK_GROUP_ID=policy-group, e.g. S0123ABC=team-checkout", EnvUserGroups, pair)
				continue
			}
			c.Groups[id] = name
		}
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{EnvCacheTTL, &c.CacheTTL}, {EnvShutdownGrace, &c.ShutdownGrace}} {
		if v := strings.TrimSpace(getenv(d.env)); v != "" {
			dur, err := time.ParseDuration(v)
			if err != nil || dur <= 0 {
				add("%s=%q: a positive duration, e.g. 5m", d.env, v)
				continue
			}
			*d.dst = dur
		}
	}
	if len(problems) > 0 {
		return Config{}, &ConfigError{Problems: problems}
	}
	return c, nil
}

// ConfigError lists every problem of the Slack configuration.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	return fmt.Sprintf("slack configuration has %d problem(s):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// readSecret reads a one-line secret file. Errors name the file, never the
// content.
func readSecret(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("can't read %s: %w", path, errors.Unwrap(err))
	}
	if !st.Mode().IsRegular() || st.Size() > 4096 {
		return "", fmt.Errorf("%s is not a small regular file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("can't read %s: %w", path, errors.Unwrap(err))
	}
	s := string(bytes.TrimSpace(b))
	if strings.ContainsAny(s, "\n\r\t ") {
		return "", fmt.Errorf("%s must hold one secret on one line", path)
	}
	return s, nil
}

// readSubjects reads "email subject" lines; '#' starts a comment.
func readSubjects(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	var problems []string
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			continue
		case len(fields) != 2 || !emailRe.MatchString(strings.ToLower(fields[0])) || !subjectRe.MatchString(fields[1]):
			problems = append(problems, fmt.Sprintf("line %d: want `email subject`, e.g. `alice.smith@acme.example alice`", n))
			continue
		}
		email := strings.ToLower(fields[0])
		if _, dup := m[email]; dup {
			problems = append(problems, fmt.Sprintf("line %d: %s is mapped twice", n, email))
		}
		m[email] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return m, fmt.Errorf("%s: %s", path, strings.Join(problems, "; "))
	}
	return m, nil
}
