package policy

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/shipbot/shipbot/gitops"
)

// KindOpsgenie is the kind of a justification that references an Opsgenie
// alert (LiveJustifier recognises it; PatternJustifier does not).
const KindOpsgenie = "opsgenie-alert"

var (
	// An alert ID is a UUID, in newer accounts followed by "-<millis>".
	opsgenieIDRe   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(-[0-9]{1,20})?$`)
	opsgenieTinyRe = regexp.MustCompile(`^[0-9]{1,12}$`)
	opsgenieTabRe  = regexp.MustCompile(`^[a-z][a-z-]{0,31}$`)
)

// opsgenieHosts are the web app hosts of Opsgenie (US and EU); an account's
// own host is <account>.<one of these>.
var opsgenieHosts = []string{"app.opsgenie.com", "app.eu.opsgenie.com"}

// opsgenieReference detects an Opsgenie alert reference in one token:
// opsgenie:<tiny ID>, or an alert URL
// https://[<account>.]app[.eu].opsgenie.com/alert/detail/<ID>[/<tab>][/].
// The URL rules are PatternJustifier's: https, no user info, no port, no
// unusual escapes, the account one DNS label.
func opsgenieReference(tok string) (string, bool) {
	if len(tok) > len("opsgenie:") && strings.EqualFold(tok[:len("opsgenie:")], "opsgenie:") {
		tiny := tok[len("opsgenie:"):]
		return tiny, opsgenieTinyRe.MatchString(tiny)
	}
	if !strings.HasPrefix(strings.ToLower(tok), "https://") {
		return "", false
	}
	u, err := url.Parse(tok)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" || u.Opaque != "" || u.RawPath != "" {
		return "", false
	}
	if !isOpsgenieHost(strings.ToLower(u.Hostname())) {
		return "", false
	}
	rest, ok := strings.CutPrefix(u.Path, "/alert/detail/")
	if !ok {
		return "", false
	}
	rest = strings.TrimSuffix(rest, "/")
	id, tab, hasTab := strings.Cut(rest, "/")
	if hasTab && !opsgenieTabRe.MatchString(tab) {
		return "", false
	}
	return id, opsgenieIDRe.MatchString(id)
}

func isOpsgenieHost(host string) bool {
	for _, h := range opsgenieHosts {
		if host == h {
			return true
		}
		if sub, ok := strings.CutSuffix(host, "."+h); ok && dnsLabelRe.MatchString(sub) {
			return true
		}
	}
	return false
}

// opsgenieIdentifier is the identifierType of a reference: "tiny" for a
// short number, "id" for an alert ID.
func opsgenieIdentifier(ref string) (string, bool) {
	switch {
	case opsgenieTinyRe.MatchString(ref):
		return "tiny", true
	case opsgenieIDRe.MatchString(ref):
		return "id", true
	}
	return "", false
}

// opsgenieName is how messages show a reference: #1791 for a tiny ID.
func opsgenieName(ref string) string {
	if opsgenieTinyRe.MatchString(ref) {
		return "#" + ref
	}
	return ref
}

// opsgenie is a client of the Opsgenie Alert API v2.
type opsgenie struct {
	svc *apiService
}

// opsgenieAlert is the part of an alert shipbot reads.
type opsgenieAlert struct {
	ID           string `json:"id"`
	TinyID       string `json:"tinyId"`
	Status       string `json:"status"` // open, closed
	Acknowledged bool   `json:"acknowledged"`
}

// alert reads GET /v2/alerts/{identifier}?identifierType=id|tiny.
func (c *opsgenie) alert(ctx context.Context, ref string) (*opsgenieAlert, error) {
	typ, ok := opsgenieIdentifier(ref)
	if !ok {
		return nil, gitops.Userf("%q is not an Opsgenie alert ID", display(ref))
	}
	r, err := c.svc.call(ctx, http.MethodGet, []string{"v2", "alerts", ref}, url.Values{"identifierType": {typ}}, nil, nil)
	if err != nil {
		return nil, err
	}
	if r.status == http.StatusNotFound {
		return nil, &gitops.UserError{
			Message: fmt.Sprintf("Opsgenie has no alert %s (or shipbot's API key can't see it)", opsgenieName(ref)),
			Err:     fmt.Errorf("GET %s: HTTP 404: %s", r.path, c.svc.snippet(r.body)),
		}
	}
	if !r.ok() {
		return nil, c.svc.statusError(r, "read alerts")
	}
	var out struct {
		Data *opsgenieAlert `json:"data"`
	}
	if err := c.svc.decode(r, &out); err != nil {
		return nil, err
	}
	if out.Data == nil || out.Data.Status == "" {
		return nil, &gitops.UserError{
			Message: "Opsgenie sent an answer shipbot can't read",
			Err:     fmt.Errorf("GET %s: HTTP %d: no alert status: %s", r.path, r.status, c.svc.snippet(r.body)),
		}
	}
	return out.Data, nil
}

func (c *opsgenie) check(ctx context.Context, req gitops.Request, env gitops.Environment, ref string) (liveResult, error) {
	a, err := c.alert(ctx, ref)
	if err != nil {
		return liveResult{}, err
	}
	if !strings.EqualFold(a.Status, "open") {
		return liveResult{}, gitops.Userf("Opsgenie alert %s is %s; %s needs an open alert",
			opsgenieName(ref), display(a.Status), changePhrase(req, env))
	}
	id := ref
	if opsgenieIDRe.MatchString(a.ID) {
		id = a.ID // tiny IDs are short counters; keep the stable ID
	}
	return liveResult{ref: id, state: a.Status}, nil
}

// note adds a note to an alert: POST /v2/alerts/{identifier}/notes. Opsgenie
// processes it asynchronously and answers 202 Accepted.
func (c *opsgenie) note(ctx context.Context, ref, text string) error {
	typ, ok := opsgenieIdentifier(ref)
	if !ok {
		return gitops.Userf("%q is not an Opsgenie alert ID", display(ref))
	}
	body := map[string]string{"user": "shipbot", "source": "shipbot", "note": text}
	r, err := c.svc.call(ctx, http.MethodPost, []string{"v2", "alerts", ref, "notes"}, url.Values{"identifierType": {typ}}, nil, body)
	if err != nil {
		return err
	}
	if r.status == http.StatusNotFound {
		return &gitops.UserError{
			Message: fmt.Sprintf("Opsgenie has no alert %s (or shipbot's API key can't see it)", opsgenieName(ref)),
			Err:     fmt.Errorf("POST %s: HTTP 404: %s", r.path, c.svc.snippet(r.body)),
		}
	}
	if !r.ok() {
		return c.svc.statusError(r, "add notes to alerts")
	}
	return nil
}
