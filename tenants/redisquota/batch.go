package redisquota

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxBatch bounds how many admissions share one pipeline.
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
	// caller gives up first (callAbandoned): an abandoned call is never sent,
	// so a caller that fell back to counting locally is not counted twice.
	state atomic.Int32
	// cmd is the call's EVALSHA, encoded by the caller.
	cmd  []byte
	res  [3]int64
	n    int
	err  error
	done chan struct{}
}

// batcher sends the admissions that wait at the same moment to Redis in one
// pipeline on its own connection: one write and one read for many pushes
// instead of one each, which is where a Redis round trip spends most of its
// CPU. Nothing waits to fill a batch: the first caller sends at once and
// whoever arrives meanwhile goes in the next one, so a lone push pays exactly
// one round trip. There is no long-lived goroutine: the caller that finds no
// batch in flight sends the first batch itself (no goroutine hand-off while
// traffic is light) and, if more calls queued meanwhile, starts a goroutine
// that sends until the queue is empty. A batch takes at most the timeout,
// and when it fails so do the calls queued behind it, so no caller waits much
// longer than the timeout.
type batcher struct {
	opt     *redis.Options
	timeout time.Duration
	// load loads the admit script after Redis answered NOSCRIPT.
	load func(context.Context) error

	mu      sync.Mutex
	queue   []*admitCall
	sending bool
	closed  bool
	calls   sync.Pool
	// conn belongs to whichever goroutine is sending (sending is true); nil until dialled and after a failure.
	conn *respConn
}

func newBatcher(opt *redis.Options, timeout time.Duration, load func(context.Context) error) *batcher {
	return &batcher{opt: opt, timeout: timeout, load: load,
		calls: sync.Pool{New: func() any { return &admitCall{done: make(chan struct{}, 1)} }}}
}

// call returns an admitCall to encode an admission into.
func (b *batcher) call() *admitCall {
	c := b.calls.Get().(*admitCall)
	c.cmd, c.n, c.err = c.cmd[:0], 0, nil
	c.state.Store(callWaiting)
	return c
}

// admit sends c within the batch it joins and returns the script's answer;
// c goes back to the pool.
func (b *batcher) admit(ctx context.Context, c *admitCall) ([3]int64, int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return [3]int64{}, 0, redis.ErrClosed
	}
	b.queue = append(b.queue, c)
	lead := !b.sending
	b.sending = true
	b.mu.Unlock()
	if lead && b.sendOne() {
		go b.send() // more arrived meanwhile: this caller's answer is in
	}
	select {
	case <-c.done:
		return b.result(c)
	case <-ctx.Done():
	}
	if c.state.CompareAndSwap(callWaiting, callAbandoned) {
		return [3]int64{}, 0, ctx.Err() // never sent; its batch drops it
	}
	// Already sent: its answer decides, and the batch's deadline bounds the wait.
	<-c.done
	return b.result(c)
}

func (b *batcher) result(c *admitCall) ([3]int64, int, error) {
	res, n, err := c.res, c.n, c.err
	if cap(c.cmd) <= 4<<10 {
		b.calls.Put(c)
	}
	return res, n, err
}

// send flushes batches until the queue is empty.
func (b *batcher) send() {
	for b.sendOne() {
	}
}

// sendOne sends one batch and reports whether more are waiting.
func (b *batcher) sendOne() bool {
	b.mu.Lock()
	batch := b.queue
	if len(batch) > maxBatch {
		batch = batch[:maxBatch:maxBatch]
		b.queue = append([]*admitCall(nil), b.queue[maxBatch:]...)
	} else {
		b.queue = nil
	}
	b.mu.Unlock()

	live := batch[:0:0]
	for _, c := range batch {
		if c.state.CompareAndSwap(callWaiting, callTaken) {
			live = append(live, c)
		}
	}
	var err error
	if len(live) > 0 {
		err = b.exec(live)
	}

	b.mu.Lock()
	var failed []*admitCall
	if err != nil {
		// Redis just failed: the calls queued meanwhile fail at once instead of
		// waiting a timeout each; the store then follows its outage policy.
		failed, b.queue = b.queue, nil
	}
	more := len(b.queue) > 0
	b.sending = more
	if !more && b.closed && b.conn != nil {
		b.conn.close()
		b.conn = nil
	}
	b.mu.Unlock()
	for _, c := range failed {
		if c.state.CompareAndSwap(callWaiting, callTaken) {
			c.err = err
			c.done <- struct{}{}
		}
	}
	return more
}

// exec runs one pipeline of EVALSHAs and answers every call in it. After a
// NOSCRIPT answer it loads the script and sends again only the calls that got
// one, so no admission runs twice. It returns the error that broke the
// connection, if any.
func (b *batcher) exec(batch []*admitCall) error {
	deadline := time.Now().Add(b.timeout)
	err := b.pipeline(batch, deadline)
	if err == nil {
		var again []*admitCall
		for _, c := range batch {
			if e, ok := c.err.(redisError); ok && e.noScript() {
				again = append(again, c)
			}
		}
		if len(again) > 0 {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			if lerr := b.load(ctx); lerr == nil {
				err = b.pipeline(again, deadline)
			}
			cancel()
		}
	}
	for _, c := range batch {
		c.done <- struct{}{}
	}
	return err
}

// pipeline writes the batch's commands and reads their answers into the
// calls; on a connection error every unanswered call gets it.
func (b *batcher) pipeline(batch []*admitCall, deadline time.Time) error {
	for _, c := range batch {
		c.err = nil
	}
	answered := 0
	err := func() error {
		if b.conn == nil {
			rc, err := dialRESP(context.Background(), b.opt, time.Until(deadline))
			if err != nil {
				return err
			}
			b.conn = rc
		}
		rc := b.conn
		if err := rc.c.SetDeadline(deadline); err != nil {
			return err
		}
		rc.out = rc.out[:0]
		for _, c := range batch {
			rc.out = append(rc.out, c.cmd...)
		}
		if err := rc.flush(); err != nil {
			return err
		}
		for _, c := range batch {
			n, err := rc.readInts(c.res[:])
			if _, ok := err.(redisError); err != nil && !ok {
				return err
			}
			c.n, c.err = n, err
			answered++
		}
		return nil
	}()
	if err != nil {
		if b.conn != nil {
			b.conn.close()
			b.conn = nil
		}
		for _, c := range batch[answered:] {
			c.err = err
		}
	}
	return err
}

// close stops new admissions and closes the connection once the batch in flight is done.
func (b *batcher) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if !b.sending && b.conn != nil {
		b.conn.close()
		b.conn = nil
	}
}
