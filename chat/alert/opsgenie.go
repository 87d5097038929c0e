package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// opsgeniePayload is Opsgenie's outgoing webhook (alert action data).
type opsgeniePayload struct {
	Action string `json:"action"`
	Alert  *struct {
		AlertID     string          `json:"alertId"`
		Message     string          `json:"message"`
		Description string          `json:"description"`
		Tags        []string        `json:"tags"`
		Details     map[string]any  `json:"details"`
		Entity      string          `json:"entity"`
		Alias       string          `json:"alias"`
		Source      string          `json:"source"`
		Priority    string          `json:"priority"`
		TinyID      string          `json:"tinyId"`
		CreatedAt   json.RawMessage `json:"createdAt"`
		UpdatedAt   json.RawMessage `json:"updatedAt"`
	} `json:"alert"`
	IntegrationName string `json:"integrationName"`
}

// opsgenieDecoder reads Opsgenie's outgoing webhooks. Create, Acknowledge,
// UnAcknowledge, Escalate and SnoozeEnded mean the alert is open (firing);
// Close and Delete mean it is resolved. Other actions (notes, tags,
// owners, custom actions, ...) do not say whether the alert is open and
// are ignored.
type opsgenieDecoder struct {
	webURL string // e.g. https://app.opsgenie.com: links are webURL/alert/detail/<alertId>
}

func (opsgenieDecoder) source() Source { return SourceOpsgenie }

var opsgenieFiring = []string{"create", "acknowledge", "unacknowledge", "escalate", "escalatenext", "snoozeended"}
var opsgenieResolved = []string{"close", "delete"}

func (d opsgenieDecoder) decode(body []byte) ([]Alert, error) {
	var p opsgeniePayload
	if err := strictJSON(body, &p); err != nil {
		return nil, err
	}
	if p.Action == "" || p.Alert == nil {
		return nil, errors.New("no action or alert: not an Opsgenie webhook payload")
	}
	action := strings.ToLower(p.Action)
	var status Status
	switch {
	case slices.Contains(opsgenieFiring, action):
		status = StatusFiring
	case slices.Contains(opsgenieResolved, action):
		status = StatusResolved
	default:
		return []Alert{}, nil
	}
	al := p.Alert
	key := firstNonEmpty(al.AlertID, al.Alias)
	if key == "" {
		return nil, errors.New("alert has neither alertId nor alias")
	}
	labels := make(map[string]string, len(al.Details)+6)
	for k, v := range al.Details {
		labels[k] = detailString(v)
	}
	set := func(k, v string) {
		if v != "" {
			labels[k] = v
		}
	}
	set("entity", al.Entity)
	set("source", al.Source)
	set("priority", al.Priority)
	set("alias", al.Alias)
	set("tiny_id", al.TinyID)
	set("tags", strings.Join(al.Tags, ","))
	created, err := epoch(al.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("alert.createdAt: %w", err)
	}
	updated, err := epoch(al.UpdatedAt)
	if err != nil {
		return nil, fmt.Errorf("alert.updatedAt: %w", err)
	}
	a := Alert{
		Source:    SourceOpsgenie,
		Key:       key,
		Status:    status,
		Title:     firstNonEmpty(al.Message, "Opsgenie alert "+key),
		Text:      strings.TrimSpace(al.Description),
		Labels:    labels,
		StartedAt: created,
		At:        updated,
	}
	if status == StatusResolved {
		a.EndedAt = updated
	}
	if d.webURL != "" && al.AlertID != "" {
		a.URL = strings.TrimSuffix(d.webURL, "/") + "/alert/detail/" + url.PathEscape(al.AlertID)
	}
	return []Alert{a}, nil
}

// detailString renders one details value: strings as they are, anything
// else as JSON.
func detailString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// epoch reads Opsgenie's timestamps: numbers since the Unix epoch whose
// unit varies (createdAt in milliseconds, updatedAt in nanoseconds in the
// documented examples); the magnitude tells the unit. Absent or null is
// the zero time.
func epoch(raw json.RawMessage) (time.Time, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return time.Time{}, nil
	}
	s = strings.Trim(s, `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > math.MaxInt64/2 {
			return time.Time{}, fmt.Errorf("%q is not a timestamp", clip(s, 40))
		}
		n = int64(f)
	}
	switch {
	case n < 0:
		return time.Time{}, fmt.Errorf("%d is not a timestamp", n)
	case n >= 1e17:
		return time.Unix(0, n).UTC(), nil
	case n >= 1e14:
		return time.UnixMicro(n).UTC(), nil
	case n >= 1e11:
		return time.UnixMilli(n).UTC(), nil
	default:
		return time.Unix(n, 0).UTC(), nil
	}
}
