package tenants

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// Config is what the tenancy service needs to know about this region.
type Config struct {
	Region     string
	PublicURL  string
	RegionURLs map[string]string
	// Terms is the version this deployment publishes at start.
	Terms Terms
	// TermsGrace is how long a workspace that accepted an earlier version keeps sending after a new one is published.
	TermsGrace time.Duration
	// AuthCacheTTL bounds how long a rotation or suspension on another replica takes to apply here.
	AuthCacheTTL time.Duration
	// AuthTimeout bounds each authentication query, so a frozen database
	// costs a push a bounded wait instead of hanging it (default 2s).
	AuthTimeout time.Duration
	// AuthStaleMax is how long after its last check a workspace is still
	// served from the cache while the database fails (default 15m).
	AuthStaleMax time.Duration
	// TokenKeys sign new tokens and let forged ones be refused without a
	// query; without them the service issues legacy tokens (tests, tools).
	TokenKeys *TokenKeys
	// RefuseLegacyTokens refuses tokens of the legacy, unsigned format.
	RefuseLegacyTokens bool
	// Registerer receives the authentication metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// MaxTokenGrace bounds the optional grace period of a rotated token.
	MaxTokenGrace time.Duration
	// Limits, when set, is told every plan or limit change (the Redis quota store).
	Limits LimitPublisher
	// MeteredPlans are the plans whose pushes over the included amount are billed as overage instead of refused.
	MeteredPlans map[Plan]bool
	// CloudTokenTTL is the life of a Rocket.Chat Cloud access token (default 1h).
	CloudTokenTTL time.Duration
	// PasswordCost is the bcrypt cost of operator passwords (default 12; tests lower it).
	PasswordCost int
	Now          func() time.Time
	Log          *slog.Logger
}

// Service is the tenancy: registration, authentication, consent and the
// operator actions on workspaces.
type Service struct {
	store   Store
	cfg     Config
	cache   *authCache
	health  *dbHealth
	metrics *authMetrics

	dummyOnce sync.Once
	dummyHash []byte // compared against for unknown emails, so timing does not reveal them
}

