package gateway

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// retryPolicy is the one retry loop both providers share.
type retryPolicy struct {
	attempts       int
	attemptTimeout time.Duration
	deadline       time.Duration
	backoffBase    time.Duration
	backoffMax     time.Duration
	// jitter turns a nominal backoff into the actual wait.
	jitter func(time.Duration) time.Duration
}

// equalJitter waits between half and all of d, so clients that failed
// together do not retry together.
func equalJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// backoff is the wait before attempt n+1: base·2^(n-1), capped, jittered.
func (p retryPolicy) backoff(n int) time.Duration {
	d := p.backoffBase
	for i := 1; i < n && d < p.backoffMax; i++ {
		d *= 2
	}
	d = min(d, p.backoffMax)
	if p.jitter != nil {
		d = p.jitter(d)
	}
	return d
}

// run calls attempt until it returns something other than RetryLater, the
// attempts are spent, the deadline would pass, or ctx ends. Each attempt gets
// its own timeout; a provider's RetryAfter replaces a shorter backoff.
func (p retryPolicy) run(ctx context.Context, attempt func(context.Context) Result) Result {
	// The overall deadline bounds each attempt's context and the waits
	// between attempts; it needs no context (and timer) of its own.
	deadline := time.Now().Add(p.deadline)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var timer *time.Timer
	for n := 1; ; n++ {
		end := time.Now().Add(p.attemptTimeout)
		if deadline.Before(end) {
			end = deadline
		}
		actx, acancel := context.WithDeadline(ctx, end)
		res := attempt(actx)
		acancel()
		res.Attempts = n
		if res.Outcome != RetryLater || n >= p.attempts || ctx.Err() != nil {
			return res
		}
		wait := p.backoff(n)
		if res.RetryAfter > wait {
			wait = res.RetryAfter
		}
		if time.Until(deadline) <= wait {
			return res
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return res
		case <-timer.C:
		}
	}
}

// contextResult explains an attempt that ended because its context did.
func contextResult(ctx context.Context, err error) Result {
	if err == nil {
		err = ctx.Err()
	}
	if errors.Is(err, context.Canceled) {
		return Result{Outcome: RetryLater, Reason: ReasonCanceled}
	}
	return Result{Outcome: RetryLater, Reason: ReasonTimeout}
}
