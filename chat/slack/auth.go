package slack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"

	slackgo "github.com/slack-go/slack"
)

// tokenErrors are Slack's answers that mean the token itself is refused.
var tokenErrors = map[string]bool{
	"invalid_auth": true, "not_authed": true, "account_inactive": true, "token_revoked": true,
	"token_expired": true, "no_permission": true, "not_allowed_token_type": true, "ekm_access_denied": true,
	"missing_scope": true, "team_access_not_granted": true,
}

// AuthTestError explains why auth.test failed, telling a token Slack
// refused (check the token) from Slack not being reached or failing (check
// the network, a proxy, the API URL; the token may be fine). tokenVar names
// the setting that holds the token; apiURL is the API base ("" for Slack's).
func AuthTestError(err error, tokenVar, apiURL string) error {
	if apiURL == "" {
		apiURL = slackgo.APIURL
	}
	var se slackgo.SlackErrorResponse
	var sc slackgo.StatusCodeError
	var rl *slackgo.RateLimitedError
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.As(err, &se) && tokenErrors[se.Err]:
		return fmt.Errorf("slack refused the bot token (auth.test: %s); check %s", se.Err, tokenVar)
	case errors.As(err, &se):
		return fmt.Errorf("slack answered auth.test with the error %q; the bot token may be fine (see https://api.slack.com/methods/auth.test)", se.Err)
	case errors.As(err, &rl):
		return fmt.Errorf("slack rate-limited auth.test (retry after %s); the bot token was not checked: start again later", rl.RetryAfter)
	case errors.As(err, &sc):
		return fmt.Errorf("slack's API at %s failed (auth.test: HTTP %d); the bot token was not checked: retry, or check %s if it is not Slack's", apiURL, sc.Code, EnvAPIURL)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) || errors.As(err, &ue):
		return fmt.Errorf("could not reach slack's API at %s (auth.test: %v); a network problem, not the token: check the network, a proxy (HTTPS_PROXY) or %s", apiURL, err, EnvAPIURL)
	}
	return fmt.Errorf("auth.test failed: %v; check %s and the network", err, tokenVar)
}
