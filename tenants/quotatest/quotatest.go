// Package quotatest is the conformance suite that every tenants.QuotaStore
// passes: the Redis store, and the SQL store on SQLite and PostgreSQL.
package quotatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

// NewStore returns the store under test. It may return the same store to
// several subtests: each subtest uses workspaces of its own.
type NewStore func(t *testing.T) tenants.QuotaStore

// march is an ordinary mid-month instant; every time in the suite is explicit,
// so stores must decide by Admission.At (and Settle's at), never by a clock.
var march = time.Date(2025, time.March, 10, 12, 0, 0, 0, time.UTC)

// Run runs the suite against the stores newStore returns.
func Run(t *testing.T, newStore NewStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, s tenants.QuotaStore)
	}{
		{"exactly the limit of 2L concurrent distinct notifications is admitted", testConcurrentLimit},
		{"a repeated key is admitted once then duplicate", testDuplicates},
		{"32 concurrent copies of one key admit exactly one", testConcurrentDuplicates},
		{"a settled retry is readmitted without a second unit", testReadmitted},
		{"dead tokens and failures count per day; retry_later does not", testSettleCounts},
		{"an empty key is never suppressed", testEmptyKey},
		{"an exhausted admission changes nothing and remembers no key", testExhaustedChangesNothing},
		{"a zero limit admits nothing", testZeroLimit},
		{"the last millisecond of a month counts in it and midnight starts a fresh count", testMonthRollover},
		{"raising the limit admits more and lowering it below used exhausts", testPlanChange},
		{"unlimited admits beyond any count and still counts", testUnlimited},
		{"a key is forgotten once the dedupe window has passed", testWindow},
		{"two workspaces never affect each other", testIsolation},
		{"acks and outcomes appear as daily rows ascending by date", testDaily},
		{"a period without traffic has zero use and no days", testEmptyPeriod},
		{"malformed calls are refused as invalid", testInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newStore(t))
		})
	}
}

// workspace returns an id that no other test uses.
func workspace(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "ws-" + hex.EncodeToString(b[:])
}

func mustAdmit(t *testing.T, s tenants.QuotaStore, ws string, limit int64, key string, at time.Time) tenants.Verdict {
	t.Helper()
	v, err := s.Admit(context.Background(), tenants.Admission{WorkspaceID: ws, Limit: limit, DedupeKey: key, At: at})
	if err != nil {
		t.Fatalf("Admit(%s, limit %d, key %q, %s): %v", ws, limit, key, at.Format(time.RFC3339Nano), err)
	}
	if v.Limit != limit {
		t.Errorf("Admit(key %q): Verdict.Limit = %d, want the limit passed in, %d", key, v.Limit, limit)
	}
	return v
}

// wantAdmit admits and checks the decision and the period's count after it.
func wantAdmit(t *testing.T, s tenants.QuotaStore, ws string, limit int64, key string, at time.Time, want tenants.Decision, used int64) {
	t.Helper()
	v := mustAdmit(t, s, ws, limit, key, at)
	if v.Decision != want || v.Used != used {
		t.Fatalf("Admit(key %q at %s) = %s with used %d, want %s with used %d",
			key, at.Format(time.RFC3339Nano), v.Decision, v.Used, want, used)
	}
}

func mustSettle(t *testing.T, s tenants.QuotaStore, ws, key string, o tenants.Outcome, at time.Time) {
	t.Helper()
	if err := s.Settle(context.Background(), ws, key, o, at); err != nil {
		t.Fatalf("Settle(%s, %q, %s): %v", ws, key, o, err)
	}
}

func mustAck(t *testing.T, s tenants.QuotaStore, ws string, at time.Time) {
	t.Helper()
	if err := s.RecordAck(context.Background(), ws, at); err != nil {
		t.Fatalf("RecordAck(%s): %v", ws, err)
	}
}

func mustUsage(t *testing.T, s tenants.QuotaStore, ws string, p tenants.Period) tenants.Usage {
	t.Helper()
	u, err := s.Usage(context.Background(), ws, p)
	if err != nil {
		t.Fatalf("Usage(%s, %s): %v", ws, p, err)
	}
	if u.Period != p {
		t.Errorf("Usage(%s).Period = %q, want %q", p, u.Period, p)
	}
	return u
}

