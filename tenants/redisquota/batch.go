package redisquota

import (
	"context"
	"strings"
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
	keys  []string
	args  []any
	res   []int64
	err   error
	done  chan struct{}
}

// batcher sends the admissions that wait at the same moment to Redis in one
// pipeline: one write and one read for many pushes instead of one each, which
// is where a Redis round trip spends most of its CPU. Nothing waits to fill a
// batch: the first caller sends at once and whoever arrives meanwhile goes in
// the next one, so a lone push pays exactly one round trip as before. There
// is no long-lived goroutine: the caller that finds no batch in flight starts
// one that sends until the queue is empty. Callers wait at most the timeout.
type batcher struct {
	rdb     redis.UniversalClient
	timeout time.Duration

	mu      sync.Mutex
	queue   []*admitCall
	sending bool
	calls   sync.Pool
}

// admit runs the admit script for keys and args within the batch it joins.
func (b *batcher) admit(ctx context.Context, keys []string, args []any) ([]int64, error) {
	c, _ := b.calls.Get().(*admitCall)
	if c == nil {
		c = &admitCall{done: make(chan struct{}, 1)}
	}
	c.keys, c.args, c.res, c.err = keys, args, nil, nil
	c.state.Store(callWaiting)
	b.mu.Lock()
	b.queue = append(b.queue, c)
	lead := !b.sending
	b.sending = true
	b.mu.Unlock()
	if lead {
		go b.send()
	}
	wait := time.NewTimer(b.timeout)
	defer wait.Stop()
	var gaveUp error
	select {
	case <-c.done:
		return b.result(c)
	case <-ctx.Done():
		gaveUp = ctx.Err()
	case <-wait.C:
		gaveUp = context.DeadlineExceeded
	}
	if c.state.CompareAndSwap(callWaiting, callAbandoned) {
		return nil, gaveUp // never sent; the call is dropped by its batch
	}
	// Already sent: its answer decides, and the batch's own timeout bounds the wait.
	<-c.done
	return b.result(c)
}

func (b *batcher) result(c *admitCall) ([]int64, error) {
	res, err := c.res, c.err
	c.keys, c.args, c.res = nil, nil, nil
	b.calls.Put(c)
	return res, err
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
	if len(live) > 0 {
		b.exec(live)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	more := len(b.queue) > 0
	b.sending = more
	return more
}

// exec runs one pipeline of EVALSHAs, loading the script once if Redis lost it.
func (b *batcher) exec(batch []*admitCall) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	cmds := b.pipeline(ctx, batch)
	if noScript(cmds) {
		if err := admitScript.Load(ctx, b.rdb).Err(); err == nil {
			cmds = b.pipeline(ctx, batch)
		}
	}
	for i, c := range batch {
		c.res, c.err = cmds[i].Int64Slice()
		c.done <- struct{}{}
	}
}

func (b *batcher) pipeline(ctx context.Context, batch []*admitCall) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(batch))
	_, _ = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range batch {
			cmds[i] = admitScript.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	return cmds
}

func noScript(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			return true
		}
	}
	return false
}
