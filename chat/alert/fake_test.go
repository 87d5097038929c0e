package alert

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// sinkCall is one call the FakeSink received.
type sinkCall struct {
	Kind string // open, update, resolve
	Ref  string
	Inc  Incident
}

// FakeSink records the calls it gets; the optional funcs can fail or
// delay them.
type FakeSink struct {
	OpenFunc    func(ctx context.Context, inc Incident) (string, error)
	UpdateFunc  func(ctx context.Context, ref string, inc Incident) error
	ResolveFunc func(ctx context.Context, ref string, inc Incident) error

	mu    sync.Mutex
	calls []sinkCall
	n     int
}

var _ Sink = (*FakeSink)(nil)

func (f *FakeSink) Open(ctx context.Context, inc Incident) (string, error) {
	if f.OpenFunc != nil {
		if ref, err := f.OpenFunc(ctx, inc); err != nil || ref != "" {
			if err == nil {
				f.record("open", ref, inc)
			}
			return ref, err
		}
	}
	f.mu.Lock()
	f.n++
	ref := fmt.Sprintf("msg-%d", f.n)
	f.mu.Unlock()
	f.record("open", ref, inc)
	return ref, nil
}

func (f *FakeSink) Update(ctx context.Context, ref string, inc Incident) error {
	if f.UpdateFunc != nil {
		if err := f.UpdateFunc(ctx, ref, inc); err != nil {
			return err
		}
	}
	f.record("update", ref, inc)
	return nil
}

func (f *FakeSink) Resolve(ctx context.Context, ref string, inc Incident) error {
	if f.ResolveFunc != nil {
		if err := f.ResolveFunc(ctx, ref, inc); err != nil {
			return err
		}
	}
	f.record("resolve", ref, inc)
	return nil
}

func (f *FakeSink) record(kind, ref string, inc Incident) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, sinkCall{kind, ref, inc})
}

// Calls returns the calls so far.
func (f *FakeSink) Calls() []sinkCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sinkCall(nil), f.calls...)
}

// kinds is the calls as "open checkout/prod msg-1" lines.
func (f *FakeSink) kinds() []string {
	var out []string
	for _, c := range f.Calls() {
		out = append(out, fmt.Sprintf("%s %s/%s %s", c.Kind, c.Inc.App, c.Inc.Env, c.Ref))
	}
	return out
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 5, 6, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
