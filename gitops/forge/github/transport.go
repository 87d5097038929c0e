package github

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// limiter is the transport that honours GitHub's rate limits. On a 429,
// or a 403 that is a rate limit, it waits for Retry-After (or
// X-RateLimit-Reset) when that is within maxWait and retries once; else it
// hands the response back at once. After a response that says the budget
// is spent (X-RateLimit-Remaining: 0, or a Retry-After) it refuses further
// calls until then without sending them.
type limiter struct {
	base    http.RoundTripper
	now     func() time.Time
	maxWait time.Duration
	log     *slog.Logger

	mu    sync.Mutex
	until time.Time // no calls before this
}

func (l *limiter) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	until := l.until
	l.mu.Unlock()
	if l.now().Before(until) {
		return nil, &RateLimitError{Until: until, Reason: "rate limit budget spent; call not sent"}
	}
	resp, err := l.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	wait, limited := l.observe(resp)
	if !limited || wait > l.maxWait {
		return resp, nil
	}
	ctx := req.Context()
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		return resp, nil
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil // can't send the body again
	}
	l.log.InfoContext(ctx, "github rate limit: waiting before the one retry", "wait", wait.Round(time.Millisecond), "status", resp.StatusCode)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	retry := req.Clone(ctx)
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	resp, err = l.base.RoundTrip(retry)
	if err != nil {
		return nil, err
	}
	l.observe(resp)
	return resp, nil
}

// observe records what resp says about the rate limit and reports whether
// it is a rate-limit refusal, and how long GitHub asks to wait.
func (l *limiter) observe(resp *http.Response) (wait time.Duration, limited bool) {
	now := l.now()
	until, spent := limitUntil(resp.Header, now)
	l.mu.Lock()
	switch {
	case spent:
		l.until = until
	case resp.Header.Get("X-RateLimit-Remaining") != "":
		l.until = time.Time{}
	}
	l.mu.Unlock()
	if !isRateLimited(resp.StatusCode, resp.Header) {
		return 0, false
	}
	if !spent {
		// A 429 or secondary limit that says nothing: GitHub asks for at
		// least a minute.
		until = now.Add(time.Minute)
		l.mu.Lock()
		l.until = until
		l.mu.Unlock()
	}
	return max(0, until.Sub(now)), true
}

// isRateLimited: a 429, or a 403 that carries Retry-After or
// X-RateLimit-Remaining: 0.
func isRateLimited(status int, h http.Header) bool {
	switch status {
	case http.StatusTooManyRequests:
		return true
	case http.StatusForbidden:
		return h.Get("Retry-After") != "" || h.Get("X-RateLimit-Remaining") == "0"
	}
	return false
}

// limitUntil reads until when h asks shipbot to hold off: Retry-After
// (seconds or an HTTP date), or X-RateLimit-Reset when
// X-RateLimit-Remaining is 0.
func limitUntil(h http.Header, now time.Time) (time.Time, bool) {
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
			return now.Add(time.Duration(s) * time.Second), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return t, true
		}
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if s, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return time.Unix(s, 0), true
		}
		return now.Add(time.Minute), true
	}
	return time.Time{}, false
}

// authTransport adds the Authorization header.
type authTransport struct {
	base  http.RoundTripper
	token func(context.Context) (string, error)
	// reject, if set, is told when GitHub refuses the token (401).
	reject func(token string)
}

func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := a.token(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	resp, err := a.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && a.reject != nil {
		a.reject(tok)
	}
	return resp, err
}

// appTokens hands out the installation token of a GitHub App, exchanging a
// fresh JWT for a new one a minute before the cached one expires.
type appTokens struct {
	app    AppAuth
	key    *rsa.PrivateKey
	now    func() time.Time
	client *gh.Client // authenticates with the JWT
	log    *slog.Logger

	mu      sync.Mutex
	token   string
	expires time.Time
}

func (a *appTokens) Token(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && a.now().Before(a.expires.Add(-time.Minute)) {
		return a.token, nil
	}
	tok, _, err := a.client.Apps.CreateInstallationToken(ctx, a.app.InstallationID, nil)
	if err != nil {
		return "", fmt.Errorf("get an installation token for installation %d: %w", a.app.InstallationID, translate(err, a.now()))
	}
	if tok.GetToken() == "" {
		return "", fmt.Errorf("get an installation token for installation %d: GitHub returned no token", a.app.InstallationID)
	}
	a.token, a.expires = tok.GetToken(), tok.GetExpiresAt().Time
	if a.expires.IsZero() {
		a.expires = a.now().Add(time.Hour)
	}
	a.log.DebugContext(ctx, "github app installation token refreshed", "installation", a.app.InstallationID, "expires", a.expires)
	return a.token, nil
}

// Reject drops tok from the cache when GitHub refused it.
func (a *appTokens) Reject(tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token == tok {
		a.token = ""
	}
}

// JWT signs the JSON Web Token a GitHub App authenticates with: RS256,
// issued a minute ago (clock drift), expiring in 9 minutes (GitHub allows
// at most 10).
func (a *appTokens) JWT(context.Context) (string, error) {
	return signAppJWT(a.key, a.app.AppID, a.now())
}

func signAppJWT(key *rsa.PrivateKey, appID int64, now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, err := json.Marshal(struct {
		IAT int64  `json:"iat"`
		EXP int64  `json:"exp"`
		ISS string `json:"iss"`
	}{now.Add(-time.Minute).Unix(), now.Add(9 * time.Minute).Unix(), strconv.FormatInt(appID, 10)})
	if err != nil {
		return "", err
	}
	signed := header + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign the GitHub App JWT: %w", err)
	}
	return signed + "." + enc.EncodeToString(sig), nil
}

// parsePrivateKey reads an RSA private key in PEM, PKCS#1 or PKCS#8.
func parsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("the GitHub App private key is not PEM")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("the GitHub App private key is neither PKCS#1 nor PKCS#8 RSA")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the GitHub App private key is not an RSA key")
	}
	return rk, nil
}
