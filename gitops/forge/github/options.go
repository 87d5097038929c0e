package github

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Options configure a Forge. Validate fills the defaults.
type Options struct {
	// BaseURL is the REST API's root: "" for github.com
	// (https://api.github.com/), a GitHub Enterprise Server URL ending in
	// /api/v3/ (e.g. https://ghe.example.com/api/v3/), or any other URL,
	// used as the API root as it is (a proxy, a test double).
	BaseURL string
	// Owner and Repo name the environment repository.
	Owner, Repo string
	// BaseBranch is the branch proposals merge into when a spec names none
	// (default "main").
	BaseBranch string

	// Auth: exactly one of Token and App.
	//
	// Token is a personal access token (or any token GitHub accepts as a
	// Bearer token); the caller reads it from a file. It is never logged.
	Token string
	// App authenticates as a GitHub App installation.
	App *AppAuth

	// Logins maps chat users to GitHub logins: the explicit, auditable
	// identity mapping. Reviews by a login not in it carry no chat user.
	// Logins are matched case-insensitively, as GitHub does.
	Logins map[string]string
	// Teams maps policy groups to team slugs: a proposal whose group maps
	// to a team requests that team's review too.
	Teams map[string]string
	// Labels are added to every pull request besides the spec's (default
	// ["shipbot"]).
	Labels []string

	// HTTPClient is the client the API calls go through (default: one with
	// a 30s timeout). Its Transport is wrapped, never modified.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	// MaxWait is the longest a rate limit wait is honoured inline (default
	// 30s); a longer one fails the call at once with
	// gitops.ErrForgeRateLimited.
	MaxWait time.Duration
}

// AppAuth authenticates as a GitHub App installation: shipbot signs a JWT
// with the App's private key, exchanges it for an installation token, and
// caches that token until a minute before it expires.
type AppAuth struct {
	AppID          int64
	InstallationID int64
	// PrivateKeyPEM is the App's RSA private key as GitHub hands it out
	// (PKCS#1 "RSA PRIVATE KEY"; PKCS#8 is accepted too).
	PrivateKeyPEM []byte
}

// Validate checks o and fills its defaults.
func (o *Options) Validate() error {
	var errs []error
	if o.Owner == "" || o.Repo == "" {
		errs = append(errs, errors.New("owner and repo are required"))
	}
	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("base URL %q is not an http(s) URL", o.BaseURL))
		}
	}
	switch {
	case o.Token != "" && o.App != nil:
		errs = append(errs, errors.New("give either a token or a GitHub App, not both"))
	case o.Token == "" && o.App == nil:
		errs = append(errs, errors.New("a token or a GitHub App is required"))
	case o.App != nil:
		if o.App.AppID <= 0 || o.App.InstallationID <= 0 {
			errs = append(errs, errors.New("the GitHub App needs an app id and an installation id"))
		}
		if len(o.App.PrivateKeyPEM) == 0 {
			errs = append(errs, errors.New("the GitHub App needs its private key"))
		}
	}
	if strings.ContainsAny(o.Token, "\r\n") {
		errs = append(errs, errors.New("the token contains a line break (read from a file without trimming?)"))
	}
	seen := map[string]string{}
	for user, login := range o.Logins {
		if user == "" || login == "" {
			errs = append(errs, fmt.Errorf("login mapping %q -> %q: both sides are required", user, login))
			continue
		}
		k := strings.ToLower(login)
		if other, ok := seen[k]; ok && other != user {
			a, b := min(user, other), max(user, other)
			errs = append(errs, fmt.Errorf("GitHub login %q is mapped to two chat users, %q and %q", login, a, b))
		}
		seen[k] = user
	}
	if o.BaseBranch == "" {
		o.BaseBranch = "main"
	}
	if o.Labels == nil {
		o.Labels = []string{"shipbot"}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxWait == 0 {
		o.MaxWait = 30 * time.Second
	}
	return errors.Join(errs...)
}
