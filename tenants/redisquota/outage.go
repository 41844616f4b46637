package redisquota

import (
	"context"
	"fmt"
	"maps"
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
	// keys counts the key records held, for maxMarks.
	keys int
	// undos counts the pending undos, so that the hot path skips the lock when there are none.
	undos atomic.Int64
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
	refs map[tenants.Period]time.Time
	keys map[string]*keyRecord
}

// keyRecord is what this replica did with one dedupe key while Redis did
// not answer. Redis applies each part at most once, whatever it already ran.
type keyRecord struct {
	// mark is the key's latest local state, written as its bucket entry.
	mark    mark
	hasMark bool
	// units are the times of local admissions that took a unit: each is
	// counted unless Redis holds the key near that time (the admission that
	// seemed to fail ran after all).
	units []time.Time
	// undos are admissions that Redis may have run though nothing was
	// forwarded: each is taken back if Redis holds exactly its entry.
	undos []attempt
	// outcomes are the day counts of Settles.
	outcomes []outcome
}

// attempt is one admission sent to Redis: its time and its tag.
type attempt struct {
	at  time.Time
	tag int64
}

type mark struct {
	at          time.Time
	undelivered bool
}

// outcome is a Settle's count of a day field, counted unless Redis holds its
// receipt (the Settle that seemed to fail ran).
type outcome struct {
	at    time.Time
	tag   int64
	field string
}

// receipt is what countScript leaves beside a key for an outcome settled at off with tag.
func receipt(off, tag int64) int64 { return tag*tagUnit + off*2 + 1 }

func (b *outageBatch) add(p tenants.Period, field string, at time.Time) {
	if b.counts == nil {
		b.counts = make(map[tenants.Period]map[string]int64)
	}
	if b.counts[p] == nil {
		b.counts[p] = make(map[string]int64)
	}
	b.counts[p][field]++
	b.ref(p, at)
}

func (b *outageBatch) ref(p tenants.Period, at time.Time) {
	if b.refs == nil {
		b.refs = make(map[tenants.Period]time.Time)
	}
	if at.After(b.refs[p]) {
		b.refs[p] = at
	}
}

func (l *local) openBatch(ws string) *outageBatch {
	b := l.open[ws]
	if b == nil {
		b = &outageBatch{ws: ws, keys: make(map[string]*keyRecord)}
		l.open[ws] = b
	}
	return b
}

// record returns key's record in ws's open batch, or nil when maxMarks are held.
func (l *local) record(ws, key string) *keyRecord {
	b := l.openBatch(ws)
	r := b.keys[key]
	if r == nil {
		if l.keys >= maxMarks {
			return nil
		}
		l.keys++
		r = &keyRecord{}
		b.keys[key] = r
	}
	return r
}

func (l *local) findMark(ws, key string) (mark, bool) {
	if b := l.open[ws]; b != nil {
		if r := b.keys[key]; r != nil && r.hasMark {
			return r.mark, true
		}
	}
	for i := len(l.sealed) - 1; i >= 0; i-- {
		if b := l.sealed[i]; b.ws == ws {
			if r := b.keys[key]; r != nil && r.hasMark {
				return r.mark, true
			}
		}
	}
	return mark{}, false
}

// putMark sets key's local state.
func (l *local) putMark(ws, key string, m mark) {
	if r := l.record(ws, key); r != nil {
		r.mark, r.hasMark = m, true
	}
}

// addUnit records a local admission that took a unit.
func (l *local) addUnit(ws, key string, p tenants.Period, at time.Time) {
	r := (*keyRecord)(nil)
	if key != "" {
		r = l.record(ws, key)
	}
	if r == nil {
		b := l.openBatch(ws)
		b.add(p, "u", at)
		b.add(p, dayField(at, 's'), at)
		return
	}
	r.units = append(r.units, at)
}

// addUndo records an admission that Redis may have run though nothing was forwarded.
func (l *local) addUndo(ws, key string, a attempt) {
	if key == "" || a.tag == 0 {
		return
	}
	if r := l.record(ws, key); r != nil {
		r.undos = append(r.undos, a)
		l.undos.Add(1)
	}
}

