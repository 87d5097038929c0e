package policy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

// Sources of a live check (gitops.JustificationCheck.Source).
const (
	SourcePagerDuty = "pagerduty"
	SourceJira      = "jira"
	SourceOpsgenie  = "opsgenie"
)

// Default base URLs.
const (
	DefaultPagerDutyBaseURL = "https://api.pagerduty.com"
	DefaultOpsgenieBaseURL  = "https://api.opsgenie.com" // EU accounts: https://api.eu.opsgenie.com
)

// DefaultJiraStatuses are the Jira statuses that justify a change when
// JiraOptions.Statuses is empty.
var DefaultJiraStatuses = []string{"Approved", "In Progress"}

// LiveOptions configures the live checks (LiveJustifier) and the traces
// (TicketTracer). A nil service is not configured: its references are still
// recognised, but a protected environment can't be justified with them.
//
// Credentials are never part of the options: each is read from a file (its
// content trimmed) or an environment variable, named by the *File / *Env
// fields. They are never logged and never appear in errors.
type LiveOptions struct {
	PagerDuty *PagerDutyOptions `yaml:"pagerduty,omitempty"`
	Jira      *JiraOptions      `yaml:"jira,omitempty"`
	Opsgenie  *OpsgenieOptions  `yaml:"opsgenie,omitempty"`

	// Timeout bounds every outbound call (connect, request and reading the
	// answer). Zero: DefaultLiveTimeout (5s).
	Timeout time.Duration `yaml:"timeout,omitempty"`

	// JiraHosts are extra hosts accepted in Jira browse URLs, as in
	// PatternJustifier. The host of Jira.BaseURL is always accepted.
	JiraHosts []string `yaml:"jiraHosts,omitempty"`

	// HTTPClient is the client to send requests with (a proxy, a private
	// CA). Nil: a default client. Its Timeout and CheckRedirect are
	// replaced: calls are bounded by Timeout and redirects are not followed.
	HTTPClient *http.Client `yaml:"-"`
	// Logger receives one debug line per outbound call (service, method,
	// path, status, duration) and a warning per failed call; never a
	// header or credential. Nil: no logging.
	Logger *slog.Logger `yaml:"-"`
	// Now is the clock for JustificationCheck.At. Nil: time.Now.
	Now func() time.Time `yaml:"-"`
}

// PagerDutyOptions configures the PagerDuty REST API v2 checks: GET
// /incidents/{id} with "Authorization: Token token=..." must find an incident
// that is triggered or acknowledged; a trace is a note on it.
type PagerDutyOptions struct {
	// BaseURL of the REST API. Empty: DefaultPagerDutyBaseURL.
	BaseURL string `yaml:"baseURL,omitempty"`
	// TokenFile or TokenEnv (exactly one) holds a REST API key (account
	// or user token). Notes need a full-access key.
	TokenFile string `yaml:"tokenFile,omitempty"`
	TokenEnv  string `yaml:"tokenEnv,omitempty"`
	// FromEmail is the email of a PagerDuty user, sent as the From header
	// that PagerDuty requires to add a note. Needed by TicketTracer only.
	FromEmail string `yaml:"fromEmail,omitempty"`
	// Services optionally ties apps to PagerDuty services: for an app listed
	// here, the incident's service (its id, or its name, case-insensitive)
	// must be one of the values. The key "*" applies to apps not listed.
	// Apps matched by no key are not checked.
	Services map[string][]string `yaml:"services,omitempty"`
}

// JiraOptions configures the Jira checks, through REST API v2 (the version
// both Jira Cloud and Jira Data Center serve; v2 takes comment bodies as plain
// strings in wiki markup): GET /rest/api/2/issue/{key}?fields=status,project,summary
// must find an issue of an allowed project in an allowed status; a trace is
// a comment on it.
type JiraOptions struct {
	// BaseURL of the site, e.g. https://acme.atlassian.net, or
	// https://jira.example.com/jira for a Data Center with a context path.
	BaseURL string `yaml:"baseURL"`
	// Auth is "basic" (default: Jira Cloud, email and API token) or "bearer"
	// (Jira Data Center personal access token, no email).
	Auth string `yaml:"auth,omitempty"`
	// The account email for basic auth: Email, EmailFile or EmailEnv.
	Email     string `yaml:"email,omitempty"`
	EmailFile string `yaml:"emailFile,omitempty"`
	EmailEnv  string `yaml:"emailEnv,omitempty"`
	// TokenFile or TokenEnv (exactly one) holds the API token (basic) or
	// personal access token (bearer).
	TokenFile string `yaml:"tokenFile,omitempty"`
	TokenEnv  string `yaml:"tokenEnv,omitempty"`
	// Projects are the project keys whose issues may justify a change (and
	// that shipbot may comment on), e.g. ["OPS", "CHG"]. Required.
	Projects []string `yaml:"projects"`
	// Statuses are the status names (case-insensitive) an issue must be in.
	// Empty: DefaultJiraStatuses.
	Statuses []string `yaml:"statuses,omitempty"`
}

