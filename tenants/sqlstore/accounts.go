package sqlstore

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/pushgate/pushgate/tenants"
)

var _ tenants.AccountStore = (*DB)(nil)

type ownerAccountRow struct {
	ID           int64     `gorm:"column:id;primaryKey"`
	WorkspaceID  *string   `gorm:"column:workspace_id"`
	Email        string    `gorm:"column:email"`
	PasswordHash string    `gorm:"column:password_hash"`
	CreatedAt    time.Time `gorm:"column:created_at"`
}

func (ownerAccountRow) TableName() string { return "owner_accounts" }

type sessionRow struct {
	IDHash      string    `gorm:"column:id_hash;primaryKey"`
	Kind        string    `gorm:"column:kind"`
	AccountID   int64     `gorm:"column:account_id"`
	WorkspaceID string    `gorm:"column:workspace_id"`
	Email       string    `gorm:"column:email"`
	CSRF        string    `gorm:"column:csrf"`
	CreatedAt   time.Time `gorm:"column:created_at"`
	ExpiresAt   time.Time `gorm:"column:expires_at"`
}

func (sessionRow) TableName() string { return "web_sessions" }

// CreateOwnerAccount writes a, filling its ID and lower-casing its email.
func (db *DB) CreateOwnerAccount(ctx context.Context, a *tenants.OwnerAccount) error {
	a.Email = normalEmail(a.Email)
	if a.CreatedAt.IsZero() {
		a.CreatedAt = db.gorm.NowFunc()
	}
	a.CreatedAt = dbTime(a.CreatedAt)
	row := ownerAccountRow{WorkspaceID: &a.WorkspaceID, Email: a.Email, PasswordHash: a.PasswordHash, CreatedAt: a.CreatedAt}
	if err := db.gorm.WithContext(ctx).Create(&row).Error; err != nil {
		switch {
		case db.isDuplicate(err):
			return &tenants.Error{Code: tenants.CodeConflict, Field: "email", Message: "an account with this email already exists: sign in instead"}
		case db.isMissingReference(err):
			return tenants.Errorf(tenants.CodeNotFound, "no workspace %s", a.WorkspaceID)
		}
		return tenants.Internal(err, "creating an owner account")
	}
	a.ID = row.ID
	return nil
}

