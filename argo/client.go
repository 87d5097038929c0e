package argo

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// Server is the Argo CD API server's base URL, e.g.
	// https://argocd.example.com (a path prefix for --rootpath is kept).
	Server string
	// TokenFile holds the bearer token (a JWT of a local account with the
	// apiKey capability, or a project role token). It is read when the
	// Client is made and again whenever the file changes (rotated secrets);
	// surrounding whitespace is trimmed. The token never appears in errors.
	TokenFile string
	// Token is the bearer token itself, e.g. read from an environment
	// variable, when there is no TokenFile (it can't rotate without a
	// restart). Exactly one of TokenFile and Token is set.
	Token string
	// CAFile is a PEM bundle trusted in addition to the system roots.
	CAFile string
	// InsecureSkipVerify turns off TLS certificate checks: development only.
	InsecureSkipVerify bool
	// Timeout bounds each call but the watch stream (default 30s).
	Timeout time.Duration
	// RefreshTimeout bounds a Get with refresh: the API server answers only
	// once the controller has reconciled the app (default 60s).
	RefreshTimeout time.Duration
	// Transport replaces the HTTP transport (tests); the TLS options are
	// then ignored.
	Transport http.RoundTripper
}

// Validate fills defaults and checks the options.
func (o *ClientOptions) Validate() error {
	o.Token = strings.TrimSpace(o.Token)
	u, err := url.Parse(o.Server)
	switch {
	case o.Server == "":
		return errors.New("argo: no server URL")
	case err != nil:
		return fmt.Errorf("argo: server URL: %w", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return fmt.Errorf("argo: server URL %q: want https://host[:port][/rootpath]", o.Server)
	case u.User != nil || u.RawQuery != "":
		return fmt.Errorf("argo: server URL %q: no credentials or query in the URL", u.Redacted())
	case o.TokenFile == "" && o.Token == "":
		return errors.New("argo: no token: set a token file (or a token)")
	case o.TokenFile != "" && o.Token != "":
		return errors.New("argo: a token file and a token: set one")
	case strings.ContainsAny(o.Token, "\r\n"):
		return errors.New("argo: the token spans several lines")
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.RefreshTimeout <= 0 {
		o.RefreshTimeout = 60 * time.Second
	}
	return nil
}

// Client talks to Argo CD's REST API (the same on v2 and v3 servers).
// It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token *tokenFile
	http  *http.Client
	opts  ClientOptions
}

// NewClient checks the options, reads the token and prepares TLS.
func NewClient(o ClientOptions) (*Client, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	base, _ := url.Parse(strings.TrimRight(o.Server, "/"))
	tok := &tokenFile{path: o.TokenFile, token: o.Token}
	if _, err := tok.get(); err != nil {
		return nil, err
	}
	rt := o.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify}
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("argo: CA file: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("argo: CA file %s: no PEM certificate in it", o.CAFile)
			}
			cfg.RootCAs = pool
		}
		t.TLSClientConfig = cfg
		rt = t
	}
	return &Client{base: base, token: tok, http: &http.Client{Transport: rt}, opts: o}, nil
}

// Get returns the app. refresh "normal" or "hard" makes Argo CD look at the
// repo at once (the server answers after the controller reconciled, within
// RefreshTimeout); "" reads the current state.
func (c *Client) Get(ctx context.Context, name, refresh string) (*Application, error) {
	q := url.Values{}
	timeout := c.opts.Timeout
	switch refresh {
	case "":
	case RefreshNormal, RefreshHard:
		q.Set("refresh", refresh)
		timeout = c.opts.RefreshTimeout
	default:
		return nil, fmt.Errorf("argo: refresh %q: want normal, hard or empty", refresh)
	}
	ref := parseRef(name)
	ref.query(q)
	var app Application
	if err := c.call(ctx, timeout, http.MethodGet, "/api/v1/applications/"+url.PathEscape(ref.name), q, nil, &app); err != nil {
		return nil, err
	}
	return &app, nil
}

