package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/pushgate/pushgate/tenants"
)

var _ tenants.BillingStore = (*DB)(nil)

// billingColumns are the workspace row's billing and package columns.
type billingColumns struct {
	StripeCustomerID    *string    `gorm:"column:stripe_customer_id"`
	SubscriptionID      string     `gorm:"column:billing_subscription_id"`
	BillingPlan         string     `gorm:"column:billing_plan"`
	BillingStatus       string     `gorm:"column:billing_status"`
	PeriodEnd           *time.Time `gorm:"column:billing_period_end"`
	GraceUntil          *time.Time `gorm:"column:billing_grace_until"`
	GraceEnded          bool       `gorm:"column:billing_grace_ended"`
	SubscriptionCreated *time.Time `gorm:"column:billing_subscription_created"`
	StateAt             *time.Time `gorm:"column:billing_state_at"`
	InvoiceID           string     `gorm:"column:billing_invoice_id"`
	InvoiceCreated      *time.Time `gorm:"column:billing_invoice_created"`
	InvoicePaid         bool       `gorm:"column:billing_invoice_paid"`
	PackagePeriod       string     `gorm:"column:package_period"`
	PackagePushes       int64      `gorm:"column:package_pushes"`
}

func toBillingColumns(ws *tenants.Workspace) billingColumns {
	b := ws.Billing
	c := billingColumns{
		SubscriptionID: b.SubscriptionID, BillingPlan: string(b.Plan), BillingStatus: b.Status,
		PeriodEnd: dbTimePtr(b.CurrentPeriodEnd), GraceUntil: dbTimePtr(b.GraceUntil), GraceEnded: b.GraceEnded,
		SubscriptionCreated: dbTimePtr(b.SubscriptionCreated), StateAt: dbTimePtr(b.StateAt),
		InvoiceID: b.InvoiceID, InvoiceCreated: dbTimePtr(b.InvoiceCreated), InvoicePaid: b.InvoicePaid,
		PackagePeriod: string(ws.PackagePeriod), PackagePushes: ws.PackagePushes,
	}
	if b.CustomerID != "" {
		c.StripeCustomerID = &b.CustomerID
	}
	return c
}

func (c billingColumns) billing() tenants.Billing {
	b := tenants.Billing{
		SubscriptionID: c.SubscriptionID, Plan: tenants.Plan(c.BillingPlan), Status: c.BillingStatus,
		CurrentPeriodEnd: utcPtr(c.PeriodEnd), GraceUntil: utcPtr(c.GraceUntil), GraceEnded: c.GraceEnded,
		SubscriptionCreated: utcPtr(c.SubscriptionCreated), StateAt: utcPtr(c.StateAt),
		InvoiceID: c.InvoiceID, InvoiceCreated: utcPtr(c.InvoiceCreated), InvoicePaid: c.InvoicePaid,
	}
	if c.StripeCustomerID != nil {
		b.CustomerID = *c.StripeCustomerID
	}
	return b
}

