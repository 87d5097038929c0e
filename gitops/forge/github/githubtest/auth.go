package githubtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// credential reads the token of `Authorization: Bearer <t>` or `token <t>`.
func credential(r *http.Request) string {
	h := r.Header.Get("Authorization")
	for _, scheme := range []string{"Bearer ", "bearer ", "token ", "Token "} {
		if strings.HasPrefix(h, scheme) {
			return strings.TrimSpace(h[len(scheme):])
		}
	}
	return ""
}

// authorized: the request carries the token, or a live installation token,
// or the double asks for none. The access token endpoint checks its JWT
// itself.
func (s *Server) authorized(r *http.Request) bool {
	if s.o.Token == "" && s.o.App == nil {
		return true
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/app/installations/") {
		return true
	}
	tok := credential(r)
	if tok == "" {
		return false
	}
	if s.o.Token != "" && tok == s.o.Token {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && s.o.Now().Before(exp)
}

// accessToken is POST /app/installations/{id}/access_tokens: a valid App
// JWT gets an installation token that expires in an hour.
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	if s.o.App == nil {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	if err := s.verifyJWT(credential(r)); err != nil {
		fail(w, http.StatusUnauthorized, "A JSON web token could not be decoded: "+err.Error())
		return
	}
	if r.PathValue("id") != strconv.FormatInt(s.o.App.InstallationID, 10) {
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	var b [20]byte
	_, _ = rand.Read(b[:])
	tok := "ghs_" + hex.EncodeToString(b[:])
	exp := s.o.Now().Add(time.Hour).Truncate(time.Second)
	s.mu.Lock()
	s.tokens[tok] = exp
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, github.InstallationToken{
		Token:     github.String(tok),
		ExpiresAt: &github.Timestamp{Time: exp.UTC()},
		Permissions: &github.InstallationPermissions{
			Contents:     github.String("write"),
			PullRequests: github.String("write"),
			Issues:       github.String("write"),
			Checks:       github.String("read"),
			Statuses:     github.String("read"),
		},
	})
}

// verifyJWT checks an App JWT as GitHub does: RS256 signed by the App's
// key, iss the App id, issued no later than now (60 s of drift allowed),
// not expired, and living at most 10 minutes.
func (s *Server) verifyJWT(tok string) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	enc := base64.RawURLEncoding
	rawHeader, err1 := enc.DecodeString(parts[0])
	rawClaims, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(rawHeader, &header); err != nil || header.Alg != "RS256" {
		return fmt.Errorf("alg %q is not RS256", header.Alg)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(s.o.App.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return errors.New("signature does not verify")
	}
	var claims struct {
		IAT *int64          `json:"iat"`
		EXP *int64          `json:"exp"`
		ISS json.RawMessage `json:"iss"`
	}
	if err := json.Unmarshal(rawClaims, &claims); err != nil {
		return err
	}
	if claims.IAT == nil || claims.EXP == nil {
		return errors.New("iat and exp are required")
	}
	iss := strings.Trim(string(claims.ISS), `"`)
	if iss != strconv.FormatInt(s.o.App.AppID, 10) {
		return fmt.Errorf("iss %s is not app %d", iss, s.o.App.AppID)
	}
	now := s.o.Now().Unix()
	switch {
	case *claims.IAT > now+60:
		return errors.New("'Issued at' claim (iat) must be an Integer representing a time in the past")
	case *claims.EXP <= now:
		return errors.New("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
	case *claims.EXP-*claims.IAT > 600:
		return errors.New("'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}