// NewService returns a Service over store. Call PublishConfiguredTerms once at start.
func NewService(store Store, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.TermsGrace == 0 {
		cfg.TermsGrace = 30 * 24 * time.Hour
	}
	if cfg.AuthCacheTTL == 0 {
		cfg.AuthCacheTTL = 5 * time.Second
	}
	if cfg.AuthTimeout == 0 {
		cfg.AuthTimeout = 2 * time.Second
	}
	if cfg.AuthStaleMax == 0 {
		cfg.AuthStaleMax = 15 * time.Minute
	}
	if cfg.MaxTokenGrace == 0 {
		cfg.MaxTokenGrace = 24 * time.Hour
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = 12
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	m := newAuthMetrics(cfg.Registerer)
	return &Service{store: store, cfg: cfg, cache: newAuthCache(cfg.AuthCacheTTL, cfg.AuthStaleMax, 100_000),
		metrics: m, health: &dbHealth{log: cfg.Log, up: m.dbUp}}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// PublishConfiguredTerms records the configured terms version if it is new.
func (s *Service) PublishConfiguredTerms(ctx context.Context) error {
	if s.cfg.Terms.Version == "" {
		return nil
	}
	return s.store.PublishTerms(ctx, s.cfg.Terms)
}

// CurrentTerms is the terms version workspaces must accept now. While the
// database fails, the version read last keeps answering up to AuthStaleMax.
func (s *Service) CurrentTerms(ctx context.Context) (*Terms, error) {
	now := s.now()
	cached, fetched := s.cache.terms()
	age := now.Sub(fetched)
	if cached != nil && (age < s.cfg.AuthCacheTTL || s.health.isDown() && age < s.cfg.AuthStaleMax) {
		return cached, nil
	}
	started := time.Now()
	qctx, cancel := context.WithTimeout(ctx, s.cfg.AuthTimeout)
	defer cancel()
	t, err := s.store.CurrentTerms(qctx, now)
	if err != nil {
		if ctx.Err() == nil {
			s.health.failed(err, started)
		}
		if cached != nil && age < s.cfg.AuthStaleMax {
			return cached, nil
		}
		return nil, err
	}
	s.health.ok()
	if t == nil {
		return nil, Errorf(CodeInternal, "no terms of service are published")
	}
	s.cache.setTerms(t, now)
	return t, nil
}

// PushURLs are the values a workspace admin pastes into the chat server's settings.
type PushURLs struct {
	Mattermost string `json:"mattermost"`
	RocketChat string `json:"rocketchat"`
}

// PushURLs returns the settings for token; an empty token gives a placeholder
// where the token goes.
func (s *Service) PushURLs(token string) PushURLs {
	if token == "" {
		token = "<TOKEN>"
	}
	return PushURLs{Mattermost: s.cfg.PublicURL + "/mm/" + token, RocketChat: s.cfg.PublicURL}
}

// Registration is a new workspace and its token, shown once.
type Registration struct {
	Workspace Workspace
	Token     string
	Consent   *Consent
}

// RegisterRequest is what a new workspace says about itself.
type RegisterRequest struct {
	Name               string
	ContactEmail       string
	ServerID           string
	AcceptTermsVersion string
	Privacy            Privacy
	// Plan and QuotaLimit are for operators; self-service registration is always free.
	Plan       Plan
	QuotaLimit *int64
}

// Field limits, also used by the HTTP layer's messages.
const (
	MaxNameLen     = 100
	MaxEmailLen    = 254
	MaxServerIDLen = 64
)

// Validate checks the request's shape and fills defaults.
func (r *RegisterRequest) Validate() error {
	r.Name = strings.TrimSpace(r.Name)
	r.ContactEmail = strings.TrimSpace(r.ContactEmail)
	r.ServerID = strings.TrimSpace(r.ServerID)
	if r.Name == "" {
		return FieldError("name", "is required: a name for the workspace, such as your company or chat server")
	}
	if err := CheckText("name", r.Name); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(r.Name); n > MaxNameLen {
		return FieldError("name", "is %d characters; at most %d are allowed", n, MaxNameLen)
	}
	if err := validEmail(r.ContactEmail); err != nil {
		return err
	}
	if err := validServerID(r.ServerID); err != nil {
		return err
	}
	if r.Privacy == "" {
		r.Privacy = PrivacyFull
	}
	if !r.Privacy.Valid() {
		return FieldError("privacy", "must be %q or %q, got %q", PrivacyFull, PrivacyIDOnly, r.Privacy)
	}
	if r.Plan == "" {
		r.Plan = PlanFree
	}
	if !r.Plan.Valid() {
		return FieldError("plan", "must be free, pro or enterprise, got %q", r.Plan)
	}
	return validLimit(r.Plan, r.QuotaLimit)
}

func validEmail(email string) error {
	if email == "" {
		return FieldError("contact_email", "is required: where we reach the workspace's admin")
	}
	if len(email) > MaxEmailLen {
		return FieldError("contact_email", "is %d characters; at most %d are allowed", len(email), MaxEmailLen)
	}
	if err := CheckText("contact_email", email); err != nil {
		return err
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return FieldError("contact_email", "%q is not an email address such as admin@example.com", email)
	}
	return nil
}

func validServerID(id string) error {
	if len(id) > MaxServerIDLen {
		return FieldError("server_id", "is %d characters; at most %d are allowed", len(id), MaxServerIDLen)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return FieldError("server_id", "may contain only letters, digits, - and _ (Mattermost's Diagnostic ID)")
		}
	}
	return nil
}

func validLimit(p Plan, limit *int64) error {
	if limit == nil {
		return nil
	}
	if p != PlanEnterprise {
		return FieldError("limit", "a custom limit is only for the enterprise plan; %s has %d a month", p, PlanLimit(p, nil))
	}
	if *limit < 0 {
		return FieldError("limit", "must be zero or more, got %d", *limit)
	}
	return nil
}

// Register creates a workspace with its first token and, when the request
// accepts the current terms, its first consent, in one transaction.
func (s *Service) Register(ctx context.Context, req RegisterRequest, actor, ip string) (*Registration, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	now := s.now()
	var consent *Consent
	if req.AcceptTermsVersion != "" {
		terms, err := s.CurrentTerms(ctx)
		if err != nil {
			return nil, err
		}
		if req.AcceptTermsVersion != terms.Version {
			return nil, termsMismatch(req.AcceptTermsVersion, terms)
		}
		consent = &Consent{TermsVersion: terms.Version, AcceptedBy: req.ContactEmail, AcceptedIP: ip, AcceptedAt: now}
	}
	id, err := newWorkspaceID()
	if err != nil {
		return nil, Internal(err, "creating a workspace id")
	}
	token, err := s.newToken()
	if err != nil {
		return nil, Internal(err, "creating a token")
	}
	ws := Workspace{
		ID: id, Name: req.Name, ContactEmail: req.ContactEmail, Region: s.cfg.Region,
		Plan: req.Plan, QuotaLimit: req.QuotaLimit, Status: StatusActive,
		ServerID: req.ServerID, Privacy: req.Privacy, CreatedAt: now, UpdatedAt: now,
	}
	if consent != nil {
		consent.WorkspaceID = id
	}
	audit := AuditEntry{Actor: actor, Action: "workspace.create", WorkspaceID: id,
		Detail: fmt.Sprintf("plan=%s ip=%s", req.Plan, ip), CreatedAt: now}
	if err := s.store.CreateWorkspace(ctx, &ws, Credential{Hash: HashToken(token), Hint: TokenHint(token)}, consent, audit); err != nil {
		return nil, err
	}
	s.cfg.Log.Info("workspace registered", "workspace", id, "plan", ws.Plan, "by", actor)
	return &Registration{Workspace: ws, Token: token, Consent: consent}, nil
}

// newWorkspaceID returns "ws_" and 20 random lowercase base32 characters.
func newWorkspaceID() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return "ws_" + string(b[:]), nil
}