// OpsgenieOptions configures the Opsgenie Alert API v2 checks: GET
// /v2/alerts/{identifier}?identifierType=id|tiny with "Authorization:
// GenieKey ..." must find an open alert; a trace is a note on it.
type OpsgenieOptions struct {
	// BaseURL of the API. Empty: DefaultOpsgenieBaseURL.
	BaseURL string `yaml:"baseURL,omitempty"`
	// KeyFile or KeyEnv (exactly one) holds an API integration key with
	// Read (checks) and Create and Update (notes) access.
	KeyFile string `yaml:"keyFile,omitempty"`
	KeyEnv  string `yaml:"keyEnv,omitempty"`
}

// Validate fills the defaults in o and checks it, reading every credential
// to make sure it is there and not empty. The error lists every problem, each
// with its config key, e.g. "jira.tokenFile: open /run/secrets/jira: no such
// file or directory".
func (o *LiveOptions) Validate() error {
	_, err := o.build()
	return err
}

// live is what the options build: one client per configured service.
type liveClients struct {
	pd   *pagerDuty
	jira *jira
	og   *opsgenie
	now  func() time.Time
	// jiraHosts are the hosts accepted in Jira browse URLs.
	jiraHosts []string
}

func (o *LiveOptions) build() (*liveClients, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if o.Timeout == 0 {
		o.Timeout = DefaultLiveTimeout
	}
	if o.Timeout < 0 {
		bad("timeout: %s is negative", o.Timeout)
	}
	l := &liveClients{now: o.Now, jiraHosts: slices.Clone(o.JiraHosts)}
	if l.now == nil {
		l.now = time.Now
	}

	if p := o.PagerDuty; p != nil {
		if p.BaseURL == "" {
			p.BaseURL = DefaultPagerDutyBaseURL
		}
		base, err := checkBaseURL("pagerduty.baseURL", p.BaseURL)
		if err != nil {
			errs = append(errs, err)
		}
		src := secretSource{File: p.TokenFile, Env: p.TokenEnv}
		token, err := src.load("pagerduty.token")
		if err != nil {
			errs = append(errs, err)
		}
		if p.FromEmail != "" {
			if err := checkEmail(p.FromEmail); err != nil {
				bad("pagerduty.fromEmail: %v", err)
			}
		}
		services := make(map[string][]string, len(p.Services))
		for app, list := range p.Services {
			if len(list) == 0 {
				bad("pagerduty.services.%s: empty list (remove the app to skip its check)", app)
			}
			services[app] = slices.Clone(list)
		}
		if base != nil && token != "" {
			auth := "Token token=" + token
			h := http.Header{}
			h.Set("Authorization", auth)
			h.Set("Accept", "application/vnd.pagerduty+json;version=2")
			l.pd = &pagerDuty{
				svc:      newAPIService("PagerDuty", base, o, h, "token", src.hint("pagerduty.token"), token, auth),
				from:     p.FromEmail,
				services: services,
			}
		}
	}

	if j := o.Jira; j != nil {
		base, err := checkBaseURL("jira.baseURL", j.BaseURL)
		if j.BaseURL == "" {
			err = errors.New("jira.baseURL: required, e.g. https://acme.atlassian.net")
		}
		if err != nil {
			errs = append(errs, err)
		}
		tokSrc := secretSource{File: j.TokenFile, Env: j.TokenEnv}
		token, err := tokSrc.load("jira.token")
		if err != nil {
			errs = append(errs, err)
		}
		emailSet := j.Email != "" || j.EmailFile != "" || j.EmailEnv != ""
		var email string
		switch j.Auth {
		case "", "basic":
			j.Auth = "basic"
			switch {
			case j.Email != "" && (j.EmailFile != "" || j.EmailEnv != ""):
				bad("jira.email: set one of email, emailFile and emailEnv")
			case j.Email != "":
				email = strings.TrimSpace(j.Email)
			case !emailSet:
				bad("jira.email: basic auth needs the Jira account's email: set jira.email, jira.emailFile or jira.emailEnv (or use auth: bearer with a personal access token)")
			default:
				email, err = secretSource{File: j.EmailFile, Env: j.EmailEnv}.load("jira.email")
				if err != nil {
					errs = append(errs, err)
				}
			}
			if email != "" {
				if err := checkEmail(email); err != nil {
					bad("jira.email: %v", err)
				}
			}
		case "bearer":
			if emailSet {
				bad("jira.email: bearer auth (a personal access token) takes no email; remove it or use auth: basic")
			}
		default:
			bad("jira.auth: %q is neither basic nor bearer", j.Auth)
		}
		var projects []string
		for _, p := range j.Projects {
			p = strings.TrimSpace(p)
			if !jiraProjectRe.MatchString(p) {
				bad("jira.projects: %q is not a Jira project key (e.g. OPS)", p)
				continue
			}
			projects = append(projects, p)
		}
		if len(j.Projects) == 0 {
			bad("jira.projects: required: list the projects whose issues may justify a change, e.g. [OPS]")
		}
		if len(j.Statuses) == 0 {
			j.Statuses = slices.Clone(DefaultJiraStatuses)
		}
		var statuses []string
		for _, s := range j.Statuses {
			if s = strings.TrimSpace(s); s == "" {
				bad("jira.statuses: an empty status name")
				continue
			}
			statuses = append(statuses, s)
		}
		if base != nil && token != "" && (email != "" || j.Auth == "bearer") {
			h := http.Header{}
			h.Set("Accept", "application/json")
			var auth, hint, cred string
			if j.Auth == "bearer" {
				auth, cred, hint = "Bearer "+token, "token", tokSrc.hint("jira.token")
			} else {
				auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+token))
				cred, hint = "credentials", "jira.email or "+tokSrc.hint("jira.token")
			}
			h.Set("Authorization", auth)
			l.jira = &jira{
				svc:      newAPIService("Jira", base, o, h, cred, hint, token, auth, strings.TrimPrefix(strings.TrimPrefix(auth, "Basic "), "Bearer ")),
				projects: projects,
				statuses: statuses,
			}
			l.jiraHosts = append(l.jiraHosts, base.Hostname())
		}
	}

	if g := o.Opsgenie; g != nil {
		if g.BaseURL == "" {
			g.BaseURL = DefaultOpsgenieBaseURL
		}
		base, err := checkBaseURL("opsgenie.baseURL", g.BaseURL)
		if err != nil {
			errs = append(errs, err)
		}
		src := secretSource{File: g.KeyFile, Env: g.KeyEnv}
		key, err := src.load("opsgenie.key")
		if err != nil {
			errs = append(errs, err)
		}
		if base != nil && key != "" {
			auth := "GenieKey " + key
			h := http.Header{}
			h.Set("Authorization", auth)
			h.Set("Accept", "application/json")
			l.og = &opsgenie{svc: newAPIService("Opsgenie", base, o, h, "API key", src.hint("opsgenie.key"), key, auth)}
		}
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return l, nil
}

func checkEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return fmt.Errorf("%q is not a plain email address", s)
	}
	return nil
}

// LiveJustifier is a gitops.Justifier that checks a protected environment's
// justification against its source: the reference is parsed as
// PatternJustifier does (and an Opsgenie alert is recognised too), then the
// incident, issue or alert is read live:
//
//   - a PagerDuty incident must be triggered or acknowledged (and, if
//     PagerDutyOptions.Services lists the app, be on one of its services);
//   - a Jira issue must be in one of JiraOptions.Projects and in one of
//     JiraOptions.Statuses;
//   - an Opsgenie alert must be open.
//
// Opsgenie references are accepted in two forms: an alert URL,
// https://app.opsgenie.com/alert/detail/<alert ID>[/<tab>] or on
// <account>.app.opsgenie.com (EU: app.eu.opsgenie.com, <account>.app.eu.opsgenie.com),
// with the same URL rules as PatternJustifier (https, no user info, no port,
// one DNS label for the account); or opsgenie:<tiny ID>, e.g. opsgenie:1791
// (the short number Opsgenie shows as #1791).
//
// A passed check fills Justification.Checked (source, the state seen, when)
// and sets Ref to the identifier the service answered with: the incident ID,
// the current key (an issue moved to another project answers with its
// new key), the alert's stable ID (tiny IDs are short counters).
//
// A failed check is a *gitops.UserError that says what failed: the state
// found and what would work, the service not answering in time, refusing
// shipbot's credentials, or not being configured. Unprotected environments
// are not checked live: Kind and Ref are detected, Checked stays nil.
//
// A LiveJustifier is safe for concurrent use.
type LiveJustifier struct {
	l       *liveClients
	pattern PatternJustifier
}

var _ gitops.Justifier = (*LiveJustifier)(nil)

// NewLiveJustifier validates o (see LiveOptions.Validate) and builds the
// justifier. At least one service must be configured; for a demo without
// any, use PatternJustifier.
func NewLiveJustifier(o LiveOptions) (*LiveJustifier, error) {
	l, err := o.build()
	if err != nil {
		return nil, err
	}
	if l.pd == nil && l.jira == nil && l.og == nil {
		return nil, errors.New("live checks: no service configured: set pagerduty, jira or opsgenie (or use the pattern-only justifier)")
	}
	return &LiveJustifier{l: l, pattern: PatternJustifier{JiraHosts: l.jiraHosts}}, nil
}

