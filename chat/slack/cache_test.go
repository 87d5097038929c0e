package slack

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestTTLCache(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1700000000, 0)}
	c := newTTLCache[int](time.Minute, 100, clk.Now)
	if !c.Add("a", 1) || c.Add("a", 2) {
		t.Fatal("Add: first true, second false")
	}
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get = %v %v", v, ok)
	}
	clk.Add(time.Minute)
	if _, ok := c.Get("a"); ok {
		t.Fatal("entry did not expire")
	}
	if !c.Add("a", 3) {
		t.Fatal("an expired key is new again")
	}

	// Bounded: never more than max entries; the oldest go first.
	for i := range 1000 {
		clk.Add(time.Millisecond)
		c.Put(fmt.Sprint("k", i), i)
		if c.Len() > 100 {
			t.Fatalf("%d entries after %d puts", c.Len(), i+1)
		}
	}
	if _, ok := c.Get("k999"); !ok {
		t.Error("the newest entry was evicted")
	}
	if _, ok := c.Get("k0"); ok {
		t.Error("the oldest entry survived")
	}
}

func TestTTLCacheAddIsAtomic(t *testing.T) {
	c := newTTLCache[struct{}](time.Hour, 10, time.Now)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if c.Add("event:Ev1", struct{}{}) {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent deliveries won, want 1", wins.Load())
	}
}
