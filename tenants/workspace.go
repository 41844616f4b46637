package tenants

import (
	"context"
	"time"
)

// Plan is a workspace's billing plan.
type Plan string

// The plans; their monthly limits are in PlanLimit.
const (
	PlanFree       Plan = "free"
	PlanPro        Plan = "pro"
	PlanEnterprise Plan = "enterprise"
)

// Valid reports whether p is a known plan.
func (p Plan) Valid() bool { return p == PlanFree || p == PlanPro || p == PlanEnterprise }

// Unlimited is the monthly limit of an enterprise workspace without its own limit.
const Unlimited int64 = -1

// PlanLimit is the monthly notification limit of a plan; enterprise is
// unlimited unless an operator set a per-workspace limit.
func PlanLimit(p Plan, custom *int64) int64 {
	switch p {
	case PlanFree:
		return 10_000
	case PlanPro:
		return 1_000_000
	default:
		if custom != nil {
			return *custom
		}
		return Unlimited
	}
}

// Status says whether a workspace may use the gateway at all.
type Status string

// The workspace statuses.
const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
)

// Privacy is a workspace's content policy.
type Privacy string

// The privacy policies: full content, or only ids (the gateway strips message
// text, titles and names before anything reaches Apple or Google).
const (
	PrivacyFull   Privacy = "full"
	PrivacyIDOnly Privacy = "id_only"
)

// Valid reports whether p is a known policy.
func (p Privacy) Valid() bool { return p == PrivacyFull || p == PrivacyIDOnly }

// ValidWorkspaceID reports whether id has the form of a workspace id: ws_
// and 20 lowercase base32 characters, as newWorkspaceID makes them.
func ValidWorkspaceID(id string) bool {
	if len(id) != 23 || id[:3] != "ws_" {
		return false
	}
	for i := 3; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Workspace is one tenant: a self-hosted chat server that sends through pushgate.
type Workspace struct {
	ID           string
	Name         string
	ContactEmail string
	Region       string
	Plan         Plan
	// QuotaLimit is an operator-set monthly limit for enterprise workspaces; nil means the plan's.
	QuotaLimit *int64
	Status     Status
	// ServerID binds the workspace to one Mattermost installation when set.
	ServerID  string
	Privacy   Privacy
	CreatedAt time.Time
	UpdatedAt time.Time
	// ChangedAt is when settings, tokens or consent last changed; it versions
	// the limit a replica has cached against one published since.
	ChangedAt time.Time
	// Billing is the workspace's Stripe subscription, if it ever had one.
	Billing Billing
	// PackagePushes are the pushes bought as packages for PackagePeriod.
	PackagePushes int64
	PackagePeriod Period
}

// MonthlyLimit is the workspace's limit this month, or Unlimited: its plan's
// (or its own) limit plus the packages bought for this month.
func (w *Workspace) MonthlyLimit() int64 {
	if w.PackagePushes == 0 {
		return PlanLimit(w.Plan, w.QuotaLimit)
	}
	return w.LimitIn(PeriodOf(time.Now()))
}

// LimitIn is the workspace's limit in period p, or Unlimited.
func (w *Workspace) LimitIn(p Period) int64 {
	limit := PlanLimit(w.Plan, w.QuotaLimit)
	if limit == Unlimited || w.PackagePeriod != p {
		return limit
	}
	return limit + w.PackagePushes
}

// Terms is one published version of the terms of service.
type Terms struct {
	Version     string
	URL         string
	PublishedAt time.Time
}

// Consent records that someone accepted a terms version for a workspace.
type Consent struct {
	WorkspaceID  string
	TermsVersion string
	AcceptedBy   string
	AcceptedIP   string
	AcceptedAt   time.Time
}

// Operator is an account of the people who run pushgate.
type Operator struct {
	ID           int64
	Email        string
	PasswordHash string
	CreatedAt    time.Time
}

// AuditEntry records one operator or workspace action that changed state.
type AuditEntry struct {
	Actor       string
	Action      string
	WorkspaceID string
	Detail      string
	CreatedAt   time.Time
	// Source says where the change came from (operator, workspace, stripe,
	// billing …); empty, the store takes the actor's prefix.
	Source string
}

// Credential is the stored form of a workspace token.
type Credential struct {
	Hash string
	Hint string
	// ValidUntil, when set, ends the token's life at that time (a rotation grace period).
	ValidUntil *time.Time
}

// WorkspaceChange is an update to a workspace's settings, written with its audit entry.
type WorkspaceChange struct {
	Status     *Status
	Plan       *Plan
	QuotaLimit **int64
	Privacy    *Privacy
	ServerID   *string
}

// Store is the persistence the tenancy needs. Every method that reads or
// writes one workspace's data takes that workspace's id and scopes its query
// by it; not-found answers are *Error with CodeNotFound.
type Store interface {
	// CreateWorkspace writes a workspace, its first token and, if not nil, its
	// first consent, all in one transaction.
	CreateWorkspace(ctx context.Context, ws *Workspace, cred Credential, consent *Consent, audit AuditEntry) error
	Workspace(ctx context.Context, id string) (*Workspace, error)
	// WorkspaceWithConsent returns the workspace with id and its latest
	// consent (nil when it has none) in one read.
	WorkspaceWithConsent(ctx context.Context, id string) (*Workspace, *Consent, error)
	ListWorkspaces(ctx context.Context) ([]Workspace, error)
	// Authenticate finds the workspace holding a live token with this hash at
	// time now; a token that is unknown, revoked or expired is CodeNotFound.
	Authenticate(ctx context.Context, tokenHash string, now time.Time) (*Workspace, error)
	// ReplaceToken adds a new token and ends every other live token of the
	// workspace at oldUntil (now: at once), with its audit entry.
	ReplaceToken(ctx context.Context, workspaceID string, cred Credential, oldUntil time.Time, audit AuditEntry) error
	// UpdateWorkspace applies change and writes audit, in one transaction.
	UpdateWorkspace(ctx context.Context, workspaceID string, change WorkspaceChange, audit AuditEntry) (*Workspace, error)

	// RecordConsent appends to the consent history; the version must be published.
	RecordConsent(ctx context.Context, c Consent) error
	// LatestConsent is the workspace's most recent consent, or nil.
	LatestConsent(ctx context.Context, workspaceID string) (*Consent, error)
	Consents(ctx context.Context, workspaceID string) ([]Consent, error)

	// PublishTerms records a terms version; publishing the same version again is a no-op.
	PublishTerms(ctx context.Context, t Terms) error
	// CurrentTerms is the latest version published at or before now, or nil.
	CurrentTerms(ctx context.Context, now time.Time) (*Terms, error)
	TermsVersion(ctx context.Context, version string) (*Terms, error)

	CreateOperator(ctx context.Context, op *Operator) error
	OperatorByEmail(ctx context.Context, email string) (*Operator, error)

	AuditLog(ctx context.Context, workspaceID string, limit int) ([]AuditEntry, error)

	// ChangedWorkspaces lists workspaces whose settings, tokens or consent changed after since.
	ChangedWorkspaces(ctx context.Context, since time.Time) ([]string, error)

	CloudStore
}
