package sqlstore

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/pushgate/pushgate/tenants"
)

var _ tenants.CloudStore = (*DB)(nil)

type cloudIntentRow struct {
	ID              int64      `gorm:"column:id;primaryKey"`
	DeviceCodeHash  string     `gorm:"column:device_code_hash"`
	UserCodeHash    string     `gorm:"column:user_code_hash"`
	UniqueID        string     `gorm:"column:unique_id"`
	RCWorkspaceID   string     `gorm:"column:rc_workspace_id"`
	Address         string     `gorm:"column:address"`
	SiteName        string     `gorm:"column:site_name"`
	ContactName     string     `gorm:"column:contact_name"`
	ContactEmail    string     `gorm:"column:contact_email"`
	Version         string     `gorm:"column:version"`
	Seats           int64      `gorm:"column:seats"`
	RequestIP       string     `gorm:"column:request_ip"`
	CreatedAt       time.Time  `gorm:"column:created_at"`
	ExpiresAt       time.Time  `gorm:"column:expires_at"`
	IntervalSeconds int        `gorm:"column:interval_seconds"`
	LastPolledAt    *time.Time `gorm:"column:last_polled_at"`
	WorkspaceID     *string    `gorm:"column:workspace_id"`
	ConfirmedBy     string     `gorm:"column:confirmed_by"`
	ConfirmedAt     *time.Time `gorm:"column:confirmed_at"`
	DeniedAt        *time.Time `gorm:"column:denied_at"`
	ClaimedAt       *time.Time `gorm:"column:claimed_at"`
}

func (cloudIntentRow) TableName() string { return "cloud_intents" }

func (r *cloudIntentRow) intent() *tenants.CloudIntent {
	in := &tenants.CloudIntent{
		ID: r.ID, DeviceCodeHash: r.DeviceCodeHash, UserCodeHash: r.UserCodeHash,
		Server: tenants.CloudServer{UniqueID: r.UniqueID, WorkspaceID: r.RCWorkspaceID, Address: r.Address, SiteName: r.SiteName,
			ContactName: r.ContactName, ContactEmail: r.ContactEmail, Version: r.Version, Seats: r.Seats},
		RequestIP: r.RequestIP, CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
		Interval: time.Duration(r.IntervalSeconds) * time.Second, LastPolledAt: utcPtr(r.LastPolledAt),
		ConfirmedBy: r.ConfirmedBy, ConfirmedAt: utcPtr(r.ConfirmedAt), DeniedAt: utcPtr(r.DeniedAt), ClaimedAt: utcPtr(r.ClaimedAt),
	}
	if r.WorkspaceID != nil {
		in.WorkspaceID = *r.WorkspaceID
	}
	return in
}

type cloudClientRow struct {
	ID          string     `gorm:"column:id;primaryKey"`
	WorkspaceID string     `gorm:"column:workspace_id"`
	Name        string     `gorm:"column:name"`
	Address     string     `gorm:"column:address"`
	UniqueID    string     `gorm:"column:unique_id"`
	SecretHash  string     `gorm:"column:secret_hash"`
	PrevHash    string     `gorm:"column:previous_secret_hash"`
	PrevUntil   *time.Time `gorm:"column:previous_secret_until"`
	Origin      string     `gorm:"column:origin"`
	CreatedBy   string     `gorm:"column:created_by"`
	CreatedAt   time.Time  `gorm:"column:created_at"`
	RevokedAt   *time.Time `gorm:"column:revoked_at"`
	RevokedBy   string     `gorm:"column:revoked_by"`
	LastTokenAt *time.Time `gorm:"column:last_token_at"`
}

func (cloudClientRow) TableName() string { return "cloud_clients" }

func toCloudClientRow(c tenants.CloudClient) cloudClientRow {
	return cloudClientRow{ID: c.ID, WorkspaceID: c.WorkspaceID, Name: c.Name, Address: c.Address, UniqueID: c.UniqueID,
		SecretHash: c.SecretHash, Origin: c.Origin, CreatedBy: c.CreatedBy, CreatedAt: dbTime(c.CreatedAt)}
}

func (r *cloudClientRow) client() tenants.CloudClient {
	return tenants.CloudClient{ID: r.ID, WorkspaceID: r.WorkspaceID, Name: r.Name, Address: r.Address, UniqueID: r.UniqueID,
		SecretHash: r.SecretHash, PreviousSecretHash: r.PrevHash, PreviousSecretUntil: utcPtr(r.PrevUntil),
		Origin: r.Origin, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC(),
		RevokedAt: utcPtr(r.RevokedAt), RevokedBy: r.RevokedBy, LastTokenAt: utcPtr(r.LastTokenAt)}
}

