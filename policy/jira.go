package policy

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/gitops"
)

var jiraProjectRe = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)

// jira is a client of the Jira REST API v2 (Cloud and Data Center).
type jira struct {
	svc      *apiService
	projects []string // allowed project keys
	statuses []string // allowed status names, case-insensitive
}

// jiraIssue is the part of a Jira issue shipbot reads.
type jiraIssue struct {
	Key    string `json:"key"`
	Fields struct {
		Status *struct {
			Name string `json:"name"`
		} `json:"status"`
		Project *struct {
			Key string `json:"key"`
		} `json:"project"`
	} `json:"fields"`
}

// issue reads GET /rest/api/2/issue/{key}?fields=status,project,summary.
func (c *jira) issue(ctx context.Context, key string) (*jiraIssue, error) {
	if !jiraKeyRe.MatchString(key) {
		return nil, gitops.Userf("%q is not a Jira issue key", display(key))
	}
	q := url.Values{"fields": {"status,project,summary"}}
	r, err := c.svc.call(ctx, http.MethodGet, []string{"rest", "api", "2", "issue", key}, q, nil, nil)
	if err != nil {
		return nil, err
	}
	if r.status == http.StatusNotFound {
		return nil, &gitops.UserError{
			Message: fmt.Sprintf("Jira has no issue %s (or shipbot's Jira account can't see it)", key),
			Err:     fmt.Errorf("GET %s: HTTP 404: %s", r.path, c.svc.snippet(r.body)),
		}
	}
	if !r.ok() {
		return nil, c.svc.statusError(r, "read issues")
	}
	var is jiraIssue
	if err := c.svc.decode(r, &is); err != nil {
		return nil, err
	}
	if is.Fields.Status == nil || is.Fields.Status.Name == "" || is.Fields.Project == nil || is.Fields.Project.Key == "" {
		return nil, &gitops.UserError{
			Message: "Jira sent an answer shipbot can't read",
			Err:     fmt.Errorf("GET %s: HTTP %d: no status or project: %s", r.path, r.status, c.svc.snippet(r.body)),
		}
	}
	return &is, nil
}

func (c *jira) check(ctx context.Context, req gitops.Request, env gitops.Environment, key string) (liveResult, error) {
	is, err := c.issue(ctx, key)
	if err != nil {
		return liveResult{}, err
	}
	ref := key
	if jiraKeyRe.MatchString(is.Key) {
		ref = is.Key // a moved issue answers with its new key
	}
	envName := display(env.Name)
	if project := is.Fields.Project.Key; !slices.Contains(c.projects, project) {
		return liveResult{}, gitops.Userf("%s is in the Jira project %s; %s changes need an issue in one of: %s",
			ref, display(project), envName, strings.Join(c.projects, ", "))
	}
	status := is.Fields.Status.Name
	if !hasFold(c.statuses, status) {
		return liveResult{}, gitops.Userf("%s is in status %s; %s changes need one of: %s",
			ref, display(status), envName, strings.Join(c.statuses, ", "))
	}
	return liveResult{ref: ref, state: status}, nil
}

// comment adds a comment to an issue: POST /rest/api/2/issue/{key}/comment
// with the text escaped for wiki markup. Only issues of the allowed projects
// are commented on.
func (c *jira) comment(ctx context.Context, key, text string) error {
	if !jiraKeyRe.MatchString(key) {
		return gitops.Userf("%q is not a Jira issue key", display(key))
	}
	if project := key[:strings.LastIndexByte(key, '-')]; !slices.Contains(c.projects, project) {
		return gitops.Userf("shipbot comments only on issues of the Jira projects %s, not on %s",
			strings.Join(c.projects, ", "), key)
	}
	r, err := c.svc.call(ctx, http.MethodPost, []string{"rest", "api", "2", "issue", key, "comment"}, nil, nil,
		map[string]string{"body": text})
	if err != nil {
		return err
	}
	if r.status == http.StatusNotFound {
		return &gitops.UserError{
			Message: fmt.Sprintf("Jira has no issue %s (or shipbot's Jira account can't see it)", key),
			Err:     fmt.Errorf("POST %s: HTTP 404: %s", r.path, c.svc.snippet(r.body)),
		}
	}
	if !r.ok() {
		return c.svc.statusError(r, "comment on issues")
	}
	return nil
}

// wikiEscape makes text literal in Jira wiki markup (the format of REST v2
// comment bodies): every character with a meaning in markup (emphasis,
// links and mentions, macros, tables, lists, headings, emoticons) is
// escaped with a backslash. A backslash itself can't be escaped (a double
// backslash is a line break), so it becomes U+29F5 REVERSE SOLIDUS OPERATOR.
func wikiEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteRune('⧵')
		case strings.ContainsRune("*_?-+^~|![]{}#()&", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func hasFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(v string) bool { return strings.EqualFold(v, s) })
}
