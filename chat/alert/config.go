package alert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the alerts: section of shipbot.yaml. Secrets are never in it,
// only the files that hold them (one secret per file; surrounding
// whitespace is trimmed); several files for one secret accept any of them,
// for a rotation without downtime. A source that is absent, or present
// without credentials, refuses every delivery (401).
//
//	alerts:
//	  timeout: 4s              # bounds a delivery's processing (Sink calls included)
//	  maxBodyBytes: 1048576
//	  alertmanager:            # POST /alerts/alertmanager
//	    authorization:         # Alertmanager http_config.authorization
//	      type: Bearer
//	      credentialsFiles: [/etc/shipbot/secrets/alertmanager-token]
//	    basicAuth:             # or http_config.basic_auth
//	      username: alertmanager
//	      passwordFiles: [/etc/shipbot/secrets/alertmanager-password]
//	  pagerduty:               # POST /alerts/pagerduty (v3 webhook subscription)
//	    signingSecretFiles: [/etc/shipbot/secrets/pd-new, /etc/shipbot/secrets/pd-old]
//	  opsgenie:                # POST /alerts/opsgenie (outgoing webhook integration)
//	    header: {name: X-Shipbot-Token, valueFiles: [/etc/shipbot/secrets/opsgenie-token]}
//	    webURL: https://acme.app.opsgenie.com
//	  incidents: {maxOpen: 1000, maxAlertsPerIncident: 500, resolvedTTL: 1h, maxResolved: 10000, staleAfter: 24h}
//	  routes:                  # first match wins; no match: logged, no incident
//	    - name: by-labels
//	      match:
//	        sources: [alertmanager]
//	        labels: {team: payments}
//	        labelRegex: {namespace: '(?P<app>[a-z-]+)-(?P<env>prod|staging)'}
//	      app: ${app}
//	      env: ${env}
//	    - name: host-down
//	      match:
//	        textRegex: 'HOST (?P<host>\S+) down'
//	      app: ${host}
//	      env: prod
//	    - name: pagerduty-service
//	      match: {sources: [pagerduty], labels: {service: Checkout API}}
//	      app: checkout
//	      env: prod
type Config struct {
	Alertmanager *AlertmanagerConfig `yaml:"alertmanager"`
	PagerDuty    *PagerDutyConfig    `yaml:"pagerduty"`
	Opsgenie     *OpsgenieConfig     `yaml:"opsgenie"`
	Routes       []Route             `yaml:"routes"`
	// Timeout bounds the processing of one delivery (routing and the Sink
	// calls); default 4s, under the senders' own timeouts.
	Timeout time.Duration `yaml:"timeout"`
	// MaxBodyBytes bounds a delivery's body (default 1 MiB); larger ones
	// are refused with 413.
	MaxBodyBytes int64          `yaml:"maxBodyBytes"`
	Incidents    GrouperOptions `yaml:"incidents"`
}

// AlertmanagerConfig authenticates Alertmanager's webhook, which has no
// signature: an Authorization header (http_config.authorization) or basic
// auth (http_config.basic_auth); either is accepted.
type AlertmanagerConfig struct {
	Authorization *AuthorizationConfig `yaml:"authorization"`
	BasicAuth     *BasicAuthConfig     `yaml:"basicAuth"`
}

// AuthorizationConfig is an "Authorization: <type> <credentials>" header.
type AuthorizationConfig struct {
	Type             string   `yaml:"type"` // default Bearer
	CredentialsFiles []string `yaml:"credentialsFiles"`
}

// BasicAuthConfig is HTTP basic authentication.
type BasicAuthConfig struct {
	Username      string   `yaml:"username"`
	PasswordFiles []string `yaml:"passwordFiles"`
}

// PagerDutyConfig verifies X-PagerDuty-Signature with the webhook
// subscription's signing secrets.
type PagerDutyConfig struct {
	SigningSecretFiles []string `yaml:"signingSecretFiles"`
}

// OpsgenieConfig authenticates Opsgenie's outgoing webhook: a custom
// header the integration adds, or basic auth in its URL; either is
// accepted.
type OpsgenieConfig struct {
	Header    *HeaderConfig    `yaml:"header"`
	BasicAuth *BasicAuthConfig `yaml:"basicAuth"`
	// WebURL is the Opsgenie web app alerts link to (default
	// https://app.opsgenie.com; EU accounts: https://app.eu.opsgenie.com).
	WebURL string `yaml:"webURL"`
}

// HeaderConfig is a custom header carrying a shared secret.
type HeaderConfig struct {
	Name       string   `yaml:"name"`
	ValueFiles []string `yaml:"valueFiles"`
}

