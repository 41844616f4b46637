package web_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
)

// A busy workspace: a pro plan's million pushes a month is about 233,000 a
// week, all of them in the delivery log, next to other workspaces' entries.
const (
	benchLogEntries   = 233_000
	benchOtherEntries = 100_000
)

// BenchmarkPages measures the overview and the delivery log for a workspace
// with a full month of daily rows, 12 archived months and a full 7-day log,
// on each database; p99-ms is the 99th percentile of one page's answer time.
//
//	go test -run '^$' -bench Pages -benchtime 300x ./web/
func BenchmarkPages(b *testing.B) {
	for name, url := range sqltest.Backends(b) {
		b.Run(name, func(b *testing.B) {
			site := mustLogSiteOn(b, url)
			cookie, deep := seedBusyWorkspace(b, site, url)
			for _, page := range []struct{ name, path string }{
				{"overview", "/overview"},
				{"deliveries", "/deliveries"},
				{"deliveries-dead-tokens", "/deliveries?result=dead_token"},
				{"deliveries-app", "/deliveries?app=android_rn"},
				{"deliveries-3-days-back", "/deliveries?before=" + deep},
			} {
				b.Run(page.name, func(b *testing.B) {
					req, _ := http.NewRequest(http.MethodGet, site.URL+page.path, nil)
					req.AddCookie(&http.Cookie{Name: "pushgate_session", Value: cookie})
					took := make([]time.Duration, 0, b.N)
					b.ResetTimer()
					for b.Loop() {
						start := time.Now()
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							b.Fatal(err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							b.Fatalf("%s: %d", page.path, resp.StatusCode)
						}
						took = append(took, time.Since(start))
					}
					slices.Sort(took)
					b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
				})
			}
		})
	}
}

// seedBusyWorkspace creates the workspace with its owner's session and
// returns the session cookie and a cursor three days back in its log.
func seedBusyWorkspace(b *testing.B, site *logSite, url string) (cookie, deep string) {
	b.Helper()
	ctx := context.Background()
	reg, err := site.svc.Register(ctx, tenants.RegisterRequest{Name: "Busy", ContactEmail: "owner@busy.example", AcceptTermsVersion: termsVersion}, "bench", "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	id := reg.Workspace.ID
	acct := &tenants.OwnerAccount{WorkspaceID: id, Email: "owner@busy.example", PasswordHash: "x"}
	if err := site.db.CreateOwnerAccount(ctx, acct); err != nil {
		b.Fatal(err)
	}
	cookie = "bench-session-cookie-value"
	sum := sha256.Sum256([]byte(cookie))
	now := time.Now().UTC()
	if err := site.db.CreateSession(ctx, tenants.Session{IDHash: hex.EncodeToString(sum[:]), Kind: tenants.SessionOwner, AccountID: acct.ID,
		WorkspaceID: id, Email: acct.Email, CSRF: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}

	// A full month of days, and the 12 months before it.
	for m := range 13 {
		p := tenants.PeriodOf(now.AddDate(0, -m, 0))
		u := tenants.Usage{Period: p}
		for d := p.Start(); d.Before(p.End()); d = d.AddDate(0, 0, 1) {
			u.Daily = append(u.Daily, tenants.DailyUsage{Date: d.Format(time.DateOnly), Sent: 33_000, DeadTokens: 300, Failed: 20, Acked: 30_000})
			u.Used += 33_000
		}
		if err := site.db.SaveUsage(ctx, id, u); err != nil {
			b.Fatal(err)
		}
	}
	for _, th := range []int{80, 100} {
		if _, err := site.db.RecordQuotaEvent(ctx, id, tenants.PeriodOf(now), th, 800_000, 1_000_000, now); err != nil {
			b.Fatal(err)
		}
	}

	// Seven days of log, oldest first, as the writer stores it.
	step := tenants.DeliveryRetention / benchLogEntries
	start := now.Add(-tenants.DeliveryRetention)
	batch := make([]tenants.Delivery, 0, 1000)
	write := func(ws string, n int, step time.Duration) {
		for i := range n {
			d := tenants.Delivery{WorkspaceID: ws, At: start.Add(time.Duration(i) * step), Protocol: tenants.ProtocolMattermost,
				Ref: fmt.Sprintf("ack%024d", i), App: "apple_rn", Result: tenants.DeliveryDelivered, TokenPrefix: "abcdef"}
			if i%2 == 1 {
				d.App = "android_rn"
			}
			if i%100 == 0 {
				d.Result, d.Reason = tenants.DeliveryDeadToken, "Unregistered"
			}
			batch = append(batch, d)
			if len(batch) == cap(batch) || i == n-1 {
				if err := site.db.SaveDeliveries(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	write(id, benchLogEntries, step)
	write("other-workspace", benchOtherEntries, tenants.DeliveryRetention/benchOtherEntries)
	analyze(b, url)
	return cookie, fmt.Sprintf("%d-%d", now.Add(-3*24*time.Hour).UnixMicro(), int64(1)<<62)
}

// analyze gives PostgreSQL the statistics autovacuum keeps after a load
// like this one, so the planner sees the steady state, not an empty table.
func analyze(b *testing.B, url string) {
	b.Helper()
	if !strings.HasPrefix(url, "postgres") {
		return
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("ANALYZE"); err != nil {
		b.Fatal(err)
	}
}
