package sqlstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/pushgate/pushgate/tenants"
)

var (
	_ tenants.WorkspaceFinder  = (*DB)(nil)
	_ tenants.PushGrantStore   = (*DB)(nil)
	_ tenants.OperatorKeyStore = (*DB)(nil)
)

// The operator's workspace list is paged by keyset in SQL: every order is a
// key and the id, both covered by an index of 0007_operator.sql, so a page
// costs an index range however many workspaces there are. This month's
// usage is the usage_used column, copied by RefreshWorkspaceUsage.

// listingRow is a workspace with the usage copied onto it.
type listingRow struct {
	W           workspaceRow `gorm:"embedded"`
	UsagePeriod string       `gorm:"column:usage_period"`
	UsageUsed   int64        `gorm:"column:usage_used"`
}

// workspaceCursor is where a page ends: the sort key of its last row and its id.
type workspaceCursor struct {
	Sort string `json:"s"`
	Key  string `json:"k"`
	ID   string `json:"id"`
}

func badCursor() error {
	return tenants.FieldError("after", "is not a cursor of this list; start from the first page")
}

// maxKey is above every string that starts with a given prefix, byte-wise.
const maxKey = "\U0010FFFF"

// lowerC is lower(col) compared byte-wise, as the 0007 indexes are built.
func (db *DB) lowerC(col string) string {
	if db.dialect == Postgres {
		return "lower(" + col + `) COLLATE "C"`
	}
	return "lower(" + col + ")"
}

// limitSQL is a workspace's limit in period p, as tenants.Workspace.LimitIn
// computes it; NULL for an unlimited one.
func limitSQL(p tenants.Period) (string, []any) {
	return fmt.Sprintf(`(CASE plan WHEN '%s' THEN %d WHEN '%s' THEN %d ELSE quota_limit END
		+ CASE WHEN package_period = ? THEN package_pushes ELSE 0 END)`,
		tenants.PlanFree, tenants.PlanLimit(tenants.PlanFree, nil), tenants.PlanPro, tenants.PlanLimit(tenants.PlanPro, nil)), []any{string(p)}
}

