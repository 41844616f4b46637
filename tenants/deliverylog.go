package tenants

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DeliveryLogOptions configures a DeliveryLog; zero values take the defaults.
type DeliveryLogOptions struct {
	Store DeliveryStore
	// PerWorkspace bounds the entries of one workspace waiting to be written (10,000).
	PerWorkspace int
	// Total bounds all entries waiting to be written (100,000): the buffer's memory.
	Total int
	// BatchSize is the most entries written in one statement (1,000); a
	// buffer holding that many is written without waiting for the interval.
	BatchSize int
	// FlushInterval is how often waiting entries are written (1s).
	FlushInterval time.Duration
	Log           *slog.Logger
	Registerer    prometheus.Registerer
	Now           func() time.Time
}

// DeliveryLog buffers delivery log entries in memory and writes them in
// batches, so the push path adds no database write and no round trip. The
// buffer is bounded per workspace and in total; when a bound is reached the
// oldest entry (of that workspace, or of all) is dropped and counted.
type DeliveryLog struct {
	o DeliveryLogOptions

	mu sync.Mutex
	// ring holds entries in arrival order from seq head to tail; a slot whose
	// WorkspaceID is empty was dropped by its workspace's bound. It grows up
	// to Total as entries wait and shrinks back when emptied, so the live
	// heap (which GOGC multiplies) is what waits, not the bound.
	ring       []Delivery
	minRing    int
	head, tail uint64
	live       int
	queues     map[string]*seqQueue // each workspace's live entries, oldest first
	signaled   bool

	flush   chan struct{}
	batch   []Delivery
	dropped *prometheus.CounterVec
	// The dropped counters by reason, resolved once.
	dropWorkspace, dropTotal, dropWrite prometheus.Counter
	written                             prometheus.Counter
	// failingSince is when the database began refusing writes; zero while they work.
	failingSince time.Time
	// retrying is the size of a refused batch waiting to be retried.
	retrying atomic.Int64
}

// Why entries were dropped, the label of pushgate_delivery_log_dropped_total.
const (
	DropWorkspaceBound = "workspace_bound"
	DropTotalBound     = "total_bound"
	DropWriteFailed    = "write_failed"
)

// NewDeliveryLog returns a buffer; Run writes it out.
func NewDeliveryLog(o DeliveryLogOptions) *DeliveryLog {
	if o.PerWorkspace <= 0 {
		o.PerWorkspace = 10_000
	}
	if o.Total <= 0 {
		o.Total = 100_000
	}
	o.PerWorkspace = min(o.PerWorkspace, o.Total)
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &DeliveryLog{
		o: o, minRing: min(2*o.BatchSize, o.Total), queues: map[string]*seqQueue{},
		flush: make(chan struct{}, 1),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushgate_delivery_log_dropped_total",
			Help: "Delivery log entries dropped before they were written, by reason: a workspace's or the total buffer bound (oldest first), or a failed write.",
		}, []string{"reason"}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushgate_delivery_log_written_total",
			Help: "Delivery log entries written to the database.",
		}),
	}
	l.dropWorkspace = l.dropped.WithLabelValues(DropWorkspaceBound)
	l.dropTotal = l.dropped.WithLabelValues(DropTotalBound)
	l.dropWrite = l.dropped.WithLabelValues(DropWriteFailed)
	if o.Registerer != nil {
		o.Registerer.MustRegister(l.dropped, l.written, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pushgate_delivery_log_pending",
			Help: "Delivery log entries waiting in memory to be written.",
		}, func() float64 { return float64(l.Pending()) }))
	}
	return l
}

// Record adds an entry; it never blocks on storage. Safe on a nil log (off).
func (l *DeliveryLog) Record(d Delivery) {
	if l == nil || d.WorkspaceID == "" {
		return
	}
	d = d.Bounded()
	// Copies, so that an entry never pins the request body it was cut from.
	d.Ref, d.Reason, d.TokenPrefix = strings.Clone(d.Ref), strings.Clone(d.Reason), strings.Clone(d.TokenPrefix)
	l.mu.Lock()
	q := l.queues[d.WorkspaceID]
	if q == nil {
		q = &seqQueue{}
		l.queues[d.WorkspaceID] = q
	}
	if q.len() >= l.o.PerWorkspace {
		l.ring[q.pop()%uint64(len(l.ring))] = Delivery{}
		l.live--
		l.dropWorkspace.Inc()
		l.skipDropped()
	}
	if l.tail-l.head == uint64(len(l.ring)) && len(l.ring) < l.o.Total {
		l.grow()
	}
	if l.tail-l.head == uint64(len(l.ring)) {
		// Full: the oldest slot goes (it is live, since head skips dropped ones).
		old := &l.ring[l.head%uint64(len(l.ring))]
		if oq := l.queues[old.WorkspaceID]; oq != nil && old.WorkspaceID != "" {
			oq.pop()
			if oq.len() == 0 && oq != q {
				delete(l.queues, old.WorkspaceID)
			}
			l.live--
			l.dropTotal.Inc()
		}
		*old = Delivery{}
		l.head++
		l.skipDropped()
	}
	l.ring[l.tail%uint64(len(l.ring))] = d
	q.push(l.tail)
	l.tail++
	l.live++
	wake := l.live >= l.o.BatchSize && !l.signaled
	if wake {
		l.signaled = true
	}
	l.mu.Unlock()
	if wake {
		select {
		case l.flush <- struct{}{}:
		default:
		}
	}
}

