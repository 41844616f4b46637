package sqlstore

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/storetest"
)

// BenchmarkAdmit measures the push hot path, one admission of a fresh key:
// one caller at a time, and 64 at once as in the gateway's load test.
func BenchmarkAdmit(b *testing.B) {
	for _, backend := range []struct{ name, url string }{
		{"sqlite", storetest.SQLite(b)},
		{"postgres", storetest.Postgres(b)},
	} {
		b.Run(backend.name, func(b *testing.B) {
			q := NewQuotaStore(mustMigrated(b, backend.url))
			// Keys never repeat across runs, so every admission takes a unit.
			var next atomic.Int64
			admit := func(ws string) error {
				key := "k" + strconv.FormatInt(next.Add(1), 36)
				v, err := q.Admit(context.Background(), tenants.Admission{WorkspaceID: ws, Limit: 1 << 40, DedupeKey: key, At: batchAt})
				if err == nil && v.Decision != tenants.Admitted {
					err = fmt.Errorf("%s, want admitted", v.Decision)
				}
				return err
			}
			b.Run("serial", func(b *testing.B) {
				ws := "ws-bench-" + storetest.Suffix()
				b.ReportAllocs()
				for b.Loop() {
					if err := admit(ws); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				ws := "ws-bench-" + storetest.Suffix()
				b.ReportAllocs()
				b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := admit(ws); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
