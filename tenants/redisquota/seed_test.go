package redisquota_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/redisquota"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// mustArchive returns a migrated SQLite database: where usage is rolled up.
func mustArchive(t *testing.T) *sqlstore.DB {
	t.Helper()
	db := sqltest.Migrated(t, storetest.SQLite(t))
	return db
}

// mustRollup copies a workspace's month from the store into the database, as serve does every minute.
func mustRollup(t *testing.T, s *redisquota.Store, db *sqlstore.DB, ws string, p tenants.Period) int64 {
	t.Helper()
	u, err := s.Usage(context.Background(), ws, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SaveUsage(context.Background(), ws, u); err != nil {
		t.Fatal(err)
	}
	return u.Used
}

// shiftingClock is a clock that a test moves past the outage breaker.
type shiftingClock struct{ shift atomic.Int64 }

func (c *shiftingClock) now() time.Time { return time.Now().Add(time.Duration(c.shift.Load())) }

func (c *shiftingClock) skipBreaker() { c.shift.Add(int64(2 * time.Second)) }

// admitAll admits n distinct keys from 64 goroutines spread over the
// replicas, retrying a refused one (fail_closed while a replica finds Redis
// gone), and returns how many were admitted: what was forwarded.
func admitAll(t *testing.T, replicas []*redisquota.Store, clock *shiftingClock, ws string, limit int64, prefix string, n int, at time.Time) int64 {
	t.Helper()
	var next, admitted atomic.Int64
	var wg sync.WaitGroup
	for w := range 64 {
		s := replicas[w%len(replicas)]
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				for try := 0; ; try++ {
					v, err := s.Admit(context.Background(), tenants.Admission{WorkspaceID: ws, Limit: limit, DedupeKey: fmt.Sprintf("%s%d", prefix, i), At: at})
					if tenants.ErrorCode(err) == tenants.CodeUnavailable && try < 20 {
						clock.skipBreaker()
						continue
					}
					if err != nil {
						t.Errorf("Admit %s%d: %v", prefix, i, err)
						return
					}
					if v.Decision == tenants.Admitted {
						admitted.Add(1)
					}
					break
				}
			}
		})
	}
	wg.Wait()
	return admitted.Load()
}

func TestALostMonthIsSeededFromTheDatabase(t *testing.T) {
	srv := mustStartRedis(t)
	db := mustArchive(t)
	var clock shiftingClock
	var replicas []*redisquota.Store
	for range 2 {
		s := redisquota.New(srv.client(), redisquota.Options{Policy: redisquota.FailClosed, Timeout: exactTimeout, Now: clock.now, Archive: db})
		t.Cleanup(s.Close)
		replicas = append(replicas, s)
	}
	const ws, limit = "ws-seed", 1000
	at := time.Now().UTC()
	p := tenants.PeriodOf(at)

	forwarded := admitAll(t, replicas, &clock, ws, limit, "before", 600, at)
	archived := mustRollup(t, replicas[0], db, ws, p)
	if forwarded != 600 || archived != 600 {
		t.Fatalf("%d forwarded and %d archived before the loss, want 600 each", forwarded, archived)
	}
	lost := admitAll(t, replicas, &clock, ws, limit, "unrolled", 50, at) // after the last rollup

	srv.restart()
	t.Run("two replicas of 32 pushers each seed the month once and stop at the limit", func(t *testing.T) {
		after := admitAll(t, replicas, &clock, ws, limit, "after", limit, at.Add(time.Minute))
		if after != limit-archived {
			t.Fatalf("%d admitted after Redis restarted empty, want exactly %d (limit %d - %d archived)", after, limit-archived, limit, archived)
		}
		u, err := replicas[1].Usage(context.Background(), ws, p)
		if err != nil || u.Used != limit || len(u.Daily) != 1 || u.Daily[0].Sent != limit {
			t.Fatalf("usage = %+v, %v; want %d used and sent today", u, err, limit)
		}
		forwarded += lost + after
		if over := forwarded - limit; over != lost {
			t.Fatalf("%d forwarded in all against a limit of %d: %d over, want exactly the %d sent after the last rollup", forwarded, limit, over, lost)
		}
	})

	mustRollup(t, replicas[0], db, ws, p)
	srv.restart()
	t.Run("a usage read seeds the month before any push", func(t *testing.T) {
		var u tenants.Usage
		var err error
		for range 3 { // the first read may find the old connection dead
			if u, err = replicas[0].Usage(context.Background(), ws, p); err == nil {
				break
			}
			clock.skipBreaker()
		}
		if err != nil || u.Used != limit {
			t.Fatalf("usage after a restart = %+v, %v; want %d used", u, err, limit)
		}
		if n := admitAll(t, replicas, &clock, ws, limit, "later", 10, at.Add(2*time.Minute)); n != 0 {
			t.Fatalf("%d admitted over a used-up month after the restart, want 0", n)
		}
	})
}

