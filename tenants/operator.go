package tenants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Actor names who changed a workspace and through what (operator, api,
// workspace …) for the audit log; an empty Source is the Name's prefix.
type Actor struct {
	Name   string
	Source string
}

// OperatorActor is how an operator signed in by email appears in the audit log.
func OperatorActor(email, source string) Actor {
	return Actor{Name: "operator:" + email, Source: source}
}

// WorkspaceSort orders the operator's workspace list.
type WorkspaceSort string

// The orders of the workspace list.
const (
	SortByUsage WorkspaceSort = "usage"  // most pushes this month first
	SortNewest  WorkspaceSort = "newest" // most recently created first
	SortByName  WorkspaceSort = "name"   // by name, A to Z
)

// Bounds of the operator's workspace list.
const (
	DefaultWorkspacePage = 50
	MaxWorkspacePage     = 200
	// WorkspaceCountCap bounds the count shown with a list: beyond it the
	// list says "more than", so a broad filter never counts every row.
	WorkspaceCountCap = 10_000
	maxSearchLen      = MaxEmailLen
)

// WorkspaceQuery asks for one page of the operator's workspace list.
type WorkspaceQuery struct {
	// Search matches an id or server_id exactly, or the start of a name or
	// contact email, ignoring case.
	Search string
	Plan   Plan
	Status Status
	// NearLimit keeps workspaces that used 80% or more of this month's limit.
	NearLimit bool
	// TermsPending keeps workspaces that have not accepted the current terms.
	TermsPending bool
	Sort         WorkspaceSort
	// After is the Next of the page before; Before is the Prev of the page
	// after. At most one is set; neither is the first page.
	After, Before string
	Limit         int

	// Period and TermsVersion are filled by the service: this month, and
	// the current terms that TermsPending compares with.
	Period       Period
	TermsVersion string
}

// Validate checks an operator's query and fills its defaults.
func (q *WorkspaceQuery) Validate() error {
	q.Search = strings.TrimSpace(q.Search)
	if n := utf8.RuneCountInString(q.Search); n > maxSearchLen {
		return FieldError("q", "is %d characters; at most %d are allowed", n, maxSearchLen)
	}
	if err := CheckText("q", q.Search); err != nil {
		return err
	}
	if q.Plan != "" && !q.Plan.Valid() {
		return FieldError("plan", "must be free, pro or enterprise, got %q", q.Plan)
	}
	if q.Status != "" && q.Status != StatusActive && q.Status != StatusSuspended {
		return FieldError("status", "must be active or suspended, got %q", q.Status)
	}
	switch q.Sort {
	case "":
		q.Sort = SortByUsage
	case SortByUsage, SortNewest, SortByName:
	default:
		return FieldError("sort", "must be usage, newest or name, got %q", q.Sort)
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultWorkspacePage
	case q.Limit < 1 || q.Limit > MaxWorkspacePage:
		return FieldError("limit", "must be between 1 and %d, got %d", MaxWorkspacePage, q.Limit)
	}
	if len(q.After) > 512 || len(q.Before) > 512 || q.After != "" && q.Before != "" {
		return FieldError("after", "is not a cursor of this list; start from the first page")
	}
	return nil
}

// WorkspaceListing is one workspace of the operator's list.
type WorkspaceListing struct {
	Workspace
	// Used is this month's count as last copied onto the workspace, at most
	// a minute or two behind the quota store (UsageRefreshInterval).
	Used int64
}

// WorkspacePage is one page of the operator's workspace list.
type WorkspacePage struct {
	Workspaces []WorkspaceListing
	// Next is the cursor of the following page, empty on the last one; Prev
	// that of the page before, empty on the first one.
	Next, Prev string
	// Total counts the matching workspaces up to WorkspaceCountCap; TotalCapped says there are more.
	Total       int
	TotalCapped bool
}

// UsageRefreshInterval is how often this month's usage is copied onto the
// workspaces for the operator's list.
const UsageRefreshInterval = time.Minute

// WorkspaceFinder pages through workspaces in the database, for operators.
type WorkspaceFinder interface {
	FindWorkspaces(ctx context.Context, q WorkspaceQuery) (*WorkspacePage, error)
}

// FindWorkspaces returns one page of the operator's workspace list.
func (s *Service) FindWorkspaces(ctx context.Context, q WorkspaceQuery) (*WorkspacePage, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	f, ok := s.store.(WorkspaceFinder)
	if !ok {
		return nil, Internal(errors.New("the store cannot page workspaces"), "listing workspaces")
	}
	q.Period = PeriodOf(s.now())
	if q.TermsPending {
		t, err := s.CurrentTerms(ctx)
		if err != nil {
			return nil, err
		}
		q.TermsVersion = t.Version
	}
	return f.FindWorkspaces(ctx, q)
}

// Consents returns a workspace's consent history, newest first.
func (s *Service) Consents(ctx context.Context, workspaceID string) ([]Consent, error) {
	return s.store.Consents(ctx, workspaceID)
}

// AuditLog returns a workspace's latest audit entries, newest first.
func (s *Service) AuditLog(ctx context.Context, workspaceID string, limit int) ([]AuditEntry, error) {
	return s.store.AuditLog(ctx, workspaceID, limit)
}

// MaxGrantedPushes bounds one operator's credit of pushes.
const MaxGrantedPushes = 100_000_000

// PushGrantStore records pushes an operator credits to a workspace.
type PushGrantStore interface {
	// GrantPushes records pkg as a package of the workspace, adds it to the
	// limit of its period, and writes audit, in one transaction.
	GrantPushes(ctx context.Context, workspaceID string, pkg Package, audit AuditEntry) (*Workspace, error)
}

// GrantPushes credits pushes to a workspace's limit this month, as a push
// package bought through billing would, and applies the new limit at once.
func (s *Service) GrantPushes(ctx context.Context, workspaceID string, by Actor, pushes int64, note string) (*Workspace, error) {
	if pushes < 1 || pushes > MaxGrantedPushes {
		return nil, FieldError("pushes", "must be between 1 and %d, got %d", MaxGrantedPushes, pushes)
	}
	note = strings.TrimSpace(note)
	if err := CheckText("note", note); err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(note); n > 200 {
		return nil, FieldError("note", "is %d characters; at most 200 are allowed", n)
	}
	g, ok := s.store.(PushGrantStore)
	if !ok {
		return nil, Internal(errors.New("the store cannot record packages"), "adding pushes")
	}
	ws, err := s.store.Workspace(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	if PlanLimit(ws.Plan, ws.QuotaLimit) == Unlimited {
		return nil, Errorf(CodeConflict, "workspace %s has no monthly limit, so added pushes would change nothing", workspaceID)
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, Internal(err, "adding pushes")
	}
	now := s.now()
	p := PeriodOf(now)
	detail := "pushes=" + strconv.FormatInt(pushes, 10) + " period=" + string(p)
	if note != "" {
		detail += " note=" + note
	}
	ws, err = g.GrantPushes(ctx, workspaceID, Package{CheckoutSessionID: "grant_" + hex.EncodeToString(id[:]), Pushes: pushes, Period: p, CreatedAt: now},
		AuditEntry{Actor: by.Name, Action: "workspace.add_pushes", WorkspaceID: workspaceID, Detail: detail, CreatedAt: now, Source: by.Source})
	if err != nil {
		return nil, err
	}
	s.cfg.Log.Info("pushes added to a workspace", "workspace", workspaceID, "by", by.Name, "pushes", pushes, "period", string(p))
	s.PublishWorkspace(ctx, ws)
	return ws, nil
}

// OperatorKey is an operator's API key, stored by its hash.
type OperatorKey struct {
	ID         int64
	OperatorID int64
	// Email is the operator's, the actor of every action taken with the key.
	Email     string
	Name      string
	Hint      string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// OperatorKeyStore keeps operator API keys.
type OperatorKeyStore interface {
	CreateOperatorKey(ctx context.Context, k *OperatorKey, hash string) error
	// LiveOperatorKey returns the unrevoked key with this hash; any other is CodeNotFound.
	LiveOperatorKey(ctx context.Context, hash string) (*OperatorKey, error)
	// OperatorKeys lists keys, newest first: an operator's, or everyone's for "".
	OperatorKeys(ctx context.Context, email string) ([]OperatorKey, error)
	// RevokeOperatorKey ends a key at once; an unknown or revoked one is CodeNotFound.
	RevokeOperatorKey(ctx context.Context, id int64, at time.Time) (*OperatorKey, error)
}

// operatorKeyPrefix marks operator keys, so that a key pasted in the wrong
// place is recognised and never taken for a workspace token.
const operatorKeyPrefix = "pgo_"

// operatorKeyLen is the prefix and 32 random bytes in unpadded base64url.
const operatorKeyLen = len(operatorKeyPrefix) + 43

// HashOperatorKey is the stored form of an operator API key.
func HashOperatorKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func (s *Service) operatorKeys() (OperatorKeyStore, error) {
	ks, ok := s.store.(OperatorKeyStore)
	if !ok {
		return nil, Internal(errors.New("the store keeps no operator keys"), "operator API keys")
	}
	return ks, nil
}

// CreateOperatorKey issues an API key for an existing operator; the key is
// returned only here.
func (s *Service) CreateOperatorKey(ctx context.Context, email, name string) (string, *OperatorKey, error) {
	ks, err := s.operatorKeys()
	if err != nil {
		return "", nil, err
	}
	name = strings.TrimSpace(name)
	if err := CheckText("name", name); err != nil {
		return "", nil, err
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLen {
		return "", nil, FieldError("name", "is %d characters; at most %d are allowed", n, MaxNameLen)
	}
	op, err := s.OperatorByEmail(ctx, email)
	if err != nil {
		return "", nil, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, Internal(err, "creating an operator key")
	}
	key := operatorKeyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	k := &OperatorKey{OperatorID: op.ID, Email: op.Email, Name: name, Hint: key[:len(operatorKeyPrefix)+4] + "…", CreatedAt: s.now()}
	if err := ks.CreateOperatorKey(ctx, k, HashOperatorKey(key)); err != nil {
		return "", nil, err
	}
	s.cfg.Log.Info("operator API key created", "operator", op.Email, "key_id", k.ID, "hint", k.Hint)
	return key, k, nil
}

// AuthenticateOperatorKey returns the live key an API request carries.
func (s *Service) AuthenticateOperatorKey(ctx context.Context, key string) (*OperatorKey, error) {
	denied := &Error{Code: CodeUnauthorized, Reason: "operator_key_unknown",
		Message: "this is not a live operator API key; `pushgate admin create-key --email E` issues one"}
	if len(key) != operatorKeyLen || !strings.HasPrefix(key, operatorKeyPrefix) {
		return nil, denied
	}
	ks, err := s.operatorKeys()
	if err != nil {
		return nil, err
	}
	k, err := ks.LiveOperatorKey(ctx, HashOperatorKey(key))
	if ErrorCode(err) == CodeNotFound {
		return nil, denied
	}
	return k, err
}

// OperatorKeys lists the API keys of an operator, or of everyone for "".
func (s *Service) OperatorKeys(ctx context.Context, email string) ([]OperatorKey, error) {
	ks, err := s.operatorKeys()
	if err != nil {
		return nil, err
	}
	return ks.OperatorKeys(ctx, strings.ToLower(strings.TrimSpace(email)))
}

// RevokeOperatorKey ends an API key at once.
func (s *Service) RevokeOperatorKey(ctx context.Context, id int64) (*OperatorKey, error) {
	ks, err := s.operatorKeys()
	if err != nil {
		return nil, err
	}
	k, err := ks.RevokeOperatorKey(ctx, id, s.now())
	if err != nil {
		return nil, err
	}
	s.cfg.Log.Info("operator API key revoked", "operator", k.Email, "key_id", k.ID)
	return k, nil
}
