package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/shipbot/shipbot/gitops"
)

// DefaultLiveTimeout bounds every outbound call of the live checks and
// traces when LiveOptions.Timeout is zero.
const DefaultLiveTimeout = 5 * time.Second

// ErrNotConfigured is wrapped by a trace for a kind whose service is not
// configured (callers that don't care may ignore it with errors.Is).
var ErrNotConfigured = errors.New("not configured")

const (
	maxResponseBytes = 1 << 20  // what shipbot reads of an answer
	maxSecretBytes   = 64 << 10 // what shipbot reads of a secret file
	redacted         = "[redacted]"
)

// secretSource says where a credential comes from: a file (Kubernetes
// secret, Docker secret) or an environment variable, exactly one of them.
// The value is trimmed of surrounding white space. It never comes from the
// policy or the config file itself and is never logged.
type secretSource struct {
	File string
	Env  string
}

// load reads the secret. key names the config key for errors, e.g.
// "pagerduty.token". Errors name the file or variable, never the value.
func (s secretSource) load(key string) (string, error) {
	var raw string
	switch {
	case s.File != "" && s.Env != "":
		return "", fmt.Errorf("%s: set either %sFile or %sEnv, not both", key, key, key)
	case s.File != "":
		f, err := os.Open(s.File)
		if err != nil {
			return "", fmt.Errorf("%sFile: %w", key, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
		if err != nil {
			return "", fmt.Errorf("%sFile: read %s: %w", key, s.File, err)
		}
		if len(b) > maxSecretBytes {
			return "", fmt.Errorf("%sFile: %s is over %d KiB; is it the right file?", key, s.File, maxSecretBytes>>10)
		}
		raw = string(b)
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return "", fmt.Errorf("%sEnv: the environment variable %s is not set", key, s.Env)
		}
		raw = v
	default:
		return "", fmt.Errorf("%s: set %sFile (a file holding it) or %sEnv (an environment variable)", key, key, key)
	}
	v := strings.TrimSpace(raw)
	if v == "" {
		return "", fmt.Errorf("%s: %s is empty", key, s.where())
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("%s: %s holds a control character or line break inside the value; it must hold the value alone", key, s.where())
		}
	}
	return v, nil
}

// hint is the config key an admin must fix when the secret is refused.
func (s secretSource) hint(key string) string {
	if s.Env != "" {
		return key + "Env"
	}
	return key + "File"
}

func (s secretSource) where() string {
	if s.File != "" {
		return "the file " + s.File
	}
	return "the environment variable " + s.Env
}

// checkBaseURL validates a service base URL: absolute, https (plain http only
// for a loopback host, as in tests), no user info, query or fragment. The
// trailing slash is dropped.
func checkBaseURL(key, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return nil, fmt.Errorf("%s: %q is not an absolute https URL", key, raw)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("%s: %q must use https (plain http is only allowed for a loopback host)", key, raw)
	case u.User != nil:
		return nil, fmt.Errorf("%s: %q carries user info; credentials come from the token settings only", key, raw)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("%s: %q must not have a query or fragment", key, raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// service is one remote API (PagerDuty, Jira, Opsgenie): its base URL, its
// credentials and a bounded HTTP client. It is immutable once built and safe
// for concurrent use.
type apiService struct {
	name     string // "PagerDuty", for messages
	base     *url.URL
	client   *http.Client
	timeout  time.Duration
	header   http.Header // sent on every request: auth and Accept
	credName string      // "token", "credentials", "API key"
	credHint string      // the config key to fix, e.g. "pagerduty.tokenFile"
	secrets  []string    // every form of the secret, redacted from errors
	log      *slog.Logger
}

func newAPIService(name string, base *url.URL, o *LiveOptions, header http.Header, credName, credHint string, secrets ...string) *apiService {
	c := &http.Client{}
	if o.HTTPClient != nil {
		*c = *o.HTTPClient
	}
	c.Timeout = 0 // every call has its own deadline
	// Never follow a redirect: the credentials are meant for this host only,
	// and a moved API is a configuration problem to see, not to hide.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	header.Set("User-Agent", "shipbot")
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var sec []string
	for _, s := range secrets {
		if s != "" {
			sec = append(sec, s)
		}
	}
	return &apiService{name: name, base: base, client: c, timeout: o.Timeout, header: header,
		credName: credName, credHint: credHint, secrets: sec, log: log}
}

// response is a remote answer, read in full (up to maxResponseBytes).
type apiResponse struct {
	status int
	body   []byte
	method string
	path   string
}

// call sends one request to the path made of segments (each escaped as one
// path segment) under the base URL, with the JSON encoding of in as body (nil:
// none). Transport failures come back as a *gitops.UserError that says what
// happened ("PagerDuty did not answer within 5s"); any HTTP status comes back
// as a response for the caller to judge.
func (s *apiService) call(ctx context.Context, method string, segments []string, query url.Values, extra http.Header, in any) (*apiResponse, error) {
	u := *s.base
	var p, rp strings.Builder
	p.WriteString(s.base.Path)
	rp.WriteString(s.base.EscapedPath())
	for _, seg := range segments {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "/\\") {
			return nil, fmt.Errorf("%s: bad path segment %q", s.name, seg)
		}
		p.WriteString("/" + seg)
		rp.WriteString("/" + url.PathEscape(seg))
	}
	u.Path, u.RawPath = p.String(), rp.String()
	if u.RawPath == u.Path {
		u.RawPath = ""
	}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}

	var body io.Reader
	if in != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // the text is shown as typed: "->", not "-\u003e"
		if err := enc.Encode(in); err != nil {
			return nil, fmt.Errorf("%s: encode request: %w", s.name, err)
		}
		body = bytes.NewReader(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}

	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(tctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	start := time.Now()
	resp, err := s.client.Do(req)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		resp.Body.Close()
	}
	took := time.Since(start)
	if err != nil {
		s.log.WarnContext(ctx, "outbound call failed", "service", s.name, "method", method, "path", u.Path,
			"duration", took, "error", s.redact(err.Error()))
		return nil, s.transportError(ctx, tctx, method, u.Path, err)
	}
	s.log.DebugContext(ctx, "outbound call", "service", s.name, "method", method, "path", u.Path,
		"status", resp.StatusCode, "duration", took)
	return &apiResponse{status: resp.StatusCode, body: b, method: method, path: u.Path}, nil
}

