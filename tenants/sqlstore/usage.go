package sqlstore

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/pushgate/pushgate/tenants"
)

// Usage history lives in three tables: usage_months holds month totals
// archived from Redis by SaveUsage; quota_usage holds the counts of the
// database quota store (QuotaStore); usage_daily holds the days of either.
// A deployment counts in one of the two stores, so a month normally has one
// total; UsageHistory reads both and shows the larger.

// maxHistoryMonths bounds one UsageHistory answer (ten years).
const maxHistoryMonths = 120

// maxQuotaEvents bounds one QuotaEvents answer.
const maxQuotaEvents = 1000

// QuotaEvent is the first time a workspace's count reached a share of its monthly limit.
type QuotaEvent = tenants.QuotaEvent

type quotaEventRow struct {
	WorkspaceID string    `gorm:"column:workspace_id"`
	Period      string    `gorm:"column:period"`
	Threshold   int       `gorm:"column:threshold"`
	Used        int64     `gorm:"column:used"`
	LimitAt     int64     `gorm:"column:limit_at"`
	CreatedAt   time.Time `gorm:"column:created_at"`
}

func (quotaEventRow) TableName() string { return "quota_events" }

// SaveUsage archives a month of a workspace as Redis holds it: the total into
// usage_months and each day into usage_daily. It writes absolute values and
// never lowers one, so running it again, or with an older reading, changes
// nothing.
func (db *DB) SaveUsage(ctx context.Context, workspaceID string, u tenants.Usage) error {
	if workspaceID == "" {
		return tenants.Errorf(tenants.CodeInvalid, "workspace id is required")
	}
	if err := checkPeriod(u.Period); err != nil {
		return err
	}
	for _, d := range u.Daily {
		day, err := time.Parse(time.DateOnly, d.Date)
		if err != nil || tenants.PeriodOf(day) != u.Period {
			return tenants.Errorf(tenants.CodeInvalid, "day %q is not a date of %s", d.Date, u.Period)
		}
	}
	larger := "max" // SQLite's two-argument max
	if db.dialect == Postgres {
		larger = "greatest"
	}
	return db.transaction(ctx, "archiving usage", func(tx *gorm.DB) error {
		err := tx.Exec(`INSERT INTO usage_months (workspace_id, period, used, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (workspace_id, period) DO UPDATE SET
				used = `+larger+`(usage_months.used, excluded.used), updated_at = excluded.updated_at`,
			workspaceID, string(u.Period), u.Used, db.now()).Error
		if err != nil || len(u.Daily) == 0 {
			return err
		}
		rows := make([]string, len(u.Daily))
		args := make([]any, 0, 6*len(u.Daily))
		for i, d := range u.Daily {
			rows[i] = "(?, ?, ?, ?, ?, ?)"
			args = append(args, workspaceID, d.Date, d.Sent, d.DeadTokens, d.Failed, d.Acked)
		}
		set := func(col string) string {
			return col + " = " + larger + "(usage_daily." + col + ", excluded." + col + ")"
		}
		return tx.Exec(`INSERT INTO usage_daily (workspace_id, day, sent, dead_tokens, failed, acked) VALUES `+
			strings.Join(rows, ", ")+` ON CONFLICT (workspace_id, day) DO UPDATE SET `+
			strings.Join([]string{set("sent"), set("dead_tokens"), set("failed"), set("acked")}, ", "),
			args...).Error
	})
}

// ArchivedUsage returns a month as the database holds it: the larger total of
// the Redis archive and the database quota store (a deployment that moved to
// Redis mid-month keeps its count), with the month's days.
func (db *DB) ArchivedUsage(ctx context.Context, workspaceID string, p tenants.Period) (tenants.Usage, error) {
	if workspaceID == "" {
		return tenants.Usage{}, tenants.Errorf(tenants.CodeInvalid, "workspace id is required")
	}
	if err := checkPeriod(p); err != nil {
		return tenants.Usage{}, err
	}
	u, err := monthWithDays(db.gorm.WithContext(ctx), workspaceID, p,
		`SELECT used FROM usage_months WHERE workspace_id = ? AND period = ?
		UNION ALL SELECT used FROM quota_usage WHERE workspace_id = ? AND period = ?`,
		workspaceID, string(p), workspaceID, string(p))
	if err != nil {
		return tenants.Usage{}, tenants.Internal(err, "reading archived usage")
	}
	return u, nil
}

