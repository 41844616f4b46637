package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/storetest"
)

var batchAt = time.Date(2025, time.March, 10, 12, 0, 0, 0, time.UTC)

func TestAdmissionsQueuedTogetherAreOneBatch(t *testing.T) {
	for name, url := range map[string]string{"sqlite": storetest.SQLite(t), "postgres": storetest.Postgres(t)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The subtests hold the database in turn, so they run one at a time.
			db := mustMigrated(t, url)

			t.Run("each decides after the ones before it, repeats of a key included", func(t *testing.T) {
				q := NewQuotaStore(db)
				ws := "ws-" + storetest.Suffix()
				mustAdmit(t, q, ws, 3, "a", tenants.Admitted, 1)
				mustAdmit(t, q, ws, 3, "b", tenants.Admitted, 2)
				steps := []struct {
					key   string
					limit int64
					want  tenants.Decision
					used  int64
				}{
					{"x", 3, tenants.Admitted, 3},
					{"k", 3, tenants.Exhausted, 3},
					// The first copy's claim was undone, so this one is no duplicate.
					{"k", 3, tenants.Exhausted, 3},
					{"a", 3, tenants.Duplicate, 3},
					{"e", 3, tenants.Exhausted, 3},
					// A higher limit gives one more unit, and only the first copy takes it.
					{"k", 4, tenants.Admitted, 4},
					{"k", 4, tenants.Duplicate, 4},
					{"", 4, tenants.Exhausted, 4},
					{"x", 4, tenants.Duplicate, 4},
					{"u", tenants.Unlimited, tenants.Admitted, 5},
					{"", tenants.Unlimited, tenants.Admitted, 6},
					{"k", tenants.Unlimited, tenants.Duplicate, 6},
				}
				release := holdBatch(t, q)
				results := make([]<-chan admitResult, len(steps))
				for i, s := range steps {
					results[i] = queueAdmission(t, q, context.Background(), tenants.Admission{WorkspaceID: ws, Limit: s.limit, DedupeKey: s.key, At: batchAt})
				}
				release(nil)
				for i, s := range steps {
					r := <-results[i]
					if r.err != nil || r.v.Decision != s.want || r.v.Used != s.used {
						t.Errorf("admission %d (key %q, limit %d) = %s with used %d, %v; want %s with used %d",
							i, s.key, s.limit, r.v.Decision, r.v.Used, r.err, s.want, s.used)
					}
				}
				wantUsage(t, q, ws, 6, 6)
				// "e" was only ever exhausted, so it is not remembered.
				mustAdmit(t, q, ws, 10, "e", tenants.Admitted, 7)
			})

			t.Run("callers that give up while queued are never counted", func(t *testing.T) {
				q := NewQuotaStore(db)
				ws := "ws-" + storetest.Suffix()
				release := holdBatch(t, q)
				var results []<-chan admitResult
				var cancels []context.CancelFunc
				for i := range 6 {
					ctx, cancel := context.WithCancel(context.Background())
					t.Cleanup(cancel)
					results = append(results, queueAdmission(t, q, ctx, tenants.Admission{WorkspaceID: ws, Limit: 100, DedupeKey: fmt.Sprint("c", i), At: batchAt}))
					cancels = append(cancels, cancel)
				}
				for i := 1; i < 6; i += 2 {
					cancels[i]()
					if r := <-results[i]; !errors.Is(r.err, context.Canceled) {
						t.Fatalf("a queued caller that gave up got %s, %v; want context.Canceled", r.v.Decision, r.err)
					}
				}
				release(nil)
				for i := 0; i < 6; i += 2 {
					r := <-results[i]
					if want := int64(i/2 + 1); r.err != nil || r.v.Decision != tenants.Admitted || r.v.Used != want {
						t.Errorf("c%d = %s with used %d, %v; want admitted with used %d", i, r.v.Decision, r.v.Used, r.err, want)
					}
				}
				wantUsage(t, q, ws, 3, 3)
				mustAdmit(t, q, ws, 100, "c1", tenants.Admitted, 4)
			})

			t.Run("a batch that fails answers every caller with its error and counts none", func(t *testing.T) {
				q := NewQuotaStore(db)
				ws := "ws-" + storetest.Suffix()
				mustAdmit(t, q, ws, 10, "before", tenants.Admitted, 1)
				release := holdBatch(t, q)
				var results []<-chan admitResult
				for _, key := range []string{"f1", "before", "f2", ""} {
					results = append(results, queueAdmission(t, q, context.Background(), tenants.Admission{WorkspaceID: ws, Limit: 10, DedupeKey: key, At: batchAt}))
				}
				// The batch's last statement, the days' counts, finds no table.
				release(func(gate *gorm.DB) error {
					return gate.Exec("ALTER TABLE usage_daily RENAME TO usage_daily_away").Error
				})
				for i, r := range results {
					if r := <-r; r.err == nil || tenants.ErrorCode(r.err) != tenants.CodeInternal {
						t.Errorf("admission %d of a failed batch = %s, %v; want an internal error", i, r.v.Decision, r.err)
					}
				}
				if err := db.gorm.Exec("ALTER TABLE usage_daily_away RENAME TO usage_daily").Error; err != nil {
					t.Fatal(err)
				}
				wantUsage(t, q, ws, 1, 1)
				mustAdmit(t, q, ws, 10, "f1", tenants.Admitted, 2)
			})
		})
	}
}

