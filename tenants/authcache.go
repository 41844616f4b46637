package tenants

import (
	"container/list"
	"crypto/sha256"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

type digest = [sha256.Size]byte

// authCache keeps recent authentication answers in memory so the push hot
// path does not query the database per request. An entry is fresh for ttl:
// that is how long a rotation or suspension made on another replica takes to
// apply here (on this replica the service invalidates at once). After that
// it is only used, up to staleMax after it was verified, while the database
// fails.
type authCache struct {
	ttl      time.Duration
	staleMax time.Duration
	max      int
	flight   singleflight.Group

	mu      sync.RWMutex
	entries map[digest]*list.Element // of *authEntry, in order
	order   *list.List               // front: the entry verified longest ago

	unknown *negativeCache

	termsMu      sync.RWMutex
	current      *Terms
	termsFetched time.Time
}

type authEntry struct {
	key      digest
	p        *Principal
	kind     TokenKind
	verified time.Time
}

func newAuthCache(ttl, staleMax time.Duration, max int) *authCache {
	return &authCache{ttl: ttl, staleMax: staleMax, max: max,
		entries: make(map[digest]*list.Element), order: list.New(),
		unknown: newNegativeCache(ttl, max/4+1)}
}

// get returns the entry of a token, fresh or not; the caller decides by its age.
func (c *authCache) get(d digest) *authEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if el, ok := c.entries[d]; ok {
		return el.Value.(*authEntry)
	}
	return nil
}

func (c *authCache) fresh(e *authEntry, now time.Time) bool {
	return now.Sub(e.verified) < c.ttl
}

// usable says whether a stale entry may still answer while the database fails.
func (c *authCache) usable(e *authEntry, now time.Time) bool {
	return now.Sub(e.verified) < c.staleMax
}

// put records a successful authentication; when full it forgets the entry
// verified longest ago, which is also the stalest, never the whole cache.
func (c *authCache) put(d digest, p *Principal, kind TokenKind, now time.Time) {
	e := &authEntry{key: d, p: p, kind: kind, verified: now}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[d]; ok {
		el.Value = e
		c.order.MoveToBack(el)
		return
	}
	for len(c.entries) >= c.max {
		oldest := c.order.Front()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*authEntry).key)
	}
	c.entries[d] = c.order.PushBack(e)
}

// invalidateWorkspace forgets every cached token of a workspace, stale ones
// included; rotations and setting changes are rare, so a scan is fine.
func (c *authCache) invalidateWorkspace(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.order.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*authEntry); e.p.Workspace.ID == id {
			c.order.Remove(el)
			delete(c.entries, e.key)
		}
		el = next
	}
}

// terms returns the cached current terms and when they were read.
func (c *authCache) terms() (*Terms, time.Time) {
	c.termsMu.RLock()
	defer c.termsMu.RUnlock()
	return c.current, c.termsFetched
}

func (c *authCache) setTerms(t *Terms, now time.Time) {
	c.termsMu.Lock()
	c.current, c.termsFetched = t, now
	c.termsMu.Unlock()
}

// negativeCache remembers tokens the database does not know, so a client
// that repeats one costs no query. It is a ring: when full, it overwrites
// its own oldest entry and never touches the positive cache.
type negativeCache struct {
	ttl time.Duration

	mu      sync.Mutex
	expires map[digest]time.Time
	ring    []digest
	used    int // slots of ring in use, up to len(ring)
	next    int // the slot written next
}

func newNegativeCache(ttl time.Duration, max int) *negativeCache {
	return &negativeCache{ttl: ttl, expires: make(map[digest]time.Time, max), ring: make([]digest, max)}
}

func (n *negativeCache) has(d digest, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	exp, ok := n.expires[d]
	return ok && now.Before(exp)
}

func (n *negativeCache) put(d digest, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.expires[d]; ok {
		n.expires[d] = now.Add(n.ttl)
		return
	}
	if n.used == len(n.ring) {
		delete(n.expires, n.ring[n.next])
	} else {
		n.used++
	}
	n.ring[n.next] = d
	n.next = (n.next + 1) % len(n.ring)
	n.expires[d] = now.Add(n.ttl)
}

// dbHealth tracks whether the database answers authentication queries, so
// an outage is logged once when it starts and once when it ends, not per
// push, and so that while it lasts one query at a time probes for its end.
type dbHealth struct {
	log     *slog.Logger
	up      prometheus.Gauge
	down    atomic.Bool
	probing atomic.Bool

	mu        sync.Mutex
	since     time.Time // when the outage started
	recovered time.Time // when the last outage ended
}

func (h *dbHealth) isDown() bool { return h.down.Load() }

// failed records a query that started at started and failed with err; a
// query that started before the last recovery says nothing new.
func (h *dbHealth) failed(err error, started time.Time) {
	if h.down.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down.Load() || started.Before(h.recovered) {
		return
	}
	h.since = time.Now()
	h.down.Store(true)
	h.up.Set(0)
	h.log.Warn("the database does not answer authentication queries: workspaces authenticated before are served from the cache up to auth_stale_max, unknown tokens get 503 until it answers again", "err", err)
}

func (h *dbHealth) ok() {
	if !h.down.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down.Load() {
		return
	}
	h.recovered = time.Now()
	h.down.Store(false)
	h.up.Set(1)
	h.log.Info("the database answers authentication queries again", "outage", h.recovered.Sub(h.since).Round(time.Millisecond))
}

// tryProbe takes the one slot for a query while the database is down; the
// caller gives it back with endProbe.
func (h *dbHealth) tryProbe() bool { return h.probing.CompareAndSwap(false, true) }

func (h *dbHealth) endProbe() { h.probing.Store(false) }

// authMetrics count what authentication decides, by outcome.
type authMetrics struct {
	stale       prometheus.Counter
	unavailable prometheus.Counter
	legacy      prometheus.Counter
	dbUp        prometheus.Gauge
	rejected    map[string]prometheus.Counter
}

// The reasons of pushgate_auth_rejected_total.
const (
	rejectMalformed     = "malformed"
	rejectForged        = "forged"
	rejectUnknown       = "unknown"
	rejectLegacyRefused = "legacy_refused"
)

func newAuthMetrics(reg prometheus.Registerer) *authMetrics {
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pushgate_auth_rejected_total",
		Help: "Workspace tokens refused, by reason: malformed, forged (bad MAC or checksum, checked without a query), unknown (looked up), legacy_refused.",
	}, []string{"reason"})
	m := &authMetrics{
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_auth_stale_served_total",
			Help: "Authentications answered from a stale cache entry because the database failed.",
		}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_auth_unavailable_total",
			Help: "Authentications answered 503 because the database failed and the token was not cached.",
		}),
		legacy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_auth_legacy_tokens_total",
			Help: "Authentications with a token of the legacy, unsigned format: workspaces that should rotate.",
		}),
		dbUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pushgate_auth_database_up",
			Help: "1 while the database answers authentication queries, 0 during an outage.",
		}),
		rejected: map[string]prometheus.Counter{},
	}
	for _, r := range []string{rejectMalformed, rejectForged, rejectUnknown, rejectLegacyRefused} {
		m.rejected[r] = rejected.WithLabelValues(r)
	}
	m.dbUp.Set(1)
	if reg != nil {
		reg.MustRegister(rejected, m.stale, m.unavailable, m.legacy, m.dbUp)
	}
	return m
}
