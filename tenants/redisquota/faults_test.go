package redisquota_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/redisquota"
)

// pushLedger is what a test's pushers forwarded: the distinct notifications
// handed to a provider, which is what a month's count must equal.
type pushLedger struct {
	mu        sync.Mutex
	forwarded map[string]bool
	refused   []string
	failed    atomic.Int64
}

func (l *pushLedger) forward(key string) {
	l.mu.Lock()
	l.forwarded[key] = true
	l.mu.Unlock()
}

func (l *pushLedger) refuse(key string) {
	l.mu.Lock()
	l.refused = append(l.refused, key)
	l.mu.Unlock()
}

// push admits one notification the way the push handlers do: forwarded when
// admitted or readmitted, and when the provider does not take it, settled.
func push(t *testing.T, s *redisquota.Store, ctx context.Context, ws string, limit int64, key string, fail bool, l *pushLedger) {
	at := time.Now().UTC()
	v, err := s.Admit(ctx, tenants.Admission{WorkspaceID: ws, Limit: limit, DedupeKey: key, At: at})
	switch {
	case err != nil && tenants.ErrorCode(err) != tenants.CodeUnavailable && ctx.Err() == nil:
		t.Errorf("Admit %s: %v", key, err)
	case err != nil:
		l.refuse(key) // the client retries later, or has gone
	case v.Decision == tenants.Admitted || v.Decision == tenants.Readmitted:
		l.forward(key)
		if fail {
			if err := s.Settle(context.WithoutCancel(ctx), ws, key, tenants.OutcomeFailed, time.Now().UTC()); err != nil {
				t.Errorf("Settle %s: %v", key, err)
			}
			l.failed.Add(1)
		}
	}
}

// mustReconcile flushes every replica's outage counts into Redis.
func mustReconcile(t *testing.T, replicas []*redisquota.Store) {
	t.Helper()
	for _, s := range replicas {
		var err error
		for range 50 {
			if err = s.Flush(context.Background()); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("the outage's counts were not written: %v", err)
		}
	}
}

// TestRedisFreezesKeepUsedEqualToForwarded: Redis stops answering three
// times while two replicas of 32 pushers each send (every notification twice,
// some failing at the provider, some of whose clients give up); many
// admissions time out after Redis ran them. Once Redis answers and the
// refused ones are retried, the month's count equals the notifications
// forwarded, exactly.
func TestRedisFreezesKeepUsedEqualToForwarded(t *testing.T) {
	for _, policy := range []redisquota.Policy{redisquota.FailOpen, redisquota.FailClosed} {
		for _, pipelined := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s pipelined=%v", policy, pipelined), func(t *testing.T) {
				testFreezes(t, policy, pipelined)
			})
		}
	}
}