// Principal is an authenticated workspace as the hot path sees it: a
// snapshot that may be up to the auth cache TTL old.
type Principal struct {
	Workspace Workspace
	// Consent is the latest consent, nil if the workspace never accepted any terms.
	Consent *Consent
	// TokenHash identifies the token used, for cache invalidation.
	TokenHash string
	// CloudClientID is set when a Rocket.Chat Cloud access token of this
	// client authenticated; such a principal may push and sync, nothing else.
	CloudClientID string
	// ExpiresAt is when the access token ends; zero for workspace tokens.
	ExpiresAt time.Time
}

// Authenticate maps a workspace token to its workspace. A malformed,
// forged or unknown token is unauthorized; a token of another region is
// misdirected, decided from the token alone. Forged tokens and tokens the
// database recently did not know cost no query. While the database fails,
// a workspace authenticated before is served from the cache (up to
// AuthStaleMax) and an unknown token is unavailable, never unauthorized.
func (s *Service) Authenticate(ctx context.Context, token string) (*Principal, error) {
	p, err := s.authenticate(ctx, token)
	// An access token's end holds even for a cached or stale entry.
	if err == nil && !p.ExpiresAt.IsZero() && !s.now().Before(p.ExpiresAt) {
		s.metrics.rejected[rejectUnknown].Inc()
		return nil, errAccessTokenExpired()
	}
	return p, err
}

