package redisquota

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

const (
	// maxSeen bounds the remembered Redis counts (one per workspace and month).
	maxSeen = 100_000
	// maxMarks bounds the dedupe keys held locally during an outage; beyond
	// it new keys are not remembered (counts stay exact).
	maxMarks = 100_000
	// maxBatchMarks bounds the dedupe keys written by one reconcile call.
	maxBatchMarks = 500
	// guardTTL is how long Redis remembers a reconciled batch, so a resent
	// batch is not applied twice.
	guardTTL = 24 * time.Hour
	// reconcileEvery is how often Run looks for pending counts and probes Redis.
	reconcileEvery = time.Second
)

type wsPeriod struct {
	ws string
	p  tenants.Period
}

// seenCounts remembers each workspace's last count from Redis: where a local
// count starts when Redis becomes unreachable.
type seenCounts struct {
	mu sync.RWMutex
	m  map[wsPeriod]*atomic.Int64
}

func (c *seenCounts) set(k wsPeriod, used int64) {
	c.mu.RLock()
	n := c.m[k]
	c.mu.RUnlock()
	if n == nil {
		c.mu.Lock()
		if n = c.m[k]; n == nil {
			if len(c.m) >= maxSeen {
				clear(c.m)
			}
			n = new(atomic.Int64)
			c.m[k] = n
		}
		c.mu.Unlock()
	}
	// Answers can arrive out of order; a month's count only grows.
	for {
		old := n.Load()
		if used <= old || n.CompareAndSwap(old, used) {
			return
		}
	}
}

func (c *seenCounts) get(k wsPeriod) int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if n := c.m[k]; n != nil {
		return n.Load()
	}
	return 0
}

// local is what this replica counted while Redis was unreachable.
type local struct {
	mu sync.Mutex
	// used is the count each decision during an outage compares with the limit.
	used map[wsPeriod]int64
	// active is set while used is not empty, so that the hot path skips the lock.
	active atomic.Bool
	// open holds each workspace's writes not yet sent to Redis.
	open map[string]*outageBatch
	// sealed holds batches handed to Redis without a confirmed answer; they
	// are resent with the same id until Redis confirms.
	sealed []*outageBatch
	marks  int
}

func (l *local) init() {
	l.used = make(map[wsPeriod]int64)
	l.open = make(map[string]*outageBatch)
}

// outageBatch is one workspace's writes for one reconcile call.
type outageBatch struct {
	id     string
	ws     string
	counts map[tenants.Period]map[string]int64
	// refs is each month's latest event, from which its TTL is set.
	refs  map[tenants.Period]time.Time
	marks map[string]mark
}

type mark struct {
	at          time.Time
	undelivered bool
}

func (b *outageBatch) add(p tenants.Period, field string, at time.Time) {
	if b.counts == nil {
		b.counts = make(map[tenants.Period]map[string]int64)
		b.refs = make(map[tenants.Period]time.Time)
	}
	if b.counts[p] == nil {
		b.counts[p] = make(map[string]int64)
	}
	b.counts[p][field]++
	if at.After(b.refs[p]) {
		b.refs[p] = at
	}
}

func (l *local) openBatch(ws string) *outageBatch {
	b := l.open[ws]
	if b == nil {
		b = &outageBatch{ws: ws, marks: make(map[string]mark)}
		l.open[ws] = b
	}
	return b
}

func (l *local) findMark(ws, key string) (mark, bool) {
	if b := l.open[ws]; b != nil {
		if m, ok := b.marks[key]; ok {
			return m, true
		}
	}
	for i := len(l.sealed) - 1; i >= 0; i-- {
		if b := l.sealed[i]; b.ws == ws {
			if m, ok := b.marks[key]; ok {
				return m, true
			}
		}
	}
	return mark{}, false
}

func (l *local) putMark(ws, key string, m mark) {
	b := l.openBatch(ws)
	if _, ok := b.marks[key]; !ok {
		if l.marks >= maxMarks {
			return
		}
		l.marks++
	}
	b.marks[key] = m
}