// hasUndo reports whether an undo of ws's key waits for Redis.
func (l *local) hasUndo(ws, key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.open[ws]; b != nil {
		if r := b.keys[key]; r != nil && len(r.undos) > 0 {
			return true
		}
	}
	for _, b := range l.sealed {
		if r := b.keys[key]; b.ws == ws && r != nil && len(r.undos) > 0 {
			return true
		}
	}
	return false
}

// pendingUnits is how many units of k were counted here and not yet written to Redis.
func (l *local) pendingUnits(k wsPeriod) int64 {
	count := func(b *outageBatch) int64 {
		n := b.counts[k.p]["u"]
		for _, r := range b.keys {
			for _, at := range r.units {
				if tenants.PeriodOf(at) == k.p {
					n++
				}
			}
		}
		return n
	}
	var n int64
	if b := l.open[k.ws]; b != nil {
		n += count(b)
	}
	for _, b := range l.sealed {
		if b.ws == k.ws {
			n += count(b)
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

// admitLocally decides an admission while Redis is unreachable. A nonzero
// tag is that of an attempt Redis may have run: when nothing of the key is
// forwarded (refused or exhausted), its unit is taken back once Redis answers.
func (s *Store) admitLocally(a tenants.Admission, at time.Time, p tenants.Period, cause error, tag int64) (tenants.Verdict, error) {
	l := &s.local
	l.mu.Lock()
	defer l.mu.Unlock()
	undo := func() {
		l.addUndo(a.WorkspaceID, a.DedupeKey, attempt{at, tag})
		s.setPendingGauge()
	}
	if s.policy == FailClosed {
		undo()
		return tenants.Verdict{}, unavailable(cause)
	}
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
				// Forwarded here already: a unit Redis took for this attempt stands for it.
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
		undo()
		v.Decision = tenants.Exhausted
		return v, nil
	}
	used++
	l.used[k] = used
	l.addUnit(a.WorkspaceID, a.DedupeKey, p, at)
	if a.DedupeKey != "" {
		l.putMark(a.WorkspaceID, a.DedupeKey, mark{at: at})
	}
	s.setPendingGauge()
	s.metrics.failOpenAdmitted.Inc()
	v.Decision = tenants.Admitted
	v.Used = used
	return v, nil
}

// undoLater records an admission that Redis may have run for a caller that gave up.
func (s *Store) undoLater(a *tenants.Admission, at time.Time, tag int64) {
	l := &s.local
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addUndo(a.WorkspaceID, a.DedupeKey, attempt{at, tag})
	s.setPendingGauge()
}

// countLocally buffers an outcome or ack while Redis is unreachable; tag is
// that of the attempt Redis may have run.
func (s *Store) countLocally(ws, field, key string, at time.Time, tag int64) {
	l := &s.local
	l.mu.Lock()
	defer l.mu.Unlock()
	var r *keyRecord
	if key != "" {
		if r = l.record(ws, key); r != nil {
			r.mark, r.hasMark = mark{at: at, undelivered: true}, true
		}
	}
	switch {
	case field == "":
	case r != nil && tag != 0:
		r.outcomes = append(r.outcomes, outcome{at, tag, field})
	default:
		l.openBatch(ws).add(tenants.PeriodOf(at), field, at)
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

// seal moves every open batch to the sealed list, under a new id, and
// returns that list. A batch holds at most maxBatchMarks keys, each with all
// its records, so one key's parts are applied together.
func (s *Store) seal() []*outageBatch {
	l := &s.local
	l.mu.Lock()
	defer l.mu.Unlock()
	for ws, b := range l.open {
		delete(l.open, ws)
		for len(b.keys) > maxBatchMarks {
			extra := &outageBatch{id: s.batchID(), ws: ws, keys: make(map[string]*keyRecord, maxBatchMarks)}
			for key, r := range b.keys {
				if len(extra.keys) == maxBatchMarks {
					break
				}
				extra.keys[key] = r
				delete(b.keys, key)
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
		l.keys -= len(b.keys)
		for _, r := range b.keys {
			l.undos.Add(-int64(len(r.undos)))
		}
	}
	s.setPendingGauge()
}

func (s *Store) batchID() string {
	return s.instance + "-" + strconv.FormatInt(s.batches.Add(1), 10)
}

// send applies one batch with the reconcile script. A sealed batch is never
// changed, so it needs no lock.
func (s *Store) send(ctx context.Context, b *outageBatch) error {
	keys, args := s.reconcileCommand(b)
	return reconcileScript.Run(ctx, s.rdb, keys, args...).Err()
}

// reconcileCommand lays out a batch for reconcileScript (see there).
func (s *Store) reconcileCommand(b *outageBatch) ([]string, []any) {
	months := map[tenants.Period]int{}
	refs := maps.Clone(b.refs)
	if refs == nil {
		refs = map[tenants.Period]time.Time{}
	}
	var periods []tenants.Period
	month := func(at time.Time) int {
		p := tenants.PeriodOf(at)
		if at.After(refs[p]) {
			refs[p] = at
		}
		i, ok := months[p]
		if !ok {
			periods = append(periods, p)
			i = len(periods)
			months[p] = i
		}
		return i
	}
	for p := range b.counts {
		month(b.refs[p])
	}
	buckets := map[int64]int{}
	var numbers []int64
	firstOff := map[int64]int64{}
	bucket := func(at time.Time, written bool) (int, int64, int64) {
		n, off := bucketOf(at)
		i, ok := buckets[n]
		if !ok {
			numbers = append(numbers, n)
			i = len(numbers)
			buckets[n] = i
		}
		if f, ok := firstOff[n]; written && (!ok || off < f) {
			firstOff[n] = off
		}
		return i, n, off
	}
	var undos, units, marks, outcomes []any
	nUndos, nUnits, nMarks, nOutcomes := 0, 0, 0, 0
	for key, r := range b.keys {
		var f [8]byte
		field := string(appendField(f[:0], key))
		for _, u := range r.undos {
			bi, _, off := bucket(u.at, false)
			undos = append(undos, month(u.at), dayField(u.at, 's'), bi, field, u.tag*tagUnit+off*2)
			nUndos++
		}
		for _, at := range r.units {
			mi := month(at)
			n, off := bucketOf(at)
			for d := -int64(bucketsChecked - 1); d < int64(bucketsChecked); d++ {
				bucket(time.UnixMilli((n+d)*bucketSpan.Milliseconds()), false)
			}
			units = append(units, mi, dayField(at, 's'), field, n, off)
			nUnits++
		}
		if r.hasMark {
			m := r.mark
			bi, _, off := bucket(m.at, true)
			value := off * 2
			if m.undelivered {
				value++
			}
			marks = append(marks, bi, field, value)
			nMarks++
		}
		for _, o := range r.outcomes {
			bi, _, off := bucket(o.at, true)
			outcomes = append(outcomes, month(o.at), o.field, bi, field+"o", receipt(off, o.tag))
			nOutcomes++
		}
	}
	keys := []string{s.base(b.ws) + "r:" + b.id}
	args := []any{guardTTL.Milliseconds(), len(periods), len(numbers)}
	for _, p := range periods {
		keys = append(keys, s.monthKey(b.ws, p))
		args = append(args, monthTTL(p, refs[p]).Milliseconds(), len(b.counts[p]))
		for f, n := range b.counts[p] {
			args = append(args, f, n)
		}
	}
	for _, n := range numbers {
		keys = append(keys, s.bucketKey(b.ws, n))
		off, ok := firstOff[n]
		if !ok {
			off = 0
		}
		args = append(args, n, bucketTTL(off))
	}
	args = append(args, nUndos)
	args = append(args, undos...)
	args = append(args, nUnits)
	args = append(args, units...)
	args = append(args, nMarks)
	args = append(args, marks...)
	args = append(args, nOutcomes)
	args = append(args, outcomes...)
	return keys, args
}
