package tenants

import (
	"crypto/sha256"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// authCache keeps recent authentication answers in memory so the push hot
// path does not query the database per request. Entries live ttl: that is
// how long a rotation or suspension made on another replica takes to apply
// here; on this replica the service invalidates at once.
type authCache struct {
	ttl    time.Duration
	max    int
	flight singleflight.Group

	mu      sync.RWMutex
	entries map[[sha256.Size]byte]authEntry // by token digest

	termsMu      sync.RWMutex
	current      *Terms
	termsExpires time.Time
}

type authEntry struct {
	p       *Principal
	err     error
	expires time.Time
}

func newAuthCache(ttl time.Duration, max int) *authCache {
	return &authCache{ttl: ttl, max: max, entries: make(map[[sha256.Size]byte]authEntry)}
}

func (c *authCache) get(digest [sha256.Size]byte, now time.Time) (*Principal, error, bool) {
	c.mu.RLock()
	e, ok := c.entries[digest]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return nil, nil, false
	}
	return e.p, e.err, true
}

func (c *authCache) put(digest [sha256.Size]byte, p *Principal, err error, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Drop expired entries first; if the cache is still full, start over:
		// a bounded cache matters more than its hit rate under a token flood.
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[digest] = authEntry{p: p, err: err, expires: now.Add(c.ttl)}
}

// invalidateWorkspace forgets every cached token of a workspace; rotations
// and setting changes are rare, so a scan is fine.
func (c *authCache) invalidateWorkspace(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.p != nil && e.p.Workspace.ID == id {
			delete(c.entries, k)
		}
	}
}

func (c *authCache) terms(now time.Time) (*Terms, bool) {
	c.termsMu.RLock()
	defer c.termsMu.RUnlock()
	return c.current, c.current != nil && now.Before(c.termsExpires)
}

func (c *authCache) setTerms(t *Terms, now time.Time) {
	c.termsMu.Lock()
	c.current, c.termsExpires = t, now.Add(c.ttl)
	c.termsMu.Unlock()
}