type cloudTokenRow struct {
	TokenHash   string    `gorm:"column:token_hash;primaryKey"`
	ClientID    string    `gorm:"column:client_id"`
	WorkspaceID string    `gorm:"column:workspace_id"`
	Scope       string    `gorm:"column:scope"`
	CreatedAt   time.Time `gorm:"column:created_at"`
	ExpiresAt   time.Time `gorm:"column:expires_at"`
}

func (cloudTokenRow) TableName() string { return "cloud_access_tokens" }

func intentNotFound() *tenants.Error {
	return tenants.Errorf(tenants.CodeNotFound, "no such registration intent")
}

// CreateCloudIntent writes in (its id filled) and its audit entry.
func (db *DB) CreateCloudIntent(ctx context.Context, in *tenants.CloudIntent, audit tenants.AuditEntry) error {
	s := in.Server
	row := cloudIntentRow{DeviceCodeHash: in.DeviceCodeHash, UserCodeHash: in.UserCodeHash, UniqueID: s.UniqueID, RCWorkspaceID: s.WorkspaceID,
		Address: s.Address, SiteName: s.SiteName, ContactName: s.ContactName, ContactEmail: s.ContactEmail, Version: s.Version, Seats: s.Seats,
		RequestIP: in.RequestIP, CreatedAt: dbTime(in.CreatedAt), ExpiresAt: dbTime(in.ExpiresAt), IntervalSeconds: int(in.Interval / time.Second)}
	err := db.transaction(ctx, "recording a registration intent", func(tx *gorm.DB) error {
		// Intents a day past their end are of no use to anyone: they go as new ones come.
		if err := tx.Where("expires_at < ?", dbTime(in.CreatedAt.Add(-24*time.Hour))).Delete(&cloudIntentRow{}).Error; err != nil {
			return err
		}
		if err := tx.Create(&row).Error; err != nil {
			if db.isDuplicate(err) {
				return tenants.Errorf(tenants.CodeConflict, "the new registration codes collide with existing ones; ask again")
			}
			return err
		}
		return db.insertAudit(tx, "", audit)
	})
	if err != nil {
		return err
	}
	in.ID = row.ID
	return nil
}

func (db *DB) cloudIntentBy(ctx context.Context, column, hash string) (*tenants.CloudIntent, error) {
	if hash == "" {
		return nil, intentNotFound()
	}
	var row cloudIntentRow
	res := db.gorm.WithContext(ctx).Where(column+" = ?", hash).Limit(1).Find(&row)
	if res.Error != nil {
		return nil, tenants.Internal(res.Error, "reading a registration intent")
	}
	if res.RowsAffected == 0 {
		return nil, intentNotFound()
	}
	return row.intent(), nil
}

// CloudIntentByDeviceCode finds an intent by the hash of its device code.
func (db *DB) CloudIntentByDeviceCode(ctx context.Context, hash string) (*tenants.CloudIntent, error) {
	return db.cloudIntentBy(ctx, "device_code_hash", hash)
}

// CloudIntentByUserCode finds an intent by the hash of its user code.
func (db *DB) CloudIntentByUserCode(ctx context.Context, hash string) (*tenants.CloudIntent, error) {
	return db.cloudIntentBy(ctx, "user_code_hash", hash)
}

// NoteCloudPoll records a poll in one conditional update, so that of
// concurrent polls inside one interval exactly one passes.
func (db *DB) NoteCloudPoll(ctx context.Context, id int64, at time.Time, slowDown time.Duration) (bool, error) {
	at = dbTime(at)
	var row cloudIntentRow
	res := db.gorm.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&row)
	if res.Error != nil {
		return false, tenants.Internal(res.Error, "reading a registration intent")
	}
	if res.RowsAffected == 0 {
		return false, intentNotFound()
	}
	earliest := at.Add(-time.Duration(row.IntervalSeconds) * time.Second)
	// A poll a little early (network jitter) still counts as on time.
	earliest = earliest.Add(time.Second)
	res = db.gorm.WithContext(ctx).Exec(`UPDATE cloud_intents SET last_polled_at = ?
WHERE id = ? AND (last_polled_at IS NULL OR last_polled_at <= ?)`, at, id, earliest)
	if res.Error != nil {
		return false, tenants.Internal(res.Error, "recording a poll")
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	if err := db.gorm.WithContext(ctx).Exec(`UPDATE cloud_intents SET interval_seconds = interval_seconds + ?, last_polled_at = ? WHERE id = ?`,
		int(slowDown/time.Second), at, id).Error; err != nil {
		return false, tenants.Internal(err, "recording a poll")
	}
	return false, nil
}

