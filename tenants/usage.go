package tenants

import (
	"context"
	"log/slog"
	"time"
)

// UsageArchive keeps workspace usage in the database: the monthly history
// and a durable copy of what the quota store counts.
type UsageArchive interface {
	SaveUsage(ctx context.Context, workspaceID string, u Usage) error
}

// ArchivedUsageReader reads a month as the database last archived it, to seed
// a quota store that lost its count.
type ArchivedUsageReader interface {
	ArchivedUsage(ctx context.Context, workspaceID string, p Period) (Usage, error)
}

// RollupUsage copies the current period's usage of every workspace from the
// quota store into the archive, and in the first days of a month the
// previous one too, so a Redis crash loses at most one rollup interval of
// daily detail. It returns how many workspaces it wrote.
func RollupUsage(ctx context.Context, svc *Service, quotas QuotaStore, archive UsageArchive, now time.Time) (int, error) {
	list, err := svc.Workspaces(ctx)
	if err != nil {
		return 0, err
	}
	periods := []Period{PeriodOf(now)}
	if prev := PeriodOf(now.AddDate(0, 0, -3)); prev != periods[0] {
		periods = append(periods, prev)
	}
	written := 0
	for _, ws := range list {
		for _, p := range periods {
			u, err := quotas.Usage(ctx, ws.ID, p)
			if err != nil {
				return written, err
			}
			if u.Used == 0 && len(u.Daily) == 0 {
				continue
			}
			if err := archive.SaveUsage(ctx, ws.ID, u); err != nil {
				return written, err
			}
			written++
		}
	}
	return written, nil
}

// QuotaEvent is the first time a workspace's count reached a share of its monthly limit.
type QuotaEvent struct {
	WorkspaceID string
	Period      Period
	// Threshold is the share in percent: 80 or 100.
	Threshold int
	Used      int64
	Limit     int64
	At        time.Time
}

// QuotaEventStore records the first time a workspace reaches a threshold in a period.
type QuotaEventStore interface {
	RecordQuotaEvent(ctx context.Context, workspaceID string, p Period, threshold int, used, limit int64, at time.Time) (bool, error)
}

// ThresholdLog records when a workspace reaches 80% and 100% of its monthly
// limit, once per period, for the dashboard and notifications, and logs it.
type ThresholdLog struct {
	Store QuotaEventStore
	Log   *slog.Logger
	Now   func() time.Time
}

// RecordThreshold is called by the push path on the one admission that reaches a threshold.
func (t ThresholdLog) RecordThreshold(ctx context.Context, ws *Workspace, p Period, threshold int, used, limit int64) {
	first, err := t.Store.RecordQuotaEvent(context.WithoutCancel(ctx), ws.ID, p, threshold, used, limit, t.Now().UTC())
	if err != nil {
		t.Log.Warn("recording a quota threshold failed", "workspace", ws.ID, "threshold", threshold, "err", err)
		return
	}
	if first {
		t.Log.Info("workspace reached a share of its monthly quota", "workspace", ws.ID, "plan", ws.Plan,
			"period", string(p), "threshold_percent", threshold, "used", used, "limit", limit)
	}
}
