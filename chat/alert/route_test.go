package alert

import (
	"strings"
	"testing"
)

func TestRouter(t *testing.T) {
	routes := []Route{
		{Name: "pd-api", Match: Match{Sources: []Source{SourcePagerDuty}, Labels: map[string]string{"service": "API Service"}}, App: "api", Env: "prod"},
		{Name: "namespace", Match: Match{LabelRegex: map[string]string{"namespace": `(?P<app>[a-z]+)-(?P<env>prod|staging)`}}, App: "${app}", Env: "$env"},
		{Name: "host-down", Match: Match{TextRegex: `HOST (?P<host>\S+) down`}, App: "${host}", Env: "${env}"},
		{Name: "runbook", Match: Match{TextRegex: `runbook_url: https://runbooks\.example\.com/(?P<app>[a-z]+)/`}, App: "$app", Env: "prod"},
		{Name: "from-labels", Match: Match{Labels: map[string]string{"team": "payments"}}, App: "${service}", Env: "${env}"},
		{Name: "with-why", Match: Match{Labels: map[string]string{"team": "shop"}, TextRegex: `incident: (?P<incident>https://\S+)`}, App: "${service}", Env: "prod", Why: "${incident}"},
	}
	r, err := NewRouter(routes, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		alert Alert
		want  Target
		ok    bool
	}{
		{"label on the right source", Alert{Source: SourcePagerDuty, Labels: map[string]string{"service": "API Service"}},
			Target{App: "api", Env: "prod", Route: "routes[0] (pd-api)"}, true},
		{"label on another source falls through", Alert{Source: SourceOpsgenie, Labels: map[string]string{"service": "API Service"}},
			Target{}, false},
		{"label regex captures app and env", Alert{Source: SourceAlertmanager, Labels: map[string]string{"namespace": "checkout-staging"}},
			Target{App: "checkout", Env: "staging", Route: "routes[1] (namespace)"}, true},
		{"label regex is anchored", Alert{Source: SourceAlertmanager, Labels: map[string]string{"namespace": "x-checkout-staging-y"}},
			Target{}, false},
		{"text regex captures the host, env from a label", Alert{Source: SourceOpsgenie, Title: "HOST 10.0.0.5 down", Labels: map[string]string{"env": "prod"}},
			Target{App: "10.0.0.5", Env: "prod", Route: "routes[2] (host-down)"}, true},
		{"text regex searches the description", Alert{Source: SourceAlertmanager, Title: "ping", Text: "HOST db-1 down since 10:00", Labels: map[string]string{"env": "prod"}},
			Target{App: "db-1", Env: "prod", Route: "routes[2] (host-down)"}, true},
		{"missing env skips the route", Alert{Source: SourceOpsgenie, Title: "HOST 10.0.0.5 down"},
			Target{}, false},
		{"annotations are searched", Alert{Source: SourceAlertmanager, Title: "x", Annotations: map[string]string{"runbook_url": "https://runbooks.example.com/cart/oom"}},
			Target{App: "cart", Env: "prod", Route: "routes[3] (runbook)"}, true},
		{"first match wins", Alert{Source: SourceAlertmanager, Labels: map[string]string{"namespace": "cart-prod", "team": "payments", "service": "checkout", "env": "prod"}},
			Target{App: "cart", Env: "prod", Route: "routes[1] (namespace)"}, true},
		{"labels from the alert", Alert{Source: SourceAlertmanager, Labels: map[string]string{"team": "payments", "service": "checkout", "env": "prod"}},
			Target{App: "checkout", Env: "prod", Route: "routes[4] (from-labels)"}, true},
		{"hostile expansion is refused", Alert{Source: SourceAlertmanager, Labels: map[string]string{"team": "payments", "service": "checkout; rm -rf", "env": "prod"}},
			Target{}, false},
		{"why from an annotation", Alert{Source: SourceAlertmanager, Labels: map[string]string{"team": "shop", "service": "cart"}, Annotations: map[string]string{"incident": "https://acme.pagerduty.com/incidents/PGR0VU2"}},
			Target{App: "cart", Env: "prod", Route: "routes[5] (with-why)", Why: "https://acme.pagerduty.com/incidents/PGR0VU2"}, true},
		{"unmapped", Alert{Source: SourceAlertmanager, Title: "disk full", Labels: map[string]string{"team": "storage"}},
			Target{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := r.Route(tc.alert)
			if ok != tc.ok || got != tc.want {
				t.Errorf("Route = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestRouterRejectsBadRoutes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route Route
		want  string
	}{
		{"bad text regex", Route{Match: Match{TextRegex: `HOST (?P<host>\S+ down`}, App: "a", Env: "b"}, "routes[0]: match.textRegex: error parsing regexp: missing closing )"},
		{"bad label regex", Route{Name: "ns", Match: Match{LabelRegex: map[string]string{"namespace": `[a-`}}, App: "a", Env: "b"}, "routes[0] (ns): match.labelRegex.namespace: error parsing regexp"},
		{"unknown source", Route{Match: Match{Sources: []Source{"nagios"}}, App: "a", Env: "b"}, `unknown source "nagios"`},
		{"no app", Route{Env: "prod"}, "app: required"},
		{"no env", Route{App: "x"}, "env: required"},
		{"unterminated reference", Route{App: "${app", Env: "prod"}, "${ without }"},
		{"empty reference", Route{App: "${}", Env: "prod"}, "empty ${}"},
		{"lone dollar", Route{App: "a$", Env: "prod"}, "$ must be followed"},
		{"invalid literal", Route{App: "check out", Env: "prod"}, "not a valid name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRouter([]Route{tc.route}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	lookup := func(n string) string { return map[string]string{"app": "cart", "a_b": "x"}[n] }
	for in, want := range map[string]string{
		"plain": "plain", "${app}": "cart", "$app-1": "cart-1", "pre-${ app }-post": "pre-cart-post",
		"$$app": "$app", "${a_b}$a_b": "xx", "${missing}": "",
	} {
		tp, err := parseTemplate(in)
		if err != nil {
			if in == "$$app" {
				continue // literal-only and not a valid name: refused at load
			}
			t.Fatalf("%q: %v", in, err)
		}
		if got := tp.expand(lookup); got != want {
			t.Errorf("%q expands to %q, want %q", in, got, want)
		}
	}
	if _, err := parseTemplate("$$app"); err == nil {
		t.Error(`"$$app" is a literal "$app", which is not a valid name: want an error`)
	}
}
