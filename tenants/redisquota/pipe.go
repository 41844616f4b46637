package redisquota

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/tenants/internal/batching"
)

// maxPipelined bounds how many admissions share one pipeline.
const maxPipelined = 128

// admitCall is one admission waiting for its batch.
type admitCall struct {
	batching.Call
	// cmd is the call's EVALSHA, encoded by the caller.
	cmd []byte
	res [3]int64
	n   int
	err error
}

// admitPipe sends the admissions that wait at the same moment to Redis in one
// pipeline on its own connection (see package batching): one write and one read
// for many pushes instead of one each, which is where a Redis round trip
// spends most of its CPU. A batch takes at most the timeout, and when it
// fails so do the calls queued behind it, so no caller waits much longer
// than the timeout.
type admitPipe struct {
	opt     *redis.Options
	timeout time.Duration
	// load loads the admit script after Redis answered NOSCRIPT.
	load  func(context.Context) error
	queue batching.Queue[*admitCall]
	calls sync.Pool
	// conn belongs to the batch in flight; nil until dialled and after a failure.
	conn *respConn
}

func newAdmitPipe(opt *redis.Options, timeout time.Duration, load func(context.Context) error) *admitPipe {
	ap := &admitPipe{opt: opt, timeout: timeout, load: load,
		calls: sync.Pool{New: func() any { return &admitCall{} }}}
	ap.queue = batching.Queue[*admitCall]{Max: maxPipelined, Run: ap.exec,
		FailQueued: func(c *admitCall, err error) { c.err = err }}
	return ap
}

// call returns an admitCall to encode an admission into.
func (ap *admitPipe) call() *admitCall {
	c := ap.calls.Get().(*admitCall)
	c.cmd, c.n, c.err = c.cmd[:0], 0, nil
	return c
}

// admit sends c within the batch it joins and returns the script's answer;
// c goes back to the pool.
func (ap *admitPipe) admit(ctx context.Context, c *admitCall) ([3]int64, int, error) {
	if err := ap.queue.Do(ctx, c); err != nil {
		return [3]int64{}, 0, err // never sent, so never in a batch: c is dropped
	}
	res, n, err := c.res, c.n, c.err
	if cap(c.cmd) <= 4<<10 {
		ap.calls.Put(c)
	}
	return res, n, err
}

// exec runs one pipeline of EVALSHAs and answers every call in it. After a
// NOSCRIPT answer it loads the script and sends again only the calls that got
// one, so no admission runs twice. It returns the error that broke the
// connection, if any.
func (ap *admitPipe) exec(batch []*admitCall) error {
	deadline := time.Now().Add(ap.timeout)
	err := ap.pipeline(batch, deadline)
	if err != nil {
		return err
	}
	var again []*admitCall
	for _, c := range batch {
		if e, ok := c.err.(redisError); ok && e.noScript() {
			again = append(again, c)
		}
	}
	if len(again) == 0 {
		return nil
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := ap.load(ctx); err != nil {
		return nil // the calls keep their NOSCRIPT answer
	}
	return ap.pipeline(again, deadline)
}

// pipeline writes the batch's commands and reads their answers into the
// calls; on a connection error every unanswered call gets it.
func (ap *admitPipe) pipeline(batch []*admitCall, deadline time.Time) error {
	for _, c := range batch {
		c.err = nil
	}
	answered := 0
	err := func() error {
		if ap.conn == nil {
			conn, err := dialRESP(context.Background(), ap.opt, time.Until(deadline))
			if err != nil {
				return err
			}
			ap.conn = conn
		}
		conn := ap.conn
		if err := conn.c.SetDeadline(deadline); err != nil {
			return err
		}
		conn.out = conn.out[:0]
		for _, c := range batch {
			conn.out = append(conn.out, c.cmd...)
		}
		if err := conn.flush(); err != nil {
			return err
		}
		for _, c := range batch {
			n, err := conn.readInts(c.res[:])
			if _, ok := err.(redisError); err != nil && !ok {
				return err
			}
			c.n, c.err = n, err
			answered++
		}
		return nil
	}()
	if err != nil {
		if ap.conn != nil {
			ap.conn.close()
			ap.conn = nil
		}
		for _, c := range batch[answered:] {
			c.err = err
		}
	}
	return err
}

// close stops new admissions and closes the connection once the batch in flight is done.
func (ap *admitPipe) close() {
	ap.queue.Close(func() {
		if ap.conn != nil {
			ap.conn.close()
			ap.conn = nil
		}
	})
}