func TestSeedingWhenTheDatabaseIsDown(t *testing.T) {
	ctx := context.Background()
	at := time.Now().UTC()
	p := tenants.PeriodOf(at)
	down := mustArchive(t)
	down.Close()

	t.Run("fail_open admits, and the archived count is added on top once the database answers", func(t *testing.T) {
		rdb, prefix := storetest.Redis(t)
		var clock shiftingClock
		s := redisquota.New(rdb, redisquota.Options{Prefix: prefix, Timeout: exactTimeout, Now: clock.now, Archive: down})
		t.Cleanup(s.Close)
		for i := range 3 {
			wantDecision(t, s, "ws-a", 100, fmt.Sprint("k", i), at, tenants.Admitted, int64(i+1))
		}
		db := mustArchive(t)
		if err := db.SaveUsage(ctx, "ws-a", tenants.Usage{Period: p, Used: 5}); err != nil {
			t.Fatal(err)
		}
		s2 := redisquota.New(rdb, redisquota.Options{Prefix: prefix, Timeout: exactTimeout, Archive: db})
		t.Cleanup(s2.Close)
		wantDecision(t, s2, "ws-a", 100, "k3", at, tenants.Admitted, 9)
		wantDecision(t, s2, "ws-a", 100, "k4", at, tenants.Admitted, 10)
	})
	t.Run("fail_closed refuses until the month can be seeded", func(t *testing.T) {
		rdb, prefix := storetest.Redis(t)
		s := redisquota.New(rdb, redisquota.Options{Prefix: prefix, Timeout: exactTimeout, Policy: redisquota.FailClosed, Archive: down})
		t.Cleanup(s.Close)
		_, err := s.Admit(ctx, tenants.Admission{WorkspaceID: "ws-b", Limit: 100, DedupeKey: "k", At: at})
		if tenants.ErrorCode(err) != tenants.CodeUnavailable {
			t.Fatalf("Admit = %v, want %s", err, tenants.CodeUnavailable)
		}
		if u := mustUsageOf(t, s, "ws-b", p); u.Used != 0 {
			t.Fatalf("used %d after a refused admission, want 0", u.Used)
		}
	})
	t.Run("a month counted before seeding existed is complete and not seeded", func(t *testing.T) {
		rdb, prefix := storetest.Redis(t)
		old := redisquota.New(rdb, redisquota.Options{Prefix: prefix, Timeout: exactTimeout})
		t.Cleanup(old.Close)
		wantDecision(t, old, "ws-c", 100, "k0", at, tenants.Admitted, 1)
		db := mustArchive(t)
		if err := db.SaveUsage(ctx, "ws-c", tenants.Usage{Period: p, Used: 1}); err != nil {
			t.Fatal(err)
		}
		s := redisquota.New(rdb, redisquota.Options{Prefix: prefix, Timeout: exactTimeout, Archive: db})
		t.Cleanup(s.Close)
		wantDecision(t, s, "ws-c", 100, "k1", at, tenants.Admitted, 2)
	})
}

func mustUsageOf(t *testing.T, s *redisquota.Store, ws string, p tenants.Period) tenants.Usage {
	t.Helper()
	u, err := s.Usage(context.Background(), ws, p)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
