package gitops

import (
	"strings"
	"testing"
)

// Environments get a did-you-mean like apps do: common aliases of a
// configured environment, a name one starts with, and typos (issue 14).
func TestUnknownEnvironmentSuggestions(t *testing.T) {
	c := &Catalog{Envs: []Environment{{Name: "dev"}, {Name: "staging"}, {Name: "prod"}}}
	for name, want := range map[string]string{
		"production":  `(did you mean "prod"?)`,
		"Production":  `(did you mean "prod"?)`,
		"prd":         `(did you mean "prod"?)`,
		"live":        `(did you mean "prod"?)`,
		"stage":       `(did you mean "staging"?)`,
		"stg":         `(did you mean "staging"?)`,
		"development": `(did you mean "dev"?)`,
		"prdo":        `(did you mean "prod"?)`,
		"stagin":      `(did you mean "staging"?)`,
		"qa":          "",
		"eu-west-1":   "",
	} {
		_, err := c.Env(name)
		if err == nil {
			t.Fatalf("Env(%q) succeeded", name)
		}
		msg := err.Error()
		if want == "" {
			if strings.Contains(msg, "did you mean") {
				t.Errorf("Env(%q): %q suggests a name", name, msg)
			}
			continue
		}
		if !strings.Contains(msg, want) || !strings.Contains(msg, "environments: dev, staging, prod") {
			t.Errorf("Env(%q): %q, want it to contain %q", name, msg, want)
		}
	}
	// An alias is suggested only for an environment the catalog has.
	c = &Catalog{Envs: []Environment{{Name: "development"}, {Name: "production"}}}
	for name, want := range map[string]string{"prod": "production", "dev": "development", "stage": ""} {
		_, err := c.Env(name)
		got := err.Error()
		if want == "" && strings.Contains(got, "did you mean") || want != "" && !strings.Contains(got, `(did you mean "`+want+`"?)`) {
			t.Errorf("Env(%q) = %q, want suggestion %q", name, got, want)
		}
	}
}
