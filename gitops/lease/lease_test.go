package lease

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops/lease/leasetest"
)

// Short periods keep the test quick; their ratios are the defaults'.
func elector(t *testing.T, srv *leasetest.Server, id string) *Elector {
	t.Helper()
	e, err := New(Options{
		Server: srv.URL, Token: func() (string, error) { return leasetest.Token, nil },
		Namespace: leasetest.Namespace, Name: "shipbot-env", Identity: id,
		LeaseDuration: 900 * time.Millisecond, RenewDeadline: 600 * time.Millisecond, RetryPeriod: 120 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// replica runs an elector and records when it leads.
type replica struct {
	e       *Elector
	cancel  context.CancelFunc
	done    chan error
	leading atomic.Bool
}

func start(t *testing.T, e *Elector) *replica {
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{e: e, cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- e.Run(ctx, func(ctx context.Context) {
			r.leading.Store(true)
			<-ctx.Done()
			r.leading.Store(false)
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
		}
	})
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// watchOverlap samples both replicas until stop and fails if both hold
// the lease (Held: what writers check) at the same moment.
func watchOverlap(t *testing.T, a, b *Elector) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	var both atomic.Int32
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(2 * time.Millisecond):
				if a.Held() && b.Held() {
					both.Add(1)
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		if n := both.Load(); n > 0 {
			t.Errorf("both replicas held the lease at once (%d samples)", n)
		}
	}
}

func TestOneLeaderAndHandOverOnShutdown(t *testing.T) {
	api := leasetest.New(t)
	srv := api
	a := start(t, elector(t, srv, "shipbot-a"))
	waitFor(t, "a to lead", func() bool { return a.leading.Load() && a.e.Held() })
	b := start(t, elector(t, srv, "shipbot-b"))
	stop := watchOverlap(t, a.e, b.e)
	time.Sleep(1500 * time.Millisecond) // longer than the lease duration: b must not take a renewed lease
	if b.e.Held() || b.leading.Load() || api.Holder("shipbot-env") != "shipbot-a" {
		t.Fatalf("b took a lease a renews (holder %q)", api.Holder("shipbot-env"))
	}
	if b.e.Holder() != "shipbot-a" {
		t.Errorf("b sees holder %q", b.e.Holder())
	}

	// a shuts down: it stops leading, releases the lease, and b takes it at
	// its next try instead of after the lease duration.
	began := time.Now()
	a.cancel()
	if err := <-a.done; err != nil {
		t.Fatalf("a: %v", err)
	}
	if a.e.Held() || a.leading.Load() {
		t.Fatal("a still leads after Run returned")
	}
	waitFor(t, "b to lead", func() bool { return b.leading.Load() })
	if took := time.Since(began); took > 600*time.Millisecond {
		t.Errorf("hand-over took %s; a released lease is taken at the next try", took)
	}
	stop()
}

// A leader cut off from the API server stops leading (Held false) before
// the other replica can take the lease: never two writers.
func TestCutOffLeaderStopsBeforeTakeOver(t *testing.T) {
	api := leasetest.New(t)
	srv := api
	a := start(t, elector(t, srv, "shipbot-a"))
	waitFor(t, "a to lead", func() bool { return a.e.Held() })
	b := start(t, elector(t, srv, "shipbot-b"))
	stop := watchOverlap(t, a.e, b.e)
	time.Sleep(300 * time.Millisecond)

	api.Refuse.Store("shipbot-a", true)
	cut := time.Now()
	var lostAt time.Time
	select {
	case err := <-a.done:
		lostAt = time.Now()
		if err != ErrLost {
			t.Fatalf("a: %v, want ErrLost", err)
		}
		a.done <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("a kept leading without renewing")
	}
	waitFor(t, "b to lead", func() bool { return b.e.Held() })
	tookOver := time.Now()
	stop()
	if a.e.Held() {
		t.Error("a holds the lease after losing it")
	}
	if d := lostAt.Sub(cut); d > 900*time.Millisecond {
		t.Errorf("a stopped %s after its last renewal; the renew deadline is 600ms", d)
	}
	if !tookOver.After(lostAt) {
		t.Error("b took over before a stopped")
	}
	if api.Holder("shipbot-env") != "shipbot-b" {
		t.Errorf("holder %q", api.Holder("shipbot-env"))
	}
}

func TestAPIErrorsAreReported(t *testing.T) {
	srv := leasetest.New(t)
	e, err := New(Options{Server: srv.URL, Token: func() (string, error) { return "wrong", nil }, Namespace: "shipbot", Name: "x", Identity: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.get(context.Background()); err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Errorf("err = %v", err)
	}
	for _, o := range []Options{
		{Namespace: "n", Name: "x", Identity: "a"},
		{Server: "http://x", Name: "x", Identity: "a"},
		{Server: "http://x", Namespace: "n", Name: "x"},
		{Server: "http://x", Namespace: "n", Name: "x", Identity: "a", LeaseDuration: time.Second, RenewDeadline: 2 * time.Second},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