func (s *Service) authenticate(ctx context.Context, token string) (*Principal, error) {
	region, ok := tokenShape(token)
	if !ok {
		s.metrics.rejected[rejectMalformed].Inc()
		return nil, errTokenMalformed()
	}
	if region != s.cfg.Region {
		return nil, s.misdirected(region)
	}
	d := tokenDigest(token)
	now := s.now()
	e := s.cache.get(d)
	if e != nil && s.cache.fresh(e, now) {
		s.counted(e.kind)
		return e.p, nil
	}
	kind := s.checkToken(token)
	switch {
	case kind == TokenForged:
		s.metrics.rejected[rejectForged].Inc()
		return nil, errTokenMalformed()
	case kind == TokenLegacy && s.cfg.RefuseLegacyTokens:
		s.metrics.rejected[rejectLegacyRefused].Inc()
		return nil, &Error{Code: CodeUnauthorized, Reason: "token_legacy",
			Message: "this workspace token has the old format, which this gateway no longer accepts; rotate it (POST /api/v1/workspace/token or ask pushgate support) and use the new one"}
	}
	if e == nil && s.cache.unknown.has(d, now) {
		s.metrics.rejected[rejectUnknown].Inc()
		return nil, errTokenUnknown()
	}
	if s.health.isDown() {
		// One query at a time finds out whether the outage is over; the
		// others answer at once instead of each waiting for a timeout.
		if !s.health.tryProbe() {
			return s.answerWithoutDatabase(e, kind, now)
		}
		if e != nil && s.cache.usable(e, now) {
			go func() {
				defer s.health.endProbe()
				_, _ = s.lookup(context.WithoutCancel(ctx), d, isAccessToken(token), kind, now)
			}()
			return s.answerWithoutDatabase(e, kind, now)
		}
		defer s.health.endProbe()
	}
	p, err := s.lookup(ctx, d, isAccessToken(token), kind, now)
	if err != nil && ErrorCode(err) != CodeUnauthorized {
		return s.answerWithoutDatabase(e, kind, now)
	}
	if err != nil {
		s.metrics.rejected[rejectUnknown].Inc()
		return nil, err
	}
	s.counted(kind)
	return p, nil
}

// lookup asks the store about a token, once for all concurrent callers, and
// caches the answer; a failure of the store marks the database down.
func (s *Service) lookup(ctx context.Context, d digest, access bool, kind TokenKind, now time.Time) (*Principal, error) {
	hash := hex.EncodeToString(d[:]) // HashToken(token), the stored form
	v, err, _ := s.cache.flight.Do(hash, func() (any, error) {
		// A flight that ended between our look and this one has filled the
		// cache: without this second look, a caller that missed just before
		// that fill would query the store again.
		if e := s.cache.get(d); e != nil && s.cache.fresh(e, now) {
			return e.p, nil
		}
		// The flight serves every waiting caller: one leaving must not cancel it.
		started := time.Now()
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.AuthTimeout)
		defer cancel()
		load := s.loadPrincipal
		if access {
			load = s.loadAccessPrincipal
		}
		p, err := load(qctx, hash)
		switch {
		case err == nil:
			s.health.ok()
			s.cache.put(d, p, kind, now)
		case ErrorCode(err) == CodeUnauthorized:
			s.health.ok()
			s.cache.unknown.put(d, now)
		default:
			s.health.failed(err, started)
		}
		return p, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*Principal), nil
}

// answerWithoutDatabase answers while the database fails: from a stale
// entry if there is one young enough, else unavailable.
func (s *Service) answerWithoutDatabase(e *authEntry, kind TokenKind, now time.Time) (*Principal, error) {
	if e != nil && s.cache.usable(e, now) {
		s.metrics.stale.Inc()
		s.counted(kind)
		return e.p, nil
	}
	s.metrics.unavailable.Inc()
	return nil, &Error{Code: CodeUnavailable, Reason: "auth_unavailable", RetryAfterSeconds: 5,
		Message: "the gateway cannot check this workspace token right now (its database does not answer); retry in a few seconds"}
}

// checkToken checks a token's MAC or checksum; without keys every
// well-formed token is taken as legacy.
func (s *Service) checkToken(token string) TokenKind {
	if s.cfg.TokenKeys == nil {
		if len(token) == LegacyTokenLen && validChecksum(token) {
			return TokenLegacy
		}
		return TokenForged
	}
	return s.cfg.TokenKeys.Check(token)
}

