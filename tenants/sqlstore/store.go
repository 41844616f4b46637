package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/pushgate/pushgate/tenants"
)

var _ tenants.Store = (*DB)(nil)

// maxAuditEntries bounds one AuditLog answer.
const maxAuditEntries = 1000

type workspaceRow struct {
	ID           string     `gorm:"column:id;primaryKey"`
	Name         string     `gorm:"column:name"`
	ContactEmail string     `gorm:"column:contact_email"`
	Region       string     `gorm:"column:region"`
	Plan         string     `gorm:"column:plan"`
	QuotaLimit   *int64     `gorm:"column:quota_limit"`
	Status       string     `gorm:"column:status"`
	ServerID     string     `gorm:"column:server_id"`
	Privacy      string     `gorm:"column:privacy"`
	CreatedAt    time.Time  `gorm:"column:created_at"`
	UpdatedAt    time.Time  `gorm:"column:updated_at"`
	ChangedAt    *time.Time `gorm:"column:changed_at"`

	// Billing is the billing and package columns (billing.go).
	Billing billingColumns `gorm:"embedded"`
}

func (workspaceRow) TableName() string { return "workspaces" }

func toWorkspaceRow(ws *tenants.Workspace) workspaceRow {
	return workspaceRow{
		ID: ws.ID, Name: ws.Name, ContactEmail: ws.ContactEmail, Region: ws.Region,
		Plan: string(ws.Plan), QuotaLimit: ws.QuotaLimit, Status: string(ws.Status),
		ServerID: ws.ServerID, Privacy: string(ws.Privacy),
		CreatedAt: dbTime(ws.CreatedAt), UpdatedAt: dbTime(ws.UpdatedAt), ChangedAt: dbTimePtr(&ws.ChangedAt),
		Billing: toBillingColumns(ws),
	}
}

func (r *workspaceRow) workspace() *tenants.Workspace {
	return &tenants.Workspace{
		ID: r.ID, Name: r.Name, ContactEmail: r.ContactEmail, Region: r.Region,
		Plan: tenants.Plan(r.Plan), QuotaLimit: r.QuotaLimit, Status: tenants.Status(r.Status),
		ServerID: r.ServerID, Privacy: tenants.Privacy(r.Privacy),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), ChangedAt: r.changedAt(),
		Billing: r.Billing.billing(), PackagePushes: r.Billing.PackagePushes, PackagePeriod: tenants.Period(r.Billing.PackagePeriod),
	}
}

func (r *workspaceRow) changedAt() time.Time {
	if r.ChangedAt == nil {
		return r.UpdatedAt.UTC()
	}
	return r.ChangedAt.UTC()
}

type tokenRow struct {
	ID          int64      `gorm:"column:id;primaryKey"`
	WorkspaceID string     `gorm:"column:workspace_id"`
	TokenHash   string     `gorm:"column:token_hash"`
	Hint        string     `gorm:"column:hint"`
	CreatedAt   time.Time  `gorm:"column:created_at"`
	ExpiresAt   *time.Time `gorm:"column:expires_at"`
	RevokedAt   *time.Time `gorm:"column:revoked_at"`
}

func (tokenRow) TableName() string { return "workspace_tokens" }

type termsRow struct {
	Version     string    `gorm:"column:version;primaryKey"`
	URL         string    `gorm:"column:url"`
	PublishedAt time.Time `gorm:"column:published_at"`
}

func (termsRow) TableName() string { return "terms_versions" }

func (r *termsRow) terms() *tenants.Terms {
	return &tenants.Terms{Version: r.Version, URL: r.URL, PublishedAt: r.PublishedAt.UTC()}
}

type consentRow struct {
	ID           int64     `gorm:"column:id;primaryKey"`
	WorkspaceID  string    `gorm:"column:workspace_id"`
	TermsVersion string    `gorm:"column:terms_version"`
	AcceptedBy   string    `gorm:"column:accepted_by"`
	AcceptedIP   string    `gorm:"column:accepted_ip"`
	AcceptedAt   time.Time `gorm:"column:accepted_at"`
}

