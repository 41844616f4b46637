package sqlstore

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/pushgate/pushgate/tenants"
)

var _ tenants.OwnerLinkStore = (*DB)(nil)

type ownerLinkRow struct {
	ID          int64      `gorm:"column:id;primaryKey"`
	Kind        string     `gorm:"column:kind"`
	TokenHash   string     `gorm:"column:token_hash"`
	WorkspaceID string     `gorm:"column:workspace_id"`
	AccountID   int64      `gorm:"column:account_id"`
	Email       string     `gorm:"column:email"`
	CreatedBy   string     `gorm:"column:created_by"`
	CreatedAt   time.Time  `gorm:"column:created_at"`
	ExpiresAt   time.Time  `gorm:"column:expires_at"`
	UsedAt      *time.Time `gorm:"column:used_at"`
}

func (ownerLinkRow) TableName() string { return "owner_links" }

func (r ownerLinkRow) link() *tenants.OwnerLink {
	return &tenants.OwnerLink{ID: r.ID, Kind: tenants.LinkKind(r.Kind), TokenHash: r.TokenHash, WorkspaceID: r.WorkspaceID,
		AccountID: r.AccountID, Email: r.Email, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC()}
}

var linkGone = &tenants.Error{Code: tenants.CodeNotFound, Reason: "link_gone",
	Message: "This link does not work any more: it was used, replaced by a newer one, or it expired. Ask for a new one."}

