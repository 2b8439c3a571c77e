package batcher

import (
	"container/list"
	"time"
)

// dedupCache remembers recent results by (source, id) so that a redelivered
// event is answered without scoring it again. It is bounded both in entries
// and in age; the oldest entry goes first. Not safe for concurrent use: the
// Batcher guards it with its mutex.
type dedupCache struct {
	max   int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // front = newest
	byKey map[string]*list.Element
}

type dedupEntry struct {
	key    string
	scored Scored
	at     time.Time
}

func newDedupCache(max int, ttl time.Duration, now func() time.Time) *dedupCache {
	return &dedupCache{max: max, ttl: ttl, now: now, order: list.New(), byKey: make(map[string]*list.Element)}
}

func (c *dedupCache) get(key string) (Scored, bool) {
	el, ok := c.byKey[key]
	if !ok {
		return Scored{}, false
	}
	e := el.Value.(*dedupEntry)
	if c.ttl > 0 && c.now().Sub(e.at) > c.ttl {
		c.order.Remove(el)
		delete(c.byKey, key)
		return Scored{}, false
	}
	return e.scored, true
}

func (c *dedupCache) put(key string, s Scored) {
	if c.max <= 0 {
		return
	}
	if el, ok := c.byKey[key]; ok {
		c.order.MoveToFront(el)
		el.Value.(*dedupEntry).scored = s
		return
	}
	c.byKey[key] = c.order.PushFront(&dedupEntry{key: key, scored: s, at: c.now()})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.byKey, old.Value.(*dedupEntry).key)
	}
}

func (c *dedupCache) len() int { return c.order.Len() }