// ReserveOwnerEmail writes a without a workspace, replacing a stale reservation of its email.
func (db *DB) ReserveOwnerEmail(ctx context.Context, a *tenants.OwnerAccount, staleBefore time.Time) error {
	a.Email = normalEmail(a.Email)
	if a.CreatedAt.IsZero() {
		a.CreatedAt = db.gorm.NowFunc()
	}
	a.CreatedAt, a.WorkspaceID = dbTime(a.CreatedAt), ""
	row := ownerAccountRow{Email: a.Email, PasswordHash: a.PasswordHash, CreatedAt: a.CreatedAt}
	err := db.transaction(ctx, "reserving an owner email", func(tx *gorm.DB) error {
		if err := tx.Where("email = ? AND workspace_id IS NULL AND created_at < ?", a.Email, dbTime(staleBefore)).
			Delete(&ownerAccountRow{}).Error; err != nil {
			return err
		}
		if err := tx.Create(&row).Error; err != nil {
			if db.isDuplicate(err) {
				return &tenants.Error{Code: tenants.CodeConflict, Field: "email", Message: "an account with this email already exists: sign in instead"}
			}
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.ID = row.ID
	return nil
}

// AttachOwnerAccount sets the workspace of a reserved account.
func (db *DB) AttachOwnerAccount(ctx context.Context, accountID int64, workspaceID string) error {
	res := db.gorm.WithContext(ctx).Model(&ownerAccountRow{}).Where("id = ? AND workspace_id IS NULL", accountID).
		Update("workspace_id", workspaceID)
	if res.Error != nil {
		if db.isMissingReference(res.Error) {
			return tenants.Errorf(tenants.CodeNotFound, "no workspace %s", workspaceID)
		}
		return tenants.Internal(res.Error, "attaching an owner account")
	}
	if res.RowsAffected == 0 {
		return tenants.Errorf(tenants.CodeNotFound, "no reserved owner account %d", accountID)
	}
	return nil
}

// ReleaseOwnerEmail deletes a reservation; an attached account is never deleted here.
func (db *DB) ReleaseOwnerEmail(ctx context.Context, accountID int64) error {
	if err := db.gorm.WithContext(ctx).Where("id = ? AND workspace_id IS NULL", accountID).Delete(&ownerAccountRow{}).Error; err != nil {
		return tenants.Internal(err, "releasing an owner email")
	}
	return nil
}

// OwnerAccountByEmail returns the owner account with email, ignoring case.
func (db *DB) OwnerAccountByEmail(ctx context.Context, email string) (*tenants.OwnerAccount, error) {
	var row ownerAccountRow
	res := db.gorm.WithContext(ctx).Where("email = ? AND workspace_id IS NOT NULL", normalEmail(email)).Limit(1).Find(&row)
	if res.Error != nil {
		return nil, tenants.Internal(res.Error, "reading an owner account")
	}
	if res.RowsAffected == 0 {
		return nil, tenants.Errorf(tenants.CodeNotFound, "no account with this email")
	}
	return &tenants.OwnerAccount{ID: row.ID, WorkspaceID: *row.WorkspaceID, Email: row.Email,
		PasswordHash: row.PasswordHash, CreatedAt: row.CreatedAt.UTC()}, nil
}

// SetOwnerPassword replaces the hash and ends the account's other sessions.
func (db *DB) SetOwnerPassword(ctx context.Context, accountID int64, hash, keepSession string) error {
	return db.transaction(ctx, "changing a password", func(tx *gorm.DB) error {
		res := tx.Model(&ownerAccountRow{}).Where("id = ? AND workspace_id IS NOT NULL", accountID).Update("password_hash", hash)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return tenants.Errorf(tenants.CodeNotFound, "no owner account %d", accountID)
		}
		// A reset link asked for before the change must not undo it.
		if err := endResetLinks(tx, accountID, db.gorm.NowFunc()); err != nil {
			return err
		}
		return tx.Where("kind = ? AND account_id = ? AND id_hash <> ?", string(tenants.SessionOwner), accountID, keepSession).
			Delete(&sessionRow{}).Error
	})
}

// CreateSession writes s and drops every session that had expired by its creation.
func (db *DB) CreateSession(ctx context.Context, s tenants.Session) error {
	row := sessionRow{IDHash: s.IDHash, Kind: string(s.Kind), AccountID: s.AccountID, WorkspaceID: s.WorkspaceID,
		Email: s.Email, CSRF: s.CSRF, CreatedAt: dbTime(s.CreatedAt), ExpiresAt: dbTime(s.ExpiresAt)}
	return db.transaction(ctx, "creating a session", func(tx *gorm.DB) error {
		if err := tx.Where("expires_at <= ?", row.CreatedAt).Delete(&sessionRow{}).Error; err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
}

// Session returns the session with idHash that is live at now.
func (db *DB) Session(ctx context.Context, idHash string, now time.Time) (*tenants.Session, error) {
	var row sessionRow
	res := db.gorm.WithContext(ctx).Where("id_hash = ? AND expires_at > ?", idHash, dbTime(now)).Limit(1).Find(&row)
	if res.Error != nil {
		return nil, tenants.Internal(res.Error, "reading a session")
	}
	if res.RowsAffected == 0 {
		return nil, tenants.Errorf(tenants.CodeNotFound, "no such session, or it expired")
	}
	return &tenants.Session{IDHash: row.IDHash, Kind: tenants.SessionKind(row.Kind), AccountID: row.AccountID,
		WorkspaceID: row.WorkspaceID, Email: row.Email, CSRF: row.CSRF,
		CreatedAt: row.CreatedAt.UTC(), ExpiresAt: row.ExpiresAt.UTC()}, nil
}

// DeleteSession ends a session; an unknown one is not an error.
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	if err := db.gorm.WithContext(ctx).Where("id_hash = ?", idHash).Delete(&sessionRow{}).Error; err != nil {
		return tenants.Internal(err, "deleting a session")
	}
	return nil
}

// attemptsKept is longer than any window of sign-in or sign-up attempts.
const attemptsKept = 24 * time.Hour

// AddSignInAttempt counts one attempt in one statement, so concurrent
// attempts each see a distinct count.
func (db *DB) AddSignInAttempt(ctx context.Context, subject string, at time.Time, window time.Duration) (int, error) {
	at = dbTime(at)
	expired := at.Add(-window)
	// Windows a day old are over for every subject: dropping them keeps the
	// table as small as the last day's attempts.
	if err := db.gorm.WithContext(ctx).Exec("DELETE FROM signin_attempts WHERE window_start < ?", at.Add(-attemptsKept)).Error; err != nil {
		return 0, tenants.Internal(err, "forgetting old sign-in attempts")
	}
	var n int
	err := db.gorm.WithContext(ctx).Raw(`INSERT INTO signin_attempts (subject, window_start, attempts) VALUES (?, ?, 1)
		ON CONFLICT (subject) DO UPDATE SET
			attempts = CASE WHEN signin_attempts.window_start <= ? THEN 1 ELSE signin_attempts.attempts + 1 END,
			window_start = CASE WHEN signin_attempts.window_start <= ? THEN excluded.window_start ELSE signin_attempts.window_start END
		RETURNING attempts`, subject, at, expired, expired).Scan(&n).Error
	if err != nil {
		return 0, tenants.Internal(err, "counting a sign-in attempt")
	}
	return n, nil
}

// ForgetSignInAttempt takes back one attempt of subject.
func (db *DB) ForgetSignInAttempt(ctx context.Context, subject string) error {
	err := db.gorm.WithContext(ctx).Exec("UPDATE signin_attempts SET attempts = attempts - 1 WHERE subject = ? AND attempts > 0", subject).Error
	if err != nil {
		return tenants.Internal(err, "taking back a sign-in attempt")
	}
	return nil
}

// ClearSignInAttempts forgets every attempt of subject.
func (db *DB) ClearSignInAttempts(ctx context.Context, subject string) error {
	if err := db.gorm.WithContext(ctx).Exec("DELETE FROM signin_attempts WHERE subject = ?", subject).Error; err != nil {
		return tenants.Internal(err, "clearing sign-in attempts")
	}
	return nil
}
