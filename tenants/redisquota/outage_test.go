package redisquota

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// mustCountLocally admits n notifications as if Redis were unreachable.
func mustCountLocally(t *testing.T, s *Store, ws string, n int, at time.Time) {
	t.Helper()
	for i := range n {
		a := tenants.Admission{WorkspaceID: ws, Limit: tenants.Unlimited, DedupeKey: fmt.Sprintf("k%d", i), At: at}
		v, err := s.admitLocally(a, at, tenants.PeriodOf(at), errBreakerOpen, 0)
		if err != nil || v.Decision != tenants.Admitted {
			t.Fatalf("local admission %d = %v, %v", i, v.Decision, err)
		}
	}
}

func mustUsage(t *testing.T, s *Store, ws string, p tenants.Period) tenants.Usage {
	t.Helper()
	u, err := s.Usage(context.Background(), ws, p)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestResentBatchIsAppliedOnce(t *testing.T) {
	rdb, prefix := storetest.Redis(t)
	s := New(rdb, Options{Prefix: prefix})
	ctx := context.Background()
	at := time.Now().UTC()
	mustCountLocally(t, s, "ws", 3, at)
	s.countLocally("ws", dayField(at, 'a'), "", at, 0)

	batches := s.seal()
	if len(batches) != 1 {
		t.Fatalf("%d batches, want 1", len(batches))
	}
	// The answer to the first send was lost, so the batch goes again, same id.
	for range 2 {
		if err := s.send(ctx, batches[0]); err != nil {
			t.Fatal(err)
		}
	}
	u := mustUsage(t, s, "ws", tenants.PeriodOf(at))
	if u.Used != 3 || len(u.Daily) != 1 || u.Daily[0].Sent != 3 || u.Daily[0].Acked != 1 {
		t.Fatalf("Usage after a batch sent twice = %+v, want 3 used and sent, 1 acked", u)
	}
	// Flush sends it once more: still once.
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if u := mustUsage(t, s, "ws", tenants.PeriodOf(at)); u.Used != 3 {
		t.Fatalf("Used = %d after the batch was flushed too, want 3", u.Used)
	}
	if n := s.local.pendingBatches(); n != 0 {
		t.Fatalf("%d batches pending after a flush, want 0", n)
	}
}

func TestLargeOutagesAreWrittenInBoundedBatches(t *testing.T) {
	rdb, prefix := storetest.Redis(t)
	s := New(rdb, Options{Prefix: prefix})
	ctx := context.Background()
	at := time.Now().UTC()
	n := 2*maxBatchMarks + 100
	mustCountLocally(t, s, "ws", n, at)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if u := mustUsage(t, s, "ws", tenants.PeriodOf(at)); u.Used != int64(n) {
		t.Fatalf("Used = %d, want %d", u.Used, n)
	}
	// Every key of the outage reached Redis.
	for i := range n {
		v, err := s.Admit(ctx, tenants.Admission{WorkspaceID: "ws", Limit: tenants.Unlimited, DedupeKey: fmt.Sprintf("k%d", i), At: at.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if v.Decision != tenants.Duplicate {
			t.Fatalf("key k%d after the flush is %s, want duplicate", i, v.Decision)
		}
	}
}

func TestLocalDedupeIsBounded(t *testing.T) {
	s := New(nil, Options{})
	at := time.Now().UTC()
	for i := range maxMarks + 10 {
		s.local.putMark("ws", fmt.Sprintf("k%d", i), mark{at: at})
	}
	if s.local.keys != maxMarks {
		t.Fatalf("%d keys held, want at most %d", s.local.keys, maxMarks)
	}
}

func TestBucketsCoverTheWindow(t *testing.T) {
	// An entry younger than the window is in one of the buckets Admit reads.
	if got := time.Duration(bucketsChecked-1) * bucketSpan; got < window {
		t.Fatalf("%d buckets of %v reach back %v, less than the window %v", bucketsChecked, bucketSpan, got, window)
	}
	// A bucket outlives its newest entry's window.
	if ttl := time.Duration(bucketTTL(bucketSpan.Milliseconds()-1)) * time.Millisecond; ttl < window {
		t.Fatalf("the last entry of a bucket is dropped after %v, before the window %v", ttl, window)
	}
}