func (s *Service) counted(kind TokenKind) {
	if kind == TokenLegacy {
		s.metrics.legacy.Inc()
	}
}

// Vouch says, without a query, whether token is one this gateway stands
// behind: cached as a workspace's, or signed with one of its keys. The
// per-client limit on failed authentications lets such tokens through.
func (s *Service) Vouch(token string) bool {
	if _, ok := tokenShape(token); !ok {
		return false
	}
	if e := s.cache.get(tokenDigest(token)); e != nil && s.cache.usable(e, s.now()) {
		return true
	}
	return s.cfg.TokenKeys != nil && s.cfg.TokenKeys.Check(token) == TokenSigned
}

func (s *Service) newToken() (string, error) {
	if s.cfg.TokenKeys == nil {
		return NewToken(s.cfg.Region)
	}
	return s.cfg.TokenKeys.NewToken(s.cfg.Region)
}

func errTokenMalformed() *Error {
	return &Error{Code: CodeUnauthorized, Reason: "token_malformed",
		Message: "the workspace token is missing or malformed: it starts with pgw_ and is " + fmt.Sprint(TokenLen) + " characters long (" + fmt.Sprint(LegacyTokenLen) + " in the older format); copy it again from your registration"}
}

func errTokenUnknown() *Error {
	return &Error{Code: CodeUnauthorized, Reason: "token_unknown",
		Message: "this workspace token is unknown or was rotated; use the current token of your workspace"}
}

func (s *Service) loadPrincipal(ctx context.Context, hash string) (*Principal, error) {
	ws, err := s.store.Authenticate(ctx, hash, s.now())
	if err != nil {
		if ErrorCode(err) == CodeNotFound {
			return nil, errTokenUnknown()
		}
		return nil, err
	}
	consent, err := s.store.LatestConsent(ctx, ws.ID)
	if err != nil {
		return nil, err
	}
	return &Principal{Workspace: *ws, Consent: consent, TokenHash: hash}, nil
}

func (s *Service) misdirected(region string) *Error {
	u, known := s.cfg.RegionURLs[region]
	if !known {
		return &Error{Code: CodeMisdirected, Reason: "wrong_region",
			Message: fmt.Sprintf("this token belongs to region %q, which this gateway (region %s) does not know; use the push URL you were given at registration", region, s.cfg.Region)}
	}
	return &Error{Code: CodeMisdirected, Reason: "wrong_region", RegionURL: u,
		Message: fmt.Sprintf("this workspace is registered in region %s: send to %s instead of this gateway (region %s)", region, u, s.cfg.Region)}
}

// TermsState says where a workspace stands with the current terms.
type TermsState struct {
	Current Terms
	// Accepted is the version the workspace last accepted, "" if none.
	Accepted   string
	AcceptedAt *time.Time
	// Status is "accepted", "grace" (an earlier version, still allowed until GraceUntil) or "required".
	Status     string
	GraceUntil *time.Time
}

// TermsState computes p's standing with the current terms.
func (s *Service) TermsState(ctx context.Context, p *Principal) (TermsState, error) {
	terms, err := s.CurrentTerms(ctx)
	if err != nil {
		return TermsState{}, err
	}
	st := TermsState{Current: *terms, Status: "required"}
	if p.Consent == nil {
		return st, nil
	}
	st.Accepted = p.Consent.TermsVersion
	at := p.Consent.AcceptedAt
	st.AcceptedAt = &at
	if p.Consent.TermsVersion == terms.Version {
		st.Status = "accepted"
		return st, nil
	}
	until := terms.PublishedAt.Add(s.cfg.TermsGrace)
	st.GraceUntil = &until
	if s.now().Before(until) {
		st.Status = "grace"
	}
	return st, nil
}

