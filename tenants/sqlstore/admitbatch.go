package sqlstore

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/pushgate/pushgate/tenants"
)

// maxBatch bounds how many admissions share one transaction.
const maxBatch = 128

// The states of an admitCall.
const (
	callWaiting int32 = iota
	callTaken
	callAbandoned
)

// admitCall is one admission waiting for its batch.
type admitCall struct {
	// state is callWaiting until a batch takes the call (callTaken) or its
	// caller gives up first (callAbandoned): an abandoned call is never
	// decided, so it is never counted.
	state atomic.Int32
	a     tenants.Admission
	// claim is what claimKey did for the call; first marks the batch's
	// first call with its dedupe key, which claims it ahead of the rest.
	claim claim
	first bool
	v     tenants.Verdict
	err   error
	done  chan struct{}
}

// admitBatcher decides the admissions that wait at the same moment in one
// transaction: one commit, one read of a workspace's limit and one write of
// its count for many pushes instead of one each. Nothing waits to fill a
// batch: the first caller starts one at once and whoever arrives meanwhile
// goes in the next, so a lone push pays one transaction as before. There is
// no long-lived goroutine: the caller that finds no batch in flight runs the
// first batch itself and, if more queued meanwhile, starts a goroutine that
// runs batches until the queue is empty.
type admitBatcher struct {
	// decide decides a batch in one transaction of bounded length; on an
	// error it counted nothing.
	decide func(batch []*admitCall) error

	mu      sync.Mutex
	queue   []*admitCall
	running bool
	calls   sync.Pool
}

// admit decides a within the batch it joins.
func (b *admitBatcher) admit(ctx context.Context, a tenants.Admission) (tenants.Verdict, error) {
	c, _ := b.calls.Get().(*admitCall)
	if c == nil {
		c = &admitCall{done: make(chan struct{}, 1)}
	}
	c.a = a
	c.state.Store(callWaiting)
	b.mu.Lock()
	b.queue = append(b.queue, c)
	lead := !b.running
	b.running = true
	b.mu.Unlock()
	if lead && b.runOne() {
		go b.run() // more arrived meanwhile: this caller's answer is in
	}
	select {
	case <-c.done:
		return b.result(c)
	case <-ctx.Done():
	}
	if c.state.CompareAndSwap(callWaiting, callAbandoned) {
		return tenants.Verdict{}, ctx.Err() // never decided; its batch drops it
	}
	// Already taken: its answer decides, and the batch is bounded.
	<-c.done
	return b.result(c)
}

func (b *admitBatcher) result(c *admitCall) (tenants.Verdict, error) {
	v, err := c.v, c.err
	*c = admitCall{done: c.done}
	b.calls.Put(c)
	return v, err
}

// run decides batches until the queue is empty.
func (b *admitBatcher) run() {
	for b.runOne() {
	}
}

// runOne decides one batch and reports whether more are waiting.
func (b *admitBatcher) runOne() bool {
	b.mu.Lock()
	batch := b.queue
	if len(batch) > maxBatch {
		batch = batch[:maxBatch:maxBatch]
		b.queue = append([]*admitCall(nil), b.queue[maxBatch:]...)
	} else {
		b.queue = nil
	}
	b.mu.Unlock()

	// The batch's array is ours alone: the queue took a new one.
	live := batch[:0]
	for _, c := range batch {
		if c.state.CompareAndSwap(callWaiting, callTaken) {
			live = append(live, c)
		}
	}
	if len(live) > 0 {
		b.exec(live)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	more := len(b.queue) > 0
	b.running = more
	return more
}

// exec decides one batch and answers its callers: all of them get the error
// of a batch that failed, since its transaction counted none of them.
func (b *admitBatcher) exec(batch []*admitCall) {
	err := b.decide(batch)
	for _, c := range batch {
		if err != nil {
			c.v, c.err = tenants.Verdict{}, err
		}
		c.done <- struct{}{}
	}
}
