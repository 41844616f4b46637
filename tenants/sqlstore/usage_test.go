package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/tenants/sqlstore"
	"github.com/pushgate/pushgate/tenants/sqlstore/sqltest"
)

func mustSaveUsage(t *testing.T, db *sqlstore.DB, ws string, u tenants.Usage) {
	t.Helper()
	if err := db.SaveUsage(context.Background(), ws, u); err != nil {
		t.Fatalf("SaveUsage(%s, %s): %v", ws, u.Period, err)
	}
}

func mustHistory(t *testing.T, db *sqlstore.DB, ws string, months int) string {
	t.Helper()
	h, err := db.UsageHistory(context.Background(), ws, months)
	if err != nil {
		t.Fatalf("UsageHistory(%s, %d): %v", ws, months, err)
	}
	return describeHistory(h)
}

// describeHistory writes months as "2025-03:12[10/3,11/2]": the total, then each day's sent count.
func describeHistory(h []tenants.Usage) string {
	s := ""
	for i, u := range h {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s:%d[", u.Period, u.Used)
		for j, d := range u.Daily {
			if j > 0 {
				s += ","
			}
			s += fmt.Sprintf("%s/%d", d.Date[8:], d.Sent)
		}
		s += "]"
	}
	return s
}

func TestSaveUsage(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		march := tenants.Usage{Period: "2025-03", Used: 12, Daily: []tenants.DailyUsage{
			{Date: "2025-03-10", Sent: 10, DeadTokens: 1, Acked: 4},
			{Date: "2025-03-11", Sent: 2, Failed: 1},
		}}

		t.Run("saving the same reading again changes nothing", func(t *testing.T) {
			mustSaveUsage(t, db, "ws-a", march)
			mustSaveUsage(t, db, "ws-a", march)
			if got, want := mustHistory(t, db, "ws-a", 12), "2025-03:12[10/10,11/2]"; got != want {
				t.Fatalf("history = %s, want %s", got, want)
			}
		})

		t.Run("a later reading raises the counts and an older one never lowers them", func(t *testing.T) {
			later := tenants.Usage{Period: "2025-03", Used: 15, Daily: []tenants.DailyUsage{
				{Date: "2025-03-10", Sent: 10, DeadTokens: 1, Acked: 5},
				{Date: "2025-03-11", Sent: 4, Failed: 1},
				{Date: "2025-03-12", Sent: 1},
			}}
			mustSaveUsage(t, db, "ws-a", later)
			mustSaveUsage(t, db, "ws-a", march)
			h, err := db.UsageHistory(context.Background(), "ws-a", 1)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := describeHistory(h), "2025-03:15[10/10,11/4,12/1]"; got != want {
				t.Fatalf("history = %s, want %s", got, want)
			}
			if d := h[0].Daily[0]; d.DeadTokens != 1 || d.Acked != 5 {
				t.Fatalf("2025-03-10 = %+v, want 1 dead token and 5 acks", d)
			}
		})

		t.Run("a day outside the month is refused", func(t *testing.T) {
			err := db.SaveUsage(context.Background(), "ws-a", tenants.Usage{Period: "2025-03", Used: 1,
				Daily: []tenants.DailyUsage{{Date: "2025-04-01", Sent: 1}}})
			if tenants.ErrorCode(err) != tenants.CodeInvalid {
				t.Fatalf("SaveUsage = %v, want %s", err, tenants.CodeInvalid)
			}
		})
	})
}

