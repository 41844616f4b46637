package batching

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type call struct {
	Call
	n      int
	result int
	err    error
}

func TestEveryCallRunsExactlyOnceInBoundedBatches(t *testing.T) {
	var ran, batches, largest atomic.Int64
	q := &Queue[*call]{Max: 16, Run: func(batch []*call) error {
		batches.Add(1)
		if int64(len(batch)) > largest.Load() {
			largest.Store(int64(len(batch)))
		}
		for _, c := range batch {
			ran.Add(1)
			c.result = c.n * 2
		}
		time.Sleep(50 * time.Microsecond) // let callers pile up
		return nil
	}}
	const workers, each = 64, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c := &call{n: w*each + i}
				if err := q.Do(context.Background(), c); err != nil {
					t.Error(err)
					return
				}
				if c.result != c.n*2 {
					t.Errorf("call %d got %d", c.n, c.result)
				}
			}
		})
	}
	wg.Wait()
	if ran.Load() != workers*each {
		t.Fatalf("%d calls ran, want exactly %d", ran.Load(), workers*each)
	}
	if largest.Load() > 16 {
		t.Fatalf("a batch held %d calls, want at most 16", largest.Load())
	}
	if batches.Load() >= workers*each {
		t.Errorf("%d batches for %d calls: nothing was batched", batches.Load(), workers*each)
	}
	if running, queued := q.Busy(); running || queued != 0 {
		t.Fatalf("after the last call: running %v, %d queued", running, queued)
	}
}

// hold starts a batch that blocks until release is closed.
func hold(t *testing.T, q *Queue[*call], release chan struct{}) <-chan struct{} {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = q.Do(context.Background(), &call{n: -1})
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if running, _ := q.Busy(); running {
			return done
		}
		if time.Now().After(deadline) {
			t.Fatal("the held batch did not start")
		}
	}
}

func TestACallerThatGivesUpWhileQueuedIsNeverRun(t *testing.T) {
	release := make(chan struct{})
	var ran atomic.Int64
	q := &Queue[*call]{Run: func(batch []*call) error {
		for _, c := range batch {
			if c.n == -1 {
				<-release
				continue
			}
			ran.Add(1)
		}
		return nil
	}}
	held := hold(t, q, release)
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- q.Do(ctx, &call{n: 1}) }()
	for _, queued := q.Busy(); queued == 0; _, queued = q.Busy() {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
	close(release)
	<-held
	if err := q.Do(context.Background(), &call{n: 2}); err != nil {
		t.Fatal(err)
	}
	if ran.Load() != 1 {
		t.Fatalf("%d calls ran, want only the one that waited", ran.Load())
	}
}

func TestCallsQueuedBehindAFailedBatchFailAtOnce(t *testing.T) {
	release := make(chan struct{})
	boom := errors.New("boom")
	var ran atomic.Int64
	q := &Queue[*call]{
		Run: func(batch []*call) error {
			for _, c := range batch {
				if c.n == -1 {
					<-release
					return boom
				}
				ran.Add(1)
			}
			return nil
		},
		FailQueued: func(c *call, err error) { c.err = err },
	}
	held := hold(t, q, release)
	queued := make([]*call, 5)
	var wg sync.WaitGroup
	for i := range queued {
		queued[i] = &call{n: i}
		wg.Go(func() { _ = q.Do(context.Background(), queued[i]) })
	}
	for _, n := q.Busy(); n < len(queued); _, n = q.Busy() {
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-held
	wg.Wait()
	for _, c := range queued {
		if !errors.Is(c.err, boom) {
			t.Fatalf("call %d: err %v, want the failed batch's", c.n, c.err)
		}
	}
	if ran.Load() != 0 {
		t.Fatalf("%d queued calls ran, want none", ran.Load())
	}
}

func TestCloseWaitsForTheBatchInFlight(t *testing.T) {
	release := make(chan struct{})
	q := &Queue[*call]{Run: func(batch []*call) error { <-release; return nil }}
	held := hold(t, q, release)
	var idle atomic.Bool
	q.Close(func() { idle.Store(true) })
	if idle.Load() {
		t.Fatal("idle ran while a batch was in flight")
	}
	if err := q.Do(context.Background(), &call{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close = %v, want ErrClosed", err)
	}
	close(release)
	<-held
	if !idle.Load() {
		t.Fatal("idle did not run once the batch ended")
	}

	idleNow := false
	(&Queue[*call]{}).Close(func() { idleNow = true })
	if !idleNow {
		t.Fatal("Close of an idle queue did not run idle at once")
	}
}
