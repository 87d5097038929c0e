package policy

import (
	"context"
	"net/url"
	"regexp"
	"strings"

	"github.com/shipbot/shipbot/gitops"
)

// Justification kinds.
const (
	KindPagerDuty = "pagerduty-incident"
	KindJira      = "jira-issue"
	KindText      = "text"
)

// MaxJustificationRunes caps Justification.Text; longer text is cut and
// ends with "…".
const MaxJustificationRunes = gitops.MaxReasonRunes

// PatternJustifier checks the --why of a request by its shape; it does not
// call PagerDuty or Jira.
//
// For a protected environment the justification must start with a reference:
//
//   - a PagerDuty incident URL, https://<account>.pagerduty.com/incidents/<ID>
//     (ID alphanumeric, optional trailing slash) → Kind "pagerduty-incident",
//     Ref the ID;
//   - a Jira issue key such as OPS-123 ([A-Z][A-Z0-9_]+-[0-9]+), or a Jira
//     browse URL https://<host>/browse/OPS-123 → Kind "jira-issue", Ref the key.
//
// Free text may follow the reference ("OPS-123 bad config in 1.4.2"). One
// trailing ':', ',', ';' or '.' after a reference is tolerated, and so is the
// Slack link form <https://...> or <https://...|label>. URLs are parsed with
// net/url: https only, no user info, no port, and the host must be exactly
// <account>.pagerduty.com (one DNS label) or, for Jira, a host in JiraHosts
// or <site>.atlassian.net. Anything else for a protected environment is a
// *gitops.UserError that shows both accepted forms.
//
// For an unprotected environment the justification is optional: empty gives
// the zero Justification; otherwise Kind is the detected kind, or "text".
//
// Text is always the whole justification normalised to one line: control
// characters and line separators become spaces, invisible format characters
// are dropped, spaces are collapsed, and the result is capped at
// MaxJustificationRunes.
type PatternJustifier struct {
	// JiraHosts are extra hosts (exact, case-insensitive), e.g.
	// "jira.example.com", accepted for Jira browse URLs besides
	// <site>.atlassian.net. A bare issue key is accepted in any case.
	JiraHosts []string
}

var _ gitops.Justifier = PatternJustifier{}

var (
	jiraKeyRe  = regexp.MustCompile(`^[A-Z][A-Z0-9_]+-[0-9]+$`)
	pdIDRe     = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	dnsLabelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// Justify implements gitops.Justifier.
func (j PatternJustifier) Justify(_ context.Context, req gitops.Request, env gitops.Environment) (gitops.Justification, error) {
	// The reference is found in the full normalised text, before the cap.
	full := normalize(req.Why, len(req.Why)+1)
	text := normalize(full, MaxJustificationRunes)
	name := display(env.Name)

	if full == "" {
		if env.Protected {
			return gitops.Justification{}, gitops.Userf(
				"%s is protected: add --why with a PagerDuty incident URL "+
					"(https://<account>.pagerduty.com/incidents/<ID>) or a Jira issue key (e.g. OPS-123)", name)
		}
		return gitops.Justification{}, nil
	}

	if kind, ref, ok := j.reference(full); ok {
		return gitops.Justification{Text: text, Kind: kind, Ref: ref}, nil
	}
	if env.Protected {
		return gitops.Justification{}, gitops.Userf(
			"%s is protected: --why must start with a PagerDuty incident URL "+
				"(https://<account>.pagerduty.com/incidents/<ID>, e.g. https://acme.pagerduty.com/incidents/P1X2Y3Z) "+
				"or a Jira issue (a key like OPS-123, or https://<your-site>.atlassian.net/browse/OPS-123); "+
				"free text may follow the reference", name)
	}
	return gitops.Justification{Text: text, Kind: KindText}, nil
}

// reference detects the reference at the start of normalised text.
func (j PatternJustifier) reference(text string) (kind, ref string, ok bool) {
	tok := text
	if strings.HasPrefix(tok, "<") {
		// Slack link markup: <url> or <url|label>, label possibly with spaces.
		end := strings.IndexByte(tok, '>')
		if end < 0 {
			return "", "", false
		}
		tok, _, _ = strings.Cut(tok[1:end], "|")
	} else if i := strings.IndexByte(tok, ' '); i >= 0 {
		tok = tok[:i]
	}
	tok = strings.TrimSuffix(tok, ":")
	tok = strings.TrimSuffix(tok, ",")
	tok = strings.TrimSuffix(tok, ";")
	tok = strings.TrimSuffix(tok, ".")

	if jiraKeyRe.MatchString(tok) {
		return KindJira, tok, true
	}
	if !strings.HasPrefix(strings.ToLower(tok), "https://") {
		return "", "", false
	}
	u, err := url.Parse(tok)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" || u.Opaque != "" || u.RawPath != "" {
		return "", "", false // RawPath is set when the path has unusual %-escapes
	}
	host := strings.ToLower(u.Hostname())
	if id, ok := pathParam(u.Path, "incidents"); ok && pdIDRe.MatchString(id) && isPagerDutyHost(host) {
		return KindPagerDuty, id, true
	}
	if key, ok := pathParam(u.Path, "browse"); ok && jiraKeyRe.MatchString(key) && j.isJiraHost(host) {
		return KindJira, key, true
	}
	return "", "", false
}

// pathParam returns X for a path "/<prefix>/X" or "/<prefix>/X/".
func pathParam(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/"+prefix+"/")
	if !ok {
		return "", false
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" || strings.Contains(rest, "/") {
		return "", false
	}
	return rest, true
}

// isPagerDutyHost accepts exactly <account>.pagerduty.com, one DNS label.
func isPagerDutyHost(host string) bool {
	sub, ok := strings.CutSuffix(host, ".pagerduty.com")
	return ok && dnsLabelRe.MatchString(sub)
}

func (j PatternJustifier) isJiraHost(host string) bool {
	if site, ok := strings.CutSuffix(host, ".atlassian.net"); ok && dnsLabelRe.MatchString(site) {
		return true
	}
	for _, h := range j.JiraHosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}