func TestBatchesOfTwoStoresNeverDeadlockAndCountExactly(t *testing.T) {
	const workspaces, workers, each, limit = 4, 32, 40, 250
	// Every batch holds admissions of several workspaces and of two months,
	// so batches of the two stores lock rows of each table against each other.
	months := []time.Time{
		time.Date(2025, time.January, 31, 23, 59, 0, 0, time.UTC),
		time.Date(2025, time.February, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, tc := range []struct {
		name string
		// admission says what worker w admits in its turn i.
		admission func(w, i int) (ws int, key string, month int)
	}{
		{"distinct notifications contend for the months' counts", func(w, i int) (int, string, int) {
			return (w*5 + i*3) % workspaces, fmt.Sprint("k", w, "-", i), (w + i/3) % 2
		}},
		{"copies of the same notifications contend for their keys", func(w, i int) (int, string, int) {
			return (w*5 + i*3) % workspaces, fmt.Sprint("k", (w*17+i*7)%40), (w + i/3) % 2
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for name, url := range map[string]string{"sqlite": storetest.SQLite(t), "postgres": storetest.Postgres(t)} {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					stores := []*QuotaStore{NewQuotaStore(mustMigrated(t, url)), NewQuotaStore(mustOpen(t, url))}
					var mu sync.Mutex
					admitted := make(map[string]int64) // by workspace and month
					perKey := make(map[string]int)     // by workspace and key
					var wg sync.WaitGroup
					for w := range 2 * workers {
						wg.Go(func() {
							for i := range each {
								n, key, m := tc.admission(w, i)
								ws, at := fmt.Sprint("ws-", n), months[m]
								v, err := stores[w%2].Admit(context.Background(), tenants.Admission{WorkspaceID: ws, Limit: limit, DedupeKey: key, At: at})
								if err != nil {
									t.Errorf("Admit: %v", err)
									return
								}
								if v.Decision == tenants.Admitted {
									mu.Lock()
									admitted[ws+" "+string(tenants.PeriodOf(at))]++
									perKey[ws+" "+key]++
									mu.Unlock()
								}
							}
						})
					}
					wg.Wait()
					for k, n := range perKey {
						if n > 1 {
							t.Errorf("%s was admitted %d times within its window", k, n)
						}
					}
					for n := range workspaces {
						ws := fmt.Sprint("ws-", n)
						for _, m := range months {
							p := tenants.PeriodOf(m)
							u, err := stores[0].Usage(context.Background(), ws, p)
							if err != nil {
								t.Fatal(err)
							}
							if want := admitted[ws+" "+string(p)]; u.Used != want || u.Used > limit {
								t.Errorf("%s used %d in %s; its admissions say %d, within %d", ws, u.Used, p, want, limit)
							}
						}
					}
				})
			}
		})
	}
}

