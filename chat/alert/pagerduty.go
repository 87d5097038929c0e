package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// pagerDutyPayload is a PagerDuty v3 webhook: one event per delivery.
type pagerDutyPayload struct {
	Event *struct {
		ID           string          `json:"id"`
		EventType    string          `json:"event_type"`
		ResourceType string          `json:"resource_type"`
		OccurredAt   time.Time       `json:"occurred_at"`
		Data         json.RawMessage `json:"data"`
	} `json:"event"`
}

// pagerDutyIncident is the part of event.data (when its type is incident)
// shipbot reads.
type pagerDutyIncident struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	HTMLURL     string    `json:"html_url"`
	Number      int64     `json:"number"`
	Status      string    `json:"status"` // triggered, acknowledged, resolved
	IncidentKey string    `json:"incident_key"`
	CreatedAt   time.Time `json:"created_at"`
	Title       string    `json:"title"`
	Urgency     string    `json:"urgency"`
	Service     *pdRef    `json:"service"`
	Priority    *pdRef    `json:"priority"`
	Teams       []pdRef   `json:"teams"`
}

type pdRef struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
}

// pagerDutyDecoder reads PagerDuty v3 webhooks. Events about an incident
// (event.data of type incident: triggered, acknowledged, unacknowledged,
// reopened, escalated, reassigned, delegated, priority_updated, resolved)
// become one alert whose status follows the incident's status; other
// events (notes, responders, status updates, services, pings) carry no
// incident state and are ignored.
type pagerDutyDecoder struct{}

func (pagerDutyDecoder) source() Source { return SourcePagerDuty }

func (pagerDutyDecoder) decode(body []byte) ([]Alert, error) {
	var p pagerDutyPayload
	if err := strictJSON(body, &p); err != nil {
		return nil, err
	}
	ev := p.Event
	if ev == nil {
		return nil, errors.New("no event object: not a PagerDuty v3 webhook")
	}
	if ev.EventType == "" {
		return nil, errors.New("event.event_type is missing")
	}
	if ev.ResourceType != "incident" || len(ev.Data) == 0 || string(ev.Data) == "null" {
		return []Alert{}, nil
	}
	var inc pagerDutyIncident
	if err := json.Unmarshal(ev.Data, &inc); err != nil {
		return nil, fmt.Errorf("event.data: %w", err)
	}
	if inc.Type != "incident" && !(inc.Type == "" && inc.Status != "") {
		return []Alert{}, nil // incident_note, incident_responder, ...
	}
	if inc.ID == "" {
		return nil, errors.New("event.data.id is missing")
	}
	var status Status
	switch {
	case inc.Status == "resolved" || ev.EventType == "incident.resolved":
		status = StatusResolved
	case inc.Status == "triggered" || inc.Status == "acknowledged":
		status = StatusFiring
	default:
		return nil, fmt.Errorf("event.data.status %q is not an incident status", clip(inc.Status, 40))
	}
	labels := map[string]string{"event_type": ev.EventType}
	set := func(k, v string) {
		if v != "" {
			labels[k] = v
		}
	}
	if inc.Service != nil {
		set("service", inc.Service.Summary)
		set("service_id", inc.Service.ID)
	}
	if inc.Priority != nil {
		set("priority", inc.Priority.Summary)
	}
	set("urgency", inc.Urgency)
	set("incident_key", inc.IncidentKey)
	if inc.Number != 0 {
		set("incident_number", strconv.FormatInt(inc.Number, 10))
	}
	var teams []string
	for _, t := range inc.Teams {
		if t.Summary != "" {
			teams = append(teams, t.Summary)
		}
	}
	set("teams", strings.Join(teams, ","))
	a := Alert{
		Source:    SourcePagerDuty,
		Key:       inc.ID,
		Status:    status,
		Title:     firstNonEmpty(inc.Title, "PagerDuty incident "+inc.ID),
		Labels:    labels,
		URL:       inc.HTMLURL,
		StartedAt: inc.CreatedAt,
		At:        ev.OccurredAt,
	}
	if status == StatusResolved {
		a.EndedAt = ev.OccurredAt
	}
	return []Alert{a}, nil
}