func TestUsageHistory(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		for _, u := range []tenants.Usage{
			{Period: "2024-12", Used: 7},
			{Period: "2025-01", Used: 30, Daily: []tenants.DailyUsage{{Date: "2025-01-31", Sent: 30}}},
		} {
			mustSaveUsage(t, db, "ws-h", u)
		}
		// February was counted by the database quota store, March saw only an ack.
		q := sqlstore.NewQuotaStore(db)
		for i := range 3 {
			if _, err := q.Admit(ctx, tenants.Admission{WorkspaceID: "ws-h", Limit: 100, DedupeKey: fmt.Sprint(i), At: time.Date(2025, 2, 3, 0, 0, i, 0, time.UTC)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.RecordAck(ctx, "ws-h", time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		mustSaveUsage(t, db, "ws-other", tenants.Usage{Period: "2025-04", Used: 99})

		for _, tc := range []struct {
			name   string
			months int
			want   string
		}{
			{"every month with a count, newest first", 12, "2025-03:0[01/0] 2025-02:3[03/3] 2025-01:30[31/30] 2024-12:7[]"},
			{"bounded by months", 2, "2025-03:0[01/0] 2025-02:3[03/3]"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := mustHistory(t, db, "ws-h", tc.months); got != tc.want {
					t.Fatalf("history = %s, want %s", got, tc.want)
				}
			})
		}
		t.Run("a workspace without counts has no history", func(t *testing.T) {
			if got := mustHistory(t, db, "ws-none", 12); got != "" {
				t.Fatalf("history = %q, want none", got)
			}
		})
		t.Run("zero months is refused", func(t *testing.T) {
			if _, err := db.UsageHistory(ctx, "ws-h", 0); tenants.ErrorCode(err) != tenants.CodeInvalid {
				t.Fatalf("UsageHistory(0) = %v, want %s", err, tenants.CodeInvalid)
			}
		})
	})
}

func TestQuotaEvents(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		at := time.Date(2025, 3, 20, 8, 30, 0, 123456000, time.UTC)

		t.Run("only the first of concurrent records is first", func(t *testing.T) {
			var firsts atomic.Int64
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					first, err := db.RecordQuotaEvent(ctx, "ws-e", "2025-03", 80, 8000, 10000, at)
					if err != nil {
						t.Error(err)
					}
					if first {
						firsts.Add(1)
					}
				})
			}
			wg.Wait()
			if firsts.Load() != 1 {
				t.Fatalf("%d records were first, want exactly 1", firsts.Load())
			}
		})

		t.Run("each threshold and month is its own event", func(t *testing.T) {
			for _, e := range []struct {
				p         tenants.Period
				threshold int
			}{{"2025-03", 100}, {"2025-04", 80}} {
				first, err := db.RecordQuotaEvent(ctx, "ws-e", e.p, e.threshold, 10000, 10000, at)
				if err != nil || !first {
					t.Fatalf("RecordQuotaEvent(%s, %d) = %v, %v, want first", e.p, e.threshold, first, err)
				}
			}
			events, err := db.QuotaEvents(ctx, "ws-e")
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, e := range events {
				got += fmt.Sprintf("%s/%d/%d/%d ", e.Period, e.Threshold, e.Used, e.Limit)
				if e.WorkspaceID != "ws-e" || !e.At.Equal(at.Truncate(time.Microsecond)) {
					t.Errorf("event %+v: want workspace ws-e at %s", e, at)
				}
			}
			if want := "2025-04/80/10000/10000 2025-03/100/10000/10000 2025-03/80/8000/10000 "; got != want {
				t.Fatalf("events = %s, want %s", got, want)
			}
		})

		t.Run("another workspace sees none of them", func(t *testing.T) {
			events, err := db.QuotaEvents(ctx, "ws-f")
			if err != nil || len(events) != 0 {
				t.Fatalf("QuotaEvents(ws-f) = %v, %v, want none", events, err)
			}
		})

		t.Run("a threshold other than 80 or 100 is refused", func(t *testing.T) {
			if _, err := db.RecordQuotaEvent(ctx, "ws-e", "2025-03", 90, 9, 10, at); tenants.ErrorCode(err) != tenants.CodeInvalid {
				t.Fatalf("RecordQuotaEvent(90) = %v, want %s", err, tenants.CodeInvalid)
			}
		})
	})
}

func TestArchivedUsage(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		march := tenants.Usage{Period: "2025-03", Used: 12, Daily: []tenants.DailyUsage{
			{Date: "2025-03-10", Sent: 10, DeadTokens: 1, Acked: 4},
			{Date: "2025-03-11", Sent: 2, Failed: 1},
		}}
		mustSaveUsage(t, db, "ws-a", march)
		mustSaveUsage(t, db, "ws-a", tenants.Usage{Period: "2025-04", Used: 3, Daily: []tenants.DailyUsage{{Date: "2025-04-01", Sent: 3}}})

		t.Run("a rolled-up month comes back with its total and days", func(t *testing.T) {
			u, err := db.ArchivedUsage(ctx, "ws-a", "2025-03")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := describeHistory([]tenants.Usage{u}), "2025-03:12[10/10,11/2]"; got != want {
				t.Fatalf("ArchivedUsage = %s, want %s", got, want)
			}
			if u.Daily[0].DeadTokens != 1 || u.Daily[0].Acked != 4 || u.Daily[1].Failed != 1 {
				t.Fatalf("days = %+v, want the outcomes and acks kept", u.Daily)
			}
		})
		t.Run("a month never archived is zero", func(t *testing.T) {
			u, err := db.ArchivedUsage(ctx, "ws-a", "2025-05")
			if err != nil || u.Used != 0 || len(u.Daily) != 0 || u.Period != "2025-05" {
				t.Fatalf("ArchivedUsage = %+v, %v; want an empty 2025-05", u, err)
			}
		})
		t.Run("the database quota store's larger count wins", func(t *testing.T) {
			q := sqlstore.NewQuotaStore(db)
			at := time.Date(2025, 5, 2, 10, 0, 0, 0, time.UTC)
			for i := range 4 {
				if _, err := q.Admit(ctx, tenants.Admission{WorkspaceID: "ws-a", Limit: 100, DedupeKey: fmt.Sprint(i), At: at}); err != nil {
					t.Fatal(err)
				}
			}
			mustSaveUsage(t, db, "ws-a", tenants.Usage{Period: "2025-05", Used: 1})
			u, err := db.ArchivedUsage(ctx, "ws-a", "2025-05")
			if err != nil || u.Used != 4 {
				t.Fatalf("ArchivedUsage = %+v, %v; want 4 used", u, err)
			}
		})
		t.Run("a malformed period is invalid", func(t *testing.T) {
			if _, err := db.ArchivedUsage(ctx, "ws-a", "March"); tenants.ErrorCode(err) != tenants.CodeInvalid {
				t.Fatalf("ArchivedUsage(March) = %v, want %s", err, tenants.CodeInvalid)
			}
		})
	})
}