func (consentRow) TableName() string { return "consents" }

func (r *consentRow) consent() tenants.Consent {
	return tenants.Consent{
		WorkspaceID: r.WorkspaceID, TermsVersion: r.TermsVersion,
		AcceptedBy: r.AcceptedBy, AcceptedIP: r.AcceptedIP, AcceptedAt: r.AcceptedAt.UTC(),
	}
}

type operatorRow struct {
	ID           int64     `gorm:"column:id;primaryKey"`
	Email        string    `gorm:"column:email"`
	PasswordHash string    `gorm:"column:password_hash"`
	CreatedAt    time.Time `gorm:"column:created_at"`
}

func (operatorRow) TableName() string { return "operators" }

type auditRow struct {
	ID          int64     `gorm:"column:id;primaryKey"`
	Actor       string    `gorm:"column:actor"`
	Action      string    `gorm:"column:action"`
	WorkspaceID string    `gorm:"column:workspace_id"`
	Detail      string    `gorm:"column:detail"`
	CreatedAt   time.Time `gorm:"column:created_at"`
	Source      string    `gorm:"column:source"`
}

func (auditRow) TableName() string { return "audit_log" }

// dbTime is the form of every time written or compared: UTC, so that
// SQLite's text timestamps sort in time order, and whole microseconds,
// which Postgres keeps exactly, so that what is read back equals what was written.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func dbTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := dbTime(*t)
	return &u
}

func (db *DB) now() time.Time { return dbTime(db.gorm.NowFunc()) }

// translate maps a driver error to gorm's portable ones (duplicate key, foreign key).
func (db *DB) translate(err error) error {
	if t, ok := db.gorm.Dialector.(gorm.ErrorTranslator); ok {
		return t.Translate(err)
	}
	return err
}

func (db *DB) isDuplicate(err error) bool {
	return errors.Is(db.translate(err), gorm.ErrDuplicatedKey)
}

func (db *DB) isMissingReference(err error) bool {
	return errors.Is(db.translate(err), gorm.ErrForeignKeyViolated)
}

// transaction runs fn in a transaction; an error that is not already a
// *tenants.Error becomes an internal one about what.
func (db *DB) transaction(ctx context.Context, what string, fn func(tx *gorm.DB) error) error {
	err := db.gorm.WithContext(ctx).Transaction(fn)
	if err == nil {
		return nil
	}
	var te *tenants.Error
	if errors.As(err, &te) {
		return te
	}
	return tenants.Internal(err, what)
}

func workspaceNotFound(id string) *tenants.Error {
	return tenants.Errorf(tenants.CodeNotFound, "workspace %s not found in this region", id)
}

func termsNotPublished(version string) *tenants.Error {
	e := tenants.FieldError("terms_version", "version %q was never published; GET /api/v1/terms shows the current one", version)
	e.Reason = "terms_version_unknown"
	return e
}

// CreateWorkspace writes the workspace, its first token, the optional first
// consent and the audit entry in one transaction; it fills ws's defaults and times.
func (db *DB) CreateWorkspace(ctx context.Context, ws *tenants.Workspace, cred tenants.Credential, consent *tenants.Consent, audit tenants.AuditEntry) error {
	if ws.ID == "" || cred.Hash == "" {
		return tenants.Internal(errors.New("workspace id and token hash are required"), "creating a workspace")
	}
	now := db.now()
	if ws.CreatedAt.IsZero() {
		ws.CreatedAt = now
	}
	if ws.UpdatedAt.IsZero() {
		ws.UpdatedAt = ws.CreatedAt
	}
	if ws.ChangedAt.IsZero() {
		ws.ChangedAt = ws.UpdatedAt
	}
	ws.CreatedAt, ws.UpdatedAt, ws.ChangedAt = dbTime(ws.CreatedAt), dbTime(ws.UpdatedAt), dbTime(ws.ChangedAt)
	if ws.Plan == "" {
		ws.Plan = tenants.PlanFree
	}
	if ws.Status == "" {
		ws.Status = tenants.StatusActive
	}
	if ws.Privacy == "" {
		ws.Privacy = tenants.PrivacyFull
	}
	row := toWorkspaceRow(ws)
	token := tokenRow{WorkspaceID: ws.ID, TokenHash: cred.Hash, Hint: cred.Hint, CreatedAt: ws.CreatedAt, ExpiresAt: dbTimePtr(cred.ValidUntil)}
	return db.transaction(ctx, "creating a workspace", func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			if db.isDuplicate(err) {
				return tenants.Errorf(tenants.CodeConflict, "workspace %s already exists", ws.ID)
			}
			return err
		}
		if err := db.insertToken(tx, &token); err != nil {
			return err
		}
		if consent != nil {
			c := *consent
			c.WorkspaceID = ws.ID
			if c.AcceptedAt.IsZero() {
				c.AcceptedAt = ws.CreatedAt
			}
			if err := db.insertConsent(tx, c); err != nil {
				return err
			}
		}
		return db.insertAudit(tx, ws.ID, audit)
	})
}

