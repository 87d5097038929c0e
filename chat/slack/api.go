package slack

import (
	"context"
	"errors"
	"log/slog"
	"time"

	slackgo "github.com/slack-go/slack"
)

// API is the part of the Slack Web API shipbot calls; *slack.Client (from
// github.com/slack-go/slack) implements it.
type API interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slackgo.MsgOption) (string, string, error)
	UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slackgo.MsgOption) (string, string, string, error)
	PostEphemeralContext(ctx context.Context, channelID, userID string, options ...slackgo.MsgOption) (string, error)
	GetUserInfoContext(ctx context.Context, user string, options ...slackgo.GetUserInfoOption) (*slackgo.User, error)
	GetUserGroupsContext(ctx context.Context, options ...slackgo.GetUserGroupsOption) ([]slackgo.UserGroup, error)
	GetUserGroupMembersContext(ctx context.Context, userGroup string, options ...slackgo.GetUserGroupMembersOption) ([]string, error)
	GetConversationInfoContext(ctx context.Context, input *slackgo.GetConversationInfoInput) (*slackgo.Channel, error)
	// GetPermalinkContext (chat.getPermalink, no scope needed) links the
	// reviewers' channel to a request's thread.
	GetPermalinkContext(ctx context.Context, params *slackgo.PermalinkParameters) (string, error)
	GetUserByEmailContext(ctx context.Context, email string) (*slackgo.User, error)
}

var _ API = (*slackgo.Client)(nil)

// RateLimit says how shipbot waits out Slack's rate limits (HTTP 429 with
// Retry-After, surfaced by slack-go as *slack.RateLimitedError).
type RateLimit struct {
	// MaxRetries bounds the retries of one call (default 3).
	MaxRetries int
	// MaxWait is the longest Retry-After shipbot waits for; a longer one
	// fails the call at once (default 30s).
	MaxWait time.Duration
}

func (r RateLimit) withDefaults() RateLimit {
	if r.MaxRetries <= 0 {
		r.MaxRetries = 3
	}
	if r.MaxWait <= 0 {
		r.MaxWait = 30 * time.Second
	}
	return r
}

// limitedAPI retries a call refused with 429 after the Retry-After Slack
// asked for, within the call's context and RateLimit's bounds.
type limitedAPI struct {
	api     API
	rl      RateLimit
	log     *slog.Logger
	metrics Metrics
	sleep   func(ctx context.Context, d time.Duration) error
}

var _ API = (*limitedAPI)(nil)

// WithRateLimit wraps api so that a call refused with 429 is retried after
// the Retry-After Slack sent, within rl's bounds and the call's context.
// Wrapping twice changes nothing.
func WithRateLimit(api API, rl RateLimit, log *slog.Logger, m Metrics) API {
	if l, ok := api.(*limitedAPI); ok {
		return l
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = NopMetrics{}
	}
	return &limitedAPI{api: api, rl: rl.withDefaults(), log: log, metrics: m, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *limitedAPI) do(ctx context.Context, method string, call func() error) error {
	for attempt := 0; ; attempt++ {
		err := call()
		var rl *slackgo.RateLimitedError
		if !errors.As(err, &rl) {
			return err
		}
		l.metrics.RateLimited(method)
		wait := max(rl.RetryAfter, time.Second)
		if attempt >= l.rl.MaxRetries || wait > l.rl.MaxWait {
			l.log.Warn("slack rate limit: giving up", "method", method, "retry_after", rl.RetryAfter, "attempts", attempt+1)
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			l.log.Warn("slack rate limit: no time left to wait", "method", method, "retry_after", rl.RetryAfter)
			return err
		}
		l.log.Info("slack rate limit: waiting", "method", method, "retry_after", wait, "attempt", attempt+1)
		if err := l.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (l *limitedAPI) PostMessageContext(ctx context.Context, channelID string, options ...slackgo.MsgOption) (ch, ts string, err error) {
	err = l.do(ctx, "chat.postMessage", func() (e error) {
		ch, ts, e = l.api.PostMessageContext(ctx, channelID, options...)
		return e
	})
	return ch, ts, err
}

func (l *limitedAPI) UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slackgo.MsgOption) (ch, ts, text string, err error) {
	err = l.do(ctx, "chat.update", func() (e error) {
		ch, ts, text, e = l.api.UpdateMessageContext(ctx, channelID, timestamp, options...)
		return e
	})
	return ch, ts, text, err
}

func (l *limitedAPI) PostEphemeralContext(ctx context.Context, channelID, userID string, options ...slackgo.MsgOption) (ts string, err error) {
	err = l.do(ctx, "chat.postEphemeral", func() (e error) {
		ts, e = l.api.PostEphemeralContext(ctx, channelID, userID, options...)
		return e
	})
	return ts, err
}

func (l *limitedAPI) GetUserInfoContext(ctx context.Context, user string, options ...slackgo.GetUserInfoOption) (u *slackgo.User, err error) {
	err = l.do(ctx, "users.info", func() (e error) {
		u, e = l.api.GetUserInfoContext(ctx, user, options...)
		return e
	})
	return u, err
}

func (l *limitedAPI) GetUserGroupsContext(ctx context.Context, options ...slackgo.GetUserGroupsOption) (g []slackgo.UserGroup, err error) {
	err = l.do(ctx, "usergroups.list", func() (e error) {
		g, e = l.api.GetUserGroupsContext(ctx, options...)
		return e
	})
	return g, err
}

func (l *limitedAPI) GetUserGroupMembersContext(ctx context.Context, userGroup string, options ...slackgo.GetUserGroupMembersOption) (m []string, err error) {
	err = l.do(ctx, "usergroups.users.list", func() (e error) {
		m, e = l.api.GetUserGroupMembersContext(ctx, userGroup, options...)
		return e
	})
	return m, err
}

func (l *limitedAPI) GetConversationInfoContext(ctx context.Context, input *slackgo.GetConversationInfoInput) (c *slackgo.Channel, err error) {
	err = l.do(ctx, "conversations.info", func() (e error) {
		c, e = l.api.GetConversationInfoContext(ctx, input)
		return e
	})
	return c, err
}

func (l *limitedAPI) GetPermalinkContext(ctx context.Context, params *slackgo.PermalinkParameters) (link string, err error) {
	err = l.do(ctx, "chat.getPermalink", func() (e error) {
		link, e = l.api.GetPermalinkContext(ctx, params)
		return e
	})
	return link, err
}

func (l *limitedAPI) GetUserByEmailContext(ctx context.Context, email string) (u *slackgo.User, err error) {
	err = l.do(ctx, "users.lookupByEmail", func() (e error) {
		u, e = l.api.GetUserByEmailContext(ctx, email)
		return e
	})
	return u, err
}