// ConfirmCloudIntent binds the intent and writes the consent and the audit entry, in one transaction.
func (db *DB) ConfirmCloudIntent(ctx context.Context, id int64, workspaceID, by string, at time.Time, consent *tenants.Consent, audit tenants.AuditEntry) error {
	at = dbTime(at)
	return db.transaction(ctx, "confirming a registration", func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE cloud_intents SET workspace_id = ?, confirmed_by = ?, confirmed_at = ?
WHERE id = ? AND workspace_id IS NULL AND denied_at IS NULL AND expires_at > ?`, workspaceID, by, at, id, at)
		if res.Error != nil {
			if db.isMissingReference(res.Error) {
				return workspaceNotFound(workspaceID)
			}
			return res.Error
		}
		if res.RowsAffected == 0 {
			return &tenants.Error{Code: tenants.CodeConflict, Field: "user_code",
				Message: "user_code: this code expired or was just used: start the registration again in Rocket.Chat"}
		}
		if consent != nil {
			if err := db.insertConsent(tx, *consent); err != nil {
				return err
			}
			if err := tx.Exec("UPDATE workspaces SET changed_at = ? WHERE id = ?", dbTime(db.gorm.NowFunc()), workspaceID).Error; err != nil {
				return err
			}
		}
		return db.insertAudit(tx, workspaceID, audit)
	})
}

// ClaimCloudIntent spends a confirmed intent and writes its client, in one transaction.
func (db *DB) ClaimCloudIntent(ctx context.Context, id int64, c tenants.CloudClient, audit tenants.AuditEntry) error {
	row := toCloudClientRow(c)
	return db.transaction(ctx, "issuing a client", func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE cloud_intents SET claimed_at = ? WHERE id = ? AND workspace_id = ? AND claimed_at IS NULL`, row.CreatedAt, id, c.WorkspaceID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return tenants.Errorf(tenants.CodeConflict, "this registration was already collected")
		}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		return db.insertAudit(tx, c.WorkspaceID, audit)
	})
}

// CreateCloudClient writes a client made from the dashboard, with its audit entry.
func (db *DB) CreateCloudClient(ctx context.Context, c tenants.CloudClient, audit tenants.AuditEntry) error {
	row := toCloudClientRow(c)
	return db.transaction(ctx, "creating a client", func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			if db.isMissingReference(err) {
				return workspaceNotFound(c.WorkspaceID)
			}
			return err
		}
		return db.insertAudit(tx, c.WorkspaceID, audit)
	})
}

// CloudClient returns the client with id; its id and secret are the credential, so the lookup is by id alone.
func (db *DB) CloudClient(ctx context.Context, id string) (*tenants.CloudClient, error) {
	var row cloudClientRow
	res := db.gorm.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&row)
	if res.Error != nil {
		return nil, tenants.Internal(res.Error, "reading a client")
	}
	if res.RowsAffected == 0 {
		return nil, tenants.Errorf(tenants.CodeNotFound, "no client %s", id)
	}
	c := row.client()
	return &c, nil
}

// CloudClients lists the clients of one workspace, newest first.
func (db *DB) CloudClients(ctx context.Context, workspaceID string) ([]tenants.CloudClient, error) {
	var rows []cloudClientRow
	if err := db.gorm.WithContext(ctx).Where("workspace_id = ?", workspaceID).Order("created_at DESC, id").Limit(500).Find(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "listing clients")
	}
	out := make([]tenants.CloudClient, len(rows))
	for i := range rows {
		out[i] = rows[i].client()
	}
	return out, nil
}

