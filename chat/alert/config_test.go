package alert

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"
)

func TestParseConfigExample(t *testing.T) {
	c, err := ParseConfig(readTestdata(t, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 4*time.Second || c.MaxBodyBytes != 1<<20 || c.Incidents.ResolvedTTL != time.Hour || c.Incidents.StaleAfter != 24*time.Hour {
		t.Errorf("durations and limits: %+v", c)
	}
	if c.Alertmanager.Authorization.Type != "Bearer" || len(c.PagerDuty.SigningSecretFiles) != 2 || c.Opsgenie.Header.Name != "X-Shipbot-Token" {
		t.Errorf("sources: %+v %+v %+v", c.Alertmanager, c.PagerDuty, c.Opsgenie)
	}
	if len(c.Routes) != 3 || c.Routes[0].Match.LabelRegex["namespace"] == "" || c.Routes[1].App != "${host}" {
		t.Errorf("routes: %+v", c.Routes)
	}
	r, err := NewRouter(c.Routes, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := r.Route(Alert{Source: SourceAlertmanager, Labels: map[string]string{"team": "payments", "namespace": "cart-staging"}})
	if !ok || got.App != "cart" || got.Env != "staging" {
		t.Errorf("example route: %+v %v", got, ok)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != DefaultTimeout || c.MaxBodyBytes != DefaultMaxBodyBytes || c.Incidents.MaxOpen != 1000 || c.Incidents.MaxAlerts != 500 {
		t.Errorf("defaults: %+v", c)
	}
	c, err = ParseConfig([]byte("alertmanager: {authorization: {credentialsFiles: [/t]}}\nopsgenie: {header: {name: X-T, valueFiles: [/o]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Alertmanager.Authorization.Type != "Bearer" || c.Opsgenie.WebURL != DefaultOpsgenieURL {
		t.Errorf("defaults: %+v %+v", c.Alertmanager.Authorization, c.Opsgenie)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "alertmanager: {bearerToken: x}\n", []string{"field bearerToken not found"}},
		{"bad regex at load", "routes:\n  - name: host-down\n    match: {textRegex: 'HOST (\\S+ down'}\n    app: x\n    env: prod\n",
			[]string{"routes[0] (host-down): match.textRegex: error parsing regexp: missing closing )"}},
		{"alertmanager without credentials", "alertmanager: {}\n", []string{"alertmanager: set authorization or basicAuth"}},
		{"opsgenie without credentials", "opsgenie: {webURL: https://app.eu.opsgenie.com}\n", []string{"opsgenie: set header or basicAuth"}},
		{"pagerduty without secrets", "pagerduty: {}\n", []string{"pagerduty.signingSecretFiles: at least one file is required"}},
		{"empty file name", "pagerduty: {signingSecretFiles: ['']}\n", []string{"pagerduty.signingSecretFiles[0] is empty"}},
		{"basic auth without username", "alertmanager: {basicAuth: {passwordFiles: [/p]}}\n", []string{"alertmanager.basicAuth.username is required"}},
		{"bad scheme", "alertmanager: {authorization: {type: 'Bear er', credentialsFiles: [/t]}}\n", []string{"is not an HTTP auth scheme"}},
		{"basic as authorization", "alertmanager: {authorization: {type: Basic, credentialsFiles: [/t]}}\n", []string{"use basicAuth instead"}},
		{"bad header", "opsgenie: {header: {name: 'X Token', valueFiles: [/t]}}\n", []string{"is not an HTTP header name"}},
		{"reserved header", "opsgenie: {header: {name: content-type, valueFiles: [/t]}}\n", []string{"cannot carry a secret"}},
		{"http web URL", "opsgenie: {header: {name: X-T, valueFiles: [/t]}, webURL: 'http://app.opsgenie.com'}\n", []string{"is not an https URL"}},
		{"negative", "timeout: -1s\nincidents: {maxOpen: -1}\n", []string{"timeout must not be negative", "limits must not be negative"}},
		{"all problems at once", "alertmanager: {}\npagerduty: {}\nroutes: [{app: x}]\n",
			[]string{"alertmanager: set", "pagerduty.signingSecretFiles", "routes[0]: env: required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestNewReadsSecrets(t *testing.T) {
	cfg, err := ParseConfig([]byte("pagerduty: {signingSecretFiles: [/s/pd-new, /s/missing]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"/s/pd-new": "top-secret-value\n", "/s/empty": " \n"}
	readFile := func(name string) ([]byte, error) {
		s, ok := files[name]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	_, err = New(cfg, &FakeSink{}, Options{ReadFile: readFile})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/s/missing") || strings.Contains(err.Error(), "top-secret") {
		t.Errorf("missing file: %v", err)
	}
	cfg.PagerDuty.SigningSecretFiles = []string{"/s/empty"}
	if _, err = New(cfg, &FakeSink{}, Options{ReadFile: readFile}); err == nil || !strings.Contains(err.Error(), "/s/empty is empty") {
		t.Errorf("empty secret: %v", err)
	}
	if _, err := New(Config{}, nil, Options{}); err == nil {
		t.Error("New without a sink: no error")
	}
}