// workspaceFilters is the WHERE clause of a query, without the cursor.
func (db *DB) workspaceFilters(q tenants.WorkspaceQuery) (string, []any) {
	var conds []string
	var args []any
	if s := q.Search; s != "" {
		low := strings.ToLower(s)
		switch {
		case tenants.ValidWorkspaceID(low):
			conds, args = append(conds, "id = ?"), append(args, low)
		case strings.HasPrefix(low, "ws_"):
			conds, args = append(conds, "id >= ? AND id < ?"), append(args, low, low+maxKey)
		default:
			name, email := db.lowerC("name"), db.lowerC("contact_email")
			conds = append(conds, "(server_id = ? OR ("+name+" >= ? AND "+name+" < ?) OR ("+email+" >= ? AND "+email+" < ?))")
			args = append(args, s, low, low+maxKey, low, low+maxKey)
		}
	}
	if q.Plan != "" {
		conds, args = append(conds, "plan = ?"), append(args, string(q.Plan))
	}
	if q.Status != "" {
		conds, args = append(conds, "status = ?"), append(args, string(q.Status))
	}
	if q.NearLimit {
		limit, largs := limitSQL(q.Period)
		conds = append(conds, "usage_period = ? AND usage_used * 5 >= "+limit+" * 4")
		args = append(append(args, string(q.Period)), largs...)
	}
	if q.TermsPending {
		conds = append(conds, "NOT EXISTS (SELECT 1 FROM consents c WHERE c.workspace_id = workspaces.id AND c.terms_version = ?)")
		args = append(args, q.TermsVersion)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// listOrder is a sort's ORDER BY and its row comparison with a cursor, and
// both reversed, to read the page before a cursor.
type listOrder struct {
	order, after      string
	backOrder, before string
}

func (db *DB) workspaceOrder(s tenants.WorkspaceSort) listOrder {
	switch s {
	case tenants.SortNewest:
		return listOrder{"created_at DESC, id DESC", "(created_at, id) < (?, ?)", "created_at ASC, id ASC", "(created_at, id) > (?, ?)"}
	case tenants.SortByName:
		k := db.lowerC("name")
		return listOrder{k + " ASC, id ASC", "(" + k + ", id) > (?, ?)", k + " DESC, id DESC", "(" + k + ", id) < (?, ?)"}
	}
	return listOrder{"usage_used DESC, id DESC", "(usage_used, id) < (?, ?)", "usage_used ASC, id ASC", "(usage_used, id) > (?, ?)"}
}

// cursorKey writes the sort key of a row for its cursor.
func cursorKey(s tenants.WorkspaceSort, r *listingRow) string {
	switch s {
	case tenants.SortNewest:
		return dbTime(r.W.CreatedAt).Format(time.RFC3339Nano)
	case tenants.SortByName:
		return strings.ToLower(r.W.Name)
	}
	return strconv.FormatInt(r.UsageUsed, 10)
}

// decodeCursor reads after back into the arguments of the sort's row comparison.
func decodeCursor(s tenants.WorkspaceSort, after string) ([]any, error) {
	raw, err := base64.RawURLEncoding.DecodeString(after)
	if err != nil {
		return nil, badCursor()
	}
	var c workspaceCursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Sort != string(s) || c.ID == "" {
		return nil, badCursor()
	}
	switch s {
	case tenants.SortNewest:
		t, err := time.Parse(time.RFC3339Nano, c.Key)
		if err != nil {
			return nil, badCursor()
		}
		return []any{dbTime(t), c.ID}, nil
	case tenants.SortByName:
		return []any{c.Key, c.ID}, nil
	}
	n, err := strconv.ParseInt(c.Key, 10, 64)
	if err != nil {
		return nil, badCursor()
	}
	return []any{n, c.ID}, nil
}

// pageSQL is the query of one page of q, one row more than the page to tell
// whether another follows; a page before a cursor is read backwards, from
// the cursor on, and comes in reverse order.
func (db *DB) pageSQL(q tenants.WorkspaceQuery) (string, []any, error) {
	where, args := db.workspaceFilters(q)
	o := db.workspaceOrder(q.Sort)
	cursor, order, after := q.After, o.order, o.after
	if q.Before != "" {
		cursor, order, after = q.Before, o.backOrder, o.before
	}
	if cursor != "" {
		cargs, err := decodeCursor(q.Sort, cursor)
		if err != nil {
			return "", nil, err
		}
		if where == "" {
			where = " WHERE " + after
		} else {
			where += " AND " + after
		}
		args = append(args, cargs...)
	}
	return "SELECT * FROM workspaces" + where + " ORDER BY " + order + " LIMIT ?", append(args, q.Limit+1), nil
}

// FindWorkspaces returns one page of workspaces and their count up to
// tenants.WorkspaceCountCap.
func (db *DB) FindWorkspaces(ctx context.Context, q tenants.WorkspaceQuery) (*tenants.WorkspacePage, error) {
	query, args, err := db.pageSQL(q)
	if err != nil {
		return nil, err
	}
	tx := db.gorm.WithContext(ctx)
	var rows []listingRow
	if err := tx.Raw(query, args...).Scan(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "listing workspaces")
	}
	where, wargs := db.workspaceFilters(q)
	var total int64
	if err := tx.Raw("SELECT count(*) FROM (SELECT 1 FROM workspaces"+where+" LIMIT ?) matching",
		append(wargs, tenants.WorkspaceCountCap+1)...).Scan(&total).Error; err != nil {
		return nil, tenants.Internal(err, "counting workspaces")
	}
	page := &tenants.WorkspacePage{Total: int(min(total, tenants.WorkspaceCountCap)), TotalCapped: total > tenants.WorkspaceCountCap}
	more := len(rows) > q.Limit
	rows = rows[:min(len(rows), q.Limit)]
	cursorOf := func(r *listingRow) string {
		c, _ := json.Marshal(workspaceCursor{Sort: string(q.Sort), Key: cursorKey(q.Sort, r), ID: r.W.ID})
		return base64.RawURLEncoding.EncodeToString(c)
	}
	// Past a cursor, the rows on its side of the page were there a moment ago.
	if n := len(rows); n > 0 && q.Before != "" {
		slices.Reverse(rows)
		if more {
			page.Prev = cursorOf(&rows[0])
		}
		page.Next = cursorOf(&rows[n-1])
	} else if n > 0 {
		if more {
			page.Next = cursorOf(&rows[n-1])
		}
		if q.After != "" {
			page.Prev = cursorOf(&rows[0])
		}
	}
	page.Workspaces = make([]tenants.WorkspaceListing, len(rows))
	for i := range rows {
		l := tenants.WorkspaceListing{Workspace: *rows[i].W.workspace()}
		if tenants.Period(rows[i].UsagePeriod) == q.Period {
			l.Used = rows[i].UsageUsed
		}
		page.Workspaces[i] = l
	}
	return page, nil
}

// RefreshWorkspaceUsage copies period p's counts onto the workspaces for
// the operator's list: a workspace still showing an earlier month starts at
// zero, and each takes the larger of the Redis rollup (usage_months) and the
// database quota store (quota_usage). Counts only grow within a month, so
// only rows that changed are written. It returns how many were.
func (db *DB) RefreshWorkspaceUsage(ctx context.Context, p tenants.Period) (int64, error) {
	if err := checkPeriod(p); err != nil {
		return 0, err
	}
	var n int64
	err := db.transaction(ctx, "copying usage onto workspaces", func(tx *gorm.DB) error {
		res := tx.Exec("UPDATE workspaces SET usage_period = ?, usage_used = 0 WHERE usage_period < ?", string(p), string(p))
		if res.Error != nil {
			return res.Error
		}
		n = res.RowsAffected
		for _, table := range []string{"usage_months", "quota_usage"} {
			res := tx.Exec(`UPDATE workspaces SET usage_used = u.used FROM `+table+` u
				WHERE u.period = ? AND u.workspace_id = workspaces.id AND workspaces.usage_period = ? AND u.used > workspaces.usage_used`,
				string(p), string(p))
			if res.Error != nil {
				return res.Error
			}
			n += res.RowsAffected
		}
		return nil
	})
	return n, err
}

// GrantPushes records an operator's credit as a package of the workspace
// and adds it to the limit, with its audit entry, in one transaction.
func (db *DB) GrantPushes(ctx context.Context, workspaceID string, pkg tenants.Package, audit tenants.AuditEntry) (*tenants.Workspace, error) {
	var row workspaceRow
	err := db.transaction(ctx, "adding pushes", func(tx *gorm.DB) error {
		now := db.now()
		res := tx.Exec("UPDATE workspaces SET changed_at = changed_at WHERE id = ?", workspaceID) // takes the row lock first
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return workspaceNotFound(workspaceID)
		}
		if err := tx.Where("id = ?", workspaceID).Take(&row).Error; err != nil {
			return err
		}
		set := map[string]any{"updated_at": now, "changed_at": now}
		added, err := addPackage(tx, row.workspace(), pkg, "", now, set)
		if err != nil {
			return err
		}
		if !added {
			return tenants.Errorf(tenants.CodeConflict, "these pushes were already added (%s)", pkg.CheckoutSessionID)
		}
		if err := tx.Model(&workspaceRow{}).Where("id = ?", workspaceID).Updates(set).Error; err != nil {
			return err
		}
		if err := db.insertAudit(tx, workspaceID, audit); err != nil {
			return err
		}
		return tx.Where("id = ?", workspaceID).Take(&row).Error
	})
	if err != nil {
		return nil, err
	}
	return row.workspace(), nil
}

