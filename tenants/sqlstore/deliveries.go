package sqlstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

// deliveryInsertRows bounds the rows of one INSERT, under both dialects'
// limits on bound parameters.
const deliveryInsertRows = 500

type deliveryRow struct {
	ID          int64  `gorm:"column:id"`
	AtUS        int64  `gorm:"column:at_us"`
	Protocol    string `gorm:"column:protocol"`
	Ref         string `gorm:"column:ref"`
	App         string `gorm:"column:app"`
	Result      string `gorm:"column:result"`
	Reason      string `gorm:"column:reason"`
	TokenPrefix string `gorm:"column:token_prefix"`
}

// SaveDeliveries writes a batch of delivery log entries in one transaction.
func (db *DB) SaveDeliveries(ctx context.Context, batch []tenants.Delivery) error {
	if len(batch) == 0 {
		return nil
	}
	tx := db.gorm.WithContext(ctx).Begin()
	if tx.Error != nil {
		return tenants.Internal(tx.Error, "writing the delivery log")
	}
	defer tx.Rollback()
	for chunk := range slices.Chunk(batch, deliveryInsertRows) {
		rows := make([]string, len(chunk))
		args := make([]any, 0, 8*len(chunk))
		for i, d := range chunk {
			d = d.Bounded()
			rows[i] = "(?, ?, ?, ?, ?, ?, ?, ?)"
			args = append(args, d.WorkspaceID, d.At.UnixMicro(), d.Protocol, d.Ref, d.App, d.Result.String(), d.Reason, d.TokenPrefix)
		}
		err := tx.Exec(`INSERT INTO delivery_log (workspace_id, at_us, protocol, ref, app, result, reason, token_prefix) VALUES `+
			strings.Join(rows, ", "), args...).Error
		if err != nil {
			return tenants.Internal(err, "writing the delivery log")
		}
	}
	if err := tx.Commit().Error; err != nil {
		return tenants.Internal(err, "writing the delivery log")
	}
	return nil
}

// Deliveries reads one page of a workspace's delivery log, newest first,
// by keyset on (at, id): the cost of a page does not grow with its depth.
func (db *DB) Deliveries(ctx context.Context, q tenants.DeliveryQuery) (tenants.DeliveryPage, error) {
	if q.WorkspaceID == "" {
		return tenants.DeliveryPage{}, tenants.Errorf(tenants.CodeInvalid, "workspace id is required")
	}
	if q.Limit < 1 || q.Limit > 200 {
		return tenants.DeliveryPage{}, tenants.Errorf(tenants.CodeInvalid, "page size %d: want 1 to 200", q.Limit)
	}
	if q.Before != nil && q.After != nil {
		return tenants.DeliveryPage{}, tenants.Errorf(tenants.CodeInvalid, "page either before or after a position, not both")
	}
	var where strings.Builder
	where.WriteString("workspace_id = ?")
	args := []any{q.WorkspaceID}
	if q.Result != 0 {
		where.WriteString(" AND result = ?")
		args = append(args, q.Result.String())
	}
	if q.App != "" {
		where.WriteString(" AND app = ?")
		args = append(args, q.App)
	}
	order := "at_us DESC, id DESC"
	switch {
	case q.Before != nil:
		where.WriteString(" AND (at_us, id) < (?, ?)")
		args = append(args, q.Before.At.UnixMicro(), q.Before.ID)
	case q.After != nil:
		where.WriteString(" AND (at_us, id) > (?, ?)")
		args = append(args, q.After.At.UnixMicro(), q.After.ID)
		order = "at_us ASC, id ASC"
	}
	args = append(args, q.Limit+1)
	var rows []deliveryRow
	err := db.gorm.WithContext(ctx).Raw(`SELECT id, at_us, protocol, ref, app, result, reason, token_prefix
		FROM delivery_log WHERE `+where.String()+` ORDER BY `+order+` LIMIT ?`, args...).Scan(&rows).Error
	if err != nil {
		return tenants.DeliveryPage{}, tenants.Internal(err, "reading the delivery log")
	}
	more := len(rows) > q.Limit
	rows = rows[:min(len(rows), q.Limit)]
	page := tenants.DeliveryPage{Entries: make([]tenants.Delivery, len(rows))}
	for i, r := range rows {
		res, _ := tenants.ParseDeliveryResult(r.Result)
		page.Entries[i] = tenants.Delivery{ID: r.ID, WorkspaceID: q.WorkspaceID, At: time.UnixMicro(r.AtUS).UTC(),
			Protocol: r.Protocol, Ref: r.Ref, App: r.App, Result: res, Reason: r.Reason, TokenPrefix: r.TokenPrefix}
	}
	if q.After != nil {
		slices.Reverse(page.Entries)
		page.Newer, page.Older = more, true
	} else {
		page.Older, page.Newer = more, q.Before != nil
	}
	return page, nil
}

// PurgeDeliveries deletes up to limit entries older than before, oldest first.
func (db *DB) PurgeDeliveries(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, tenants.Errorf(tenants.CodeInvalid, "purge limit must be at least 1")
	}
	res := db.gorm.WithContext(ctx).Exec(`DELETE FROM delivery_log WHERE id IN
		(SELECT id FROM delivery_log WHERE at_us < ? ORDER BY at_us LIMIT ?)`, before.UnixMicro(), limit)
	if res.Error != nil {
		return 0, tenants.Internal(res.Error, "purging the delivery log")
	}
	return int(res.RowsAffected), nil
}
