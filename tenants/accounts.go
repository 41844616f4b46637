package tenants

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// OwnerAccount is a person who signs in to the dashboard for one workspace.
type OwnerAccount struct {
	ID           int64
	WorkspaceID  string
	Email        string
	PasswordHash string
	CreatedAt    time.Time
}

// SessionKind says whose dashboard session it is.
type SessionKind string

// The session kinds: a workspace owner, or an operator of this gateway.
const (
	SessionOwner    SessionKind = "owner"
	SessionOperator SessionKind = "operator"
)

// Session is a signed-in browser. Only the hash of its id is stored, so a
// copy of the database cannot be replayed as a cookie.
type Session struct {
	IDHash    string
	Kind      SessionKind
	AccountID int64
	// WorkspaceID is the owner's workspace; empty for operators.
	WorkspaceID string
	Email       string
	// CSRF is the token every form of this session posts back.
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AccountStore keeps dashboard accounts, sessions and failed sign-ins.
type AccountStore interface {
	// CreateOwnerAccount writes a; an email already taken is CodeConflict.
	CreateOwnerAccount(ctx context.Context, a *OwnerAccount) error
	// ReserveOwnerEmail writes a without a workspace, so that of concurrent
	// sign-ups with one email exactly one goes on to create a workspace. An
	// email taken by an account, or by a reservation made at or after
	// staleBefore, is CodeConflict; an older reservation (its sign-up died) is replaced.
	ReserveOwnerEmail(ctx context.Context, a *OwnerAccount, staleBefore time.Time) error
	// AttachOwnerAccount gives a reserved account its new workspace.
	AttachOwnerAccount(ctx context.Context, accountID int64, workspaceID string) error
	// ReleaseOwnerEmail deletes a reservation whose sign-up failed.
	ReleaseOwnerEmail(ctx context.Context, accountID int64) error
	// OwnerAccountByEmail ignores case; an unknown email, or one only reserved, is CodeNotFound.
	OwnerAccountByEmail(ctx context.Context, email string) (*OwnerAccount, error)
	// SetOwnerPassword replaces an owner's password hash and ends every other
	// session of the account than keepSession (an id hash), in one transaction.
	SetOwnerPassword(ctx context.Context, accountID int64, hash, keepSession string) error
	// CreateSession writes s and deletes sessions that expired before s was created.
	CreateSession(ctx context.Context, s Session) error
	// Session returns the live session with this id hash at now; an unknown or expired one is CodeNotFound.
	Session(ctx context.Context, idHash string, now time.Time) (*Session, error)
	DeleteSession(ctx context.Context, idHash string) error
	// AddSignInAttempt counts one attempt of subject and returns the attempts
	// in its window, this one included; a window starts at the first attempt
	// after the last one ended.
	AddSignInAttempt(ctx context.Context, subject string, at time.Time, window time.Duration) (int, error)
	// ForgetSignInAttempt takes back one attempt that succeeded.
	ForgetSignInAttempt(ctx context.Context, subject string) error
	ClearSignInAttempts(ctx context.Context, subject string) error
	OwnerLinkStore
}

// MaxPasswordBytes is bcrypt's limit; longer passwords would be cut silently.
const MaxPasswordBytes = 72

// HashPassword checks a new dashboard password's length and hashes it with
// the cost operator passwords use.
func (s *Service) HashPassword(field, password string) (string, error) {
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return "", FieldError(field, "must be at least %d characters", MinPasswordLen)
	}
	if len(password) > MaxPasswordBytes {
		return "", FieldError(field, "must be at most %d bytes", MaxPasswordBytes)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.PasswordCost)
	if err != nil {
		return "", Internal(err, "hashing the password")
	}
	return string(hash), nil
}

// PasswordMatches compares password with hash; an empty hash (an unknown
// account) spends the same time and never matches, so timing does not tell
// which emails exist.
func (s *Service) PasswordMatches(hash, password string) bool {
	if hash == "" {
		s.dummyOnce.Do(func() {
			s.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("pushgate-timing-equaliser"), s.cfg.PasswordCost)
		})
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// OperatorByEmail returns an operator account, ignoring case.
func (s *Service) OperatorByEmail(ctx context.Context, email string) (*Operator, error) {
	return s.store.OperatorByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
}

// ValidEmail checks an account email as registration checks a contact email.
func ValidEmail(field, email string) error {
	if err := validEmail(email); err != nil {
		e := AsError(err)
		return &Error{Code: CodeInvalid, Field: field, Message: strings.Replace(e.Message, "contact_email", field, 1)}
	}
	return nil
}

// PrincipalOf loads a workspace and its latest consent afresh, as the
// dashboard sees it (never the push path's cached snapshot).
func (s *Service) PrincipalOf(ctx context.Context, workspaceID string) (*Principal, error) {
	ws, c, err := s.store.WorkspaceWithConsent(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	return &Principal{Workspace: *ws, Consent: c}, nil
}