// OwnersOf lists a workspace's owner accounts, oldest first, without their password hashes.
func (db *DB) OwnersOf(ctx context.Context, workspaceID string) ([]tenants.OwnerAccount, error) {
	var rows []ownerAccountRow
	if err := db.gorm.WithContext(ctx).Where("workspace_id = ?", workspaceID).Order("created_at, id").
		Limit(maxAuditEntries).Find(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "listing a workspace's owners")
	}
	out := make([]tenants.OwnerAccount, len(rows))
	for i, r := range rows {
		out[i] = tenants.OwnerAccount{ID: r.ID, WorkspaceID: workspaceID, Email: r.Email, CreatedAt: r.CreatedAt.UTC()}
	}
	return out, nil
}

type operatorKeyRow struct {
	ID         int64      `gorm:"column:id;primaryKey"`
	OperatorID int64      `gorm:"column:operator_id"`
	Name       string     `gorm:"column:name"`
	KeyHash    string     `gorm:"column:key_hash"`
	Hint       string     `gorm:"column:hint"`
	CreatedAt  time.Time  `gorm:"column:created_at"`
	RevokedAt  *time.Time `gorm:"column:revoked_at"`
}

func (operatorKeyRow) TableName() string { return "operator_api_keys" }

// operatorKeyView is a key with its operator's email.
type operatorKeyView struct {
	K     operatorKeyRow `gorm:"embedded"`
	Email string         `gorm:"column:email"`
}

