package sqlstore

import (
	"context"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

type overageRow struct {
	WorkspaceID string     `gorm:"column:workspace_id;primaryKey"`
	Period      string     `gorm:"column:period;primaryKey"`
	Seq         int        `gorm:"column:seq;primaryKey"`
	Quantity    int64      `gorm:"column:quantity"`
	CustomerID  string     `gorm:"column:customer_id"`
	CreatedAt   time.Time  `gorm:"column:created_at"`
	ReportedAt  *time.Time `gorm:"column:reported_at"`
}

func (overageRow) TableName() string { return "overage_reports" }

// OverageBatches lists a workspace's overage batches of period p by seq.
func (db *DB) OverageBatches(ctx context.Context, workspaceID string, p tenants.Period) ([]tenants.OverageBatch, error) {
	var rows []overageRow
	if err := db.gorm.WithContext(ctx).Where("workspace_id = ? AND period = ?", workspaceID, string(p)).
		Order("seq").Find(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "reading overage reports")
	}
	out := make([]tenants.OverageBatch, len(rows))
	for i, r := range rows {
		out[i] = tenants.OverageBatch{WorkspaceID: r.WorkspaceID, Period: tenants.Period(r.Period), Seq: r.Seq,
			Quantity: r.Quantity, CustomerID: r.CustomerID, CreatedAt: r.CreatedAt.UTC()}
		if r.ReportedAt != nil {
			at := r.ReportedAt.UTC()
			out[i].ReportedAt = &at
		}
	}
	return out, nil
}

// AddOverageBatch records a batch before it is sent; false when its seq is taken.
func (db *DB) AddOverageBatch(ctx context.Context, b tenants.OverageBatch) (bool, error) {
	row := overageRow{WorkspaceID: b.WorkspaceID, Period: string(b.Period), Seq: b.Seq, Quantity: b.Quantity,
		CustomerID: b.CustomerID, CreatedAt: dbTime(b.CreatedAt)}
	err := db.gorm.WithContext(ctx).Create(&row).Error
	switch {
	case err == nil:
		return true, nil
	case db.isDuplicate(err):
		return false, nil
	case db.isMissingReference(err):
		return false, workspaceNotFound(b.WorkspaceID)
	}
	return false, tenants.Internal(err, "recording an overage report")
}

// MarkOverageReported records that Stripe took a batch.
func (db *DB) MarkOverageReported(ctx context.Context, workspaceID string, p tenants.Period, seq int, at time.Time) error {
	if err := db.gorm.WithContext(ctx).Model(&overageRow{}).
		Where("workspace_id = ? AND period = ? AND seq = ? AND reported_at IS NULL", workspaceID, string(p), seq).
		Update("reported_at", dbTime(at)).Error; err != nil {
		return tenants.Internal(err, "marking an overage report sent")
	}
	return nil
}

// SubscribedWorkspaces lists the workspaces that have a Stripe subscription.
func (db *DB) SubscribedWorkspaces(ctx context.Context) ([]tenants.Workspace, error) {
	var rows []workspaceRow
	if err := db.gorm.WithContext(ctx).Where("billing_subscription_id <> ''").Order("id").Find(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "listing subscribed workspaces")
	}
	out := make([]tenants.Workspace, len(rows))
	for i := range rows {
		out[i] = *rows[i].workspace()
	}
	return out, nil
}