// CreateOwnerLink writes l, ending the unused links it supersedes in the same transaction.
func (db *DB) CreateOwnerLink(ctx context.Context, l *tenants.OwnerLink, audit *tenants.AuditEntry) error {
	l.Email = normalEmail(l.Email)
	l.CreatedAt, l.ExpiresAt = dbTime(l.CreatedAt), dbTime(l.ExpiresAt)
	row := ownerLinkRow{Kind: string(l.Kind), TokenHash: l.TokenHash, WorkspaceID: l.WorkspaceID, AccountID: l.AccountID,
		Email: l.Email, CreatedBy: l.CreatedBy, CreatedAt: l.CreatedAt, ExpiresAt: l.ExpiresAt}
	err := db.transaction(ctx, "creating an owner link", func(tx *gorm.DB) error {
		older := tx.Model(&ownerLinkRow{}).Where("kind = ? AND workspace_id = ? AND used_at IS NULL", row.Kind, row.WorkspaceID)
		switch l.Kind {
		case tenants.LinkReset:
			older = older.Where("account_id = ?", row.AccountID)
		case tenants.LinkInvite:
			older = older.Where("email = ?", row.Email)
		}
		if err := older.Update("used_at", row.CreatedAt).Error; err != nil {
			return err
		}
		if err := tx.Create(&row).Error; err != nil {
			if db.isMissingReference(err) {
				return workspaceNotFound(row.WorkspaceID)
			}
			return err
		}
		if audit != nil {
			return db.insertAudit(tx, row.WorkspaceID, *audit)
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.ID = row.ID
	return nil
}

// OwnerLink returns the live, unused link of kind with tokenHash.
func (db *DB) OwnerLink(ctx context.Context, kind tenants.LinkKind, tokenHash string, now time.Time) (*tenants.OwnerLink, error) {
	row, err := liveLink(db.gorm.WithContext(ctx), kind, tokenHash, now)
	if err != nil {
		return nil, err
	}
	return row.link(), nil
}

func liveLink(tx *gorm.DB, kind tenants.LinkKind, tokenHash string, now time.Time) (*ownerLinkRow, error) {
	var row ownerLinkRow
	res := tx.Where("kind = ? AND token_hash = ? AND used_at IS NULL AND expires_at > ?", string(kind), tokenHash, dbTime(now)).
		Limit(1).Find(&row)
	if res.Error != nil {
		return nil, tenants.Internal(res.Error, "reading an owner link")
	}
	if res.RowsAffected == 0 {
		return nil, linkGone
	}
	return &row, nil
}

// useLink marks a live link used; of concurrent uses exactly one succeeds,
// since the update is conditional on the link still being unused.
func useLink(tx *gorm.DB, kind tenants.LinkKind, tokenHash string, now time.Time) (*ownerLinkRow, error) {
	row, err := liveLink(tx, kind, tokenHash, now)
	if err != nil {
		return nil, err
	}
	res := tx.Model(&ownerLinkRow{}).Where("id = ? AND used_at IS NULL", row.ID).Update("used_at", dbTime(now))
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, linkGone
	}
	return row, nil
}

// ResetPassword uses a reset link, sets the password and ends the account's sessions.
func (db *DB) ResetPassword(ctx context.Context, tokenHash string, now time.Time, passwordHash string) (*tenants.OwnerAccount, error) {
	var acct ownerAccountRow
	err := db.transaction(ctx, "resetting a password", func(tx *gorm.DB) error {
		link, err := useLink(tx, tenants.LinkReset, tokenHash, now)
		if err != nil {
			return err
		}
		res := tx.Where("id = ? AND workspace_id = ?", link.AccountID, link.WorkspaceID).Limit(1).Find(&acct)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return linkGone
		}
		if err := tx.Model(&ownerAccountRow{}).Where("id = ?", acct.ID).Update("password_hash", passwordHash).Error; err != nil {
			return err
		}
		if err := endResetLinks(tx, acct.ID, now); err != nil {
			return err
		}
		return tx.Where("kind = ? AND account_id = ?", string(tenants.SessionOwner), acct.ID).Delete(&sessionRow{}).Error
	})
	if err != nil {
		return nil, err
	}
	return &tenants.OwnerAccount{ID: acct.ID, WorkspaceID: *acct.WorkspaceID, Email: acct.Email, CreatedAt: acct.CreatedAt.UTC()}, nil
}

// endResetLinks ends every unused reset link of an account, as a new password makes them moot.
func endResetLinks(tx *gorm.DB, accountID int64, now time.Time) error {
	return tx.Model(&ownerLinkRow{}).Where("kind = ? AND account_id = ? AND used_at IS NULL", string(tenants.LinkReset), accountID).
		Update("used_at", dbTime(now)).Error
}

// AcceptOwnerLink uses a claim or invitation and creates the owner account it gives.
func (db *DB) AcceptOwnerLink(ctx context.Context, kind tenants.LinkKind, tokenHash string, now time.Time, a *tenants.OwnerAccount, audit tenants.AuditEntry) (*tenants.OwnerLink, error) {
	if kind != tenants.LinkClaim && kind != tenants.LinkInvite {
		return nil, tenants.Errorf(tenants.CodeInvalid, "a %s link gives no account", kind)
	}
	var link *ownerLinkRow
	a.Email = normalEmail(a.Email)
	a.CreatedAt = dbTime(now)
	err := db.transaction(ctx, "accepting an owner link", func(tx *gorm.DB) error {
		var err error
		if link, err = useLink(tx, kind, tokenHash, now); err != nil {
			return err
		}
		if kind == tenants.LinkInvite {
			a.Email = link.Email
		}
		if kind == tenants.LinkClaim {
			var owners int64
			if err := tx.Model(&ownerAccountRow{}).Where("workspace_id = ?", link.WorkspaceID).Count(&owners).Error; err != nil {
				return err
			}
			if owners > 0 {
				return &tenants.Error{Code: tenants.CodeConflict, Reason: "already_claimed",
					Message: "This workspace already has an owner. Ask them to invite you from their account page."}
			}
		}
		a.WorkspaceID = link.WorkspaceID
		row := ownerAccountRow{WorkspaceID: &a.WorkspaceID, Email: a.Email, PasswordHash: a.PasswordHash, CreatedAt: a.CreatedAt}
		if err := tx.Create(&row).Error; err != nil {
			if db.isDuplicate(err) {
				return &tenants.Error{Code: tenants.CodeConflict, Field: "email", Reason: "email_taken",
					Message: "an account with this email already owns a workspace, and an account owns one workspace only; use another email, or sign in with this one"}
			}
			return err
		}
		a.ID = row.ID
		audit.Detail = a.Email
		return db.insertAudit(tx, link.WorkspaceID, audit)
	})
	if err != nil {
		return nil, err
	}
	return link.link(), nil
}

// OwnerAccounts lists the owners of a workspace, oldest first.
func (db *DB) OwnerAccounts(ctx context.Context, workspaceID string) ([]tenants.OwnerAccount, error) {
	var rows []ownerAccountRow
	if err := db.gorm.WithContext(ctx).Where("workspace_id = ?", workspaceID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "listing owner accounts")
	}
	out := make([]tenants.OwnerAccount, len(rows))
	for i, r := range rows {
		out[i] = tenants.OwnerAccount{ID: r.ID, WorkspaceID: workspaceID, Email: r.Email, CreatedAt: r.CreatedAt.UTC()}
	}
	return out, nil
}