// RevokeCloudClient ends one client of workspaceID, marks the workspace
// changed so other replicas drop its cached tokens, and audits it.
func (db *DB) RevokeCloudClient(ctx context.Context, workspaceID, clientID, by string, at time.Time, audit tenants.AuditEntry) error {
	at = dbTime(at)
	return db.transaction(ctx, "revoking a client", func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE cloud_clients SET revoked_at = ?, revoked_by = ? WHERE id = ? AND workspace_id = ? AND revoked_at IS NULL`, at, by, clientID, workspaceID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			var n int64
			if err := tx.Model(&cloudClientRow{}).Where("id = ? AND workspace_id = ?", clientID, workspaceID).Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return tenants.Errorf(tenants.CodeNotFound, "workspace %s has no Rocket.Chat client %s", workspaceID, clientID)
			}
			return tenants.Errorf(tenants.CodeConflict, "client %s is already revoked", clientID)
		}
		if err := tx.Where("client_id = ? AND workspace_id = ?", clientID, workspaceID).Delete(&cloudTokenRow{}).Error; err != nil {
			return err
		}
		if err := tx.Exec("UPDATE workspaces SET changed_at = ? WHERE id = ?", dbTime(db.gorm.NowFunc()), workspaceID).Error; err != nil {
			return err
		}
		return db.insertAudit(tx, workspaceID, audit)
	})
}

// RotateCloudClientSecret replaces a live client's secret; the old one
// stays valid until prevUntil. It is audited and scoped by the workspace.
func (db *DB) RotateCloudClientSecret(ctx context.Context, workspaceID, clientID, newHash string, prevUntil time.Time, audit tenants.AuditEntry) error {
	return db.transaction(ctx, "rotating a client secret", func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE cloud_clients SET previous_secret_hash = secret_hash, previous_secret_until = ?, secret_hash = ?
WHERE id = ? AND workspace_id = ? AND revoked_at IS NULL`, dbTime(prevUntil), newHash, clientID, workspaceID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return tenants.Errorf(tenants.CodeNotFound, "workspace %s has no live Rocket.Chat client %s", workspaceID, clientID)
		}
		return db.insertAudit(tx, workspaceID, audit)
	})
}

// CreateCloudAccessToken writes t, notes when the client last got one, and
// deletes the client's tokens that ended, so the table stays one or two rows per client.
func (db *DB) CreateCloudAccessToken(ctx context.Context, t tenants.CloudAccessToken) error {
	row := cloudTokenRow{TokenHash: t.Hash, ClientID: t.ClientID, WorkspaceID: t.WorkspaceID, Scope: t.Scope,
		CreatedAt: dbTime(t.CreatedAt), ExpiresAt: dbTime(t.ExpiresAt)}
	return db.transaction(ctx, "issuing an access token", func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE cloud_clients SET last_token_at = ? WHERE id = ? AND workspace_id = ? AND revoked_at IS NULL`, row.CreatedAt, t.ClientID, t.WorkspaceID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			// Revoked between the check and this write: no token.
			return &tenants.Error{Code: tenants.CodeUnauthorized, Reason: tenants.ReasonClientRevoked,
				Message: "this server's registration was revoked in pushgate; register it again"}
		}
		if err := tx.Where("client_id = ? AND workspace_id = ? AND expires_at <= ?", t.ClientID, t.WorkspaceID, row.CreatedAt).Delete(&cloudTokenRow{}).Error; err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
}

// authenticateAccessSQL finds a live access token of a client not revoked, with its workspace.
const authenticateAccessSQL = `SELECT w.*, t.client_id AS access_client_id, t.expires_at AS access_expires_at, t.scope AS access_scope
FROM cloud_access_tokens t
JOIN cloud_clients c ON c.id = t.client_id AND c.workspace_id = t.workspace_id
JOIN workspaces w ON w.id = t.workspace_id
WHERE t.token_hash = ? AND t.expires_at > ? AND c.revoked_at IS NULL
LIMIT 1`

type accessRow struct {
	Workspace       workspaceRow `gorm:"embedded"`
	AccessClientID  string       `gorm:"column:access_client_id"`
	AccessExpiresAt time.Time    `gorm:"column:access_expires_at"`
	AccessScope     string       `gorm:"column:access_scope"`
}

// AuthenticateAccessToken answers in one query.
func (db *DB) AuthenticateAccessToken(ctx context.Context, hash string, now time.Time) (*tenants.Workspace, *tenants.CloudAccessToken, error) {
	notFound := tenants.Errorf(tenants.CodeNotFound, "no live access token matches")
	if hash == "" {
		return nil, nil, notFound
	}
	var row accessRow
	res := db.gorm.WithContext(ctx).Raw(authenticateAccessSQL, hash, dbTime(now)).Scan(&row)
	if res.Error != nil {
		return nil, nil, tenants.Internal(res.Error, "checking an access token")
	}
	if res.RowsAffected == 0 {
		return nil, nil, notFound
	}
	ws := row.Workspace.workspace()
	return ws, &tenants.CloudAccessToken{Hash: hash, ClientID: row.AccessClientID, WorkspaceID: ws.ID, Scope: row.AccessScope, ExpiresAt: row.AccessExpiresAt.UTC()}, nil
}