// wantUsage checks the period's total and its days, compared as written by describe.
func wantUsage(t *testing.T, s tenants.QuotaStore, ws string, p tenants.Period, used int64, days ...tenants.DailyUsage) {
	t.Helper()
	u := mustUsage(t, s, ws, p)
	if u.Used != used {
		t.Errorf("Usage(%s).Used = %d, want %d", p, u.Used, used)
	}
	if got, want := describe(u.Daily), describe(days); got != want {
		t.Errorf("Usage(%s).Daily =\n  %s\nwant\n  %s", p, got, want)
	}
}

func describe(days []tenants.DailyUsage) string {
	if len(days) == 0 {
		return "(no days)"
	}
	var b strings.Builder
	for i, d := range days {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s sent=%d dead=%d failed=%d acked=%d", d.Date, d.Sent, d.DeadTokens, d.Failed, d.Acked)
	}
	return b.String()
}

func day(date string, sent, dead, failed, acked int64) tenants.DailyUsage {
	return tenants.DailyUsage{Date: date, Sent: sent, DeadTokens: dead, Failed: failed, Acked: acked}
}

func testConcurrentLimit(t *testing.T, s tenants.QuotaStore) {
	const limit, workers = 200, 64
	ws := workspace(t)
	var next, admitted, exhausted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= 2*limit {
					return
				}
				at := march.Add(time.Duration(i) * time.Millisecond)
				v, err := s.Admit(context.Background(), tenants.Admission{WorkspaceID: ws, Limit: limit, DedupeKey: fmt.Sprintf("n%04d", i), At: at})
				if err != nil {
					t.Errorf("Admit %d: %v", i, err)
					return
				}
				switch v.Decision {
				case tenants.Admitted:
					admitted.Add(1)
					if v.Used < 1 || v.Used > limit {
						t.Errorf("admitted with used %d, outside 1..%d", v.Used, limit)
					}
				case tenants.Exhausted:
					exhausted.Add(1)
					if v.Used != limit {
						t.Errorf("exhausted with used %d, want %d", v.Used, limit)
					}
				default:
					t.Errorf("distinct key %d was %s", i, v.Decision)
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != limit || exhausted.Load() != limit {
		t.Fatalf("%d admitted and %d exhausted of %d, want exactly %d each", admitted.Load(), exhausted.Load(), 2*limit, limit)
	}
	wantUsage(t, s, ws, "2025-03", limit, day("2025-03-10", limit, 0, 0, 0))
}

func testDuplicates(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	wantAdmit(t, s, ws, 10, "k1", march, tenants.Admitted, 1)
	wantAdmit(t, s, ws, 10, "k1", march.Add(time.Minute), tenants.Duplicate, 1)
	wantAdmit(t, s, ws, 10, "k1", march.Add(31*time.Minute), tenants.Duplicate, 1)
	wantUsage(t, s, ws, "2025-03", 1, day("2025-03-10", 1, 0, 0, 0))
}

func testConcurrentDuplicates(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	var admitted, duplicate atomic.Int64
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			v, err := s.Admit(context.Background(), tenants.Admission{WorkspaceID: ws, Limit: 100, DedupeKey: "same", At: march.Add(time.Duration(i) * time.Millisecond)})
			if err != nil {
				t.Errorf("Admit: %v", err)
				return
			}
			switch v.Decision {
			case tenants.Admitted:
				admitted.Add(1)
			case tenants.Duplicate:
				duplicate.Add(1)
			default:
				t.Errorf("a copy was %s", v.Decision)
			}
			if v.Used != 1 {
				t.Errorf("%s with used %d, want 1", v.Decision, v.Used)
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 1 || duplicate.Load() != 31 {
		t.Fatalf("%d admitted and %d duplicate of 32 copies, want 1 and 31", admitted.Load(), duplicate.Load())
	}
	wantUsage(t, s, ws, "2025-03", 1, day("2025-03-10", 1, 0, 0, 0))
}

func testReadmitted(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	wantAdmit(t, s, ws, 10, "k1", march, tenants.Admitted, 1)
	mustSettle(t, s, ws, "k1", tenants.OutcomeRetryLater, march.Add(time.Second))
	// Rocket.Chat retries after 1, 2, 4, 8 and 16 minutes.
	wantAdmit(t, s, ws, 10, "k1", march.Add(time.Minute), tenants.Readmitted, 1)
	mustSettle(t, s, ws, "k1", tenants.OutcomeRetryLater, march.Add(time.Minute+time.Second))
	wantAdmit(t, s, ws, 10, "k1", march.Add(3*time.Minute), tenants.Readmitted, 1)
	// That retry was delivered: the next copy is a duplicate.
	wantAdmit(t, s, ws, 10, "k1", march.Add(7*time.Minute), tenants.Duplicate, 1)
	// A readmission is neither a unit nor a new "sent".
	wantUsage(t, s, ws, "2025-03", 1, day("2025-03-10", 1, 0, 0, 0))

	// A readmission needs no unit, so it passes even when the period is used up.
	wantAdmit(t, s, ws, 2, "k2", march.Add(10*time.Minute), tenants.Admitted, 2)
	mustSettle(t, s, ws, "k2", tenants.OutcomeRetryLater, march.Add(10*time.Minute))
	wantAdmit(t, s, ws, 2, "k3", march.Add(11*time.Minute), tenants.Exhausted, 2)
	wantAdmit(t, s, ws, 2, "k2", march.Add(12*time.Minute), tenants.Readmitted, 2)
}

func testSettleCounts(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	wantAdmit(t, s, ws, 10, "dead", march, tenants.Admitted, 1)
	mustSettle(t, s, ws, "dead", tenants.OutcomeDeadToken, march)
	wantUsage(t, s, ws, "2025-03", 1, day("2025-03-10", 1, 1, 0, 0))

	wantAdmit(t, s, ws, 10, "failed", march, tenants.Admitted, 2)
	mustSettle(t, s, ws, "failed", tenants.OutcomeFailed, march)
	wantAdmit(t, s, ws, 10, "later", march, tenants.Admitted, 3)
	mustSettle(t, s, ws, "later", tenants.OutcomeRetryLater, march)
	// Without a key only the daily count is recorded.
	wantAdmit(t, s, ws, 10, "", march, tenants.Admitted, 4)
	mustSettle(t, s, ws, "", tenants.OutcomeFailed, march)
	wantUsage(t, s, ws, "2025-03", 4, day("2025-03-10", 4, 1, 2, 0))

	// Every outcome keeps the key as counted but undelivered.
	for _, key := range []string{"dead", "failed", "later"} {
		wantAdmit(t, s, ws, 10, key, march.Add(time.Minute), tenants.Readmitted, 4)
	}
	wantUsage(t, s, ws, "2025-03", 4, day("2025-03-10", 4, 1, 2, 0))
}

func testEmptyKey(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	for i := range int64(3) {
		wantAdmit(t, s, ws, 10, "", march, tenants.Admitted, i+1)
	}
	wantUsage(t, s, ws, "2025-03", 3, day("2025-03-10", 3, 0, 0, 0))
}

func testExhaustedChangesNothing(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	wantAdmit(t, s, ws, 1, "k1", march, tenants.Admitted, 1)
	for range 3 {
		wantAdmit(t, s, ws, 1, "k2", march.Add(time.Minute), tenants.Exhausted, 1)
	}
	wantUsage(t, s, ws, "2025-03", 1, day("2025-03-10", 1, 0, 0, 0))
	// k2 was never counted, so with room it is admitted, not a duplicate.
	wantAdmit(t, s, ws, 2, "k2", march.Add(2*time.Minute), tenants.Admitted, 2)
}

func testZeroLimit(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	wantAdmit(t, s, ws, 0, "k1", march, tenants.Exhausted, 0)
	wantAdmit(t, s, ws, 0, "", march, tenants.Exhausted, 0)
	wantUsage(t, s, ws, "2025-03", 0)
}

func testMonthRollover(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	lastMilli := time.Date(2025, time.January, 31, 23, 59, 59, 999_000_000, time.UTC)
	midnight := time.Date(2025, time.February, 1, 0, 0, 0, 0, time.UTC)
	wantAdmit(t, s, ws, 2, "a", lastMilli.Add(-time.Hour), tenants.Admitted, 1)
	wantAdmit(t, s, ws, 2, "b", lastMilli, tenants.Admitted, 2)
	wantAdmit(t, s, ws, 2, "c", lastMilli, tenants.Exhausted, 2)
	wantAdmit(t, s, ws, 2, "c", midnight, tenants.Admitted, 1)
	wantAdmit(t, s, ws, 2, "d", midnight, tenants.Admitted, 2)
	wantUsage(t, s, ws, "2025-01", 2, day("2025-01-31", 2, 0, 0, 0))
	wantUsage(t, s, ws, "2025-02", 2, day("2025-02-01", 2, 0, 0, 0))

	// A year ends the same way, and a key seen in the old month is still a duplicate in the new.
	ws = workspace(t)
	wantAdmit(t, s, ws, 1, "x", time.Date(2024, time.December, 31, 23, 59, 59, 999_000_000, time.UTC), tenants.Admitted, 1)
	wantAdmit(t, s, ws, 1, "x", time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC), tenants.Duplicate, 0)
	wantAdmit(t, s, ws, 1, "y", time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC), tenants.Admitted, 1)
	wantUsage(t, s, ws, "2024-12", 1, day("2024-12-31", 1, 0, 0, 0))
	wantUsage(t, s, ws, "2025-01", 1, day("2025-01-01", 1, 0, 0, 0))
}