// pendingUnits is how many units of k were counted here and not yet written to Redis.
func (l *local) pendingUnits(k wsPeriod) int64 {
	var n int64
	if b := l.open[k.ws]; b != nil {
		n += b.counts[k.p]["u"]
	}
	for _, b := range l.sealed {
		if b.ws == k.ws {
			n += b.counts[k.p]["u"]
		}
	}
	return n
}

// forget drops k's local count once Redis answers for it again.
func (l *local) forget(k wsPeriod) {
	l.mu.Lock()
	delete(l.used, k)
	l.active.Store(len(l.used) > 0)
	l.mu.Unlock()
}

func (l *local) pendingBatches() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open) + len(l.sealed)
}

func (s *Store) setPendingGauge() {
	s.metrics.pendingReconciles.Set(float64(len(s.local.open) + len(s.local.sealed)))
}

// admitLocally decides an admission while Redis is unreachable.
func (s *Store) admitLocally(a tenants.Admission, at time.Time, p tenants.Period, cause error) (tenants.Verdict, error) {
	if s.policy == FailClosed {
		return tenants.Verdict{}, unavailable(cause)
	}
	l := &s.local
	l.mu.Lock()
	defer l.mu.Unlock()
	k := wsPeriod{a.WorkspaceID, p}
	used, ok := l.used[k]
	if !ok {
		if len(l.used) >= maxSeen {
			clear(l.used)
		}
		used = s.seen.get(k) + l.pendingUnits(k)
		l.used[k] = used
		l.active.Store(true)
	}
	v := tenants.Verdict{Used: used, Limit: a.Limit}
	if a.DedupeKey != "" {
		if m, ok := l.findMark(a.WorkspaceID, a.DedupeKey); ok && at.Sub(m.at) < window {
			if !m.undelivered {
				v.Decision = tenants.Duplicate
				return v, nil
			}
			l.putMark(a.WorkspaceID, a.DedupeKey, mark{at: at})
			s.setPendingGauge()
			v.Decision = tenants.Readmitted
			return v, nil
		}
	}
	if a.Limit >= 0 && used >= a.Limit {
		v.Decision = tenants.Exhausted
		return v, nil
	}
	used++
	l.used[k] = used
	b := l.openBatch(a.WorkspaceID)
	b.add(p, "u", at)
	b.add(p, dayField(at, 's'), at)
	if a.DedupeKey != "" {
		l.putMark(a.WorkspaceID, a.DedupeKey, mark{at: at})
	}
	s.setPendingGauge()
	s.metrics.failOpenAdmitted.Inc()
	v.Decision = tenants.Admitted
	v.Used = used
	return v, nil
}

// countLocally buffers an outcome or ack while Redis is unreachable.
func (s *Store) countLocally(ws, field, key string, at time.Time) {
	l := &s.local
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.openBatch(ws)
	if field != "" {
		b.add(tenants.PeriodOf(at), field, at)
	}
	if key != "" {
		l.putMark(ws, key, mark{at: at, undelivered: true})
	}
	s.setPendingGauge()
}

// Run writes what was counted locally during an outage into Redis once it
// answers again, checking every second, until ctx ends; then it makes one
// last bounded attempt.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(reconcileEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.batchTimeout())
			defer cancel()
			if err := s.Flush(fctx); err != nil {
				s.log.Warn("quota counts made while Redis was unreachable are lost at shutdown",
					"pending_batches", s.local.pendingBatches(), "err", err)
			}
			return
		case <-t.C:
		case <-s.kick:
		}
		s.reconcile(ctx)
	}
}

