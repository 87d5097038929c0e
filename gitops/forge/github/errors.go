package github

import (
	"errors"
	"net/http"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/gitops"
)

// RateLimitError is GitHub asking shipbot to slow down. It matches
// gitops.ErrForgeRateLimited with errors.Is; Until says when calls may
// resume.
type RateLimitError struct {
	Until  time.Time
	Reason string // e.g. "secondary rate limit"
}

func (e *RateLimitError) Error() string {
	msg := gitops.ErrForgeRateLimited.Error() + " until " + e.Until.UTC().Format(time.RFC3339)
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return msg
}

// Is makes errors.Is(err, gitops.ErrForgeRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == gitops.ErrForgeRateLimited }

// translate turns go-github's rate limit errors (and a bare 403/429 that
// is one) into a *RateLimitError; other errors pass unchanged.
func translate(err error, now time.Time) error {
	if err == nil {
		return nil
	}
	var own *RateLimitError
	if errors.As(err, &own) {
		return own // drop the *url.Error around a refusal of the transport
	}
	var rl *gh.RateLimitError
	if errors.As(err, &rl) {
		until := rl.Rate.Reset.Time
		if until.IsZero() {
			until = now.Add(time.Minute)
		}
		return &RateLimitError{Until: until, Reason: "primary rate limit"}
	}
	var abuse *gh.AbuseRateLimitError
	if errors.As(err, &abuse) {
		until := now.Add(time.Minute)
		if abuse.RetryAfter != nil {
			until = now.Add(*abuse.RetryAfter)
		}
		return &RateLimitError{Until: until, Reason: "secondary rate limit"}
	}
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && isRateLimited(er.Response.StatusCode, er.Response.Header) {
		until, ok := limitUntil(er.Response.Header, now)
		if !ok {
			until = now.Add(time.Minute)
		}
		return &RateLimitError{Until: until, Reason: http.StatusText(er.Response.StatusCode)}
	}
	return err
}

// statusOf is the HTTP status of a go-github error (0 when there is none).
func statusOf(err error) int {
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}
