// Package batching runs the calls that wait at the same moment together, as
// the quota stores do with admissions: one Redis pipeline or one database
// transaction for many pushes instead of one each.
//
// Nothing waits to fill a batch: the first caller runs at once and whoever
// arrives meanwhile goes in the next batch, so a lone call pays what it did
// alone. There is no long-lived goroutine: the caller that finds no batch in
// flight runs the first one itself (no goroutine hand-off while traffic is
// light) and, if more calls queued meanwhile, starts a goroutine that runs
// batches until the queue is empty. A caller that gives up before its batch
// takes it is dropped and never run; once taken, its batch's answer decides.
package batching

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// ErrClosed is what Do answers once the queue is closed.
var ErrClosed = errors.New("batching: the queue is closed")

// The states of a Call.
const (
	waiting int32 = iota
	taken
	abandoned
)

// Call is the part of a queued call that the queue keeps; embed it.
type Call struct {
	state atomic.Int32
	done  chan struct{}
}

// Batched returns c; a type that embeds Call satisfies Caller with it.
func (c *Call) Batched() *Call { return c }

// Caller is a call that embeds Call.
type Caller interface{ Batched() *Call }

// Queue runs calls of type C in batches of at most Max.
type Queue[C Caller] struct {
	// Run runs one batch and stores each call's answer in it; its error is
	// for FailQueued.
	Run func(batch []C) error
	// FailQueued, when set, answers with err the calls that queued while a
	// batch failed with err, at once instead of in a batch of their own (for
	// a server that just failed, which they would wait on too).
	FailQueued func(c C, err error)
	Max        int

	mu      sync.Mutex
	queue   []C
	running bool
	closed  bool
	onIdle  func()
}

// Do runs c in the batch it joins and returns once c has its answer, or
// ctx's error when ctx ended before a batch took c, or ErrClosed.
func (q *Queue[C]) Do(ctx context.Context, c C) error {
	b := c.Batched()
	if b.done == nil {
		b.done = make(chan struct{}, 1)
	}
	b.state.Store(waiting)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.queue = append(q.queue, c)
	lead := !q.running
	q.running = true
	q.mu.Unlock()
	if lead && q.runOne() {
		go q.runAll() // more arrived meanwhile: this caller's answer is in
	}
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
	}
	if b.state.CompareAndSwap(waiting, abandoned) {
		return ctx.Err() // never run; its batch drops it
	}
	<-b.done // taken: its batch's answer decides
	return nil
}

// Busy reports whether a batch is in flight and how many calls wait for the next.
func (q *Queue[C]) Busy() (running bool, queued int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running, len(q.queue)
}

// Close refuses further calls and runs idle once no batch is in flight.
func (q *Queue[C]) Close(idle func()) {
	q.mu.Lock()
	q.closed = true
	if q.running {
		q.onIdle = idle
		idle = nil
	}
	q.mu.Unlock()
	if idle != nil {
		idle()
	}
}

func (q *Queue[C]) runAll() {
	for q.runOne() {
	}
}

// runOne runs one batch and reports whether more calls are waiting.
func (q *Queue[C]) runOne() bool {
	q.mu.Lock()
	batch := q.queue
	if q.Max > 0 && len(batch) > q.Max {
		batch = batch[:q.Max:q.Max]
		q.queue = append([]C(nil), q.queue[q.Max:]...)
	} else {
		q.queue = nil
	}
	q.mu.Unlock()

	// The batch's array is ours alone: the queue took a new one.
	live := batch[:0]
	for _, c := range batch {
		if c.Batched().state.CompareAndSwap(waiting, taken) {
			live = append(live, c)
		}
	}
	var err error
	if len(live) > 0 {
		err = q.Run(live)
		for _, c := range live {
			c.Batched().done <- struct{}{}
		}
	}

	q.mu.Lock()
	var failed []C
	if err != nil && q.FailQueued != nil {
		failed, q.queue = q.queue, nil
	}
	more := len(q.queue) > 0
	q.running = more
	var idle func()
	if !more && q.closed {
		idle, q.onIdle = q.onIdle, nil
	}
	q.mu.Unlock()
	for _, c := range failed {
		if c.Batched().state.CompareAndSwap(waiting, taken) {
			q.FailQueued(c, err)
			c.Batched().done <- struct{}{}
		}
	}
	if idle != nil {
		idle()
	}
	return more
}