func (s *apiService) transportError(ctx, tctx context.Context, method, path string, err error) error {
	detail := fmt.Errorf("%s %s: %s", method, path, s.redact(err.Error()))
	switch {
	case ctx.Err() != nil:
		// The caller gave up (cancelled, or its own deadline): not the
		// service's fault, and not something the user can fix.
		return fmt.Errorf("%s: %s %s: %w", s.name, method, path, ctx.Err())
	case errors.Is(tctx.Err(), context.DeadlineExceeded) || isTimeout(err):
		return &gitops.UserError{Message: fmt.Sprintf("%s did not answer within %s", s.name, s.timeout), Err: detail}
	default:
		return &gitops.UserError{Message: fmt.Sprintf("%s could not be reached; try again later", s.name), Err: detail}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// statusError turns an unexpected HTTP status into a *gitops.UserError.
// what is the operation for messages, e.g. "read incidents". 404 is left to
// the caller, which knows what was missing.
func (s *apiService) statusError(r *apiResponse, what string) error {
	detail := fmt.Errorf("%s %s: HTTP %d: %s", r.method, r.path, r.status, s.snippet(r.body))
	var msg string
	switch {
	case r.status == http.StatusUnauthorized:
		msg = fmt.Sprintf("%s refused shipbot's %s (401): an admin must fix %s", s.name, s.credName, s.credHint)
	case r.status == http.StatusForbidden:
		msg = fmt.Sprintf("%s does not let shipbot %s (403): an admin must give the %s in %s that permission", s.name, what, s.credName, s.credHint)
	case r.status == http.StatusTooManyRequests:
		msg = fmt.Sprintf("%s is rate-limiting shipbot (429); try again in a minute", s.name)
	case r.status >= 300 && r.status < 400:
		msg = fmt.Sprintf("%s answered with a redirect (HTTP %d); an admin must check its base URL", s.name, r.status)
	case r.status >= 500:
		msg = fmt.Sprintf("%s failed (HTTP %d); try again later", s.name, r.status)
	default:
		msg = fmt.Sprintf("%s answered HTTP %d to shipbot's request to %s", s.name, r.status, what)
	}
	return &gitops.UserError{Message: msg, Err: detail}
}

// decode reads a JSON answer into out.
func (s *apiService) decode(r *apiResponse, out any) error {
	if err := json.Unmarshal(r.body, out); err != nil {
		return &gitops.UserError{
			Message: fmt.Sprintf("%s sent an answer shipbot can't read", s.name),
			Err:     fmt.Errorf("%s %s: HTTP %d: %w: %s", r.method, r.path, r.status, err, s.snippet(r.body)),
		}
	}
	return nil
}

// snippet is the start of a body for the log, one line, secrets redacted.
func (s *apiService) snippet(b []byte) string {
	return normalize(s.redact(string(b)), 300)
}

// redact replaces every form of the secret in text.
func (s *apiService) redact(text string) string {
	for _, sec := range s.secrets {
		text = strings.ReplaceAll(text, sec, redacted)
	}
	return text
}

// ok reports whether the status is a success.
func (r *apiResponse) ok() bool { return r.status >= 200 && r.status < 300 }