func (v *operatorKeyView) key() tenants.OperatorKey {
	return tenants.OperatorKey{ID: v.K.ID, OperatorID: v.K.OperatorID, Email: v.Email, Name: v.K.Name, Hint: v.K.Hint,
		CreatedAt: v.K.CreatedAt.UTC(), RevokedAt: utcPtr(v.K.RevokedAt)}
}

const operatorKeySelect = `SELECT k.id, k.operator_id, k.name, k.key_hash, k.hint, k.created_at, k.revoked_at, o.email
	FROM operator_api_keys k JOIN operators o ON o.id = k.operator_id`

// CreateOperatorKey stores a new key by its hash and fills k's id.
func (db *DB) CreateOperatorKey(ctx context.Context, k *tenants.OperatorKey, hash string) error {
	row := operatorKeyRow{OperatorID: k.OperatorID, Name: k.Name, KeyHash: hash, Hint: k.Hint, CreatedAt: dbTime(k.CreatedAt)}
	if err := db.gorm.WithContext(ctx).Create(&row).Error; err != nil {
		if db.isMissingReference(err) {
			return tenants.Errorf(tenants.CodeNotFound, "operator %d does not exist", k.OperatorID)
		}
		return tenants.Internal(err, "storing an operator key")
	}
	k.ID, k.CreatedAt = row.ID, row.CreatedAt.UTC()
	return nil
}

// LiveOperatorKey returns the unrevoked key with hash.
func (db *DB) LiveOperatorKey(ctx context.Context, hash string) (*tenants.OperatorKey, error) {
	var rows []operatorKeyView
	if err := db.gorm.WithContext(ctx).Raw(operatorKeySelect+" WHERE k.key_hash = ? AND k.revoked_at IS NULL", hash).
		Scan(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "reading an operator key")
	}
	if len(rows) == 0 {
		return nil, tenants.Errorf(tenants.CodeNotFound, "no live operator key with this hash")
	}
	k := rows[0].key()
	return &k, nil
}

// OperatorKeys lists the keys of the operator with email, or of all for "", newest first.
func (db *DB) OperatorKeys(ctx context.Context, email string) ([]tenants.OperatorKey, error) {
	q, args := operatorKeySelect, []any{}
	if email != "" {
		q, args = q+" WHERE o.email = ?", append(args, email)
	}
	var rows []operatorKeyView
	if err := db.gorm.WithContext(ctx).Raw(q+" ORDER BY k.created_at DESC, k.id DESC LIMIT ?", append(args, maxAuditEntries)...).
		Scan(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "listing operator keys")
	}
	out := make([]tenants.OperatorKey, len(rows))
	for i := range rows {
		out[i] = rows[i].key()
	}
	return out, nil
}

// RevokeOperatorKey ends a live key at at.
func (db *DB) RevokeOperatorKey(ctx context.Context, id int64, at time.Time) (*tenants.OperatorKey, error) {
	var rows []operatorKeyView
	err := db.transaction(ctx, "revoking an operator key", func(tx *gorm.DB) error {
		res := tx.Exec("UPDATE operator_api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", dbTime(at), id)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return tenants.Errorf(tenants.CodeNotFound, "no live operator key with id %d; `pushgate admin list-keys` lists them", id)
		}
		return tx.Raw(operatorKeySelect+" WHERE k.id = ?", id).Scan(&rows).Error
	})
	if err != nil {
		return nil, err
	}
	k := rows[0].key()
	return &k, nil
}