// CanSend says whether p may send a push now: active, and the current terms
// accepted (or an earlier version inside the grace period).
func (s *Service) CanSend(ctx context.Context, p *Principal) error {
	if p.Workspace.Status == StatusSuspended {
		return &Error{Code: CodeForbidden, Reason: "suspended",
			Message: "workspace " + p.Workspace.ID + " is suspended; nothing is sent until it is resumed: contact pushgate support"}
	}
	// The common case, checked without building a TermsState: this is the push hot path.
	if p.Consent != nil {
		if terms, err := s.CurrentTerms(ctx); err == nil && p.Consent.TermsVersion == terms.Version {
			return nil
		}
	}
	st, err := s.TermsState(ctx, p)
	if err != nil {
		return err
	}
	switch st.Status {
	case "accepted", "grace":
		return nil
	}
	how := fmt.Sprintf(`read them at %s and accept with POST %s/api/v1/workspace/consent {"terms_version":%q}`, st.Current.URL, s.cfg.PublicURL, st.Current.Version)
	if st.Accepted == "" {
		return &Error{Code: CodeForbidden, Reason: "terms_not_accepted",
			Message: fmt.Sprintf("workspace has not accepted the terms of service version %s; %s", st.Current.Version, how)}
	}
	return &Error{Code: CodeForbidden, Reason: "terms_outdated",
		Message: fmt.Sprintf("workspace accepted terms version %s, but version %s applies since %s and the grace period ended %s; %s",
			st.Accepted, st.Current.Version, st.Current.PublishedAt.Format("2006-01-02"), st.GraceUntil.Format("2006-01-02"), how)}
}

// Accept records that by (from ip) accepted terms version for p's workspace.
// Only the current version can be accepted.
func (s *Service) Accept(ctx context.Context, p *Principal, version, by, ip string) (*Consent, error) {
	if version == "" {
		return nil, FieldError("terms_version", "is required: the version from GET /api/v1/terms")
	}
	if err := validAcceptedBy(by); err != nil {
		return nil, err
	}
	terms, err := s.CurrentTerms(ctx)
	if err != nil {
		return nil, err
	}
	if version != terms.Version {
		return nil, termsMismatch(version, terms)
	}
	c := Consent{WorkspaceID: p.Workspace.ID, TermsVersion: version, AcceptedBy: by, AcceptedIP: ip, AcceptedAt: s.now()}
	if err := s.store.RecordConsent(ctx, c); err != nil {
		return nil, err
	}
	s.cache.invalidateWorkspace(p.Workspace.ID)
	s.cfg.Log.Info("terms accepted", "workspace", p.Workspace.ID, "terms_version", version)
	return &c, nil
}

// validAcceptedBy checks who accepted the terms: a name or an email, kept as
// the record of consent, so it must read exactly as it was sent.
func validAcceptedBy(by string) error {
	if by == "" {
		return FieldError("accepted_by", "is required: the person accepting, by name or email")
	}
	if err := CheckText("accepted_by", by); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(by); n > MaxEmailLen {
		return FieldError("accepted_by", "is %d characters; at most %d are allowed", n, MaxEmailLen)
	}
	return nil
}

func termsMismatch(version string, current *Terms) *Error {
	return &Error{Code: CodeConflict, Field: "terms_version", Reason: "terms_version_not_current",
		Message: fmt.Sprintf("terms_version %q is not the current terms of service; the current version is %q (%s): accept that one", version, current.Version, current.URL)}
}

// RotateToken issues a new token for the workspace. The old token stops
// working at once, or after grace when grace > 0 (at most MaxTokenGrace).
func (s *Service) RotateToken(ctx context.Context, workspaceID, actor string, grace time.Duration) (string, error) {
	return s.RotateTokenBy(ctx, workspaceID, Actor{Name: actor}, grace)
}

