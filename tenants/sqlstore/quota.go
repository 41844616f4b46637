package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/pushgate/pushgate/tenants"
)

var _ tenants.QuotaStore = (*QuotaStore)(nil)

// QuotaStore keeps quotas in the database, for a single node (no
// PUSHGATE_REDIS_URL): quota_usage holds each month's count, usage_daily the
// days' counts, and dedupe the notifications remembered for an hour.
// Admissions that arrive while one transaction is in flight are decided
// together in the next (see admitBatcher); Settle and RecordAck are one
// transaction each. On SQLite a transaction holds the write lock from its
// start; on PostgreSQL it locks rows table by table (dedupe, then
// quota_usage, then usage_daily) and in key order within a table, so
// concurrent transactions queue and never deadlock.
type QuotaStore struct {
	db *DB
	// writer queues this process's SQLite writers: SQLite allows one at a
	// time, and a queue hands the lock over at once where busy_timeout polls.
	writer     chan struct{}
	admissions *admitBatcher
}

// NewQuotaStore returns the quota store of db.
func NewQuotaStore(db *DB) *QuotaStore {
	q := &QuotaStore{db: db, writer: make(chan struct{}, 1)}
	q.admissions = newAdmitBatcher(q.decideBatch)
	return q
}

// write runs fn in one transaction, queued behind this process's other SQLite writers.
func (q *QuotaStore) write(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if q.db.dialect == SQLite {
		select {
		case q.writer <- struct{}{}:
			defer func() { <-q.writer }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return q.db.gorm.WithContext(ctx).Transaction(fn)
}

// The states of a remembered notification.
const (
	stateDelivered   = "delivered"
	stateUndelivered = "undelivered"
)

// maxDedupeKeyLen bounds a dedupe key: it is a short hash, never the payload.
const maxDedupeKeyLen = 64

// Admit decides one notification in the next batch of admissions.
func (q *QuotaStore) Admit(ctx context.Context, a tenants.Admission) (tenants.Verdict, error) {
	if err := checkQuotaCall(a.WorkspaceID, a.At); err != nil {
		return tenants.Verdict{}, err
	}
	if len(a.DedupeKey) > maxDedupeKeyLen {
		return tenants.Verdict{}, dedupeKeyTooLong()
	}
	a.At = a.At.UTC()
	v, err := q.admissions.admit(ctx, a)
	if err != nil {
		return tenants.Verdict{}, tenants.Internal(err, "counting a notification")
	}
	return v, nil
}

// claim is what claimKey found and did.
type claim struct {
	// prior is the key's state before: "" when it was unknown or older than
	// the window (the caller counts it), delivered (left as it was: a
	// duplicate), or undelivered (a readmission).
	prior string
	// wrote says claimKey wrote the key; replaced says it overwrote old,
	// which undoClaim puts back, where otherwise it inserted a new row.
	wrote, replaced bool
	old             dedupeRow
}

// claimKey records key as delivered at at, unless it is a duplicate, and says what it found.
func (q *QuotaStore) claimKey(tx *gorm.DB, ws, key string, at time.Time) (claim, error) {
	now, expires := at.UnixMilli(), at.Add(tenants.DedupeWindow).UnixMilli()
	// A row that a purge deletes between the two statements sends us round again.
	for range 3 {
		res := tx.Exec(`INSERT INTO dedupe (workspace_id, dedupe_key, state, expires_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (workspace_id, dedupe_key) DO NOTHING`, ws, key, stateDelivered, expires)
		if res.Error != nil {
			return claim{}, res.Error
		}
		if res.RowsAffected == 1 {
			return claim{wrote: true}, nil
		}
		query := "SELECT state, expires_at FROM dedupe WHERE workspace_id = ? AND dedupe_key = ?"
		if q.db.dialect == Postgres {
			// Waits for a concurrent admission of the same key to finish.
			query += " FOR UPDATE"
		}
		var rows []dedupeRow
		if err := tx.Raw(query, ws, key).Scan(&rows).Error; err != nil {
			return claim{}, err
		}
		if len(rows) == 0 {
			continue
		}
		c := claim{prior: rows[0].State, wrote: true, replaced: true, old: rows[0]}
		if now >= rows[0].ExpiresAt {
			c.prior = ""
		}
		if c.prior == stateDelivered {
			return claim{prior: stateDelivered}, nil
		}
		err := tx.Exec("UPDATE dedupe SET state = ?, expires_at = ? WHERE workspace_id = ? AND dedupe_key = ?",
			stateDelivered, expires, ws, key).Error
		return c, err
	}
	return claim{}, errors.New("the dedupe row of a notification kept disappearing")
}

// undoClaim puts the dedupe row of key back as it was before cl, for an
// admission that found no unit left.
func undoClaim(tx *gorm.DB, ws, key string, cl claim) error {
	switch {
	case !cl.wrote:
		return nil
	case cl.replaced:
		return tx.Exec("UPDATE dedupe SET state = ?, expires_at = ? WHERE workspace_id = ? AND dedupe_key = ?",
			cl.old.State, cl.old.ExpiresAt, ws, key).Error
	default:
		return tx.Exec("DELETE FROM dedupe WHERE workspace_id = ? AND dedupe_key = ?", ws, key).Error
	}
}

// takeUnit adds one to the month's count unless that would pass limit; it
// returns the count after and whether a unit was taken. Unless limit is 0 it
// leaves the month's row locked on PostgreSQL either way: ON CONFLICT DO
// UPDATE locks the rows its WHERE refuses too.
func takeUnit(tx *gorm.DB, ws string, p tenants.Period, limit int64) (int64, bool, error) {
	if limit == 0 {
		used, err := usedIn(tx, ws, p)
		return used, false, err
	}
	query := `INSERT INTO quota_usage (workspace_id, period, used) VALUES (?, ?, 1)
		ON CONFLICT (workspace_id, period) DO UPDATE SET used = quota_usage.used + 1`
	args := []any{ws, string(p)}
	if limit > 0 {
		query += " WHERE quota_usage.used < ?"
		args = append(args, limit)
	}
	var got []int64
	if err := tx.Raw(query+" RETURNING used", args...).Scan(&got).Error; err != nil {
		return 0, false, err
	}
	if len(got) == 1 {
		return got[0], true, nil
	}
	used, err := usedIn(tx, ws, p)
	return used, false, err
}

func usedIn(tx *gorm.DB, ws string, p tenants.Period) (int64, error) {
	var used []int64
	err := tx.Raw("SELECT used FROM quota_usage WHERE workspace_id = ? AND period = ?", ws, string(p)).Scan(&used).Error
	if err != nil || len(used) == 0 {
		return 0, err
	}
	return used[0], nil
}

type dedupeRow struct {
	State     string
	ExpiresAt int64
}

// dayCounts are increments of one usage_daily row.
type dayCounts struct{ sent, dead, failed, acked int64 }

func addDaily(tx *gorm.DB, ws string, at time.Time, d dayCounts) error {
	return tx.Exec(`INSERT INTO usage_daily (workspace_id, day, sent, dead_tokens, failed, acked) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (workspace_id, day) DO UPDATE SET
			sent = usage_daily.sent + excluded.sent,
			dead_tokens = usage_daily.dead_tokens + excluded.dead_tokens,
			failed = usage_daily.failed + excluded.failed,
			acked = usage_daily.acked + excluded.acked`,
		ws, at.UTC().Format(time.DateOnly), d.sent, d.dead, d.failed, d.acked).Error
}

// Settle counts an outcome of an admitted notification and keeps its key as
// counted but undelivered for an hour from at.
func (q *QuotaStore) Settle(ctx context.Context, workspaceID, dedupeKey string, outcome tenants.Outcome, at time.Time) error {
	if err := checkQuotaCall(workspaceID, at); err != nil {
		return err
	}
	if len(dedupeKey) > maxDedupeKeyLen {
		return dedupeKeyTooLong()
	}
	var d dayCounts
	switch outcome {
	case tenants.OutcomeDeadToken:
		d.dead = 1
	case tenants.OutcomeFailed:
		d.failed = 1
	case tenants.OutcomeRetryLater:
	default:
		return tenants.Errorf(tenants.CodeInvalid, "unknown push outcome %q: want dead_token, failed or retry_later", outcome)
	}
	at = at.UTC()
	err := q.write(ctx, func(tx *gorm.DB) error {
		if dedupeKey != "" {
			err := tx.Exec(`INSERT INTO dedupe (workspace_id, dedupe_key, state, expires_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (workspace_id, dedupe_key) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at`,
				workspaceID, dedupeKey, stateUndelivered, at.Add(tenants.DedupeWindow).UnixMilli()).Error
			if err != nil {
				return err
			}
		}
		if d == (dayCounts{}) {
			return nil
		}
		return addDaily(tx, workspaceID, at, d)
	})
	if err != nil {
		return tenants.Internal(err, "recording a push outcome")
	}
	return nil
}

// RecordAck counts a delivery receipt for the day of at.
func (q *QuotaStore) RecordAck(ctx context.Context, workspaceID string, at time.Time) error {
	if err := checkQuotaCall(workspaceID, at); err != nil {
		return err
	}
	err := q.write(ctx, func(tx *gorm.DB) error { return addDaily(tx, workspaceID, at, dayCounts{acked: 1}) })
	if err != nil {
		return tenants.Internal(err, "counting a delivery receipt")
	}
	return nil
}

// Usage returns the month's count from quota_usage and its days from usage_daily.
func (q *QuotaStore) Usage(ctx context.Context, workspaceID string, p tenants.Period) (tenants.Usage, error) {
	if workspaceID == "" {
		return tenants.Usage{}, tenants.Errorf(tenants.CodeInvalid, "workspace id is required")
	}
	if err := checkPeriod(p); err != nil {
		return tenants.Usage{}, err
	}
	u, err := monthWithDays(q.db.gorm.WithContext(ctx), workspaceID, p,
		"SELECT used FROM quota_usage WHERE workspace_id = ? AND period = ?", workspaceID, string(p))
	if err != nil {
		return tenants.Usage{}, tenants.Internal(err, "reading usage")
	}
	return u, nil
}

// monthWithDays reads a month's total, the largest used of totalQuery, and its
// days, ascending, in one round trip: the total comes beside each day (or
// alone, on a row without a day, when the month has none).
func monthWithDays(tx *gorm.DB, ws string, p tenants.Period, totalQuery string, totalArgs ...any) (tenants.Usage, error) {
	args := append(slices.Clip(totalArgs), ws, p.Start().Format(time.DateOnly), p.End().Format(time.DateOnly))
	rows, err := tx.Raw(`SELECT total.used, d.day, d.sent, d.dead_tokens, d.failed, d.acked
		FROM (SELECT COALESCE(MAX(used), 0) AS used FROM (`+totalQuery+`) AS totals) AS total
		LEFT JOIN usage_daily AS d ON d.workspace_id = ? AND d.day >= ? AND d.day < ?
		ORDER BY d.day`, args...).Rows()
	if err != nil {
		return tenants.Usage{}, err
	}
	defer rows.Close()
	u := tenants.Usage{Period: p}
	for rows.Next() {
		var day sql.NullString
		var sent, dead, failed, acked sql.NullInt64
		if err := rows.Scan(&u.Used, &day, &sent, &dead, &failed, &acked); err != nil {
			return tenants.Usage{}, err
		}
		if day.Valid {
			u.Daily = append(u.Daily, tenants.DailyUsage{Date: day.String, Sent: sent.Int64,
				DeadTokens: dead.Int64, Failed: failed.Int64, Acked: acked.Int64})
		}
	}
	return u, rows.Err()
}

// PurgeExpiredDedupe deletes the remembered notifications whose window ended
// by now, in batches, and returns how many it deleted. It is housekeeping
// across all workspaces: Admit already ignores expired rows.
func (db *DB) PurgeExpiredDedupe(ctx context.Context, now time.Time) (int64, error) {
	const batch = 5000
	var total int64
	for {
		res := db.gorm.WithContext(ctx).Exec(`DELETE FROM dedupe WHERE (workspace_id, dedupe_key) IN
			(SELECT workspace_id, dedupe_key FROM dedupe WHERE expires_at <= ? LIMIT ?)`, now.UnixMilli(), batch)
		if res.Error != nil {
			return total, tenants.Internal(res.Error, "purging expired dedupe entries")
		}
		total += res.RowsAffected
		if res.RowsAffected < batch {
			return total, nil
		}
	}
}

func checkQuotaCall(workspaceID string, at time.Time) error {
	if workspaceID == "" {
		return tenants.Errorf(tenants.CodeInvalid, "workspace id is required")
	}
	if at.IsZero() {
		return tenants.Errorf(tenants.CodeInvalid, "the time of the event is required")
	}
	return nil
}

func checkPeriod(p tenants.Period) error {
	if _, err := time.Parse("2006-01", string(p)); err != nil {
		return tenants.Errorf(tenants.CodeInvalid, "period %q: want a month as 2006-01", p)
	}
	return nil
}

func dedupeKeyTooLong() error {
	return tenants.Errorf(tenants.CodeInvalid, "dedupe key is longer than %d bytes: pass a short hash, never the payload", maxDedupeKeyLen)
}

// workspaceLimit is the limit a workspace row publishes, for currentLimit.
type workspaceLimit struct {
	Plan       string     `gorm:"column:plan"`
	QuotaLimit *int64     `gorm:"column:quota_limit"`
	ChangedAt  *time.Time `gorm:"column:changed_at"`
}

// readWorkspaceLimit reads the limit of workspace ws; a missing row publishes none.
func readWorkspaceLimit(tx *gorm.DB, ws string) (workspaceLimit, error) {
	var row workspaceLimit
	err := tx.Raw("SELECT plan, quota_limit, changed_at FROM workspaces WHERE id = ?", ws).Scan(&row).Error
	return row, err
}

// currentLimit is the admission's limit, unless the workspace row changed
// after the version the caller read it with: then the row's plan decides, so
// a plan change applies on the next push even where the caller's copy is cached.
func (w workspaceLimit) currentLimit(a tenants.Admission) int64 {
	if w.ChangedAt == nil || w.ChangedAt.UnixMilli() <= a.LimitVersion.UnixMilli() {
		return a.Limit
	}
	return tenants.PlanLimit(tenants.Plan(w.Plan), w.QuotaLimit)
}
