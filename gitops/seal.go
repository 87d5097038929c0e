package gitops

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Stateless confirmations. A plan waiting for its answer lives in the
// memory of the replica that showed it; when that replica is gone (a
// restart, a node drain, a failover to another replica), the answer would
// find nothing. So the answer carries the plan: Seal turns a plan into a
// token the front end puts in its Confirm button, authenticated with
// shipbot's confirmation key (HMAC-SHA256); Resume, on any replica that
// holds the key, checks the token, re-plans the request on the current tip
// and hands the plan to Confirm only when its diff is the very diff the
// requester saw. Otherwise it says what changed and writes nothing.
//
// The token holds the request (what was asked, by whom, where, why), the
// commit the plan was computed on, the digest of its diff, a restart's
// timestamp (so that re-planning a restart gives the same diff), who may
// answer and when the question expires. It is signed, not encrypted: it
// holds nothing the plan message does not show.

// sealVersion prefixes every token; a token of another version is refused.
const sealVersion = "v1"

// sealed is a token's payload.
type sealed struct {
	Request  Request `json:"r"`
	Base     string  `json:"b"`
	Digest   string  `json:"d"`
	Restart  string  `json:"s,omitempty"`
	Answerer string  `json:"a"`
	Expires  int64   `json:"e"` // unix seconds
}

// ErrNoConfirmKey: Seal was asked for a token but no confirmation key is
// configured (plans then wait in memory only).
var ErrNoConfirmKey = errors.New("no confirmation key: plans wait in memory only")

// minConfirmKey is the shortest confirmation key accepted, in bytes.
const minConfirmKey = 32

// Seal returns the token that lets any replica confirm p for answerer (the
// front end's id of the one user who may answer), until the plan's question
// expires.
func (s *Service) Seal(p *Plan, answerer string) (string, error) {
	if len(s.o.ConfirmKey) == 0 {
		return "", ErrNoConfirmKey
	}
	exp := p.Request.At
	if exp.IsZero() {
		exp = s.o.Now()
	}
	payload, err := json.Marshal(sealed{
		Request: p.Request, Base: p.Base, Digest: digest(p.Diff), Restart: p.Restart,
		Answerer: answerer, Expires: exp.Add(s.o.ConfirmTimeout).Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", p.Request.ID, err)
	}
	body := sealVersion + "." + base64.RawURLEncoding.EncodeToString(payload)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac(body)), nil
}

func (s *Service) mac(body string) []byte {
	m := hmac.New(sha256.New, s.o.ConfirmKey)
	m.Write([]byte("shipbot confirmation\x00"))
	m.Write([]byte(body))
	return m.Sum(nil)
}

// open checks a token and returns its payload.
func (s *Service) open(token string) (sealed, error) {
	var t sealed
	if len(s.o.ConfirmKey) == 0 {
		return t, ErrNoConfirmKey
	}
	i := strings.LastIndexByte(token, '.')
	if i < 0 || !strings.HasPrefix(token, sealVersion+".") {
		return t, errors.New("not a confirmation token")
	}
	body, sig := token[:i], token[i+1:]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(body)) {
		return t, errors.New("bad signature")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(body, sealVersion+"."))
	if err != nil {
		return t, fmt.Errorf("payload: %w", err)
	}
	if err := json.Unmarshal(payload, &t); err != nil {
		return t, fmt.Errorf("payload: %w", err)
	}
	return t, nil
}

// SealedRequest returns the request id a token is about and who may
// answer it, checking its signature only: a front end that did not show
// the plan finds the request and refuses anyone else before re-planning.
func (s *Service) SealedRequest(token string) (id, answerer string, ok bool) {
	t, err := s.open(token)
	return t.Request.ID, t.Answerer, err == nil
}

// Resume turns a token from a Confirm button into a plan ready for
// Confirm, on whichever replica got the answer. It refuses a token that is
// forged, expired, or answered by anyone but the one it names; it re-plans
// the request on the current tip (policy, justification, freezes and pins
// are checked again) and returns the plan only when its diff is the diff
// that was confirmed. A request that landed meanwhile is answered with its
// commit. Resume writes nothing.
func (s *Service) Resume(ctx context.Context, token, answerer string) (*Plan, Response) {
	t, err := s.open(token)
	if err != nil {
		s.o.Logger.Warn("confirmation refused: bad token", "err", err)
		return nil, Response{Outcome: OutcomeRejected, Text: "This confirmation could not be checked, so nothing was written. Ask again."}
	}
	req := t.Request
	log := s.requestLogger(req)
	switch {
	case t.Answerer != answerer:
		log.Warn("confirmation refused: answered by someone else", "answerer", answerer)
		return nil, Response{Outcome: OutcomeRejected, Text: fmt.Sprintf("[%s] only the requester can answer this plan; nothing was written.", req.ID)}
	case !s.o.Now().Before(time.Unix(t.Expires, 0)):
		log.Info("confirmation refused: expired")
		return nil, Response{Outcome: OutcomeCancelled, Text: fmt.Sprintf("[%s] cancelled: no answer within %s; nothing was written. Ask again.", req.ID, s.o.ConfirmTimeout)}
	}
	p, resp := s.plan(ctx, log, req)
	if p == nil {
		return nil, resp
	}
	if req.Action == ActionRestart && t.Restart != "" && p.Restart != t.Restart {
		// The restart's timestamp is the one shown, not the time of the
		// re-plan.
		head, err := s.o.Repo.Head()
		if err != nil {
			return nil, s.failed(log, req, err)
		}
		p.Restart = t.Restart
		if err := s.compute(ctx, head, p); err != nil {
			return nil, s.rejected(log, req, err)
		}
	}
	if got := digest(p.Diff); got != t.Digest {
		log.Info("confirmation refused: the change differs from the plan shown", "base", t.Base, "now", p.Base)
		return nil, Response{Outcome: OutcomeRejected, Text: fmt.Sprintf("[%s] not written: %s changed since the plan was shown, and the change is no longer the one you confirmed. Now it would be:\n```\n%s```\nAsk again to confirm this one.", req.ID, s.o.Repo.Branch(), p.Diff)}
	}
	log.Info("plan resumed from its confirmation", "base", t.Base, "now", p.Base)
	return p, Response{}
}
