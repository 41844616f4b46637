package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/quotatest"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
)

func TestQuotaConformance(t *testing.T) {
	for name, url := range sqltest.Backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// One database for the suite: every subtest uses workspaces of its own.
			q := sqlstore.NewQuotaStore(sqltest.Migrated(t, url))
			quotatest.Run(t, func(t *testing.T) tenants.QuotaStore { return q })
		})
	}
}

func TestPurgeExpiredDedupe(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		q := sqlstore.NewQuotaStore(db)
		t0 := time.Date(2025, time.March, 10, 12, 0, 0, 0, time.UTC)
		for i, key := range []string{"old1", "old2", "fresh"} {
			at := t0
			if i == 2 {
				at = t0.Add(30 * time.Minute)
			}
			if _, err := q.Admit(ctx, tenants.Admission{WorkspaceID: "ws-purge", Limit: 10, DedupeKey: key, At: at}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := db.PurgeExpiredDedupe(ctx, t0.Add(tenants.DedupeWindow))
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("purged %d entries, want the 2 whose hour ended", n)
		}
		// The fresh key is still remembered; a purged one counts anew.
		for _, tc := range []struct {
			key  string
			want tenants.Decision
		}{{"fresh", tenants.Duplicate}, {"old1", tenants.Admitted}} {
			v, err := q.Admit(ctx, tenants.Admission{WorkspaceID: "ws-purge", Limit: 10, DedupeKey: tc.key, At: t0.Add(tenants.DedupeWindow + time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			if v.Decision != tc.want {
				t.Errorf("%s after the purge is %s, want %s", tc.key, v.Decision, tc.want)
			}
		}
	})
}

func TestQuotaIsExactAcrossProcesses(t *testing.T) {
	// Two replicas on one database: each opens its own connections.
	const limit = 50
	for name, url := range sqltest.Backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stores := []*sqlstore.QuotaStore{
				sqlstore.NewQuotaStore(sqltest.Migrated(t, url)),
				sqlstore.NewQuotaStore(sqltest.Open(t, url)),
			}
			at := time.Date(2025, time.March, 10, 12, 0, 0, 0, time.UTC)
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for i := range 2 * limit {
				wg.Go(func() {
					v, err := stores[i%2].Admit(context.Background(), tenants.Admission{WorkspaceID: "ws-x", Limit: limit, DedupeKey: fmt.Sprint(i), At: at})
					if err != nil {
						t.Error(err)
						return
					}
					if v.Decision == tenants.Admitted {
						admitted.Add(1)
					}
				})
			}
			wg.Wait()
			if admitted.Load() != limit {
				t.Fatalf("%d admitted by two stores on one database, want exactly %d", admitted.Load(), limit)
			}
		})
	}
}