// PendingInvites lists the workspace's live invitations, newest first.
func (db *DB) PendingInvites(ctx context.Context, workspaceID string, now time.Time) ([]tenants.OwnerLink, error) {
	var rows []ownerLinkRow
	err := db.gorm.WithContext(ctx).Where("workspace_id = ? AND kind = ? AND used_at IS NULL AND expires_at > ?",
		workspaceID, string(tenants.LinkInvite), dbTime(now)).Order("created_at DESC, id DESC").Limit(100).Find(&rows).Error
	if err != nil {
		return nil, tenants.Internal(err, "listing invitations")
	}
	out := make([]tenants.OwnerLink, len(rows))
	for i, r := range rows {
		out[i] = *r.link()
	}
	return out, nil
}

// RevokeInvite ends an unused invitation of the workspace.
func (db *DB) RevokeInvite(ctx context.Context, workspaceID string, id int64, now time.Time, audit tenants.AuditEntry) error {
	return db.transaction(ctx, "revoking an invitation", func(tx *gorm.DB) error {
		var row ownerLinkRow
		res := tx.Where("id = ? AND workspace_id = ? AND kind = ? AND used_at IS NULL", id, workspaceID, string(tenants.LinkInvite)).Limit(1).Find(&row)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return tenants.Errorf(tenants.CodeNotFound, "no pending invitation %d", id)
		}
		if err := tx.Model(&ownerLinkRow{}).Where("id = ?", row.ID).Update("used_at", dbTime(now)).Error; err != nil {
			return err
		}
		audit.Detail = row.Email
		return db.insertAudit(tx, workspaceID, audit)
	})
}

// RemoveOwner deletes another owner of the workspace with their sessions, never the last one.
func (db *DB) RemoveOwner(ctx context.Context, workspaceID string, accountID int64, audit tenants.AuditEntry) error {
	return db.transaction(ctx, "removing an owner", func(tx *gorm.DB) error {
		// Writing the workspace row first serialises removals per workspace
		// on both databases, so two concurrent ones cannot leave no owner.
		if err := tx.Exec("UPDATE workspaces SET id = id WHERE id = ?", workspaceID).Error; err != nil {
			return err
		}
		var rows []ownerAccountRow
		if err := tx.Where("workspace_id = ?", workspaceID).Find(&rows).Error; err != nil {
			return err
		}
		var victim *ownerAccountRow
		for i := range rows {
			if rows[i].ID == accountID {
				victim = &rows[i]
			}
		}
		if victim == nil {
			return tenants.Errorf(tenants.CodeNotFound, "no owner %d of this workspace", accountID)
		}
		if len(rows) == 1 {
			return tenants.Errorf(tenants.CodeConflict, "%s is the workspace's only owner; a workspace keeps at least one", victim.Email)
		}
		if err := tx.Where("id = ? AND workspace_id = ?", accountID, workspaceID).Delete(&ownerAccountRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("kind = ? AND account_id = ?", string(tenants.SessionOwner), accountID).Delete(&sessionRow{}).Error; err != nil {
			return err
		}
		if err := endResetLinks(tx, accountID, db.gorm.NowFunc()); err != nil {
			return err
		}
		audit.Detail = victim.Email
		return db.insertAudit(tx, workspaceID, audit)
	})
}
