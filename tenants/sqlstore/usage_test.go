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

// mustHistory writes a workspace's history as "2025-03:12 2025-02:3": each month's total, newest first.
func mustHistory(t *testing.T, db *sqlstore.DB, ws string, months int) string {
	t.Helper()
	h, err := db.UsageHistory(context.Background(), ws, months)
	if err != nil {
		t.Fatalf("UsageHistory(%s, %d): %v", ws, months, err)
	}
	s := ""
	for i, u := range h {
		if i > 0 {
			s += " "
		}
		if len(u.Daily) > 0 {
			t.Fatalf("UsageHistory(%s) gave %s with %d days, want totals only", ws, u.Period, len(u.Daily))
		}
		s += fmt.Sprintf("%s:%d", u.Period, u.Used)
	}
	return s
}

// mustArchived writes a month as ArchivedUsage reads it (see describeMonth).
func mustArchived(t *testing.T, db *sqlstore.DB, ws string, p tenants.Period) string {
	t.Helper()
	u, err := db.ArchivedUsage(context.Background(), ws, p)
	if err != nil {
		t.Fatalf("ArchivedUsage(%s, %s): %v", ws, p, err)
	}
	return describeMonth(u)
}

// describeMonth writes a month as "2025-03:12[10/10,11/2]": the total, then each day's sent count.
func describeMonth(u tenants.Usage) string {
	s := fmt.Sprintf("%s:%d[", u.Period, u.Used)
	for j, d := range u.Daily {
		if j > 0 {
			s += ","
		}
		s += fmt.Sprintf("%s/%d", d.Date[8:], d.Sent)
	}
	return s + "]"
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
			if got, want := mustArchived(t, db, "ws-a", "2025-03"), "2025-03:12[10/10,11/2]"; got != want {
				t.Fatalf("archived = %s, want %s", got, want)
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
			u, err := db.ArchivedUsage(context.Background(), "ws-a", "2025-03")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := describeMonth(u), "2025-03:15[10/10,11/4,12/1]"; got != want {
				t.Fatalf("archived = %s, want %s", got, want)
			}
			if d := u.Daily[0]; d.DeadTokens != 1 || d.Acked != 5 {
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
			{"every month with a count, newest first", 12, "2025-03:0 2025-02:3 2025-01:30 2024-12:7"},
			{"bounded by months", 2, "2025-03:0 2025-02:3"},
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

func TestUsageHistoryOfFullMonths(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		// Three full months of days without totals, then a month with a total only.
		for _, p := range []tenants.Period{"2025-01", "2025-02", "2025-03"} {
			u := tenants.Usage{Period: p}
			for d := p.Start(); d.Before(p.End()); d = d.AddDate(0, 0, 1) {
				u.Daily = append(u.Daily, tenants.DailyUsage{Date: d.Format(time.DateOnly), Acked: 1})
			}
			mustSaveUsage(t, db, "ws-days", u)
		}
		// Two months counted by both stores, each larger in one of them.
		mustSaveUsage(t, db, "ws-days", tenants.Usage{Period: "2024-06", Used: 40})
		mustSaveUsage(t, db, "ws-days", tenants.Usage{Period: "2024-05", Used: 4})
		q := sqlstore.NewQuotaStore(db)
		for i := range 5 {
			for _, at := range []time.Time{time.Date(2024, 6, 9, 0, 0, i, 0, time.UTC), time.Date(2024, 5, 9, 0, 0, i, 0, time.UTC)} {
				if _, err := q.Admit(ctx, tenants.Admission{WorkspaceID: "ws-days", Limit: 100, DedupeKey: fmt.Sprint(at), At: at}); err != nil {
					t.Fatal(err)
				}
			}
		}

		for _, tc := range []struct {
			name   string
			months int
			want   string
		}{
			{"months of days alone are found however full they are", 3, "2025-03:0 2025-02:0 2025-01:0"},
			{"a month counted by both stores shows the larger count", 12, "2025-03:0 2025-02:0 2025-01:0 2024-06:40 2024-05:5"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := mustHistory(t, db, "ws-days", tc.months); got != tc.want {
					t.Fatalf("history = %s, want %s", got, tc.want)
				}
			})
		}
	})
}

func TestQuotaStoreUsage(t *testing.T) {
	sqltest.EachBackend(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		q := sqlstore.NewQuotaStore(db)
		admit := func(ws string, at time.Time, key string) {
			t.Helper()
			if _, err := q.Admit(ctx, tenants.Admission{WorkspaceID: ws, Limit: 100, DedupeKey: key, At: at}); err != nil {
				t.Fatal(err)
			}
		}
		admit("ws-u", time.Date(2025, 3, 11, 8, 0, 0, 0, time.UTC), "a")
		admit("ws-u", time.Date(2025, 3, 2, 8, 0, 0, 0, time.UTC), "b")
		admit("ws-u", time.Date(2025, 3, 2, 9, 0, 0, 0, time.UTC), "c")
		admit("ws-u", time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC), "d")
		admit("ws-other", time.Date(2025, 3, 2, 8, 0, 0, 0, time.UTC), "a")
		if err := q.RecordAck(ctx, "ws-u", time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		if err := q.RecordAck(ctx, "ws-u", time.Date(2025, 5, 20, 10, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		usage := func(ws string, p tenants.Period) tenants.Usage {
			t.Helper()
			u, err := q.Usage(ctx, ws, p)
			if err != nil {
				t.Fatalf("Usage(%s, %s): %v", ws, p, err)
			}
			return u
		}

		t.Run("a month comes with its count and its days in order, and nothing of another workspace or month", func(t *testing.T) {
			u := usage("ws-u", "2025-03")
			if got, want := describeMonth(u), "2025-03:3[02/2,11/1]"; got != want {
				t.Fatalf("Usage = %s, want %s", got, want)
			}
			if u.Daily[0].Acked != 1 {
				t.Fatalf("2025-03-02 = %+v, want its ack", u.Daily[0])
			}
		})
		t.Run("a month with acks only has its days and no count", func(t *testing.T) {
			if got, want := describeMonth(usage("ws-u", "2025-05")), "2025-05:0[20/0]"; got != want {
				t.Fatalf("Usage = %s, want %s", got, want)
			}
		})
		t.Run("a month without anything is empty", func(t *testing.T) {
			u := usage("ws-u", "2025-06")
			if u.Period != "2025-06" || u.Used != 0 || u.Daily != nil {
				t.Fatalf("Usage = %+v, want an empty 2025-06", u)
			}
		})
		t.Run("a malformed period is invalid", func(t *testing.T) {
			if _, err := q.Usage(ctx, "ws-u", "March"); tenants.ErrorCode(err) != tenants.CodeInvalid {
				t.Fatalf("Usage(March) = %v, want %s", err, tenants.CodeInvalid)
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
			if got, want := describeMonth(u), "2025-03:12[10/10,11/2]"; got != want {
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