// RotateTokenBy is RotateToken with the source of the change for the audit log.
func (s *Service) RotateTokenBy(ctx context.Context, workspaceID string, by Actor, grace time.Duration) (string, error) {
	actor := by.Name
	if grace < 0 || grace > s.cfg.MaxTokenGrace {
		return "", FieldError("grace", "must be between 0 and %s, got %s", s.cfg.MaxTokenGrace, grace)
	}
	token, err := s.newToken()
	if err != nil {
		return "", Internal(err, "creating a token")
	}
	now := s.now()
	audit := AuditEntry{Actor: actor, Action: "workspace.rotate_token", WorkspaceID: workspaceID,
		Detail: "grace=" + grace.String(), CreatedAt: now, Source: by.Source}
	if err := s.store.ReplaceToken(ctx, workspaceID, Credential{Hash: HashToken(token), Hint: TokenHint(token)}, now.Add(grace), audit); err != nil {
		return "", err
	}
	s.cache.invalidateWorkspace(workspaceID)
	s.cfg.Log.Info("workspace token rotated", "workspace", workspaceID, "by", actor, "grace", grace)
	return token, nil
}

// Update applies an operator's or the workspace's own change and audits it.
func (s *Service) Update(ctx context.Context, workspaceID, actor, action string, change WorkspaceChange) (*Workspace, error) {
	return s.UpdateBy(ctx, workspaceID, Actor{Name: actor}, action, change)
}

// UpdateBy is Update with the source of the change for the audit log.
func (s *Service) UpdateBy(ctx context.Context, workspaceID string, by Actor, action string, change WorkspaceChange) (*Workspace, error) {
	actor := by.Name
	if change.Plan != nil {
		if !change.Plan.Valid() {
			return nil, FieldError("plan", "must be free, pro or enterprise, got %q", *change.Plan)
		}
		var limit *int64
		if change.QuotaLimit != nil {
			limit = *change.QuotaLimit
		}
		if err := validLimit(*change.Plan, limit); err != nil {
			return nil, err
		}
		if change.QuotaLimit == nil {
			none := (*int64)(nil)
			change.QuotaLimit = &none // a plan change clears an old custom limit
		}
	}
	if change.Privacy != nil && !change.Privacy.Valid() {
		return nil, FieldError("privacy", "must be %q or %q, got %q", PrivacyFull, PrivacyIDOnly, *change.Privacy)
	}
	if change.ServerID != nil {
		if err := validServerID(*change.ServerID); err != nil {
			return nil, err
		}
	}
	audit := AuditEntry{Actor: actor, Action: action, WorkspaceID: workspaceID, Detail: describeChange(change), CreatedAt: s.now(), Source: by.Source}
	ws, err := s.store.UpdateWorkspace(ctx, workspaceID, change, audit)
	if err != nil {
		return nil, err
	}
	s.cache.invalidateWorkspace(workspaceID)
	s.cfg.Log.Info("workspace changed", "workspace", workspaceID, "action", action, "by", actor, "change", audit.Detail)
	if change.Plan != nil || change.QuotaLimit != nil {
		s.PublishWorkspace(ctx, ws)
	}
	return ws, nil
}

// UpdateOwn applies a workspace's change of its own settings (privacy and
// server_id). A suspended workspace's settings stay as they are until an
// operator resumes it; it may still read its data, accept the terms and
// rotate its token, so that a leaked token can be revoked at once.
func (s *Service) UpdateOwn(ctx context.Context, p *Principal, change WorkspaceChange) (*Workspace, error) {
	if change.Status != nil || change.Plan != nil || change.QuotaLimit != nil {
		return nil, Errorf(CodeForbidden, "a workspace changes only its privacy and server_id; plans and status are set by pushgate")
	}
	// The principal may be a cached snapshot: the status is read afresh.
	ws, err := s.store.Workspace(ctx, p.Workspace.ID)
	if err != nil {
		return nil, err
	}
	if ws.Status == StatusSuspended {
		return nil, &Error{Code: CodeForbidden, Reason: "suspended",
			Message: "workspace " + ws.ID + " is suspended: its settings cannot change until it is resumed (you can still read it and its usage, accept the terms and rotate its token); contact pushgate support"}
	}
	return s.Update(ctx, ws.ID, "workspace:"+ws.ID, "workspace.update", change)
}

