package slack

import (
	"slices"
	"sync"
	"time"
)

// ttlCache is a bounded map whose entries expire. When it is full, expired
// entries go first, then the oldest tenth: memory stays bounded whatever
// Slack (or someone replaying requests) sends.
type ttlCache[V any] struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	now   func() time.Time
	items map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v     V
	added time.Time
}

func newTTLCache[V any](ttl time.Duration, maxItems int, now func() time.Time) *ttlCache[V] {
	if maxItems <= 0 {
		maxItems = 10000
	}
	return &ttlCache[V]{ttl: ttl, max: maxItems, now: now, items: map[string]ttlEntry[V]{}}
}

// Get returns the value of k if it is there and not expired.
func (c *ttlCache[V]) Get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok || c.now().Sub(e.added) >= c.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put stores v under k.
func (c *ttlCache[V]) Put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put(k, v)
}

// Add stores v under k unless a live entry is there already; it reports
// whether it stored it. Check and store are one step, so of two concurrent
// deliveries of the same event exactly one gets true.
func (c *ttlCache[V]) Add(k string, v V) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok && c.now().Sub(e.added) < c.ttl {
		return false
	}
	c.put(k, v)
	return true
}

// Delete removes k.
func (c *ttlCache[V]) Delete(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, k)
}

// Len is the number of entries, expired ones included until evicted.
func (c *ttlCache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

func (c *ttlCache[V]) put(k string, v V) {
	if _, ok := c.items[k]; !ok && len(c.items) >= c.max {
		c.evict()
	}
	c.items[k] = ttlEntry[V]{v: v, added: c.now()}
}

// evict drops expired entries and, if that is not enough, the oldest tenth.
func (c *ttlCache[V]) evict() {
	now := c.now()
	for k, e := range c.items {
		if now.Sub(e.added) >= c.ttl {
			delete(c.items, k)
		}
	}
	if len(c.items) < c.max {
		return
	}
	type aged struct {
		k     string
		added time.Time
	}
	all := make([]aged, 0, len(c.items))
	for k, e := range c.items {
		all = append(all, aged{k, e.added})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.added.Compare(b.added) })
	for _, a := range all[:max(1, len(all)/10)] {
		delete(c.items, a.k)
	}
}
