package alert

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDecodeVendorPayloads(t *testing.T) {
	amLabels := func(instance string) map[string]string {
		return map[string]string{
			"alertname": "CheckoutHighErrorRate", "env": "prod", "instance": instance, "job": "checkout",
			"service": "checkout", "severity": "critical", "team": "payments",
		}
	}
	amAnn := func(desc string) map[string]string {
		return map[string]string{
			"description": desc, "runbook_url": "https://runbooks.example.com/checkout/errors",
			"summary": "checkout 5xx rate above 5%",
		}
	}
	const gen = "http://prometheus.example.com:9090/graph?g0.expr=job%3A5xx_ratio%7Bjob%3D%22checkout%22%7D+%3E+0.05&g0.tab=1"
	pdLabels := func(event string) map[string]string {
		return map[string]string{
			"event_type": event, "service": "API Service", "service_id": "PF9KMXH", "priority": "P1",
			"urgency": "high", "incident_key": "d3640fbd41094207a1c11e58e46b1662", "incident_number": "2",
			"teams": "Engineering",
		}
	}
	ogLabels := map[string]string{
		"entity": "10.0.0.5", "source": "nagios", "priority": "P1", "alias": "host-10.0.0.5-down",
		"tiny_id": "23", "tags": "edge,critical",
	}
	ogCreateLabels := map[string]string{"env": "prod", "region": "eu-west-1", "checks": "3"}
	for k, v := range ogLabels {
		ogCreateLabels[k] = v
	}
	const ogURL = "https://app.opsgenie.com/alert/detail/052652ac-5d1c-464a-812a-7dd18bbfba8c"

	for _, tc := range []struct {
		file string
		dec  decoder
		want []Alert
	}{
		{"alertmanager_firing.json", alertmanagerDecoder{}, []Alert{
			{Source: SourceAlertmanager, Key: "6f0b2c9d1e3a4b5c", Status: StatusFiring, Title: "checkout 5xx rate above 5%",
				Text: "10.0.3.17:8080 answers 12% of requests with a 5xx.", Labels: amLabels("10.0.3.17:8080"),
				Annotations: amAnn("10.0.3.17:8080 answers 12% of requests with a 5xx."), URL: gen,
				StartedAt: ts("2024-05-06T10:01:30.123Z"), At: ts("2024-05-06T10:01:30.123Z")},
			{Source: SourceAlertmanager, Key: "a1b2c3d4e5f60718", Status: StatusFiring, Title: "checkout 5xx rate above 5%",
				Text: "10.0.3.18:8080 answers 9% of requests with a 5xx.", Labels: amLabels("10.0.3.18:8080"),
				Annotations: amAnn("10.0.3.18:8080 answers 9% of requests with a 5xx."), URL: gen,
				StartedAt: ts("2024-05-06T10:02:00.456Z"), At: ts("2024-05-06T10:02:00.456Z")},
		}},
		{"alertmanager_resolved.json", alertmanagerDecoder{}, []Alert{
			{Source: SourceAlertmanager, Key: "6f0b2c9d1e3a4b5c", Status: StatusResolved, Title: "checkout 5xx rate above 5%",
				Text: "10.0.3.17:8080 answers 12% of requests with a 5xx.", Labels: amLabels("10.0.3.17:8080"),
				Annotations: amAnn("10.0.3.17:8080 answers 12% of requests with a 5xx."), URL: gen,
				StartedAt: ts("2024-05-06T10:01:30.123Z"), EndedAt: ts("2024-05-06T10:21:30.123Z"), At: ts("2024-05-06T10:21:30.123Z")},
			{Source: SourceAlertmanager, Key: "a1b2c3d4e5f60718", Status: StatusResolved, Title: "checkout 5xx rate above 5%",
				Text: "10.0.3.18:8080 answers 9% of requests with a 5xx.", Labels: amLabels("10.0.3.18:8080"),
				Annotations: amAnn("10.0.3.18:8080 answers 9% of requests with a 5xx."), URL: gen,
				StartedAt: ts("2024-05-06T10:02:00.456Z"), EndedAt: ts("2024-05-06T10:22:00.456Z"), At: ts("2024-05-06T10:22:00.456Z")},
		}},
		{"pagerduty_triggered.json", pagerDutyDecoder{}, []Alert{
			{Source: SourcePagerDuty, Key: "PGR0VU2", Status: StatusFiring, Title: "A little bump in the road",
				Labels: pdLabels("incident.triggered"), URL: "https://acme.pagerduty.com/incidents/PGR0VU2",
				StartedAt: ts("2020-04-09T15:16:27Z"), At: ts("2020-04-09T15:16:27.169Z")},
		}},
		{"pagerduty_resolved.json", pagerDutyDecoder{}, []Alert{
			{Source: SourcePagerDuty, Key: "PGR0VU2", Status: StatusResolved, Title: "A little bump in the road",
				Labels: pdLabels("incident.resolved"), URL: "https://acme.pagerduty.com/incidents/PGR0VU2",
				StartedAt: ts("2020-04-09T15:16:27Z"), EndedAt: ts("2020-04-09T16:02:11.512Z"), At: ts("2020-04-09T16:02:11.512Z")},
		}},
		{"pagerduty_annotated.json", pagerDutyDecoder{}, []Alert{}},
		{"opsgenie_create.json", opsgenieDecoder{webURL: DefaultOpsgenieURL}, []Alert{
			{Source: SourceOpsgenie, Key: "052652ac-5d1c-464a-812a-7dd18bbfba8c", Status: StatusFiring, Title: "HOST 10.0.0.5 down",
				Text: "PING CRITICAL - Packet loss = 100%", Labels: ogCreateLabels, URL: ogURL,
				StartedAt: time.UnixMilli(1420452191104).UTC(), At: time.Unix(0, 1420452193166002000).UTC()},
		}},
		{"opsgenie_acknowledge.json", opsgenieDecoder{webURL: DefaultOpsgenieURL}, []Alert{
			{Source: SourceOpsgenie, Key: "052652ac-5d1c-464a-812a-7dd18bbfba8c", Status: StatusFiring, Title: "HOST 10.0.0.5 down",
				Labels: ogLabels, URL: ogURL,
				StartedAt: time.UnixMilli(1420452191104).UTC(), At: time.Unix(0, 1420452224764002246).UTC()},
		}},
		{"opsgenie_close.json", opsgenieDecoder{webURL: DefaultOpsgenieURL}, []Alert{
			{Source: SourceOpsgenie, Key: "052652ac-5d1c-464a-812a-7dd18bbfba8c", Status: StatusResolved, Title: "HOST 10.0.0.5 down",
				Labels: ogLabels, URL: ogURL, StartedAt: time.UnixMilli(1420452191104).UTC(),
				EndedAt: time.Unix(0, 1420452350126002311).UTC(), At: time.Unix(0, 1420452350126002311).UTC()},
		}},
		{"opsgenie_addnote.json", opsgenieDecoder{webURL: DefaultOpsgenieURL}, []Alert{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := tc.dec.decode(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		dec  decoder
		body string
		want string
	}{
		{"am not json", alertmanagerDecoder{}, `{"alerts": [`, "unexpected EOF"},
		{"am trailing data", alertmanagerDecoder{}, `{"alerts": []} {}`, "data after"},
		{"am no alerts", alertmanagerDecoder{}, `{"version":"4","status":"firing"}`, "no alerts array"},
		{"am bad status", alertmanagerDecoder{}, `{"alerts":[{"status":"pending","fingerprint":"x"}]}`, `alerts[0]: status "pending"`},
		{"am bad time", alertmanagerDecoder{}, `{"alerts":[{"status":"firing","fingerprint":"x","startsAt":"yesterday"}]}`, "parsing time"},
		{"am no key", alertmanagerDecoder{}, `{"alerts":[{"status":"firing"}]}`, "neither a fingerprint nor labels"},
		{"am wrong type", alertmanagerDecoder{}, `{"alerts":{}}`, "cannot unmarshal object"},
		{"pd no event", pagerDutyDecoder{}, `{"messages":[]}`, "not a PagerDuty v3 webhook"},
		{"pd no event type", pagerDutyDecoder{}, `{"event":{"resource_type":"incident"}}`, "event_type is missing"},
		{"pd no incident id", pagerDutyDecoder{}, `{"event":{"event_type":"incident.triggered","resource_type":"incident","data":{"type":"incident","status":"triggered"}}}`, "data.id is missing"},
		{"pd odd status", pagerDutyDecoder{}, `{"event":{"event_type":"incident.triggered","resource_type":"incident","data":{"id":"P1","type":"incident","status":"exploded"}}}`, "not an incident status"},
		{"og no alert", opsgenieDecoder{}, `{"action":"Create"}`, "not an Opsgenie webhook payload"},
		{"og no key", opsgenieDecoder{}, `{"action":"Create","alert":{"message":"x"}}`, "neither alertId nor alias"},
		{"og bad time", opsgenieDecoder{}, `{"action":"Create","alert":{"alertId":"a","createdAt":"soon"}}`, "not a timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.dec.decode([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDecodeFallbacks(t *testing.T) {
	// An Alertmanager alert without a fingerprint (older senders) is keyed
	// by its labels, the same way every time; without a summary its title
	// is the alertname.
	body := `{"alerts":[{"status":"firing","labels":{"alertname":"Down","app":"a"}},{"status":"firing","labels":{"app":"a","alertname":"Down"}}]}`
	got, err := alertmanagerDecoder{}.decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Key == "" || got[0].Key != got[1].Key || !strings.HasPrefix(got[0].Key, "labels:") {
		t.Errorf("keys %q %q: want the same labels: key", got[0].Key, got[1].Key)
	}
	if got[0].Title != "Down" {
		t.Errorf("title %q, want the alertname", got[0].Title)
	}
	// Opsgenie: no alertId, the alias is the key; timestamps in seconds.
	og, err := opsgenieDecoder{}.decode([]byte(`{"action":"close","alert":{"alias":"disk-full","message":" disk full ","createdAt":1700000000}}`))
	if err != nil {
		t.Fatal(err)
	}
	if og[0].Key != "disk-full" || og[0].Status != StatusResolved || og[0].Title != "disk full" || og[0].URL != "" ||
		!og[0].StartedAt.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("opsgenie alias alert = %+v", og[0])
	}
}
