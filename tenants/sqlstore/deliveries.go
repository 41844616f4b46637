package sqlstore

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pushgate/pushgate/tenants"
)

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

// SaveDeliveries writes a batch of delivery log entries in one statement.
// The batch travels as one JSON array parameter rather than eight bound
// values a row, which would cost an allocation per value in this process.
func (db *DB) SaveDeliveries(ctx context.Context, batch []tenants.Delivery) error {
	if len(batch) == 0 {
		return nil
	}
	q := `INSERT INTO delivery_log (workspace_id, at_us, protocol, ref, app, result, reason, token_prefix)
		SELECT json_extract(value, '$.w'), json_extract(value, '$.t'), json_extract(value, '$.p'), json_extract(value, '$.r'),
			json_extract(value, '$.a'), json_extract(value, '$.s'), json_extract(value, '$.n'), json_extract(value, '$.k')
		FROM json_each(?)`
	if db.dialect == Postgres {
		q = `INSERT INTO delivery_log (workspace_id, at_us, protocol, ref, app, result, reason, token_prefix)
			SELECT w, t, p, r, a, s, n, k FROM json_to_recordset(?::json)
			AS x(w text, t bigint, p text, r text, a text, s text, n text, k text)`
	}
	if err := db.gorm.WithContext(ctx).Exec(q, string(appendDeliveriesJSON(nil, batch))).Error; err != nil {
		return tenants.Internal(err, "writing the delivery log")
	}
	return nil
}

// appendDeliveriesJSON writes batch as a JSON array of objects with one-letter keys.
func appendDeliveriesJSON(b []byte, batch []tenants.Delivery) []byte {
	b = append(b, '[')
	for i, d := range batch {
		d = d.Bounded()
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"w":`...)
		b = appendJSONString(b, d.WorkspaceID)
		b = append(b, `,"t":`...)
		b = strconv.AppendInt(b, d.At.UnixMicro(), 10)
		for _, f := range [...]struct {
			key, v string
		}{{`,"p":`, d.Protocol}, {`,"r":`, d.Ref}, {`,"a":`, d.App}, {`,"s":`, d.Result.String()}, {`,"n":`, d.Reason}, {`,"k":`, d.TokenPrefix}} {
			b = append(b, f.key...)
			b = appendJSONString(b, f.v)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendJSONString writes s as a JSON string. Control characters become
// spaces and invalid UTF-8 U+FFFD, since PostgreSQL's text takes neither NUL
// nor broken sequences, and these fields are for people to read.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, ' ')
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
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
