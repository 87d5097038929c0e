package alert

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzDecode feeds every decoder the same bytes: none panics, and every
// alert it returns is usable (a key, a known status, one source).
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"alerts":[{"status":"firing","labels":{"a":"b"}}]}`))
	f.Add([]byte(`{"event":{"event_type":"incident.resolved","resource_type":"incident","data":{"id":"P","status":"resolved"}}}`))
	f.Add([]byte(`{"action":"Close","alert":{"alias":"x","updatedAt":"1.5e18"}}`))
	decoders := []decoder{alertmanagerDecoder{}, pagerDutyDecoder{}, opsgenieDecoder{webURL: DefaultOpsgenieURL}}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, d := range decoders {
			alerts, err := d.decode(body)
			if err != nil {
				if alerts != nil {
					t.Fatalf("%s: alerts and an error", d.source())
				}
				if !utf8.ValidString(err.Error()) && utf8.Valid(body) {
					t.Fatalf("%s: error is not UTF-8: %q", d.source(), err)
				}
				continue
			}
			if alerts == nil {
				t.Fatalf("%s: nil alerts without an error", d.source())
			}
			for _, a := range alerts {
				if a.Source != d.source() || a.Key == "" || (a.Status != StatusFiring && a.Status != StatusResolved) {
					t.Fatalf("%s: unusable alert %+v", d.source(), a)
				}
				if a.Status == StatusFiring && !a.EndedAt.IsZero() {
					t.Fatalf("%s: firing alert with an end %v", d.source(), a.EndedAt)
				}
			}
		}
	})
}

// FuzzRoute: no alert text makes a route produce an invalid name.
func FuzzRoute(f *testing.F) {
	r, err := NewRouter([]Route{
		{Match: Match{TextRegex: `HOST (?P<host>\S+) down`}, App: "${host}", Env: "${env}"},
		{Match: Match{LabelRegex: map[string]string{"ns": `(?P<app>.+)-(?P<env>.+)`}}, App: "$app", Env: "$env"},
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("HOST 10.0.0.5 down", "prod", "a-b")
	f.Add("HOST ../../etc down", "pr od", "x\n-y")
	f.Fuzz(func(t *testing.T, title, env, ns string) {
		got, ok := r.Route(Alert{Title: title, Labels: map[string]string{"env": env, "ns": ns}})
		if ok && (!nameRe.MatchString(got.App) || !nameRe.MatchString(got.Env)) {
			t.Fatalf("route produced %+v", got)
		}
	})
}