func testFreezes(t *testing.T, policy redisquota.Policy, pipelined bool) {
	srv := mustStartRedis(t)
	var replicas []*redisquota.Store
	for range 2 {
		var rdb redis.UniversalClient = srv.client()
		if !pipelined {
			rdb = otherClient{srv.client()}
		}
		s := redisquota.New(rdb, redisquota.Options{Policy: policy, Timeout: 50 * time.Millisecond})
		t.Cleanup(s.Close)
		ctx, stop := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { s.Run(ctx); close(ran) }() // reconciles as serve does
		t.Cleanup(func() { stop(); <-ran })
		replicas = append(replicas, s)
	}
	// The limit is out of reach: a local count during an outage is this
	// replica's estimate, and this test is about what is counted, not refused.
	const ws, limit, notifications = "ws-freeze", 1 << 20, 1200
	ledger := &pushLedger{forwarded: map[string]bool{}}

	stop := make(chan struct{})
	var freezer sync.WaitGroup
	freezer.Go(func() {
		for range 3 {
			select {
			case <-stop:
				return
			case <-time.After(60 * time.Millisecond):
			}
			srv.freeze()
			time.Sleep(300 * time.Millisecond)
			srv.thaw()
		}
	})
	var next atomic.Int64
	var pushers sync.WaitGroup
	for w := range 64 {
		s := replicas[w%2]
		pushers.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= 2*notifications {
					return
				}
				key := pushKey(int(i % notifications)) // every notification twice
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if i%7 == 0 {
					ctx, cancel = context.WithTimeout(ctx, 20*time.Millisecond) // a client that gives up
				}
				push(t, s, ctx, ws, limit, key, i%5 == 0, ledger)
				cancel()
			}
		})
	}
	pushers.Wait()
	close(stop)
	freezer.Wait()

	// The clients retry what was refused; the replicas reconcile.
	for round := 0; len(ledger.refused) > 0; round++ {
		if round == 20 {
			t.Fatalf("%d notifications still refused after 20 rounds of retries", len(ledger.refused))
		}
		time.Sleep(1100 * time.Millisecond) // past the outage breaker
		// Run has reconciled by the time a client retries (Rocket.Chat: a minute later).
		mustReconcile(t, replicas)
		retry := ledger.refused
		ledger.refused = nil
		for i, key := range retry {
			push(t, replicas[i%2], context.Background(), ws, limit, key, false, ledger)
		}
	}
	mustReconcile(t, replicas)

	u := mustUsageOf(t, replicas[0], ws, tenants.PeriodOf(time.Now().UTC()))
	if forwarded := int64(len(ledger.forwarded)); u.Used != forwarded {
		t.Fatalf("used %d after three freezes, forwarded %d distinct notifications: want them equal", u.Used, forwarded)
	}
	var failed int64
	for _, d := range u.Daily {
		failed += d.Failed
	}
	if failed != ledger.failed.Load() {
		t.Errorf("%d failures counted, %d settled: want them equal", failed, ledger.failed.Load())
	}
	if len(ledger.forwarded) != notifications {
		t.Errorf("%d of %d notifications forwarded, want all", len(ledger.forwarded), notifications)
	}
}

// TestAnAdmissionWhoseAnswerWasLost: Redis stops while an admission is in
// flight, so the store cannot know whether it ran; under fail_closed it is
// refused, and once Redis answers the count and the key are as if it never ran.
func TestAnAdmissionWhoseAnswerWasLost(t *testing.T) {
	newStore := func(t *testing.T) (*redisServer, *redisquota.Store, *shiftingClock) {
		srv := mustStartRedis(t)
		clock := &shiftingClock{}
		s := redisquota.New(srv.client(), redisquota.Options{Policy: redisquota.FailClosed, Timeout: 100 * time.Millisecond, Now: clock.now})
		t.Cleanup(s.Close)
		return srv, s, clock
	}
	refusedWhileFrozen := func(t *testing.T, srv *redisServer, s *redisquota.Store, key string, at time.Time) {
		t.Helper()
		srv.freeze()
		_, err := s.Admit(context.Background(), tenants.Admission{WorkspaceID: "ws", Limit: 10, DedupeKey: key, At: at})
		srv.thaw()
		if tenants.ErrorCode(err) != tenants.CodeUnavailable {
			t.Fatalf("Admit while Redis is stopped = %v, want %s", err, tenants.CodeUnavailable)
		}
		mustReconcile(t, []*redisquota.Store{s})
	}
	at := time.Now().UTC()

	t.Run("a refused admission is not counted and its retry is admitted", func(t *testing.T) {
		srv, s, clock := newStore(t)
		wantDecision(t, s, "ws", 10, "k0", at, tenants.Admitted, 1)
		refusedWhileFrozen(t, srv, s, "k1", at.Add(time.Second))
		clock.skipBreaker()
		wantDecision(t, s, "ws", 10, "k1", at.Add(time.Minute), tenants.Admitted, 2)
	})
	t.Run("a refused readmission stays undelivered and takes no unit", func(t *testing.T) {
		srv, s, clock := newStore(t)
		wantDecision(t, s, "ws", 10, "k", at, tenants.Admitted, 1)
		if err := s.Settle(context.Background(), "ws", "k", tenants.OutcomeRetryLater, at); err != nil {
			t.Fatal(err)
		}
		refusedWhileFrozen(t, srv, s, "k", at.Add(time.Second))
		clock.skipBreaker()
		wantDecision(t, s, "ws", 10, "k", at.Add(time.Minute), tenants.Readmitted, 1)
	})
}
