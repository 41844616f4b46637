package tenants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
)

// LinkKind says what a one-time owner link does.
type LinkKind string

// The owner links: a password reset, the claim of a workspace registered
// without an owner account, and an invitation of another owner.
const (
	LinkReset  LinkKind = "reset"
	LinkClaim  LinkKind = "claim"
	LinkInvite LinkKind = "invite"
)

// How long each kind of link works.
const (
	ResetLinkTTL  = time.Hour
	ClaimLinkTTL  = 7 * 24 * time.Hour
	InviteLinkTTL = 7 * 24 * time.Hour
)

// OwnerLink is a one-time link sent to a person; only its token's hash is kept.
type OwnerLink struct {
	ID          int64
	Kind        LinkKind
	TokenHash   string
	WorkspaceID string
	// AccountID is the account a reset is for.
	AccountID int64
	// Email is the invited address, or the account's email of a reset.
	Email     string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// OwnerLinkStore keeps the one-time links and the owners they create. Every
// method scopes its queries by the link's kind and, where it has one, by
// the workspace id.
type OwnerLinkStore interface {
	// CreateOwnerLink writes l and ends the unused links it supersedes: a
	// reset ends the account's earlier resets, a claim the workspace's
	// earlier claims, an invitation the earlier ones of the same email.
	CreateOwnerLink(ctx context.Context, l *OwnerLink, audit *AuditEntry) error
	// OwnerLink returns the unused link of kind with this token hash that
	// is live at now; any other is CodeNotFound.
	OwnerLink(ctx context.Context, kind LinkKind, tokenHash string, now time.Time) (*OwnerLink, error)
	// ResetPassword uses a reset link: it sets the account's password hash,
	// ends every session of the account and every other reset link of it.
	ResetPassword(ctx context.Context, tokenHash string, now time.Time, passwordHash string) (*OwnerAccount, error)
	// AcceptOwnerLink uses a claim or invitation link and creates a, the
	// owner account it gives, in one transaction with audit. A claim of a
	// workspace that has an owner already is CodeConflict, and so is an
	// email that has an account.
	AcceptOwnerLink(ctx context.Context, kind LinkKind, tokenHash string, now time.Time, a *OwnerAccount, audit AuditEntry) (*OwnerLink, error)
	// OwnerAccounts lists a workspace's owners, oldest first.
	OwnerAccounts(ctx context.Context, workspaceID string) ([]OwnerAccount, error)
	// PendingInvites lists a workspace's unused invitations live at now, newest first.
	PendingInvites(ctx context.Context, workspaceID string, now time.Time) ([]OwnerLink, error)
	// RevokeInvite ends an unused invitation of the workspace.
	RevokeInvite(ctx context.Context, workspaceID string, id int64, now time.Time, audit AuditEntry) error
	// RemoveOwner deletes another owner account of the workspace and its
	// sessions; the workspace's last owner is never removed (CodeConflict).
	RemoveOwner(ctx context.Context, workspaceID string, accountID int64, audit AuditEntry) error
}

// NewLinkToken returns a fresh link token and the hash that is stored.
func NewLinkToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", Internal(err, "creating a link token")
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashLinkToken(token), nil
}

// HashLinkToken is the stored form of a link token.
func HashLinkToken(token string) string {
	sum := sha256.Sum256([]byte("owner-link:" + token))
	return hex.EncodeToString(sum[:])
}

// ValidLinkToken reports whether s has the shape of a link token, so that
// junk in a URL is refused before any query.
func ValidLinkToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ClaimLink is a workspace's one-time link to create its first owner account.
type ClaimLink struct {
	URL       string
	ExpiresAt time.Time
}

// IssueClaimLink stores a new claim link of a workspace that has no owner
// account yet, ending its earlier ones. A workspace with an owner is
// CodeConflict: its owners invite others instead.
func IssueClaimLink(ctx context.Context, links OwnerLinkStore, publicURL, workspaceID, actor string, now time.Time) (*ClaimLink, error) {
	owners, err := links.OwnerAccounts(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	if len(owners) > 0 {
		return nil, &Error{Code: CodeConflict, Reason: "already_claimed",
			Message: "this workspace already has an owner account; its owners invite others from the dashboard's account page"}
	}
	token, hash, err := NewLinkToken()
	if err != nil {
		return nil, err
	}
	now = now.UTC()
	l := OwnerLink{Kind: LinkClaim, TokenHash: hash, WorkspaceID: workspaceID, CreatedBy: actor, CreatedAt: now, ExpiresAt: now.Add(ClaimLinkTTL)}
	audit := AuditEntry{Actor: actor, Action: "workspace.claim_link", WorkspaceID: workspaceID, CreatedAt: now}
	if err := links.CreateOwnerLink(ctx, &l, &audit); err != nil {
		return nil, err
	}
	return &ClaimLink{URL: strings.TrimSuffix(publicURL, "/") + "/claim/" + token, ExpiresAt: l.ExpiresAt}, nil
}

// IssueClaimLink issues a claim link through the service's store, which
// keeps the owner accounts (the SQL store does).
func (s *Service) IssueClaimLink(ctx context.Context, workspaceID, actor string) (*ClaimLink, error) {
	links, ok := s.store.(OwnerLinkStore)
	if !ok {
		return nil, &Error{Code: CodeNotFound, Reason: "no_dashboard", Message: "this gateway keeps no dashboard accounts, so there is nothing to claim"}
	}
	return IssueClaimLink(ctx, links, s.cfg.PublicURL, workspaceID, actor, s.now())
}
