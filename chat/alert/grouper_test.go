package alert

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var checkoutProd = Target{App: "checkout", Env: "prod", Route: "routes[0]"}

func newTestGrouper(t *testing.T, sink Sink, c *clock, o GrouperOptions) *Grouper {
	t.Helper()
	o.Now = c.Now
	g, err := NewGrouper(sink, o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// amAlert is an Alertmanager alert whose state changed at at.
func amAlert(key string, st Status, at time.Time) Alert {
	a := Alert{Source: SourceAlertmanager, Key: key, Status: st, Title: "title of " + key, At: at, StartedAt: at}
	if st == StatusResolved {
		a.EndedAt = at
	}
	return a
}

func handle(t *testing.T, g *Grouper, tg Target, alerts ...Alert) Result {
	t.Helper()
	res, err := g.Handle(context.Background(), tg, alerts...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestGrouperLifecycle(t *testing.T) {
	c := newClock()
	sink := &FakeSink{}
	g := newTestGrouper(t, sink, c, GrouperOptions{})
	t0 := c.Now()
	steps := []struct {
		name  string
		alert Alert
		want  Result
		calls []string // all sink calls so far
	}{
		{"first firing alert opens", amAlert("a", StatusFiring, t0), Result{EventOpen, []Outcome{OutcomeOpened}},
			[]string{"open checkout/prod msg-1"}},
		{"second alert updates", amAlert("b", StatusFiring, t0.Add(time.Minute)), Result{EventUpdate, []Outcome{OutcomeUpdated}},
			[]string{"open checkout/prod msg-1", "update checkout/prod msg-1"}},
		{"redelivery does nothing", amAlert("a", StatusFiring, t0), Result{EventNone, []Outcome{OutcomeDuplicate}},
			[]string{"open checkout/prod msg-1", "update checkout/prod msg-1"}},
		{"one resolved updates", amAlert("a", StatusResolved, t0.Add(5*time.Minute)), Result{EventUpdate, []Outcome{OutcomeUpdated}},
			[]string{"open checkout/prod msg-1", "update checkout/prod msg-1", "update checkout/prod msg-1"}},
		{"an older firing of it is stale", amAlert("a", StatusFiring, t0), Result{EventNone, []Outcome{OutcomeStale}},
			[]string{"open checkout/prod msg-1", "update checkout/prod msg-1", "update checkout/prod msg-1"}},
		{"all resolved resolves", amAlert("b", StatusResolved, t0.Add(6*time.Minute)), Result{EventResolve, []Outcome{OutcomeResolved}},
			[]string{"open checkout/prod msg-1", "update checkout/prod msg-1", "update checkout/prod msg-1", "resolve checkout/prod msg-1"}},
		{"resolved redelivery does nothing", amAlert("b", StatusResolved, t0.Add(6*time.Minute)), Result{EventNone, []Outcome{OutcomeDuplicate}},
			[]string{"open checkout/prod msg-1", "update checkout/prod msg-1", "update checkout/prod msg-1", "resolve checkout/prod msg-1"}},
		{"late firing redelivery after resolution is stale", amAlert("b", StatusFiring, t0.Add(time.Minute)), Result{EventNone, []Outcome{OutcomeStale}},
			[]string{"open checkout/prod msg-1", "update checkout/prod msg-1", "update checkout/prod msg-1", "resolve checkout/prod msg-1"}},
		{"firing again opens a new incident", amAlert("a", StatusFiring, t0.Add(time.Hour)), Result{EventOpen, []Outcome{OutcomeOpened}},
			[]string{"open checkout/prod msg-1", "update checkout/prod msg-1", "update checkout/prod msg-1", "resolve checkout/prod msg-1", "open checkout/prod msg-2"}},
		{"resolution of an unknown alert does nothing", amAlert("zzz", StatusResolved, t0), Result{EventNone, []Outcome{OutcomeUnknown}},
			[]string{"open checkout/prod msg-1", "update checkout/prod msg-1", "update checkout/prod msg-1", "resolve checkout/prod msg-1", "open checkout/prod msg-2"}},
	}
	for _, s := range steps {
		c.Advance(time.Second)
		got := handle(t, g, checkoutProd, s.alert)
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Fatalf("%s: result (-want +got):\n%s", s.name, diff)
		}
		if diff := cmp.Diff(s.calls, sink.kinds()); diff != "" {
			t.Fatalf("%s: sink calls (-want +got):\n%s", s.name, diff)
		}
	}

	calls := sink.Calls()
	upd := calls[1].Inc
	if upd.Alerts[0].Key != "a" || upd.Alerts[1].Key != "b" || upd.Firing != 2 || upd.Resolved != 0 || upd.Title != "title of b" || upd.Latest.Key != "b" {
		t.Errorf("update after b: %+v", upd)
	}
	if upd.OpenedAt != calls[0].Inc.OpenedAt || upd.OpenedAt.IsZero() || upd.Route != "routes[0]" {
		t.Errorf("update keeps OpenedAt %v and Route %q", upd.OpenedAt, upd.Route)
	}
	one := calls[2].Inc
	if one.Firing != 1 || one.Resolved != 1 || one.Status != StatusFiring || one.Title != "title of b" {
		t.Errorf("update after a resolved: firing %d resolved %d status %s title %q", one.Firing, one.Resolved, one.Status, one.Title)
	}
	res := calls[3].Inc
	if res.Status != StatusResolved || res.Firing != 0 || res.Resolved != 2 {
		t.Errorf("resolve: %+v", res)
	}
	if g.OpenIncidents() != 1 {
		t.Errorf("OpenIncidents() = %d, want 1", g.OpenIncidents())
	}
}

func TestGrouperBatchIsOneEvent(t *testing.T) {
	c := newClock()
	sink := &FakeSink{}
	g := newTestGrouper(t, sink, c, GrouperOptions{})
	t0 := c.Now()
	got := handle(t, g, checkoutProd, amAlert("a", StatusFiring, t0), amAlert("b", StatusFiring, t0), amAlert("a", StatusFiring, t0))
	want := Result{EventOpen, []Outcome{OutcomeOpened, OutcomeUpdated, OutcomeDuplicate}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("result (-want +got):\n%s", diff)
	}
	got = handle(t, g, checkoutProd, amAlert("a", StatusResolved, t0.Add(time.Minute)), amAlert("b", StatusResolved, t0.Add(time.Minute)))
	want = Result{EventResolve, []Outcome{OutcomeResolved, OutcomeResolved}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"open checkout/prod msg-1", "resolve checkout/prod msg-1"}, sink.kinds()); diff != "" {
		t.Fatalf("sink calls (-want +got):\n%s", diff)
	}
	if n := len(sink.Calls()[0].Inc.Alerts); n != 2 {
		t.Errorf("opened with %d alerts, want 2", n)
	}
}

func TestGrouperSeparateTargets(t *testing.T) {
	c := newClock()
	sink := &FakeSink{}
	g := newTestGrouper(t, sink, c, GrouperOptions{})
	handle(t, g, checkoutProd, amAlert("a", StatusFiring, c.Now()))
	handle(t, g, Target{App: "checkout", Env: "staging"}, amAlert("b", StatusFiring, c.Now()))
	handle(t, g, Target{App: "cart", Env: "prod"}, amAlert("c", StatusFiring, c.Now()))
	want := []string{"open checkout/prod msg-1", "open checkout/staging msg-2", "open cart/prod msg-3"}
	if diff := cmp.Diff(want, sink.kinds()); diff != "" {
		t.Fatalf("sink calls (-want +got):\n%s", diff)
	}
}

func TestGrouperSinkFailureIsRetried(t *testing.T) {
	c := newClock()
	var failOpen, failUpdate atomic.Bool
	failOpen.Store(true)
	sink := &FakeSink{
		OpenFunc: func(context.Context, Incident) (string, error) {
			if failOpen.Load() {
				return "", errors.New("slack: ratelimited")
			}
			return "", nil
		},
		UpdateFunc: func(context.Context, string, Incident) error {
			if failUpdate.Load() {
				return errors.New("slack: ratelimited")
			}
			return nil
		},
	}
	g := newTestGrouper(t, sink, c, GrouperOptions{})
	a := amAlert("a", StatusFiring, c.Now())
	res, err := g.Handle(context.Background(), checkoutProd, a)
	if err == nil || res.Event != EventNone || res.Outcomes[0] != OutcomeFailed {
		t.Fatalf("failed open: %+v, %v", res, err)
	}
	if g.OpenIncidents() != 0 {
		t.Fatal("a failed open left an incident")
	}
	failOpen.Store(false)
	if res := handle(t, g, checkoutProd, a); res.Event != EventOpen {
		t.Fatalf("the redelivery after a failed open: %+v, want it to open", res)
	}
	failUpdate.Store(true)
	b := amAlert("b", StatusFiring, c.Now())
	if _, err := g.Handle(context.Background(), checkoutProd, b); err == nil {
		t.Fatal("failed update: no error")
	}
	failUpdate.Store(false)
	if res := handle(t, g, checkoutProd, b); res.Event != EventUpdate {
		t.Fatalf("the redelivery after a failed update: %+v, want an update (not a duplicate)", res)
	}
}

func TestGrouperWaitIsBoundedByContext(t *testing.T) {
	c := newClock()
	release := make(chan struct{})
	entered := make(chan struct{})
	sink := &FakeSink{OpenFunc: func(ctx context.Context, _ Incident) (string, error) {
		close(entered)
		<-release
		return "", nil
	}}
	g := newTestGrouper(t, sink, c, GrouperOptions{})
	done := make(chan Result)
	go func() { done <- handle(t, g, checkoutProd, amAlert("a", StatusFiring, c.Now())) }()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	res, err := g.Handle(ctx, checkoutProd, amAlert("b", StatusFiring, c.Now()))
	if !errors.Is(err, context.DeadlineExceeded) || res.Outcomes[0] != OutcomeFailed {
		t.Fatalf("waiting on a busy incident: %+v, %v; want a deadline error", res, err)
	}
	close(release)
	if r := <-done; r.Event != EventOpen {
		t.Fatalf("first: %+v", r)
	}
	if r := handle(t, g, checkoutProd, amAlert("b", StatusFiring, c.Now())); r.Event != EventUpdate {
		t.Fatalf("b after the wait: %+v, want an update", r)
	}
}

func TestGrouperBounds(t *testing.T) {
	t.Run("max open evicts the quietest", func(t *testing.T) {
		c := newClock()
		sink := &FakeSink{}
		g := newTestGrouper(t, sink, c, GrouperOptions{MaxOpen: 2})
		for i, app := range []string{"a1", "a2", "a3"} {
			c.Advance(time.Second)
			handle(t, g, Target{App: app, Env: "prod"}, amAlert(fmt.Sprint("k", i), StatusFiring, c.Now()))
		}
		if g.OpenIncidents() != 2 {
			t.Fatalf("OpenIncidents() = %d, want 2", g.OpenIncidents())
		}
		if _, ok := g.Lookup(amAlert("k0", StatusResolved, c.Now())); ok {
			t.Error("the evicted incident's alert is still known")
		}
		if r := handle(t, g, Target{App: "a1", Env: "prod"}, amAlert("k0", StatusResolved, c.Now())); r.Outcomes[0] != OutcomeUnknown {
			t.Errorf("resolution of an evicted incident's alert: %+v", r)
		}
		if r := handle(t, g, Target{App: "a3", Env: "prod"}, amAlert("k2", StatusResolved, c.Now())); r.Event != EventResolve {
			t.Errorf("a kept incident still resolves: %+v", r)
		}
	})
	t.Run("max alerts per incident", func(t *testing.T) {
		c := newClock()
		g := newTestGrouper(t, &FakeSink{}, c, GrouperOptions{MaxAlerts: 2})
		r := handle(t, g, checkoutProd, amAlert("a", StatusFiring, c.Now()), amAlert("b", StatusFiring, c.Now()), amAlert("c", StatusFiring, c.Now()))
		if diff := cmp.Diff([]Outcome{OutcomeOpened, OutcomeUpdated, OutcomeOverflow}, r.Outcomes); diff != "" {
			t.Fatal(diff)
		}
	})
	t.Run("resolved alerts expire", func(t *testing.T) {
		c := newClock()
		g := newTestGrouper(t, &FakeSink{}, c, GrouperOptions{ResolvedTTL: time.Hour})
		handle(t, g, checkoutProd, amAlert("a", StatusFiring, c.Now()))
		handle(t, g, checkoutProd, amAlert("a", StatusResolved, c.Now().Add(time.Second)))
		if r := handle(t, g, checkoutProd, amAlert("a", StatusResolved, c.Now().Add(time.Second))); r.Outcomes[0] != OutcomeDuplicate {
			t.Fatalf("within the TTL: %+v", r)
		}
		c.Advance(time.Hour + time.Second)
		if r := handle(t, g, checkoutProd, amAlert("a", StatusResolved, c.Now().Add(time.Second))); r.Outcomes[0] != OutcomeUnknown {
			t.Fatalf("after the TTL: %+v, want it forgotten", r)
		}
		if len(g.gone) != 0 || len(g.goneQ) != 0 {
			t.Errorf("after the TTL: %d remembered, %d queued", len(g.gone), len(g.goneQ))
		}
	})
	t.Run("max resolved", func(t *testing.T) {
		c := newClock()
		g := newTestGrouper(t, &FakeSink{}, c, GrouperOptions{MaxResolved: 10})
		for i := range 100 {
			k := fmt.Sprint("k", i)
			handle(t, g, checkoutProd, amAlert(k, StatusFiring, c.Now()))
			handle(t, g, checkoutProd, amAlert(k, StatusResolved, c.Now()))
		}
		if len(g.gone) != 10 || len(g.goneQ) > 2*10+64 {
			t.Errorf("%d remembered (want 10), %d queued", len(g.gone), len(g.goneQ))
		}
		if r := handle(t, g, checkoutProd, amAlert("k99", StatusResolved, c.Now())); r.Outcomes[0] != OutcomeDuplicate {
			t.Errorf("the newest is remembered: %+v", r)
		}
	})
	t.Run("quiet incidents are forgotten", func(t *testing.T) {
		c := newClock()
		sink := &FakeSink{}
		g := newTestGrouper(t, sink, c, GrouperOptions{StaleAfter: 24 * time.Hour})
		handle(t, g, checkoutProd, amAlert("a", StatusFiring, c.Now()))
		c.Advance(12 * time.Hour)
		handle(t, g, checkoutProd, amAlert("a", StatusFiring, c.Now())) // a repeat keeps it alive
		c.Advance(23 * time.Hour)
		handle(t, g, Target{App: "other", Env: "prod"}, amAlert("x", StatusFiring, c.Now()))
		if g.OpenIncidents() != 2 {
			t.Fatalf("OpenIncidents() = %d after 23h quiet, want 2", g.OpenIncidents())
		}
		c.Advance(2 * time.Hour)
		if r := handle(t, g, checkoutProd, amAlert("a", StatusFiring, c.Now())); r.Event != EventOpen {
			t.Fatalf("after 25h quiet: %+v, want a new incident", r)
		}
		if diff := cmp.Diff([]string{"open checkout/prod msg-1", "open other/prod msg-2", "open checkout/prod msg-3"}, sink.kinds()); diff != "" {
			t.Fatal(diff)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		if _, err := NewGrouper(&FakeSink{}, GrouperOptions{MaxOpen: -1}); err == nil {
			t.Error("negative MaxOpen accepted")
		}
		if _, err := NewGrouper(nil, GrouperOptions{}); err == nil {
			t.Error("nil sink accepted")
		}
		if _, err := NewGrouper(&FakeSink{}, GrouperOptions{}); err != nil {
			t.Error(err)
		}
		g, _ := NewGrouper(&FakeSink{}, GrouperOptions{})
		if _, err := g.Handle(context.Background(), checkoutProd, Alert{Key: "x", Status: "pending"}); err == nil {
			t.Error("status pending accepted")
		}
	})
}

// serialSink fails the test when two calls for one incident overlap.
type serialSink struct {
	FakeSink
	t        *testing.T
	inflight sync.Map // app/env -> *atomic.Int32
}

func (s *serialSink) enter(inc Incident) func() {
	v, _ := s.inflight.LoadOrStore(inc.App+"/"+inc.Env, new(atomic.Int32))
	n := v.(*atomic.Int32)
	if n.Add(1) != 1 {
		s.t.Errorf("overlapping Sink calls for %s/%s", inc.App, inc.Env)
	}
	time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
	return func() { n.Add(-1) }
}

func (s *serialSink) Open(ctx context.Context, inc Incident) (string, error) {
	defer s.enter(inc)()
	return s.FakeSink.Open(ctx, inc)
}

func (s *serialSink) Update(ctx context.Context, ref string, inc Incident) error {
	defer s.enter(inc)()
	return s.FakeSink.Update(ctx, ref, inc)
}

func (s *serialSink) Resolve(ctx context.Context, ref string, inc Incident) error {
	defer s.enter(inc)()
	return s.FakeSink.Resolve(ctx, ref, inc)
}

func TestGrouperConcurrent(t *testing.T) {
	c := newClock()
	sink := &serialSink{t: t}
	g := newTestGrouper(t, sink, c, GrouperOptions{})
	const apps, perApp = 5, 40
	t0 := c.Now()
	run := func(st Status, at time.Time) {
		var wg sync.WaitGroup
		for i := range apps * perApp {
			wg.Go(func() {
				tg := Target{App: fmt.Sprint("app", i%apps), Env: "prod"}
				a := amAlert(fmt.Sprint("alert", i), st, at)
				for range 2 { // every alert delivered twice
					if _, err := g.Handle(context.Background(), tg, a); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
	}
	run(StatusFiring, t0)
	count := func() map[string]int {
		n := map[string]int{}
		for _, call := range sink.Calls() {
			n[call.Kind+" "+call.Inc.App]++
		}
		return n
	}
	n := count()
	for i := range apps {
		app := fmt.Sprint("app", i)
		if n["open "+app] != 1 || n["update "+app] != perApp-1 {
			t.Errorf("%s: %d opens, %d updates; want 1 and %d", app, n["open "+app], n["update "+app], perApp-1)
		}
	}
	if g.OpenIncidents() != apps {
		t.Errorf("OpenIncidents() = %d, want %d", g.OpenIncidents(), apps)
	}
	run(StatusResolved, t0.Add(time.Minute))
	n = count()
	for i := range apps {
		app := fmt.Sprint("app", i)
		if n["resolve "+app] != 1 || n["update "+app] != 2*(perApp-1) {
			t.Errorf("%s: %d resolves, %d updates; want 1 and %d", app, n["resolve "+app], n["update "+app], 2*(perApp-1))
		}
	}
	if g.OpenIncidents() != 0 {
		t.Errorf("OpenIncidents() = %d after all resolved", g.OpenIncidents())
	}
	// Every incident message was resolved by the ref it was opened with.
	refs := map[string]string{}
	for _, call := range sink.Calls() {
		if call.Kind == "open" {
			refs[call.Inc.App] = call.Ref
		} else if refs[call.Inc.App] != call.Ref {
			t.Fatalf("%s for %s with ref %q, opened as %q", call.Kind, call.Inc.App, call.Ref, refs[call.Inc.App])
		}
	}
	if !slices.Equal(sortedKeys(refs), []string{"app0", "app1", "app2", "app3", "app4"}) {
		t.Errorf("opened: %v", refs)
	}
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func BenchmarkGrouperHandle(b *testing.B) {
	g, err := NewGrouper(&FakeSink{}, GrouperOptions{})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tg := Target{App: fmt.Sprint("app", i%50), Env: "prod"}
		st := StatusFiring
		if i%3 == 2 {
			st = StatusResolved
		}
		_, _ = g.Handle(context.Background(), tg, amAlert(fmt.Sprint("k", i%500), st, t0.Add(time.Duration(i))))
	}
}