func (db *DB) insertToken(tx *gorm.DB, t *tokenRow) error {
	if err := tx.Create(t).Error; err != nil {
		if db.isDuplicate(err) {
			// Never name the hash: it identifies a live credential.
			return tenants.Errorf(tenants.CodeConflict, "the new token of workspace %s collides with an existing token; issue another one", t.WorkspaceID)
		}
		return err
	}
	return nil
}

// insertConsent writes c and fails, to roll the transaction back, when its
// terms version was never published. The write comes before the check so
// that a SQLite transaction never has to upgrade a read to a write.
func (db *DB) insertConsent(tx *gorm.DB, c tenants.Consent) error {
	row := consentRow{
		WorkspaceID: c.WorkspaceID, TermsVersion: c.TermsVersion,
		AcceptedBy: c.AcceptedBy, AcceptedIP: c.AcceptedIP, AcceptedAt: dbTime(c.AcceptedAt),
	}
	if err := tx.Create(&row).Error; err != nil {
		if db.isMissingReference(err) {
			return workspaceNotFound(c.WorkspaceID)
		}
		return err
	}
	var n int64
	if err := tx.Model(&termsRow{}).Where("version = ?", c.TermsVersion).Count(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		return termsNotPublished(c.TermsVersion)
	}
	return nil
}

// insertAudit writes a as an entry of workspaceID, whatever a.WorkspaceID says.
func (db *DB) insertAudit(tx *gorm.DB, workspaceID string, a tenants.AuditEntry) error {
	created := a.CreatedAt
	if created.IsZero() {
		created = db.gorm.NowFunc()
	}
	row := auditRow{Actor: a.Actor, Action: a.Action, WorkspaceID: workspaceID, Detail: a.Detail, CreatedAt: dbTime(created), Source: auditSource(a)}
	return tx.Create(&row).Error
}

// Workspace returns the workspace with id.
func (db *DB) Workspace(ctx context.Context, id string) (*tenants.Workspace, error) {
	var row workspaceRow
	res := db.gorm.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&row)
	if res.Error != nil {
		return nil, tenants.Internal(res.Error, "reading a workspace")
	}
	if res.RowsAffected == 0 {
		return nil, workspaceNotFound(id)
	}
	return row.workspace(), nil
}

// workspaceConsentRow is a workspace beside its latest consent's columns,
// all nil when it has none.
type workspaceConsentRow struct {
	Workspace      workspaceRow `gorm:"embedded"`
	ConsentVersion *string      `gorm:"column:consent_terms_version"`
	ConsentBy      *string      `gorm:"column:consent_accepted_by"`
	ConsentIP      *string      `gorm:"column:consent_accepted_ip"`
	ConsentAt      *time.Time   `gorm:"column:consent_accepted_at"`
}