// grow doubles the ring (up to Total), keeping every slot at its sequence.
func (l *DeliveryLog) grow() {
	n := min(max(2*len(l.ring), l.minRing), l.o.Total)
	ring := make([]Delivery, n)
	for s := l.head; s < l.tail; s++ {
		ring[s%uint64(n)] = l.ring[s%uint64(len(l.ring))]
	}
	l.ring = ring
}

// skipDropped moves head past slots dropped by a workspace bound.
func (l *DeliveryLog) skipDropped() {
	for l.head < l.tail && l.ring[l.head%uint64(len(l.ring))].WorkspaceID == "" {
		l.head++
	}
}

// Pending returns how many entries wait to be written.
func (l *DeliveryLog) Pending() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.live + int(l.retrying.Load())
}

// Drain removes up to max of the oldest waiting entries and appends them to dst.
func (l *DeliveryLog) Drain(dst []Delivery, max int) []Delivery {
	l.mu.Lock()
	defer l.mu.Unlock()
	for n := 0; n < max && l.head < l.tail; n++ {
		slot := &l.ring[l.head%uint64(len(l.ring))]
		q := l.queues[slot.WorkspaceID]
		q.pop()
		if q.len() == 0 {
			delete(l.queues, slot.WorkspaceID)
		}
		dst = append(dst, *slot)
		*slot = Delivery{}
		l.live--
		l.head++
		l.skipDropped()
	}
	if l.live < l.o.BatchSize {
		l.signaled = false
	}
	if l.head == l.tail && len(l.ring) > 2*l.minRing {
		l.ring = nil // a burst is over: the next entry starts a small ring
	}
	return dst
}

// Run writes waiting entries every FlushInterval, or as soon as a batch is
// full, until ctx ends; then it writes what is left, for at most five seconds.
func (l *DeliveryLog) Run(ctx context.Context) {
	t := time.NewTicker(l.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			l.WriteAll(final)
			cancel()
			return
		case <-t.C:
		case <-l.flush:
		}
		// A write under way finishes when ctx ends: the batch is out of the buffer.
		l.WriteAll(context.WithoutCancel(ctx))
	}
}

// WriteAll writes every waiting entry in batches. A batch the database
// refuses waits (outside the bounded buffer, which keeps filling and dropping
// its oldest) and is retried first on the next call, for up to
// deliveryRetryFor; then it is dropped and counted. An outage is logged when
// it starts and when it ends, not per batch.
func (l *DeliveryLog) WriteAll(ctx context.Context) {
	for {
		retrying := len(l.batch) > 0
		if !retrying {
			l.batch = l.Drain(l.batch[:0], l.o.BatchSize)
			if len(l.batch) == 0 {
				return
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := l.o.Store.SaveDeliveries(wctx, l.batch)
		cancel()
		n := len(l.batch)
		if err != nil {
			now := l.o.Now()
			if l.failingSince.IsZero() {
				l.failingSince = now
				l.o.Log.Warn("writing the delivery log failed; its entries wait in memory and are retried", "entries", n, "err", err)
			}
			l.retrying.Store(int64(n))
			if now.Sub(l.failingSince) >= deliveryRetryFor {
				l.dropWrite.Add(float64(n))
				l.dropBatch()
			}
			return
		}
		if !l.failingSince.IsZero() {
			l.o.Log.Info("writing the delivery log works again", "failed_for", l.o.Now().Sub(l.failingSince).Round(time.Second).String())
			l.failingSince = time.Time{}
		}
		l.written.Add(float64(n))
		l.dropBatch()
		if n < l.o.BatchSize && !retrying {
			return
		}
	}
}

// deliveryRetryFor bounds how long a batch the database refuses is retried.
const deliveryRetryFor = time.Minute

// dropBatch empties the batch, keeping no strings alive between flushes.
func (l *DeliveryLog) dropBatch() {
	clear(l.batch)
	l.batch = l.batch[:0]
	l.retrying.Store(0)
}

// RunDeliveryRetention deletes entries older than DeliveryRetention every
// interval (and once at the start) until ctx ends. It runs whether or not the
// log is on, so turning it off still empties the table within a week.
func RunDeliveryRetention(ctx context.Context, store DeliveryStore, interval time.Duration, now func() time.Time, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := PurgeDeliveries(ctx, store, now()); err != nil && ctx.Err() == nil {
			log.Warn("purging the delivery log failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// purgeChunk bounds one delete statement of the retention job.
const purgeChunk = 10_000

// PurgeDeliveries deletes every entry older than DeliveryRetention before now
// and returns how many it deleted.
func PurgeDeliveries(ctx context.Context, store DeliveryStore, now time.Time) (int, error) {
	total := 0
	for {
		n, err := store.PurgeDeliveries(ctx, now.Add(-DeliveryRetention), purgeChunk)
		total += n
		if err != nil || n < purgeChunk {
			return total, err
		}
	}
}

// seqQueue is a FIFO of ring sequence numbers.
type seqQueue struct {
	seqs  []uint64
	start int
}

func (q *seqQueue) len() int { return len(q.seqs) - q.start }

func (q *seqQueue) push(s uint64) {
	if q.start > 0 && q.start == len(q.seqs) {
		q.seqs, q.start = q.seqs[:0], 0
	} else if q.start >= 64 && q.start*2 >= len(q.seqs) {
		n := copy(q.seqs, q.seqs[q.start:])
		q.seqs, q.start = q.seqs[:n], 0
	}
	q.seqs = append(q.seqs, s)
}

func (q *seqQueue) pop() uint64 {
	s := q.seqs[q.start]
	q.start++
	return s
}
