package alert

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
)

// authenticator checks one delivery. It returns a reason for the log when
// it refuses ("missing credentials", "wrong token", ...); the reason never
// carries a secret.
type authenticator interface {
	authenticate(r *http.Request, body []byte) (ok bool, reason string)
}

// anyOf accepts what any of its authenticators accepts. With none it
// refuses everything: a source without credentials is closed.
type anyOf []authenticator

func (a anyOf) authenticate(r *http.Request, body []byte) (bool, string) {
	if len(a) == 0 {
		return false, "no credentials configured for this source"
	}
	var reasons []string
	for _, x := range a {
		ok, reason := x.authenticate(r, body)
		if ok {
			return true, ""
		}
		reasons = append(reasons, reason)
	}
	return false, strings.Join(reasons, "; ")
}

// secretEqual compares a presented secret with a configured one in
// constant time; hashing both first keeps the configured length secret.
func secretEqual(presented string, want []byte) bool {
	p := sha256.Sum256([]byte(presented))
	w := sha256.Sum256(want)
	return subtle.ConstantTimeCompare(p[:], w[:]) == 1
}

// oneOf reports whether presented equals one of secrets, comparing with
// every secret (no early exit).
func oneOf(presented string, secrets [][]byte) bool {
	ok := false
	for _, s := range secrets {
		if secretEqual(presented, s) {
			ok = true
		}
	}
	return ok
}

// authorization checks the Authorization header "<scheme> <credentials>",
// as Alertmanager's http_config authorization (type, credentials) sends it.
type authorization struct {
	scheme      string   // "Bearer" unless configured
	credentials [][]byte // several during a rotation
}

func (a authorization) authenticate(r *http.Request, _ []byte) (bool, string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return false, "no Authorization header"
	}
	scheme, cred, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, a.scheme) {
		return false, "Authorization is not of type " + a.scheme
	}
	if !oneOf(strings.TrimSpace(cred), a.credentials) {
		return false, "wrong " + a.scheme + " credentials"
	}
	return true, ""
}

// basicAuth checks HTTP basic authentication.
type basicAuth struct {
	username  string
	passwords [][]byte
}

func (b basicAuth) authenticate(r *http.Request, _ []byte) (bool, string) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false, "no basic auth"
	}
	// Both are compared, always.
	userOK := secretEqual(user, []byte(b.username))
	passOK := oneOf(pass, b.passwords)
	if !userOK || !passOK {
		return false, "wrong basic auth username or password"
	}
	return true, ""
}

// headerSecret checks a custom header carrying a shared secret (Opsgenie's
// webhook integration can add custom headers).
type headerSecret struct {
	name   string
	values [][]byte
}

func (h headerSecret) authenticate(r *http.Request, _ []byte) (bool, string) {
	v := r.Header.Values(h.name)
	if len(v) == 0 {
		return false, "no " + h.name + " header"
	}
	if len(v) > 1 || !oneOf(v[0], h.values) {
		return false, "wrong " + h.name + " header"
	}
	return true, ""
}

// pagerDutySignature checks X-PagerDuty-Signature: one or more
// comma-separated "v1=<hex HMAC-SHA256 of the raw body>", one per signing
// secret of the subscription (several during a rotation). The delivery is
// authentic when any v1 signature matches any configured secret.
type pagerDutySignature struct {
	secrets [][]byte
}

// HeaderPagerDutySignature carries PagerDuty's v3 webhook signatures.
const HeaderPagerDutySignature = "X-PagerDuty-Signature"

func (p pagerDutySignature) authenticate(r *http.Request, body []byte) (bool, string) {
	h := r.Header.Get(HeaderPagerDutySignature)
	if h == "" {
		return false, "no " + HeaderPagerDutySignature + " header"
	}
	var sigs [][]byte
	for _, part := range strings.Split(h, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue // another signature version: not ours to check
		}
		sig, err := hex.DecodeString(v)
		if err != nil || len(sig) != sha256.Size {
			continue
		}
		sigs = append(sigs, sig)
		if len(sigs) == 16 {
			break // a rotation has two; more is noise
		}
	}
	if len(sigs) == 0 {
		return false, "no v1 signature in " + HeaderPagerDutySignature
	}
	ok := false
	for _, secret := range p.secrets {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		want := mac.Sum(nil)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				ok = true
			}
		}
	}
	if !ok {
		return false, "signature does not match"
	}
	return true, ""
}

// SignPagerDuty returns the X-PagerDuty-Signature value PagerDuty would
// send for body signed with each secret (tests, and a local sender).
func SignPagerDuty(body []byte, secrets ...[]byte) string {
	parts := make([]string, 0, len(secrets))
	for _, s := range secrets {
		mac := hmac.New(sha256.New, s)
		mac.Write(body)
		parts = append(parts, "v1="+hex.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(parts, ",")
}