// WorkspaceWithConsent returns the workspace with id and its latest consent
// (nil when it has none) in one query, as every dashboard page needs both.
func (db *DB) WorkspaceWithConsent(ctx context.Context, id string) (*tenants.Workspace, *tenants.Consent, error) {
	var row workspaceConsentRow
	res := db.gorm.WithContext(ctx).Raw(`SELECT w.*, c.terms_version AS consent_terms_version,
			c.accepted_by AS consent_accepted_by, c.accepted_ip AS consent_accepted_ip, c.accepted_at AS consent_accepted_at
		FROM workspaces AS w LEFT JOIN consents AS c ON c.id = (SELECT id FROM consents
			WHERE workspace_id = w.id ORDER BY accepted_at DESC, id DESC LIMIT 1)
		WHERE w.id = ?`, id).Scan(&row)
	if res.Error != nil {
		return nil, nil, tenants.Internal(res.Error, "reading a workspace")
	}
	if res.RowsAffected == 0 {
		return nil, nil, workspaceNotFound(id)
	}
	var c *tenants.Consent
	if row.ConsentVersion != nil {
		c = &tenants.Consent{WorkspaceID: row.Workspace.ID, TermsVersion: *row.ConsentVersion,
			AcceptedBy: *row.ConsentBy, AcceptedIP: *row.ConsentIP, AcceptedAt: row.ConsentAt.UTC()}
	}
	return row.Workspace.workspace(), c, nil
}

// ListWorkspaces returns every workspace, oldest first.
func (db *DB) ListWorkspaces(ctx context.Context) ([]tenants.Workspace, error) {
	var rows []workspaceRow
	if err := db.gorm.WithContext(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "listing workspaces")
	}
	out := make([]tenants.Workspace, len(rows))
	for i := range rows {
		out[i] = *rows[i].workspace()
	}
	return out, nil
}

// authenticateSQL finds a token that is neither revoked nor expired at a time, with its workspace.
const authenticateSQL = `SELECT w.* FROM workspace_tokens t JOIN workspaces w ON w.id = t.workspace_id
WHERE t.token_hash = ? AND (t.revoked_at IS NULL OR t.revoked_at > ?) AND (t.expires_at IS NULL OR t.expires_at > ?)
LIMIT 1`

// Authenticate returns the workspace holding a token with tokenHash that is live at now, in one query.
func (db *DB) Authenticate(ctx context.Context, tokenHash string, now time.Time) (*tenants.Workspace, error) {
	notFound := tenants.Errorf(tenants.CodeNotFound, "no live workspace token matches")
	if tokenHash == "" {
		return nil, notFound
	}
	now = dbTime(now)
	var row workspaceRow
	res := db.gorm.WithContext(ctx).Raw(authenticateSQL, tokenHash, now, now).Scan(&row)
	if res.Error != nil {
		return nil, tenants.Internal(res.Error, "checking a workspace token")
	}
	if res.RowsAffected == 0 {
		return nil, notFound
	}
	return row.workspace(), nil
}

// ReplaceToken inserts a new token and ends every token of the workspace
// that would outlive oldUntil at oldUntil, with its audit entry. Rotations of
// one workspace queue on its row, so concurrent ones leave exactly one token
// without an end.
func (db *DB) ReplaceToken(ctx context.Context, workspaceID string, cred tenants.Credential, oldUntil time.Time, audit tenants.AuditEntry) error {
	if cred.Hash == "" {
		return tenants.Internal(errors.New("token hash is required"), "replacing a workspace token")
	}
	until := dbTime(oldUntil)
	if audit.CreatedAt.IsZero() {
		audit.CreatedAt = db.gorm.NowFunc()
	}
	token := tokenRow{WorkspaceID: workspaceID, TokenHash: cred.Hash, Hint: cred.Hint, CreatedAt: dbTime(audit.CreatedAt), ExpiresAt: dbTimePtr(cred.ValidUntil)}
	return db.transaction(ctx, "replacing a workspace token", func(tx *gorm.DB) error {
		// A no-op write comes first: it locks the workspace row on Postgres and
		// takes SQLite's write lock before anything is read.
		res := tx.Exec("UPDATE workspaces SET changed_at = ? WHERE id = ?", dbTime(db.gorm.NowFunc()), workspaceID)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return workspaceNotFound(workspaceID)
		}
		// A token that already ends before oldUntil keeps its earlier end.
		if err := tx.Model(&tokenRow{}).
			Where("workspace_id = ? AND (revoked_at IS NULL OR revoked_at > ?)", workspaceID, until).
			Update("revoked_at", until).Error; err != nil {
			return err
		}
		if err := db.insertToken(tx, &token); err != nil {
			return err
		}
		return db.insertAudit(tx, workspaceID, audit)
	})
}