// List returns every app the token may see. Argo CD v3 leaves resource
// health out of list answers.
func (c *Client) List(ctx context.Context) ([]Application, error) {
	var list struct {
		Items []Application `json:"items"`
	}
	if err := c.call(ctx, c.opts.Timeout, http.MethodGet, "/api/v1/applications", nil, nil, &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// syncRequest is the part of ApplicationSyncRequest shipbot sends.
type syncRequest struct {
	Revision        string   `json:"revision,omitempty"`
	Revisions       []string `json:"revisions,omitempty"`
	SourcePositions []int64  `json:"sourcePositions,omitempty"` // 1-based
	AppNamespace    string   `json:"appNamespace,omitempty"`
}

// Sync starts a sync of a single-source app to revision and returns the app
// with the operation set. Argo CD refuses it while another operation runs
// (ErrOperationInProgress) and, on apps with automated sync, for a revision
// other than the app's targetRevision.
func (c *Client) Sync(ctx context.Context, name, revision string) (*Application, error) {
	ref := parseRef(name)
	return c.sync(ctx, ref, syncRequest{Revision: revision, AppNamespace: ref.namespace})
}

// SyncTarget starts a sync of every source of the app to its own
// targetRevision, as Argo CD resolves it now: no revision in the request,
// so no override privilege is needed for it.
func (c *Client) SyncTarget(ctx context.Context, name string) (*Application, error) {
	ref := parseRef(name)
	return c.sync(ctx, ref, syncRequest{AppNamespace: ref.namespace})
}

// SyncSource is Sync for one source of a multi-source app: source is the
// index in spec.sources; the other sources sync to their targetRevision.
func (c *Client) SyncSource(ctx context.Context, name string, source int, revision string) (*Application, error) {
	ref := parseRef(name)
	return c.sync(ctx, ref, syncRequest{
		Revisions:       []string{revision},
		SourcePositions: []int64{int64(source) + 1},
		AppNamespace:    ref.namespace,
	})
}

func (c *Client) sync(ctx context.Context, ref appRef, body syncRequest) (*Application, error) {
	var app Application
	if err := c.call(ctx, c.opts.Timeout, http.MethodPost, "/api/v1/applications/"+url.PathEscape(ref.name)+"/sync", nil, body, &app); err != nil {
		return nil, err
	}
	return &app, nil
}

// ResourceTree returns the app's resources and their children with health
// (Pods included), for reasons a Degraded app's own status leaves out.
func (c *Client) ResourceTree(ctx context.Context, name string) (*ResourceTree, error) {
	ref := parseRef(name)
	q := url.Values{}
	ref.query(q)
	var tree ResourceTree
	if err := c.call(ctx, c.opts.Timeout, http.MethodGet, "/api/v1/applications/"+url.PathEscape(ref.name)+"/resource-tree", q, nil, &tree); err != nil {
		return nil, err
	}
	return &tree, nil
}

// call does one unary request with its own timeout and decodes the answer.
func (c *Client) call(ctx context.Context, timeout time.Duration, method, path string, q url.Values, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.do(ctx, method, path, q, in, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		return fmt.Errorf("argo: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// maxBody bounds an answer (an Application with thousands of resources is
// a few MiB).
const maxBody = 64 << 20

// do sends a request with the bearer token and returns a 2xx response;
// anything else becomes an *APIError. Errors name the method and path,
// never the token.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in any, header http.Header) (*http.Response, error) {
	token, err := c.token.get()
	if err != nil {
		return nil, err
	}
	u := c.base.JoinPath(path)
	u.RawQuery = q.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("argo: %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("argo: %s %s: %w", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "shipbot")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Keep the cause; the *url.Error's URL adds nothing to method and path.
		return nil, fmt.Errorf("argo: %s %s: %w", method, path, unwrapURLError(err))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, apiError(method, path, resp, token)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// tokenFile reads the bearer token from a file, again when it changes;
// without a path, token is the token given.
type tokenFile struct {
	path string

	mu    sync.Mutex
	token string
	mod   time.Time
	size  int64
}

func (t *tokenFile) get() (string, error) {
	if t.path == "" {
		return t.token, nil
	}
	fi, err := os.Stat(t.path)
	if err != nil {
		return "", fmt.Errorf("argo: token file: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && fi.ModTime().Equal(t.mod) && fi.Size() == t.size {
		return t.token, nil
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return "", fmt.Errorf("argo: token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("argo: token file %s is empty", t.path)
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("argo: token file %s: the token spans several lines", t.path)
	}
	t.token, t.mod, t.size = tok, fi.ModTime(), fi.Size()
	return tok, nil
}

// appRef is an app name, optionally qualified "namespace/name" for apps
// outside Argo CD's own namespace (apps in any namespace).
type appRef struct{ namespace, name string }

func parseRef(s string) appRef {
	if ns, name, ok := strings.Cut(s, "/"); ok {
		return appRef{namespace: ns, name: name}
	}
	return appRef{name: s}
}

func (r appRef) String() string {
	if r.namespace == "" {
		return r.name
	}
	return r.namespace + "/" + r.name
}

func (r appRef) query(q url.Values) {
	if r.namespace != "" {
		q.Set("appNamespace", r.namespace)
	}
}

// refOf is the reference to use for app in later calls.
func refOf(app *Application) string {
	return appRef{namespace: app.Metadata.Namespace, name: app.Metadata.Name}.String()
}
