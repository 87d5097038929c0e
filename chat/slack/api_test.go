package slack

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"
)

type countingMetrics struct {
	NopMetrics
	mu          sync.Mutex
	rateLimited map[string]int
	denied      map[string]int
	requests    map[string]int
	rejected    map[string]int
	committed   int
	retries     int
	watched     map[string]int
}

func newCountingMetrics() *countingMetrics {
	return &countingMetrics{rateLimited: map[string]int{}, denied: map[string]int{}, requests: map[string]int{}, rejected: map[string]int{}, watched: map[string]int{}}
}

func (m *countingMetrics) RateLimited(method string) {
	m.mu.Lock()
	m.rateLimited[method]++
	m.mu.Unlock()
}
func (m *countingMetrics) Denied(r string)     { m.mu.Lock(); m.denied[r]++; m.mu.Unlock() }
func (m *countingMetrics) Rejected(r string)   { m.mu.Lock(); m.rejected[r]++; m.mu.Unlock() }
func (m *countingMetrics) Request(a, o string) { m.mu.Lock(); m.requests[a+"/"+o]++; m.mu.Unlock() }
func (m *countingMetrics) Committed(time.Duration, time.Duration) {
	m.mu.Lock()
	m.committed++
	m.mu.Unlock()
}

func (m *countingMetrics) PushRetries(n int) { m.mu.Lock(); m.retries += n; m.mu.Unlock() }
func (m *countingMetrics) Watched(o string, _ time.Duration) {
	m.mu.Lock()
	m.watched[o]++
	m.mu.Unlock()
}

func (m *countingMetrics) get(f func(*countingMetrics) int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return f(m)
}

// TestRateLimitRetry: a 429 with Retry-After is waited out and retried,
// within bounds.
func TestRateLimitRetry(t *testing.T) {
	fs := newFakeSlack(t)
	fs.mu.Lock()
	fs.limits["chat.postMessage"] = 2
	fs.mu.Unlock()
	m := newCountingMetrics()
	var waits []time.Duration
	l := WithRateLimit(fs.client(), RateLimit{}, nil, m).(*limitedAPI)
	l.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }

	if _, _, err := l.PostMessageContext(context.Background(), "COPS", slackgo.MsgOptionText("hi", false)); err != nil {
		t.Fatal(err)
	}
	if len(waits) != 2 || waits[0] != time.Second || fs.callCount("chat.postMessage") != 3 {
		t.Fatalf("waits %v, %d calls; want two 1s waits and 3 calls", waits, fs.callCount("chat.postMessage"))
	}
	if m.get(func(m *countingMetrics) int { return m.rateLimited["chat.postMessage"] }) != 2 {
		t.Error("429s not counted")
	}

	// More 429s than retries: the error comes back, typed.
	fs.mu.Lock()
	fs.limits["chat.update"] = 10
	fs.mu.Unlock()
	waits = nil
	_, _, _, err := l.UpdateMessageContext(context.Background(), "COPS", "1", slackgo.MsgOptionText("x", false))
	var rl *slackgo.RateLimitedError
	if !errors.As(err, &rl) || len(waits) != 3 {
		t.Fatalf("err %v after %d waits; want RateLimitedError after 3", err, len(waits))
	}

	// A Retry-After longer than MaxWait, or than the context has left, is
	// not waited for.
	l.rl.MaxWait = 500 * time.Millisecond
	waits = nil
	fs.mu.Lock()
	fs.limits["users.info"] = 1
	fs.mu.Unlock()
	if _, err := l.GetUserInfoContext(context.Background(), "UALICE"); !errors.As(err, &rl) || len(waits) != 0 {
		t.Fatalf("long Retry-After: err %v, %d waits", err, len(waits))
	}
	l.rl.MaxWait = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	fs.mu.Lock()
	fs.limits["users.info"] = 1
	fs.mu.Unlock()
	if _, err := l.GetUserInfoContext(ctx, "UALICE"); !errors.As(err, &rl) || len(waits) != 0 {
		t.Fatalf("short deadline: err %v, %d waits", err, len(waits))
	}
}

// TestRateLimitRealWait waits out a real Retry-After of 1s.
func TestRateLimitRealWait(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 1s")
	}
	fs := newFakeSlack(t)
	fs.mu.Lock()
	fs.limits["chat.postEphemeral"] = 1
	fs.mu.Unlock()
	api := WithRateLimit(fs.client(), RateLimit{}, nil, nil)
	start := time.Now()
	if _, err := api.PostEphemeralContext(context.Background(), "COPS", "UALICE", slackgo.MsgOptionText("x", false)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, before Retry-After", d)
	}
}
