package redisquota_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/redisquota"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// TestDedupeMemory measures what a remembered notification costs in Redis,
// for the benchmark note: MEMORY USAGE of every dedupe bucket (key, value and
// dictionary entry) over the entries in them. Small buckets (up to 512
// entries, hash-max-listpack-entries) are listpacks; a workspace that sends
// more than 512 in 10 minutes fills hash tables.
func TestDedupeMemory(t *testing.T) {
	t.Parallel()
	const entries = 100_000
	for _, tc := range []struct {
		name       string
		workspaces int
		maxBytes   float64
	}{
		{"one workspace at 1,000 pushes/s fills hash tables", 1, 100},
		{"1,000 workspaces at 100 pushes each fill listpacks", 1000, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rdb, prefix := storetest.Redis(t)
			s := redisquota.New(rdb, redisquota.Options{Prefix: prefix})
			start := time.Now().UTC()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					for {
						i := int(next.Add(1)) - 1
						if i >= entries || t.Failed() {
							return
						}
						// 1,000 pushes a second in all, spread over the workspaces.
						ws := "ws-" + strconv.Itoa(i%tc.workspaces)
						v, err := s.Admit(context.Background(), tenants.Admission{
							WorkspaceID: ws, Limit: tenants.Unlimited, DedupeKey: pushKey(i), At: start.Add(time.Duration(i) * time.Millisecond),
						})
						if err != nil || v.Decision != tenants.Admitted {
							t.Errorf("Admit %d = %v, %v", i, v.Decision, err)
							return
						}
					}
				})
			}
			wg.Wait()
			buckets, bytes := mustMeasure(t, rdb, prefix+"*:k:*")
			perEntry := float64(bytes) / entries
			t.Logf("%d entries in %d buckets: %d bytes, %.1f bytes per entry; at 1,000 pushes/s about 3.96 million entries are held (66 minutes on average): %.0f MB",
				entries, buckets, bytes, perEntry, perEntry*3.96e6/1e6)
			if perEntry > tc.maxBytes {
				t.Errorf("%.1f bytes per dedupe entry, want at most %.0f", perEntry, tc.maxBytes)
			}
		})
	}
}

// mustMeasure sums MEMORY USAGE over the keys matching pattern.
func mustMeasure(t *testing.T, rdb *redis.Client, pattern string) (keys int, bytes int64) {
	t.Helper()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		n, err := rdb.MemoryUsage(ctx, iter.Val(), 0).Result()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", iter.Val(), err)
		}
		enc, err := rdb.ObjectEncoding(ctx, iter.Val()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if keys == 0 {
			t.Logf("a bucket like %s is encoded as %s", iter.Val()[strings.Index(iter.Val(), "{"):], enc)
		}
		keys++
		bytes += n
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if keys == 0 {
		t.Fatal(fmt.Errorf("no keys match %s", pattern))
	}
	return keys, bytes
}