// historyQuery finds a workspace's newest months with any count and the
// larger of their two totals in one round trip. Each branch reads only its
// newest rows through its primary key: the newest months*31 days hold a day
// of each of the newest months that have days.
const historyQuery = `SELECT period, MAX(used) AS used FROM (
		SELECT period, used FROM (SELECT period, used FROM usage_months
			WHERE workspace_id = ? ORDER BY period DESC LIMIT ?) AS archived
		UNION ALL
		SELECT period, used FROM (SELECT period, used FROM quota_usage
			WHERE workspace_id = ? ORDER BY period DESC LIMIT ?) AS counted
		UNION ALL
		-- Months with days but no total (only acks, say) count too.
		SELECT substr(day, 1, 7) AS period, 0 AS used FROM (SELECT day FROM usage_daily
			WHERE workspace_id = ? ORDER BY day DESC LIMIT ?) AS days
	) AS months GROUP BY period ORDER BY period DESC LIMIT ?`

// UsageHistory returns up to months of a workspace's months with any count,
// newest first, with their totals only (ArchivedUsage reads a month's days):
// every page that shows the history shows one line a month.
func (db *DB) UsageHistory(ctx context.Context, workspaceID string, months int) ([]tenants.Usage, error) {
	if workspaceID == "" {
		return nil, tenants.Errorf(tenants.CodeInvalid, "workspace id is required")
	}
	if months < 1 {
		return nil, tenants.Errorf(tenants.CodeInvalid, "months must be at least 1")
	}
	months = min(months, maxHistoryMonths)
	rows, err := db.gorm.WithContext(ctx).Raw(historyQuery,
		workspaceID, months, workspaceID, months, workspaceID, months*31, months).Rows()
	if err != nil {
		return nil, tenants.Internal(err, "reading usage history")
	}
	defer rows.Close()
	var out []tenants.Usage
	for rows.Next() {
		var u tenants.Usage
		if err := rows.Scan(&u.Period, &u.Used); err != nil {
			return nil, tenants.Internal(err, "reading usage history")
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, tenants.Internal(err, "reading usage history")
	}
	return out, nil
}

// RecordQuotaEvent records that a workspace reached threshold percent (80 or
// 100) of its limit in period p; first is true only for the first record of
// that workspace, period and threshold, however many replicas race to write it.
func (db *DB) RecordQuotaEvent(ctx context.Context, workspaceID string, p tenants.Period, threshold int, used, limit int64, at time.Time) (first bool, err error) {
	if workspaceID == "" {
		return false, tenants.Errorf(tenants.CodeInvalid, "workspace id is required")
	}
	if err := checkPeriod(p); err != nil {
		return false, err
	}
	if threshold != 80 && threshold != 100 {
		return false, tenants.Errorf(tenants.CodeInvalid, "quota threshold %d: want 80 or 100", threshold)
	}
	if at.IsZero() {
		at = db.now()
	}
	res := db.gorm.WithContext(ctx).Exec(`INSERT INTO quota_events (workspace_id, period, threshold, used, limit_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, period, threshold) DO NOTHING`,
		workspaceID, string(p), threshold, used, limit, dbTime(at))
	if res.Error != nil {
		return false, tenants.Internal(res.Error, "recording a quota threshold")
	}
	return res.RowsAffected == 1, nil
}

// QuotaEvents returns a workspace's threshold events, newest month first and 100 before 80.
func (db *DB) QuotaEvents(ctx context.Context, workspaceID string) ([]QuotaEvent, error) {
	var rows []quotaEventRow
	err := db.gorm.WithContext(ctx).Where("workspace_id = ?", workspaceID).
		Order("period DESC, threshold DESC").Limit(maxQuotaEvents).Find(&rows).Error
	if err != nil {
		return nil, tenants.Internal(err, "reading quota events")
	}
	out := make([]QuotaEvent, len(rows))
	for i, r := range rows {
		out[i] = QuotaEvent{
			WorkspaceID: r.WorkspaceID, Period: tenants.Period(r.Period), Threshold: r.Threshold,
			Used: r.Used, Limit: r.LimitAt, At: r.CreatedAt.UTC(),
		}
	}
	return out, nil
}