func describeChange(c WorkspaceChange) string {
	var parts []string
	if c.Status != nil {
		parts = append(parts, "status="+string(*c.Status))
	}
	if c.Plan != nil {
		parts = append(parts, "plan="+string(*c.Plan))
	}
	if c.QuotaLimit != nil {
		if *c.QuotaLimit == nil {
			parts = append(parts, "limit=plan")
		} else {
			parts = append(parts, fmt.Sprintf("limit=%d", **c.QuotaLimit))
		}
	}
	if c.Privacy != nil {
		parts = append(parts, "privacy="+string(*c.Privacy))
	}
	if c.ServerID != nil {
		parts = append(parts, "server_id="+*c.ServerID)
	}
	return strings.Join(parts, " ")
}

// Workspace returns one workspace.
func (s *Service) Workspace(ctx context.Context, id string) (*Workspace, error) {
	return s.store.Workspace(ctx, id)
}

// Workspaces lists every workspace of this region.
func (s *Service) Workspaces(ctx context.Context) ([]Workspace, error) {
	return s.store.ListWorkspaces(ctx)
}

// LatestConsent returns a workspace's latest consent or nil.
func (s *Service) LatestConsent(ctx context.Context, workspaceID string) (*Consent, error) {
	return s.store.LatestConsent(ctx, workspaceID)
}

// MinPasswordLen is the shortest operator password accepted.
const MinPasswordLen = 12

// CreateOperator adds an operator account with a bcrypt-hashed password.
func (s *Service) CreateOperator(ctx context.Context, email, password string) (*Operator, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if err := validEmail(email); err != nil {
		return nil, &Error{Code: CodeInvalid, Field: "email", Message: strings.Replace(err.Error(), "contact_email", "email", 1)}
	}
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return nil, FieldError("password", "must be at least %d characters", MinPasswordLen)
	}
	if len(password) > 72 {
		return nil, FieldError("password", "must be at most 72 bytes (bcrypt's limit)")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.PasswordCost)
	if err != nil {
		return nil, Internal(err, "hashing the password")
	}
	op := &Operator{Email: email, PasswordHash: string(hash), CreatedAt: s.now()}
	if err := s.store.CreateOperator(ctx, op); err != nil {
		return nil, err
	}
	return op, nil
}

// CheckOperatorPassword returns the operator when email and password match.
func (s *Service) CheckOperatorPassword(ctx context.Context, email, password string) (*Operator, error) {
	op, err := s.store.OperatorByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	denied := Errorf(CodeUnauthorized, "wrong email or password")
	if err != nil {
		if ErrorCode(err) == CodeNotFound {
			// Spend the same time as a real check so timing does not reveal which emails exist.
			s.dummyOnce.Do(func() {
				s.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("pushgate-timing-equaliser"), s.cfg.PasswordCost)
			})
			_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
			return nil, denied
		}
		return nil, err
	}
	if bcrypt.CompareHashAndPassword([]byte(op.PasswordHash), []byte(password)) != nil {
		return nil, denied
	}
	return op, nil
}

// WatchChanges polls the store every interval for workspaces changed by
// another replica or the CLI and drops them from this replica's cache, so a
// rotation, suspension, plan change or consent applies everywhere within
// about one interval. It returns when ctx ends.
func (s *Service) WatchChanges(ctx context.Context, every time.Duration) {
	// Changes are looked for a little before the last poll, to cover clock
	// skew between the machines that write them.
	const skew = 10 * time.Second
	last := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			started := time.Now()
			qctx, cancel := context.WithTimeout(ctx, s.cfg.AuthTimeout)
			ids, err := s.store.ChangedWorkspaces(qctx, last.Add(-skew))
			cancel()
			if err != nil {
				// An outage is logged once, by the health tracker, not every poll.
				if ctx.Err() == nil {
					s.health.failed(err, started)
				}
				continue
			}
			s.health.ok()
			for _, id := range ids {
				s.cache.invalidateWorkspace(id)
			}
			last = now
		}
	}
}
