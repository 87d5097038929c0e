package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// LoadForCheck returns what could be read next to the problems, so that
// `shipbot check` can go on; Where and HasProblem point at the keys.
func TestLoadForCheck(t *testing.T) {
	p := filepath.Join(t.TempDir(), "shipbot.yaml")
	data := "repo: {url: env.git}\nsigning: {mode: off}\npolicy: {policy: policy.csv}\nslack:\n  mode: sockets\nenvironments: [{name: dev}]\napps:\n  web:\n    layout: manifests\n    image: r.example.com/web\n    envs: {dev: {path: web}}\n"
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadForCheck(p)
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || cfg == nil {
		t.Fatalf("cfg %v, err %v: want the config and its one problem", cfg, err)
	}
	if !cfg.HasProblem("apps.web") || !cfg.HasProblem("apps") || cfg.HasProblem("policy") || cfg.HasProblem("apps.we") {
		t.Errorf("HasProblem: problems at %q", cfg.problems)
	}
	if got := cfg.Where("slack.mode"); got != "slack.mode (line 5)" {
		t.Errorf("Where(slack.mode) = %q", got)
	}
	if got := cfg.Where("argo.tokenEnv"); got != "argo.tokenEnv" {
		t.Errorf("Where of a key the file does not set = %q", got)
	}
	if cfg.Slack["SHIPBOT_SLACK_MODE"] != "sockets" || SlackKey("SHIPBOT_SLACK_MODE") != "slack.mode" || SlackKey("SHIPBOT_SLACK_BOT_TOKEN") != "slack.botTokenFile" {
		t.Errorf("slack settings %v", cfg.Slack)
	}
	if _, err := Load(p); !errors.As(err, &ce) {
		t.Errorf("Load of a config with a problem: %v", err)
	}
	if cfg, err := LoadForCheck(filepath.Join(t.TempDir(), "none.yaml")); cfg != nil || err == nil {
		t.Errorf("a missing file: %v, %v", cfg, err)
	}
}