func testPlanChange(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	wantAdmit(t, s, ws, 2, "k1", march, tenants.Admitted, 1)
	wantAdmit(t, s, ws, 2, "k2", march, tenants.Admitted, 2)
	wantAdmit(t, s, ws, 2, "k3", march, tenants.Exhausted, 2)
	// Upgraded: the next admission sees the higher limit.
	wantAdmit(t, s, ws, 4, "k3", march.Add(time.Hour), tenants.Admitted, 3)
	wantAdmit(t, s, ws, 4, "k4", march.Add(time.Hour), tenants.Admitted, 4)
	// Downgraded below what was used: exhausted at once, the count stays.
	wantAdmit(t, s, ws, 1, "k5", march.Add(90*time.Minute), tenants.Exhausted, 4)
	// A duplicate is still a duplicate, whatever the limit.
	wantAdmit(t, s, ws, 1, "k4", march.Add(90*time.Minute), tenants.Duplicate, 4)
	wantUsage(t, s, ws, "2025-03", 4, day("2025-03-10", 4, 0, 0, 0))
}

func testUnlimited(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	wantAdmit(t, s, ws, 1, "k0", march, tenants.Admitted, 1)
	wantAdmit(t, s, ws, 1, "k1", march, tenants.Exhausted, 1)
	for i := range int64(5) {
		wantAdmit(t, s, ws, tenants.Unlimited, fmt.Sprintf("u%d", i), march, tenants.Admitted, i+2)
	}
	wantAdmit(t, s, ws, tenants.Unlimited, "u0", march, tenants.Duplicate, 6)
	wantUsage(t, s, ws, "2025-03", 6, day("2025-03-10", 6, 0, 0, 0))
}

