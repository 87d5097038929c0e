package policy

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/gitops"
)

// pagerDuty is a client of the PagerDuty REST API v2.
type pagerDuty struct {
	svc      *apiService
	from     string              // From header for notes
	services map[string][]string // app -> allowed service ids or names
}

// pdIncident is the part of a PagerDuty incident shipbot reads.
type pdIncident struct {
	ID      string `json:"id"`
	Status  string `json:"status"` // triggered, acknowledged, resolved
	Service struct {
		ID      string `json:"id"`
		Summary string `json:"summary"` // the service's name
	} `json:"service"`
}

// pdOpen are the incident statuses that justify a change.
var pdOpen = []string{"triggered", "acknowledged"}

// incident reads GET /incidents/{id}.
func (p *pagerDuty) incident(ctx context.Context, id string) (*pdIncident, error) {
	if !pdIDRe.MatchString(id) {
		return nil, gitops.Userf("%q is not a PagerDuty incident ID", display(id))
	}
	r, err := p.svc.call(ctx, http.MethodGet, []string{"incidents", id}, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	if r.status == http.StatusNotFound {
		return nil, &gitops.UserError{
			Message: fmt.Sprintf("PagerDuty has no incident %s (or shipbot's token can't see it)", id),
			Err:     fmt.Errorf("GET %s: HTTP 404: %s", r.path, p.svc.snippet(r.body)),
		}
	}
	if !r.ok() {
		return nil, p.svc.statusError(r, "read incidents")
	}
	var out struct {
		Incident *pdIncident `json:"incident"`
	}
	if err := p.svc.decode(r, &out); err != nil {
		return nil, err
	}
	if out.Incident == nil || out.Incident.Status == "" {
		return nil, &gitops.UserError{
			Message: "PagerDuty sent an answer shipbot can't read",
			Err:     fmt.Errorf("GET %s: HTTP %d: no incident status: %s", r.path, r.status, p.svc.snippet(r.body)),
		}
	}
	return out.Incident, nil
}

func (p *pagerDuty) check(ctx context.Context, req gitops.Request, env gitops.Environment, id string) (liveResult, error) {
	inc, err := p.incident(ctx, id)
	if err != nil {
		return liveResult{}, err
	}
	ref := id
	if pdIDRe.MatchString(inc.ID) {
		ref = inc.ID // an incident number answers with the incident's ID
	}
	status := display(inc.Status)
	if !hasFold(pdOpen, inc.Status) {
		return liveResult{}, gitops.Userf("incident %s is %s; %s needs an open incident (triggered or acknowledged)",
			ref, status, changePhrase(req, env))
	}
	if allowed, ok := p.allowedServices(req.App); ok {
		if !hasFold(allowed, inc.Service.Summary) && !slices.Contains(allowed, inc.Service.ID) {
			return liveResult{}, gitops.Userf("incident %s is on the PagerDuty service %q; %s of %s needs an incident on one of: %s",
				ref, display(inc.Service.Summary), changePhrase(req, env), display(req.App), strings.Join(allowed, ", "))
		}
	}
	return liveResult{ref: ref, state: inc.Status}, nil
}

// allowedServices is the list of services for app, if the app is checked.
func (p *pagerDuty) allowedServices(app string) ([]string, bool) {
	if l, ok := p.services[app]; ok {
		return l, true
	}
	l, ok := p.services["*"]
	return l, ok
}

// note adds a note to an incident: POST /incidents/{id}/notes with the From
// header PagerDuty requires.
func (p *pagerDuty) note(ctx context.Context, id, text string) error {
	if p.from == "" {
		return fmt.Errorf("PagerDuty: no note on incident %s: pagerduty.fromEmail is not set: %w", id, ErrNotConfigured)
	}
	if !pdIDRe.MatchString(id) {
		return gitops.Userf("%q is not a PagerDuty incident ID", display(id))
	}
	body := map[string]any{"note": map[string]string{"content": text}}
	r, err := p.svc.call(ctx, http.MethodPost, []string{"incidents", id, "notes"}, nil, http.Header{"From": {p.from}}, body)
	if err != nil {
		return err
	}
	if r.status == http.StatusNotFound {
		return &gitops.UserError{
			Message: fmt.Sprintf("PagerDuty has no incident %s (or shipbot's token can't see it)", id),
			Err:     fmt.Errorf("POST %s: HTTP 404: %s", r.path, p.svc.snippet(r.body)),
		}
	}
	if !r.ok() {
		return p.svc.statusError(r, "add notes to incidents")
	}
	return nil
}