type admitResult struct {
	v   tenants.Verdict
	err error
}

// holdBatch starts a batch that waits on a lock the test holds, so that the
// admissions that follow queue up for the next batch together. release lets
// it go, after running fn in the lock's transaction and committing, or
// rolling it back when fn is nil.
func holdBatch(t *testing.T, q *QuotaStore) (release func(fn func(gate *gorm.DB) error)) {
	t.Helper()
	running := func() (running bool, queued int) {
		return q.admissions.queue.Busy()
	}
	// The batch of an earlier admission may still be winding down.
	waitUntil(t, "the batches before to end", func() bool { r, _ := running(); return !r })
	ws := "ws-gate-" + storetest.Suffix()
	// On SQLite the transaction holds the write lock from its start; on
	// PostgreSQL the uncommitted key holds up the admission of its copy.
	gate := q.db.gorm.Begin()
	if gate.Error != nil {
		t.Fatal(gate.Error)
	}
	err := gate.Exec("INSERT INTO dedupe (workspace_id, dedupe_key, state, expires_at) VALUES (?, 'gate', ?, 0)", ws, stateDelivered).Error
	if err != nil {
		gate.Rollback()
		t.Fatal(err)
	}
	held := make(chan struct{})
	go func() {
		defer close(held)
		_, _ = q.Admit(context.Background(), tenants.Admission{WorkspaceID: ws, Limit: 1, DedupeKey: "gate", At: batchAt})
	}()
	waitUntil(t, "the held batch to start", func() bool { r, n := running(); return r && n == 0 })
	released := false
	release = func(fn func(gate *gorm.DB) error) {
		released = true
		if fn == nil {
			gate.Rollback()
		} else if err := fn(gate); err != nil {
			gate.Rollback()
			t.Fatal(err)
		} else if err := gate.Commit().Error; err != nil {
			t.Fatal(err)
		}
		<-held
	}
	t.Cleanup(func() {
		if !released {
			gate.Rollback()
			<-held
		}
	})
	return release
}

// queueAdmission starts a and returns once it waits in the queue, so that
// admissions queue in the order they are started.
func queueAdmission(t *testing.T, q *QuotaStore, ctx context.Context, a tenants.Admission) <-chan admitResult {
	t.Helper()
	queued := func() int {
		_, n := q.admissions.queue.Busy()
		return n
	}
	before := queued()
	res := make(chan admitResult, 1)
	go func() {
		v, err := q.Admit(ctx, a)
		res <- admitResult{v, err}
	}()
	waitUntil(t, "the admission to queue", func() bool { return queued() == before+1 })
	return res
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func mustAdmit(t *testing.T, q *QuotaStore, ws string, limit int64, key string, want tenants.Decision, used int64) {
	t.Helper()
	v, err := q.Admit(context.Background(), tenants.Admission{WorkspaceID: ws, Limit: limit, DedupeKey: key, At: batchAt})
	if err != nil || v.Decision != want || v.Used != used {
		t.Fatalf("Admit(key %q, limit %d) = %s with used %d, %v; want %s with used %d", key, limit, v.Decision, v.Used, err, want, used)
	}
}

func wantUsage(t *testing.T, q *QuotaStore, ws string, used, sent int64) {
	t.Helper()
	u, err := q.Usage(context.Background(), ws, tenants.PeriodOf(batchAt))
	if err != nil {
		t.Fatal(err)
	}
	var daySent int64
	for _, d := range u.Daily {
		daySent += d.Sent
	}
	if u.Used != used || daySent != sent {
		t.Fatalf("usage: used %d and sent %d, want %d and %d", u.Used, daySent, used, sent)
	}
}

func mustOpen(tb testing.TB, url string) *DB {
	tb.Helper()
	db, err := Open(context.Background(), url, nil)
	if err != nil {
		tb.Fatalf("open %s: %v", url, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func mustMigrated(tb testing.TB, url string) *DB {
	tb.Helper()
	db := mustOpen(tb, url)
	if _, err := db.Migrate(context.Background()); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return db
}