func testWindow(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	// An odd start, so the window does not line up with any bucketing.
	t0 := march.Add(7*time.Minute + 13*time.Second + 5*time.Millisecond)
	wantAdmit(t, s, ws, 10, "k", t0, tenants.Admitted, 1)
	wantAdmit(t, s, ws, 10, "k", t0.Add(tenants.DedupeWindow-time.Millisecond), tenants.Duplicate, 1)
	wantAdmit(t, s, ws, 10, "k", t0.Add(tenants.DedupeWindow), tenants.Admitted, 2)
	// The new admission opened a new window.
	wantAdmit(t, s, ws, 10, "k", t0.Add(tenants.DedupeWindow+30*time.Minute), tenants.Duplicate, 2)
	wantAdmit(t, s, ws, 10, "k", t0.Add(3*tenants.DedupeWindow), tenants.Admitted, 3)

	// A counted-but-undelivered key is forgotten an hour after it was settled.
	wantAdmit(t, s, ws, 10, "u", t0, tenants.Admitted, 4)
	settled := t0.Add(20 * time.Minute)
	mustSettle(t, s, ws, "u", tenants.OutcomeRetryLater, settled)
	wantAdmit(t, s, ws, 10, "u", settled.Add(tenants.DedupeWindow-time.Millisecond), tenants.Readmitted, 4)
	mustSettle(t, s, ws, "u", tenants.OutcomeRetryLater, settled.Add(tenants.DedupeWindow))
	wantAdmit(t, s, ws, 10, "u", settled.Add(2*tenants.DedupeWindow+time.Millisecond), tenants.Admitted, 5)
}

