package sqlstore

import (
	"context"
	"sync"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/internal/batching"
)

// maxBatch bounds how many admissions share one transaction.
const maxBatch = 128

// admitCall is one admission waiting for its batch.
type admitCall struct {
	batching.Call
	a tenants.Admission
	// claim is what claimKey did for the call; first marks the batch's
	// first call with its dedupe key, which claims it ahead of the rest.
	claim claim
	first bool
	v     tenants.Verdict
	err   error
}

// admitBatcher decides the admissions that wait at the same moment in one
// transaction (see package batching): one commit, one read of a workspace's
// limit and one write of its count for many pushes instead of one each.
type admitBatcher struct {
	queue batching.Queue[*admitCall]
	calls sync.Pool
}

// newAdmitBatcher returns a batcher whose decide decides a batch in one
// transaction of bounded length and, on an error, counted nothing.
func newAdmitBatcher(decide func(batch []*admitCall) error) *admitBatcher {
	b := &admitBatcher{calls: sync.Pool{New: func() any { return &admitCall{} }}}
	b.queue = batching.Queue[*admitCall]{Max: maxBatch, Run: func(batch []*admitCall) error {
		// A failed transaction counted none of its calls: all get its error.
		if err := decide(batch); err != nil {
			for _, c := range batch {
				c.v, c.err = tenants.Verdict{}, err
			}
		}
		return nil
	}}
	return b
}

// admit decides a within the batch it joins.
func (b *admitBatcher) admit(ctx context.Context, a tenants.Admission) (tenants.Verdict, error) {
	c := b.calls.Get().(*admitCall)
	c.a, c.claim, c.first, c.v, c.err = a, claim{}, false, tenants.Verdict{}, nil
	if err := b.queue.Do(ctx, c); err != nil {
		return tenants.Verdict{}, err // never decided, so never counted: c is dropped
	}
	v, err := c.v, c.err
	b.calls.Put(c)
	return v, err
}