func (s *Store) reconcile(ctx context.Context) {
	if s.breakerOpen() {
		return
	}
	if s.local.pendingBatches() > 0 {
		// A failure is counted and logged by Flush; the batch waits for the next round.
		_ = s.Flush(ctx)
		return
	}
	if !s.down.Load() {
		return
	}
	err := s.call(ctx, func(ctx context.Context) error { return s.rdb.Ping(ctx).Err() })
	switch {
	case err == nil:
		s.redisAnswered()
	case ctx.Err() == nil:
		s.redisFailed(err)
	}
}

// Flush writes the local counts to Redis now. Each workspace's counts go in
// one script call that Redis applies at most once (the batch id is its
// guard), and a batch that got no answer is resent with the same id: a crash
// never double counts, it loses what had not been written yet.
func (s *Store) Flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	batches := s.seal()
	for i, b := range batches {
		err := s.callWithin(ctx, s.batchTimeout(), func(ctx context.Context) error { return s.send(ctx, b) })
		if err != nil {
			if ctx.Err() == nil {
				s.redisFailed(err)
			}
			return fmt.Errorf("reconciling quota counts with Redis (%d of %d batches written): %w", i, len(batches), err)
		}
		s.sent(b)
	}
	if len(batches) > 0 {
		s.redisAnswered()
		s.log.Info("quota counts made while Redis was unreachable are written to it", "batches", len(batches))
	}
	return nil
}

func (s *Store) batchTimeout() time.Duration { return max(s.timeout, time.Second) }

// seal moves every open batch to the sealed list, under a new id, and returns that list.
func (s *Store) seal() []*outageBatch {
	l := &s.local
	l.mu.Lock()
	defer l.mu.Unlock()
	for ws, b := range l.open {
		delete(l.open, ws)
		for len(b.marks) > maxBatchMarks {
			extra := &outageBatch{id: s.batchID(), ws: ws, marks: make(map[string]mark, maxBatchMarks)}
			for key, m := range b.marks {
				if len(extra.marks) == maxBatchMarks {
					break
				}
				extra.marks[key] = m
				delete(b.marks, key)
			}
			l.sealed = append(l.sealed, extra)
		}
		b.id = s.batchID()
		l.sealed = append(l.sealed, b)
	}
	s.setPendingGauge()
	return slices.Clone(l.sealed)
}

// sent drops a batch that Redis confirmed.
func (s *Store) sent(b *outageBatch) {
	l := &s.local
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.Index(l.sealed, b); i >= 0 {
		l.sealed = slices.Delete(l.sealed, i, i+1)
		l.marks -= len(b.marks)
	}
	s.setPendingGauge()
}

func (s *Store) batchID() string {
	return s.instance + "-" + strconv.FormatInt(s.batches.Add(1), 10)
}

// send applies one batch with the reconcile script. A sealed batch is never
// changed, so it needs no lock.
func (s *Store) send(ctx context.Context, b *outageBatch) error {
	keys := []string{s.base(b.ws) + "r:" + b.id}
	args := []any{guardTTL.Milliseconds(), len(b.counts)}
	for p, fields := range b.counts {
		keys = append(keys, s.monthKey(b.ws, p))
		args = append(args, monthTTL(p, b.refs[p]).Milliseconds(), len(fields))
		for f, n := range fields {
			args = append(args, f, n)
		}
	}
	type entry struct {
		key   string
		value int64
	}
	buckets := make(map[int64][]entry)
	firstOff := make(map[int64]int64)
	for key, m := range b.marks {
		bucket, off := bucketOf(m.at)
		value := off * 2
		if m.undelivered {
			value++
		}
		var f [8]byte
		buckets[bucket] = append(buckets[bucket], entry{string(appendField(f[:0], key)), value})
		if f, ok := firstOff[bucket]; !ok || off < f {
			firstOff[bucket] = off
		}
	}
	for bucket, entries := range buckets {
		keys = append(keys, s.bucketKey(b.ws, bucket))
		args = append(args, bucketTTL(firstOff[bucket]), len(entries))
		for _, e := range entries {
			args = append(args, e.key, e.value)
		}
	}
	return reconcileScript.Run(ctx, s.rdb, keys, args...).Err()
}