// billingSet is the update of every billing column to b; the customer is
// only ever set, never cleared.
func billingSet(b tenants.Billing) map[string]any {
	set := map[string]any{
		"billing_subscription_id": b.SubscriptionID, "billing_plan": string(b.Plan), "billing_status": b.Status,
		"billing_period_end": dbTimePtr(b.CurrentPeriodEnd), "billing_grace_until": dbTimePtr(b.GraceUntil),
		"billing_grace_ended": b.GraceEnded, "billing_subscription_created": dbTimePtr(b.SubscriptionCreated),
		"billing_state_at": dbTimePtr(b.StateAt), "billing_invoice_id": b.InvoiceID,
		"billing_invoice_created": dbTimePtr(b.InvoiceCreated), "billing_invoice_paid": b.InvoicePaid,
	}
	if b.CustomerID != "" {
		set["stripe_customer_id"] = b.CustomerID
	}
	return set
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// auditSource is an entry's source, or its actor's prefix ("operator:cli:ann" → "operator").
func auditSource(a tenants.AuditEntry) string {
	if a.Source != "" {
		return a.Source
	}
	if prefix, _, ok := strings.Cut(a.Actor, ":"); ok {
		return prefix
	}
	return ""
}

type stripeEventRow struct {
	ID          string    `gorm:"column:id;primaryKey"`
	Type        string    `gorm:"column:type"`
	WorkspaceID string    `gorm:"column:workspace_id"`
	Outcome     string    `gorm:"column:outcome"`
	CreatedAt   time.Time `gorm:"column:created_at"`
	ReceivedAt  time.Time `gorm:"column:received_at"`
}

func (stripeEventRow) TableName() string { return "stripe_events" }

type packageRow struct {
	ID                int64     `gorm:"column:id;primaryKey"`
	WorkspaceID       string    `gorm:"column:workspace_id"`
	Period            string    `gorm:"column:period"`
	Pushes            int64     `gorm:"column:pushes"`
	CheckoutSessionID string    `gorm:"column:checkout_session_id"`
	EventID           string    `gorm:"column:event_id"`
	CreatedAt         time.Time `gorm:"column:created_at"`
}

func (packageRow) TableName() string { return "push_packages" }

// ApplyBillingEvent records the event id first, so a replay finds it and
// changes nothing (and SQLite's write lock is taken before anything is
// read), then locks the event's workspace row, lets decide look at it, and
// writes the update with its audit entry, all in one transaction.
func (db *DB) ApplyBillingEvent(ctx context.Context, ev tenants.BillingEvent, decide func(ws *tenants.Workspace) (*tenants.BillingUpdate, error)) (*tenants.Workspace, tenants.BillingOutcome, error) {
	if ev.ID == "" || ev.Type == "" {
		return nil, "", tenants.Internal(errors.New("event id and type are required"), "applying a Stripe event")
	}
	var ws *tenants.Workspace
	var outcome tenants.BillingOutcome
	err := db.transaction(ctx, "applying a Stripe event", func(tx *gorm.DB) error {
		now := db.now()
		ws, outcome = nil, tenants.BillingUnchanged
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&stripeEventRow{
			ID: ev.ID, Type: ev.Type, CreatedAt: dbTime(ev.At), ReceivedAt: now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			outcome = tenants.BillingReplayed
			return nil
		}
		row, err := lockBillingWorkspace(tx, ev)
		if err != nil {
			return err
		}
		if row == nil {
			outcome = tenants.BillingNotHere
			return markEvent(tx, ev.ID, "", outcome)
		}
		current := row.workspace()
		upd, err := decide(current)
		if err != nil {
			return err
		}
		if upd != nil {
			applied, err := db.applyBillingUpdate(tx, current, upd, ev, now)
			if err != nil {
				return err
			}
			if applied {
				outcome = tenants.BillingApplied
				if err := tx.Where("id = ?", current.ID).Take(row).Error; err != nil {
					return err
				}
			}
		}
		ws = row.workspace()
		return markEvent(tx, ev.ID, ws.ID, outcome)
	})
	if err != nil {
		return nil, "", err
	}
	return ws, outcome, nil
}

// lockBillingWorkspace finds the event's workspace, by customer first, and
// locks its row with a no-op write; nil when this database has none.
func lockBillingWorkspace(tx *gorm.DB, ev tenants.BillingEvent) (*workspaceRow, error) {
	id := ""
	if ev.CustomerID != "" {
		var ids []string
		if err := tx.Raw("SELECT id FROM workspaces WHERE stripe_customer_id = ?", ev.CustomerID).Scan(&ids).Error; err != nil {
			return nil, err
		}
		if len(ids) > 0 {
			id = ids[0]
		}
	}
	if id == "" {
		id = ev.WorkspaceID
	}
	if id == "" {
		return nil, nil
	}
	res := tx.Exec("UPDATE workspaces SET changed_at = changed_at WHERE id = ?", id)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	var row workspaceRow
	if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, err
	}
	return &row, nil
}

func markEvent(tx *gorm.DB, id, workspaceID string, outcome tenants.BillingOutcome) error {
	return tx.Model(&stripeEventRow{}).Where("id = ?", id).
		Updates(map[string]any{"workspace_id": workspaceID, "outcome": string(outcome)}).Error
}

// applyBillingUpdate writes upd to the locked workspace row cur. A package
// whose Checkout session is already recorded makes the whole update a no-op.
func (db *DB) applyBillingUpdate(tx *gorm.DB, cur *tenants.Workspace, upd *tenants.BillingUpdate, ev tenants.BillingEvent, now time.Time) (bool, error) {
	set := billingSet(upd.Billing)
	set["updated_at"], set["changed_at"] = now, now
	if upd.Plan != "" && upd.Plan != cur.Plan {
		set["plan"], set["quota_limit"] = string(upd.Plan), nil
	}
	if p := upd.Package; p != nil {
		if added, err := addPackage(tx, cur, *p, ev.ID, now, set); err != nil || !added {
			return false, err
		}
	}
	if err := tx.Model(&workspaceRow{}).Where("id = ?", cur.ID).Updates(set).Error; err != nil {
		if db.isDuplicate(err) {
			return false, tenants.Errorf(tenants.CodeConflict, "Stripe customer %s belongs to another workspace", upd.Billing.CustomerID)
		}
		return false, err
	}
	return true, db.insertAudit(tx, cur.ID, upd.Audit)
}