// UpdateWorkspace applies the non-nil fields of change, bumps updated_at and
// writes audit, in one transaction, and returns the updated workspace.
func (db *DB) UpdateWorkspace(ctx context.Context, workspaceID string, change tenants.WorkspaceChange, audit tenants.AuditEntry) (*tenants.Workspace, error) {
	if audit.CreatedAt.IsZero() {
		audit.CreatedAt = db.gorm.NowFunc()
	}
	set := map[string]any{"updated_at": dbTime(audit.CreatedAt), "changed_at": dbTime(db.gorm.NowFunc())}
	if change.Status != nil {
		set["status"] = string(*change.Status)
	}
	if change.Plan != nil {
		set["plan"] = string(*change.Plan)
	}
	if change.QuotaLimit != nil {
		set["quota_limit"] = *change.QuotaLimit
	}
	if change.Privacy != nil {
		set["privacy"] = string(*change.Privacy)
	}
	if change.ServerID != nil {
		set["server_id"] = *change.ServerID
	}
	var row workspaceRow
	err := db.transaction(ctx, "updating a workspace", func(tx *gorm.DB) error {
		res := tx.Model(&workspaceRow{}).Where("id = ?", workspaceID).Updates(set)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return workspaceNotFound(workspaceID)
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

// RecordConsent writes a consent of a published terms version.
func (db *DB) RecordConsent(ctx context.Context, c tenants.Consent) error {
	if c.AcceptedAt.IsZero() {
		c.AcceptedAt = db.gorm.NowFunc()
	}
	return db.transaction(ctx, "recording a consent", func(tx *gorm.DB) error {
		if err := db.insertConsent(tx, c); err != nil {
			return err
		}
		return tx.Exec("UPDATE workspaces SET changed_at = ? WHERE id = ?", dbTime(db.gorm.NowFunc()), c.WorkspaceID).Error
	})
}

// LatestConsent is the workspace's most recent consent, or nil.
func (db *DB) LatestConsent(ctx context.Context, workspaceID string) (*tenants.Consent, error) {
	var row consentRow
	res := db.gorm.WithContext(ctx).Where("workspace_id = ?", workspaceID).
		Order("accepted_at DESC, id DESC").Limit(1).Find(&row)
	if res.Error != nil {
		return nil, tenants.Internal(res.Error, "reading the latest consent")
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	c := row.consent()
	return &c, nil
}

// Consents is the workspace's consent history, oldest first.
func (db *DB) Consents(ctx context.Context, workspaceID string) ([]tenants.Consent, error) {
	var rows []consentRow
	if err := db.gorm.WithContext(ctx).Where("workspace_id = ?", workspaceID).
		Order("accepted_at, id").Find(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "reading consents")
	}
	out := make([]tenants.Consent, len(rows))
	for i := range rows {
		out[i] = rows[i].consent()
	}
	return out, nil
}

// PublishTerms records a terms version; the first record of a version stays.
func (db *DB) PublishTerms(ctx context.Context, t tenants.Terms) error {
	if t.Version == "" {
		return tenants.FieldError("version", "is required")
	}
	published := t.PublishedAt
	if published.IsZero() {
		published = db.gorm.NowFunc()
	}
	row := termsRow{Version: t.Version, URL: t.URL, PublishedAt: dbTime(published)}
	if err := db.gorm.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return tenants.Internal(err, "publishing terms")
	}
	return nil
}

// CurrentTerms is the latest version published at or before now, or nil.
func (db *DB) CurrentTerms(ctx context.Context, now time.Time) (*tenants.Terms, error) {
	var row termsRow
	res := db.gorm.WithContext(ctx).Where("published_at <= ?", dbTime(now)).
		Order("published_at DESC, version DESC").Limit(1).Find(&row)
	if res.Error != nil {
		return nil, tenants.Internal(res.Error, "reading the current terms")
	}
	if res.RowsAffected == 0 {
		return nil, nil
	}
	return row.terms(), nil
}

// TermsVersion returns one published terms version.
func (db *DB) TermsVersion(ctx context.Context, version string) (*tenants.Terms, error) {
	var row termsRow
	res := db.gorm.WithContext(ctx).Where("version = ?", version).Limit(1).Find(&row)
	if res.Error != nil {
		return nil, tenants.Internal(res.Error, "reading a terms version")
	}
	if res.RowsAffected == 0 {
		return nil, tenants.Errorf(tenants.CodeNotFound, "terms version %q was never published; GET /api/v1/terms shows the current one", version)
	}
	return row.terms(), nil
}

// normalEmail is the stored form of an operator email; matching ignores case.
func normalEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// CreateOperator writes op, filling its ID and CreatedAt and lower-casing its email.
func (db *DB) CreateOperator(ctx context.Context, op *tenants.Operator) error {
	op.Email = normalEmail(op.Email)
	if op.CreatedAt.IsZero() {
		op.CreatedAt = db.gorm.NowFunc()
	}
	op.CreatedAt = dbTime(op.CreatedAt)
	row := operatorRow{ID: op.ID, Email: op.Email, PasswordHash: op.PasswordHash, CreatedAt: op.CreatedAt}
	if err := db.gorm.WithContext(ctx).Create(&row).Error; err != nil {
		if db.isDuplicate(err) {
			return tenants.Errorf(tenants.CodeConflict, "an operator with email %s already exists", op.Email)
		}
		return tenants.Internal(err, "creating an operator")
	}
	op.ID = row.ID
	return nil
}

// OperatorByEmail returns the operator with email, ignoring case.
func (db *DB) OperatorByEmail(ctx context.Context, email string) (*tenants.Operator, error) {
	email = normalEmail(email)
	var row operatorRow
	res := db.gorm.WithContext(ctx).Where("email = ?", email).Limit(1).Find(&row)
	if res.Error != nil {
		return nil, tenants.Internal(res.Error, "reading an operator")
	}
	if res.RowsAffected == 0 {
		return nil, tenants.Errorf(tenants.CodeNotFound, "no operator with email %s; `pushgate admin create --email %s` creates one", email, email)
	}
	return &tenants.Operator{ID: row.ID, Email: row.Email, PasswordHash: row.PasswordHash, CreatedAt: row.CreatedAt.UTC()}, nil
}

// AuditLog returns up to limit entries of a workspace ("" for all), newest
// first; limit is capped at 1000, and zero or less means 100.
func (db *DB) AuditLog(ctx context.Context, workspaceID string, limit int) ([]tenants.AuditEntry, error) {
	switch {
	case limit <= 0:
		limit = 100
	case limit > maxAuditEntries:
		limit = maxAuditEntries
	}
	q := db.gorm.WithContext(ctx)
	if workspaceID != "" {
		q = q.Where("workspace_id = ?", workspaceID)
	}
	var rows []auditRow
	if err := q.Order("created_at DESC, id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, tenants.Internal(err, "reading the audit log")
	}
	out := make([]tenants.AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = tenants.AuditEntry{Actor: r.Actor, Action: r.Action, WorkspaceID: r.WorkspaceID, Detail: r.Detail, CreatedAt: r.CreatedAt.UTC(), Source: r.Source}
	}
	return out, nil
}

// ChangedWorkspaces lists the workspaces whose settings, tokens or consent
// changed after since, so every replica can drop what it cached of them.
func (db *DB) ChangedWorkspaces(ctx context.Context, since time.Time) ([]string, error) {
	var ids []string
	if err := db.gorm.WithContext(ctx).Raw("SELECT id FROM workspaces WHERE changed_at > ?", dbTime(since)).Scan(&ids).Error; err != nil {
		return nil, tenants.Internal(err, "listing changed workspaces")
	}
	return ids, nil
}