func testIsolation(t *testing.T, s tenants.QuotaStore) {
	a, b := workspace(t), workspace(t)
	wantAdmit(t, s, a, 1, "k", march, tenants.Admitted, 1)
	wantAdmit(t, s, a, 1, "k2", march, tenants.Exhausted, 1)
	// The same key and an exhausted neighbour mean nothing to b.
	wantAdmit(t, s, b, 1, "k", march, tenants.Admitted, 1)
	mustSettle(t, s, b, "k", tenants.OutcomeDeadToken, march)
	mustAck(t, s, b, march)
	wantAdmit(t, s, a, 1, "k", march, tenants.Duplicate, 1)
	wantUsage(t, s, a, "2025-03", 1, day("2025-03-10", 1, 0, 0, 0))
	wantUsage(t, s, b, "2025-03", 1, day("2025-03-10", 1, 1, 0, 1))
}

func testDaily(t *testing.T, s tenants.QuotaStore) {
	ws := workspace(t)
	d12 := time.Date(2025, time.March, 12, 8, 0, 0, 0, time.UTC)
	d10 := time.Date(2025, time.March, 10, 23, 59, 59, 999_000_000, time.UTC)
	d11 := time.Date(2025, time.March, 11, 0, 0, 0, 0, time.UTC)
	// Out of order on purpose: the answer is by date.
	wantAdmit(t, s, ws, 100, "a", d12, tenants.Admitted, 1)
	mustAck(t, s, ws, d12)
	wantAdmit(t, s, ws, 100, "b", d10, tenants.Admitted, 2)
	wantAdmit(t, s, ws, 100, "c", d10, tenants.Admitted, 3)
	mustAck(t, s, ws, d10)
	mustAck(t, s, ws, d11) // the ack of "c" arrived after midnight
	mustSettle(t, s, ws, "b", tenants.OutcomeFailed, d11)
	// A time in another zone is the same instant, counted on its UTC day.
	mustAck(t, s, ws, d12.In(time.FixedZone("UTC-10", -10*60*60)))
	wantUsage(t, s, ws, "2025-03", 3,
		day("2025-03-10", 2, 0, 0, 1),
		day("2025-03-11", 0, 0, 1, 1),
		day("2025-03-12", 1, 0, 0, 2))
	wantUsage(t, s, ws, "2025-04", 0)
}

func testEmptyPeriod(t *testing.T, s tenants.QuotaStore) {
	wantUsage(t, s, workspace(t), "2025-03", 0)
}

func testInvalid(t *testing.T, s tenants.QuotaStore) {
	ctx := context.Background()
	ws := workspace(t)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"admission without a workspace", func() error {
			_, err := s.Admit(ctx, tenants.Admission{Limit: 1, At: march})
			return err
		}},
		{"admission without a time", func() error {
			_, err := s.Admit(ctx, tenants.Admission{WorkspaceID: ws, Limit: 1})
			return err
		}},
		{"admission with a key that is no short hash", func() error {
			_, err := s.Admit(ctx, tenants.Admission{WorkspaceID: ws, Limit: 1, DedupeKey: strings.Repeat("k", 65), At: march})
			return err
		}},
		{"settle with an unknown outcome", func() error {
			return s.Settle(ctx, ws, "k", tenants.Outcome("lost"), march)
		}},
		{"usage of a malformed period", func() error {
			_, err := s.Usage(ctx, ws, "March")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := tenants.ErrorCode(err); err == nil || got != tenants.CodeInvalid {
				t.Fatalf("got %v (code %s), want an error with code %s", err, got, tenants.CodeInvalid)
			}
		})
	}
	wantUsage(t, s, ws, "2025-03", 0)
}