// addPackage records a package of the locked workspace row cur and puts its
// effect on the limit into set; false when its Checkout session (or grant
// id) is already recorded.
func addPackage(tx *gorm.DB, cur *tenants.Workspace, p tenants.Package, eventID string, now time.Time, set map[string]any) (bool, error) {
	row := packageRow{WorkspaceID: cur.ID, Period: string(p.Period), Pushes: p.Pushes,
		CheckoutSessionID: p.CheckoutSessionID, EventID: eventID, CreatedAt: now}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	if res.Error != nil {
		return false, res.Error
	}
	if res.RowsAffected == 0 {
		return false, nil
	}
	// The row lock makes this read-modify-write safe; a package of an
	// earlier month than the one counted is recorded but no longer counts.
	switch {
	case string(p.Period) > string(cur.PackagePeriod):
		set["package_period"], set["package_pushes"] = string(p.Period), p.Pushes
	case p.Period == cur.PackagePeriod:
		set["package_pushes"] = cur.PackagePushes + p.Pushes
	}
	return true, nil
}

// SetStripeCustomer stores customerID for a workspace that has none and
// returns the customer the workspace has afterwards.
func (db *DB) SetStripeCustomer(ctx context.Context, workspaceID, customerID string) (string, error) {
	var stored []*string
	err := db.transaction(ctx, "storing a Stripe customer", func(tx *gorm.DB) error {
		res := tx.Exec("UPDATE workspaces SET stripe_customer_id = ? WHERE id = ? AND stripe_customer_id IS NULL", customerID, workspaceID)
		if res.Error != nil {
			if db.isDuplicate(res.Error) {
				return tenants.Errorf(tenants.CodeConflict, "Stripe customer %s belongs to another workspace", customerID)
			}
			return res.Error
		}
		return tx.Raw("SELECT stripe_customer_id FROM workspaces WHERE id = ?", workspaceID).Scan(&stored).Error
	})
	if err != nil {
		return "", err
	}
	if len(stored) == 0 || stored[0] == nil {
		return "", workspaceNotFound(workspaceID)
	}
	return *stored[0], nil
}

// GraceExpired lists the workspaces whose grace ended at or before now and that have not fallen back yet.
func (db *DB) GraceExpired(ctx context.Context, now time.Time) ([]string, error) {
	var ids []string
	if err := db.gorm.WithContext(ctx).Raw("SELECT id FROM workspaces WHERE billing_grace_until <= ? AND NOT billing_grace_ended ORDER BY id",
		dbTime(now)).Scan(&ids).Error; err != nil {
		return nil, tenants.Internal(err, "listing workspaces whose payment grace ended")
	}
	return ids, nil
}

// EndGrace marks a workspace's grace ended and moves it to free when its
// plan is the one its subscription gave it; an operator's own choice stays.
func (db *DB) EndGrace(ctx context.Context, workspaceID string, now time.Time, audit tenants.AuditEntry) (*tenants.Workspace, bool, error) {
	now = dbTime(now)
	var row workspaceRow
	ended := false
	err := db.transaction(ctx, "ending a payment grace", func(tx *gorm.DB) error {
		ended = false
		res := tx.Exec("UPDATE workspaces SET changed_at = changed_at WHERE id = ? AND billing_grace_until <= ? AND NOT billing_grace_ended", workspaceID, now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		if err := tx.Where("id = ?", workspaceID).Take(&row).Error; err != nil {
			return err
		}
		set := map[string]any{"billing_grace_ended": true, "updated_at": now, "changed_at": dbTime(db.gorm.NowFunc())}
		detail := fmt.Sprintf("grace_until=%s plan=%s kept (not the subscription's)", row.Billing.GraceUntil.UTC().Format(time.RFC3339), row.Plan)
		if row.Plan == row.Billing.BillingPlan && row.Plan != string(tenants.PlanFree) {
			set["plan"], set["quota_limit"] = string(tenants.PlanFree), nil
			detail = fmt.Sprintf("grace_until=%s plan=%s->free", row.Billing.GraceUntil.UTC().Format(time.RFC3339), row.Plan)
		}
		if err := tx.Model(&workspaceRow{}).Where("id = ?", workspaceID).Updates(set).Error; err != nil {
			return err
		}
		if audit.CreatedAt.IsZero() {
			audit.CreatedAt = now
		}
		if audit.Detail == "" {
			audit.Detail = detail
		} else {
			audit.Detail += " " + detail
		}
		if err := db.insertAudit(tx, workspaceID, audit); err != nil {
			return err
		}
		ended = true
		return tx.Where("id = ?", workspaceID).Take(&row).Error
	})
	if err != nil || !ended {
		return nil, false, err
	}
	return row.workspace(), true, nil
}

// Packages lists the packages a workspace bought, newest first.
func (db *DB) Packages(ctx context.Context, workspaceID string) ([]tenants.Package, error) {
	var rows []packageRow
	if err := db.gorm.WithContext(ctx).Where("workspace_id = ?", workspaceID).
		Order("created_at DESC, id DESC").Limit(maxAuditEntries).Find(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "reading push packages")
	}
	out := make([]tenants.Package, len(rows))
	for i, r := range rows {
		out[i] = tenants.Package{CheckoutSessionID: r.CheckoutSessionID, Pushes: r.Pushes, Period: tenants.Period(r.Period),
			EventID: r.EventID, CreatedAt: r.CreatedAt.UTC()}
	}
	return out, nil
}