// liveChecker checks one reference live.
type liveChecker interface {
	check(ctx context.Context, req gitops.Request, env gitops.Environment, ref string) (liveResult, error)
}

// liveResult is the outcome of a passed check.
type liveResult struct {
	ref   string // the canonical identifier
	state string // the state seen
}

// Justify implements gitops.Justifier.
func (lj *LiveJustifier) Justify(ctx context.Context, req gitops.Request, env gitops.Environment) (gitops.Justification, error) {
	j, err := lj.detect(ctx, req, env)
	if err != nil || !env.Protected {
		return j, err
	}
	var c liveChecker
	var source string
	switch j.Kind {
	case KindPagerDuty:
		source = SourcePagerDuty
		if lj.l.pd != nil {
			c = lj.l.pd
		}
	case KindJira:
		source = SourceJira
		if lj.l.jira != nil {
			c = lj.l.jira
		}
	case KindOpsgenie:
		source = SourceOpsgenie
		if lj.l.og != nil {
			c = lj.l.og
		}
	default: // PatternJustifier never accepts text for a protected env
		return gitops.Justification{}, fmt.Errorf("live check: unexpected kind %q for protected %s", j.Kind, display(env.Name))
	}
	if c == nil {
		return gitops.Justification{}, gitops.Userf("%s checks are not configured; ask an admin or use %s",
			kindServiceName(j.Kind), lj.alternatives(j.Kind))
	}
	res, err := c.check(ctx, req, env, j.Ref)
	if err != nil {
		return gitops.Justification{}, err
	}
	j.Ref = res.ref
	j.Checked = &gitops.JustificationCheck{Source: source, State: display(res.state), At: lj.l.now().UTC()}
	return j, nil
}

// detect finds the kind and reference without any outbound call.
func (lj *LiveJustifier) detect(ctx context.Context, req gitops.Request, env gitops.Environment) (gitops.Justification, error) {
	full := normalize(req.Why, len(req.Why)+1)
	if ref, ok := opsgenieReference(leadingToken(full)); ok {
		return gitops.Justification{Text: normalize(full, MaxJustificationRunes), Kind: KindOpsgenie, Ref: ref}, nil
	}
	j, err := lj.pattern.Justify(ctx, req, env)
	var ue *gitops.UserError
	if err != nil && lj.l.og != nil && errors.As(err, &ue) {
		return j, &gitops.UserError{
			Message: ue.Message + "; an Opsgenie alert works too (https://<account>.app.opsgenie.com/alert/detail/<ID>, or opsgenie:<tiny ID> such as opsgenie:1791)",
			Err:     ue.Err,
		}
	}
	return j, err
}

// alternatives names the configured kinds other than kind, for a message.
func (lj *LiveJustifier) alternatives(kind string) string {
	var alt []string
	if lj.l.pd != nil && kind != KindPagerDuty {
		alt = append(alt, "a PagerDuty incident")
	}
	if lj.l.jira != nil && kind != KindJira {
		alt = append(alt, "a Jira issue")
	}
	if lj.l.og != nil && kind != KindOpsgenie {
		alt = append(alt, "an Opsgenie alert")
	}
	return strings.Join(alt, " or ")
}

func kindServiceName(kind string) string {
	switch kind {
	case KindPagerDuty:
		return "PagerDuty"
	case KindJira:
		return "Jira"
	case KindOpsgenie:
		return "Opsgenie"
	}
	return kind
}

// firstToken is the reference candidate at the start of normalised text,
// found the way PatternJustifier finds it: the first word, or the URL of a
// Slack link <url> / <url|label>, without one trailing ':', ',', ';' or '.'.
func leadingToken(text string) string {
	tok := text
	if strings.HasPrefix(tok, "<") {
		end := strings.IndexByte(tok, '>')
		if end < 0 {
			return ""
		}
		tok, _, _ = strings.Cut(tok[1:end], "|")
	} else if i := strings.IndexByte(tok, ' '); i >= 0 {
		tok = tok[:i]
	}
	tok = strings.TrimSuffix(tok, ":")
	tok = strings.TrimSuffix(tok, ",")
	tok = strings.TrimSuffix(tok, ";")
	tok = strings.TrimSuffix(tok, ".")
	return tok
}

// needs phrases what the request needs, e.g. "a prod rollback".
func changePhrase(req gitops.Request, env gitops.Environment) string {
	noun := "change"
	switch req.Action {
	case gitops.ActionRollback:
		noun = "rollback"
	case gitops.ActionRestart:
		noun = "restart"
	case gitops.ActionPromote:
		noun = "promotion"
	}
	name := display(env.Name)
	article := "a"
	if name != "" && strings.ContainsRune("aeiouAEIOU", rune(name[0])) {
		article = "an"
	}
	return fmt.Sprintf("%s %s %s", article, name, noun)
}
