package alert

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// alertmanagerPayload is Alertmanager's webhook_config payload (version
// "4"). Grafana's webhook contact point sends the same fields and more.
type alertmanagerPayload struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"`
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []alertmanagerAlert `json:"alerts"`
}

type alertmanagerAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// alertmanagerDecoder reads Alertmanager's webhook payload: one alert per
// element of alerts.
type alertmanagerDecoder struct{}

func (alertmanagerDecoder) source() Source { return SourceAlertmanager }

func (alertmanagerDecoder) decode(body []byte) ([]Alert, error) {
	var p alertmanagerPayload
	if err := strictJSON(body, &p); err != nil {
		return nil, err
	}
	if p.Alerts == nil {
		return nil, fmt.Errorf("no alerts array: not an Alertmanager webhook payload")
	}
	out := make([]Alert, 0, len(p.Alerts))
	for i, a := range p.Alerts {
		status, err := alertmanagerStatus(a.Status)
		if err != nil {
			return nil, fmt.Errorf("alerts[%d]: %w", i, err)
		}
		labels := a.Labels
		if len(labels) == 0 {
			labels = p.CommonLabels
		}
		annotations := a.Annotations
		if len(annotations) == 0 {
			annotations = p.CommonAnnotations
		}
		key := a.Fingerprint
		if key == "" {
			if len(labels) == 0 {
				return nil, fmt.Errorf("alerts[%d]: neither a fingerprint nor labels", i)
			}
			key = labelsHash(labels)
		}
		al := Alert{
			Source:      SourceAlertmanager,
			Key:         key,
			Status:      status,
			Title:       firstNonEmpty(annotations["summary"], annotations["title"], labels["alertname"], "alert "+key),
			Text:        firstNonEmpty(annotations["description"], annotations["message"]),
			Labels:      labels,
			Annotations: annotations,
			URL:         firstNonEmpty(a.GeneratorURL, p.ExternalURL),
			StartedAt:   a.StartsAt,
			At:          a.StartsAt,
		}
		if status == StatusResolved {
			al.EndedAt = a.EndsAt
			al.At = a.EndsAt
		}
		out = append(out, al)
	}
	return out, nil
}

func alertmanagerStatus(s string) (Status, error) {
	switch s {
	case "firing":
		return StatusFiring, nil
	case "resolved":
		return StatusResolved, nil
	}
	return "", fmt.Errorf("status %q is neither firing nor resolved", clip(s, 40))
}

// labelsHash identifies an alert by its label set, as Alertmanager's
// fingerprint does (not the same function: only stable within shipbot).
func labelsHash(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%q=%q\x00", k, labels[k])
	}
	return "labels:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// strictJSON decodes one JSON value and refuses trailing data.
func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x = strings.TrimSpace(x); x != "" {
			return x
		}
	}
	return ""
}

// clip shortens s to at most n bytes (on a rune boundary) for messages and
// logs.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