// Defaults.
const (
	DefaultTimeout      = 4 * time.Second
	DefaultMaxBodyBytes = 1 << 20
	DefaultOpsgenieURL  = "https://app.opsgenie.com"
)

var tokenRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// ParseConfig reads the alerts section from YAML, refusing unknown keys,
// and validates it.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("alerts config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks c, compiles its routes to report bad regexes and
// templates, and fills defaults. Every problem is reported.
func (c *Config) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if c.Timeout < 0 {
		add("timeout must not be negative")
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBodyBytes < 0 {
		add("maxBodyBytes must not be negative")
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if am := c.Alertmanager; am != nil {
		if am.Authorization == nil && am.BasicAuth == nil {
			add("alertmanager: set authorization or basicAuth (shipbot refuses unauthenticated alerts)")
		}
		if a := am.Authorization; a != nil {
			if a.Type == "" {
				a.Type = "Bearer"
			}
			if !tokenRe.MatchString(a.Type) {
				add("alertmanager.authorization.type %q is not an HTTP auth scheme", a.Type)
			}
			if strings.EqualFold(a.Type, "Basic") {
				add("alertmanager.authorization.type Basic: use basicAuth instead")
			}
			checkFiles(add, "alertmanager.authorization.credentialsFiles", a.CredentialsFiles)
		}
		checkBasic(add, "alertmanager.basicAuth", am.BasicAuth)
	}
	if pd := c.PagerDuty; pd != nil {
		checkFiles(add, "pagerduty.signingSecretFiles", pd.SigningSecretFiles)
	}
	if og := c.Opsgenie; og != nil {
		if og.Header == nil && og.BasicAuth == nil {
			add("opsgenie: set header or basicAuth (shipbot refuses unauthenticated alerts)")
		}
		if h := og.Header; h != nil {
			if !tokenRe.MatchString(h.Name) {
				add("opsgenie.header.name %q is not an HTTP header name", h.Name)
			} else {
				switch http.CanonicalHeaderKey(h.Name) {
				case "Content-Type", "Content-Length", "Host", "Transfer-Encoding", "Cookie":
					add("opsgenie.header.name %q cannot carry a secret", h.Name)
				}
			}
			checkFiles(add, "opsgenie.header.valueFiles", h.ValueFiles)
		}
		checkBasic(add, "opsgenie.basicAuth", og.BasicAuth)
		if og.WebURL == "" {
			og.WebURL = DefaultOpsgenieURL
		}
		if u, err := url.Parse(og.WebURL); err != nil || u.Scheme != "https" || u.Host == "" {
			add("opsgenie.webURL %q is not an https URL", og.WebURL)
		}
	}
	if _, err := NewRouter(c.Routes, nil); err != nil {
		add("%v", err)
	}
	if err := c.Incidents.Validate(); err != nil {
		add("%v", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("alerts config: %s", strings.Join(problems, "; "))
	}
	return nil
}

func checkFiles(add func(string, ...any), key string, files []string) {
	if len(files) == 0 {
		add("%s: at least one file is required", key)
	}
	for i, f := range files {
		if strings.TrimSpace(f) == "" {
			add("%s[%d] is empty", key, i)
		}
	}
}

func checkBasic(add func(string, ...any), key string, b *BasicAuthConfig) {
	if b == nil {
		return
	}
	if b.Username == "" || strings.Contains(b.Username, ":") {
		add("%s.username is required and has no ':'", key)
	}
	checkFiles(add, key+".passwordFiles", b.PasswordFiles)
}

// readSecrets reads one secret per file, for the error naming only the file.
func readSecrets(readFile func(string) ([]byte, error), key string, files []string) ([][]byte, error) {
	var out [][]byte
	for _, f := range files {
		b, err := readFile(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			return nil, fmt.Errorf("%s: %s is empty", key, f)
		}
		out = append(out, b)
	}
	return out, nil
}

// SecretFiles returns every list of secret file paths the configuration
// names, for a loader that resolves relative paths.
func (c *Config) SecretFiles() []*[]string {
	var out []*[]string
	basic := func(b *BasicAuthConfig) {
		if b != nil {
			out = append(out, &b.PasswordFiles)
		}
	}
	if a := c.Alertmanager; a != nil {
		if a.Authorization != nil {
			out = append(out, &a.Authorization.CredentialsFiles)
		}
		basic(a.BasicAuth)
	}
	if p := c.PagerDuty; p != nil {
		out = append(out, &p.SigningSecretFiles)
	}
	if o := c.Opsgenie; o != nil {
		if o.Header != nil {
			out = append(out, &o.Header.ValueFiles)
		}
		basic(o.BasicAuth)
	}
	return out
}
