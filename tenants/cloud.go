package tenants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Rocket.Chat Cloud registration. A stock Rocket.Chat server registers with
// its Cloud_Url through a device-style flow (RFC 8628) and then pushes with
// access tokens from an OAuth client-credentials grant; pointed at pushgate,
// this is that Cloud. The wire shapes come from Rocket.Chat's
// apps/meteor/app/cloud/server/functions/ and are answered in api/cloud.go.

// CloudServer is what a Rocket.Chat server says about itself when it asks
// to register (buildWorkspaceRegistrationData in buildRegistrationData.ts).
type CloudServer struct {
	UniqueID     string
	WorkspaceID  string // Rocket.Chat's Cloud_Workspace_Id, empty on a first registration
	Address      string // Site_Url
	SiteName     string
	ContactName  string
	ContactEmail string
	Version      string
	Seats        int64
}

// CloudIntent is one pending registration, found by the hash of its device
// code (the server's secret) or of its user code (what a person types).
type CloudIntent struct {
	ID             int64
	DeviceCodeHash string
	UserCodeHash   string
	Server         CloudServer
	RequestIP      string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	Interval       time.Duration
	LastPolledAt   *time.Time
	// WorkspaceID is set once an owner confirmed the intent for their workspace.
	WorkspaceID string
	ConfirmedBy string
	ConfirmedAt *time.Time
	DeniedAt    *time.Time
	// ClaimedAt is set when a poll collected the client: the device code is spent.
	ClaimedAt *time.Time
}

// CloudClient is an OAuth client bound to one workspace: a registered Rocket.Chat server.
type CloudClient struct {
	ID          string
	WorkspaceID string
	Name        string
	Address     string
	UniqueID    string
	SecretHash  string
	// PreviousSecretHash is the secret before the last rotation, valid until PreviousSecretUntil.
	PreviousSecretHash  string
	PreviousSecretUntil *time.Time
	// Origin is CloudOriginPoll or CloudOriginManual.
	Origin      string
	CreatedBy   string
	CreatedAt   time.Time
	RevokedAt   *time.Time
	RevokedBy   string
	LastTokenAt *time.Time
}

// How a client came to be.
const (
	CloudOriginPoll   = "poll"
	CloudOriginManual = "manual"
)

// CloudAccessToken is the stored form of one access token.
type CloudAccessToken struct {
	Hash        string
	ClientID    string
	WorkspaceID string
	Scope       string
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// CloudStore keeps registration intents, clients and access tokens. Client
// lookups by id and token lookups by hash are the credential checks
// themselves; everything an owner does is scoped by the workspace id.
type CloudStore interface {
	CreateCloudIntent(ctx context.Context, in *CloudIntent, audit AuditEntry) error
	CloudIntentByDeviceCode(ctx context.Context, hash string) (*CloudIntent, error)
	CloudIntentByUserCode(ctx context.Context, hash string) (*CloudIntent, error)
	// NoteCloudPoll records a poll at `at` unless the last one was less than
	// the intent's interval before; then it answers false and lengthens the
	// interval by slowDown (RFC 8628's slow_down), atomically.
	NoteCloudPoll(ctx context.Context, id int64, at time.Time, slowDown time.Duration) (bool, error)
	// ConfirmCloudIntent binds a live, unbound intent to workspaceID, with a
	// consent when not nil; an intent confirmed, denied or expired meanwhile is CodeConflict.
	ConfirmCloudIntent(ctx context.Context, id int64, workspaceID, by string, at time.Time, consent *Consent, audit AuditEntry) error
	// ClaimCloudIntent spends a confirmed intent and writes its client; a second claim is CodeConflict.
	ClaimCloudIntent(ctx context.Context, id int64, c CloudClient, audit AuditEntry) error
	CreateCloudClient(ctx context.Context, c CloudClient, audit AuditEntry) error
	CloudClient(ctx context.Context, id string) (*CloudClient, error)
	CloudClients(ctx context.Context, workspaceID string) ([]CloudClient, error)
	// RotateCloudClientSecret gives a live client of workspaceID a new secret, keeping the old one until prevUntil.
	RotateCloudClientSecret(ctx context.Context, workspaceID, clientID, newHash string, prevUntil time.Time, audit AuditEntry) error
	// RevokeCloudClient ends a client of workspaceID and marks the workspace changed.
	RevokeCloudClient(ctx context.Context, workspaceID, clientID, by string, at time.Time, audit AuditEntry) error
	// CreateCloudAccessToken writes t and forgets the client's expired tokens.
	CreateCloudAccessToken(ctx context.Context, t CloudAccessToken) error
	// AuthenticateAccessToken finds the live token with hash, of a client not revoked, and its workspace.
	AuthenticateAccessToken(ctx context.Context, hash string, now time.Time) (*Workspace, *CloudAccessToken, error)
}

// The flow's timings; RFC 8628 suggests a 5 second interval.
const (
	defaultCloudIntentTTL    = 15 * time.Minute
	defaultCloudPollInterval = 5 * time.Second
	defaultCloudTokenTTL     = time.Hour
	cloudSlowDown            = 5 * time.Second
)

// CloudScopes are the scopes pushgate grants; Rocket.Chat asks for these
// and more (workspaceScopes in oauthScopes.ts), and gets what is served.
var CloudScopes = []string{"workspace:push:send", "workspace:license:read", "workspace:client:write", "workspace:stats:write"}

func (s *Service) cloudTokenTTL() time.Duration {
	if s.cfg.CloudTokenTTL > 0 {
		return s.cfg.CloudTokenTTL
	}
	return defaultCloudTokenTTL
}

// RegistrationClientURI is the base of a workspace's sync, client and
// license calls (Cloud_Workspace_Registration_Client_Uri).
func (s *Service) RegistrationClientURI(workspaceID string) string {
	return s.cfg.PublicURL + "/api/v2/workspaces/" + workspaceID
}

// CloudVerificationURL is the dashboard page where a person confirms a user code.
func (s *Service) CloudVerificationURL(userCode string) string {
	u := s.cfg.PublicURL + "/cloud/confirm"
	if userCode != "" {
		u += "?user_code=" + url.QueryEscape(userCode)
	}
	return u
}

// Field limits of a registration intent.
const (
	maxCloudIDLen      = 128
	maxCloudAddressLen = 2048
	maxCloudTextLen    = 256
)

// Validate bounds what the server sent; the address must be an http(s) URL
// because the person confirming must be able to tell which server asks.
func (c *CloudServer) Validate() error {
	c.UniqueID = strings.TrimSpace(c.UniqueID)
	c.Address = strings.TrimSpace(c.Address)
	if c.UniqueID == "" {
		return FieldError("uniqueId", "is required: the Rocket.Chat server's unique id")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"uniqueId", c.UniqueID, maxCloudIDLen}, {"workspaceId", c.WorkspaceID, maxCloudIDLen},
		{"address", c.Address, maxCloudAddressLen}, {"siteName", c.SiteName, maxCloudTextLen},
		{"contactName", c.ContactName, maxCloudTextLen}, {"contactEmail", c.ContactEmail, MaxEmailLen},
		{"version", c.Version, 64},
	} {
		if n := utf8.RuneCountInString(f.v); n > f.max {
			return FieldError(f.name, "is %d characters; at most %d are allowed", n, f.max)
		}
		if err := CheckText(f.name, f.v); err != nil {
			return err
		}
	}
	u, err := url.Parse(c.Address)
	if c.Address == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return FieldError("address", "must be the server's Site_Url, such as https://chat.example.com; got %q", c.Address)
	}
	if c.Seats < 0 {
		return FieldError("seats", "must be zero or more, got %d", c.Seats)
	}
	return nil
}

// CloudIntentStart is the answer to a registration intent (CloudRegistrationIntentData).
type CloudIntentStart struct {
	DeviceCode      string
	UserCode        string
	VerificationURL string
	Interval        time.Duration
	ExpiresIn       time.Duration
}

// StartCloudIntent records a Rocket.Chat server's request to register and
// returns the codes of the device flow.
func (s *Service) StartCloudIntent(ctx context.Context, srv CloudServer, ip string) (*CloudIntentStart, error) {
	if err := srv.Validate(); err != nil {
		return nil, err
	}
	device, err := randomBase62(43)
	if err != nil {
		return nil, Internal(err, "creating a device code")
	}
	user, err := newUserCode()
	if err != nil {
		return nil, Internal(err, "creating a user code")
	}
	now := s.now()
	in := CloudIntent{DeviceCodeHash: hashSecret(device), UserCodeHash: hashSecret(NormalUserCode(user)), Server: srv, RequestIP: ip,
		CreatedAt: now, ExpiresAt: now.Add(defaultCloudIntentTTL), Interval: defaultCloudPollInterval}
	audit := AuditEntry{Actor: "rocketchat:" + srv.UniqueID, Action: "cloud.intent", Source: "rocketchat",
		Detail: fmt.Sprintf("address=%s site=%q ip=%s", srv.Address, srv.SiteName, ip), CreatedAt: now}
	if err := s.store.CreateCloudIntent(ctx, &in, audit); err != nil {
		return nil, err
	}
	s.cfg.Log.Info("rocket.chat registration requested", "address", srv.Address, "unique_id", srv.UniqueID)
	return &CloudIntentStart{DeviceCode: device, UserCode: user, VerificationURL: s.CloudVerificationURL(user),
		Interval: in.Interval, ExpiresIn: defaultCloudIntentTTL}, nil
}

// CloudGrant is a new client as the poll or the manual token hands it over, secret included.
type CloudGrant struct {
	WorkspaceID           string
	ClientName            string
	ClientID              string
	ClientSecret          string
	RegistrationClientURI string
	RedirectURIs          []string
}

// Errors of the device flow, by RFC 8628's names (the Reason).
func cloudPollError(reason, msg string) *Error {
	return &Error{Code: CodeInvalid, Reason: reason, Message: msg}
}

// PollCloudIntent answers a server's poll: nil grant while no one has
// confirmed yet, the client once someone did, or an RFC 8628 error.
func (s *Service) PollCloudIntent(ctx context.Context, deviceCode string) (*CloudGrant, error) {
	if deviceCode == "" || len(deviceCode) > 128 {
		return nil, cloudPollError("invalid_request", "token is missing or too long: pass the device_code of your registration intent")
	}
	in, err := s.store.CloudIntentByDeviceCode(ctx, hashSecret(deviceCode))
	if err != nil {
		if ErrorCode(err) == CodeNotFound {
			return nil, cloudPollError("invalid_grant", "this device code is unknown: start the registration again")
		}
		return nil, err
	}
	now := s.now()
	switch {
	case in.ClaimedAt != nil:
		return nil, cloudPollError("expired_token", "this registration was already collected: start a new one if the server did not save it")
	case in.DeniedAt != nil:
		return nil, cloudPollError("access_denied", "the workspace owner declined this registration")
	case !now.Before(in.ExpiresAt):
		return nil, cloudPollError("expired_token", "the registration code expired before anyone confirmed it: start the registration again")
	}
	ok, err := s.store.NoteCloudPoll(ctx, in.ID, now, cloudSlowDown)
	if err != nil {
		return nil, err
	}
	if !ok {
		e := cloudPollError("slow_down", fmt.Sprintf("polled too fast: wait at least %d seconds between polls", int((in.Interval+cloudSlowDown)/time.Second)))
		e.RetryAfterSeconds = int((in.Interval + cloudSlowDown) / time.Second)
		return nil, e
	}
	if in.WorkspaceID == "" {
		return nil, nil
	}
	secret, err := randomBase62(43)
	if err != nil {
		return nil, Internal(err, "creating a client secret")
	}
	id, err := newCloudClientID()
	if err != nil {
		return nil, Internal(err, "creating a client id")
	}
	c := CloudClient{ID: id, WorkspaceID: in.WorkspaceID, Name: in.Server.SiteName, Address: in.Server.Address,
		UniqueID: in.Server.UniqueID, SecretHash: hashSecret(secret), Origin: CloudOriginPoll, CreatedBy: "owner:" + in.ConfirmedBy, CreatedAt: now}
	audit := AuditEntry{Actor: "rocketchat:" + in.Server.UniqueID, Action: "cloud.client_issued", WorkspaceID: in.WorkspaceID,
		Source: "rocketchat", Detail: "client=" + id + " address=" + in.Server.Address, CreatedAt: now}
	if err := s.store.ClaimCloudIntent(ctx, in.ID, c, audit); err != nil {
		if ErrorCode(err) == CodeConflict {
			return nil, cloudPollError("expired_token", "this registration was already collected: start a new one if the server did not save it")
		}
		return nil, err
	}
	s.cfg.Log.Info("rocket.chat server registered", "workspace", in.WorkspaceID, "client", id, "address", in.Server.Address)
	return &CloudGrant{WorkspaceID: in.WorkspaceID, ClientName: c.Name, ClientID: id, ClientSecret: secret,
		RegistrationClientURI: s.RegistrationClientURI(in.WorkspaceID), RedirectURIs: []string{}}, nil
}

// NormalUserCode is a user code as stored: upper case, without separators or spaces.
func NormalUserCode(code string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(code) {
		if c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// CloudIntentForCode finds the live intent a person is about to confirm.
func (s *Service) CloudIntentForCode(ctx context.Context, userCode string) (*CloudIntent, error) {
	code := NormalUserCode(userCode)
	if len(code) != userCodeLen {
		return nil, FieldError("user_code", "is the %d-letter code your Rocket.Chat server shows, such as BCDF-GHJK", userCodeLen)
	}
	in, err := s.store.CloudIntentByUserCode(ctx, hashSecret(code))
	if err != nil {
		if ErrorCode(err) == CodeNotFound {
			return nil, FieldError("user_code", "no pending registration has this code: check it, or start the registration again in Rocket.Chat")
		}
		return nil, err
	}
	if in.WorkspaceID != "" || in.DeniedAt != nil || !s.now().Before(in.ExpiresAt) {
		return nil, FieldError("user_code", "this code expired or was already used: start the registration again in Rocket.Chat")
	}
	return in, nil
}

// ConfirmCloudIntent binds the intent of userCode to p's workspace. The
// person accepts the current terms for the workspace when it has not yet.
func (s *Service) ConfirmCloudIntent(ctx context.Context, p *Principal, userCode, by, ip string, acceptTerms bool) (*CloudIntent, error) {
	in, err := s.CloudIntentForCode(ctx, userCode)
	if err != nil {
		return nil, err
	}
	if !acceptTerms {
		return nil, FieldError("accept_terms", "accept the terms of service to let this server send through pushgate")
	}
	terms, err := s.CurrentTerms(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var consent *Consent
	if p.Consent == nil || p.Consent.TermsVersion != terms.Version {
		consent = &Consent{WorkspaceID: p.Workspace.ID, TermsVersion: terms.Version, AcceptedBy: by, AcceptedIP: ip, AcceptedAt: now}
	}
	audit := AuditEntry{Actor: "owner:" + by, Action: "cloud.confirm", WorkspaceID: p.Workspace.ID, CreatedAt: now,
		Detail: fmt.Sprintf("address=%s unique_id=%s ip=%s", in.Server.Address, in.Server.UniqueID, ip)}
	if err := s.store.ConfirmCloudIntent(ctx, in.ID, p.Workspace.ID, by, now, consent, audit); err != nil {
		return nil, err
	}
	if consent != nil {
		s.cache.invalidateWorkspace(p.Workspace.ID)
	}
	in.WorkspaceID, in.ConfirmedBy, in.ConfirmedAt = p.Workspace.ID, by, &now
	s.cfg.Log.Info("rocket.chat registration confirmed", "workspace", p.Workspace.ID, "address", in.Server.Address)
	return in, nil
}

// ManualCloudRegistration creates a client for workspaceID and returns it
// with the registration token an admin pastes into Rocket.Chat's Cloud →
// Manually register: base64 of the JSON that cloud.manualRegister hands to
// saveRegistrationDataManual (apps/meteor/app/api/server/v1/cloud.ts).
func (s *Service) ManualCloudRegistration(ctx context.Context, workspaceID, name, actor string) (string, *CloudClient, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "Rocket.Chat"
	}
	if n := utf8.RuneCountInString(name); n > maxCloudTextLen {
		return "", nil, FieldError("name", "is %d characters; at most %d are allowed", n, maxCloudTextLen)
	}
	if err := CheckText("name", name); err != nil {
		return "", nil, err
	}
	secret, err := randomBase62(43)
	if err != nil {
		return "", nil, Internal(err, "creating a client secret")
	}
	id, err := newCloudClientID()
	if err != nil {
		return "", nil, Internal(err, "creating a client id")
	}
	now := s.now()
	c := CloudClient{ID: id, WorkspaceID: workspaceID, Name: name, SecretHash: hashSecret(secret), Origin: CloudOriginManual, CreatedBy: actor, CreatedAt: now}
	audit := AuditEntry{Actor: actor, Action: "cloud.manual_token", WorkspaceID: workspaceID, Detail: "client=" + id, CreatedAt: now}
	if err := s.store.CreateCloudClient(ctx, c, audit); err != nil {
		return "", nil, err
	}
	token, err := s.manualToken(workspaceID, name, id, secret)
	if err != nil {
		return "", nil, err
	}
	return token, &c, nil
}

// CloudSecretGrace is how long a rotated client secret keeps working.
const CloudSecretGrace = 24 * time.Hour

// RotateCloudClientSecret gives a client a new secret and returns the
// registration token that carries it; the old secret works for
// CloudSecretGrace more, so the server sends until its admin pastes the
// new token (Rocket.Chat never renews a secret by itself).
func (s *Service) RotateCloudClientSecret(ctx context.Context, workspaceID, clientID, actor string) (string, error) {
	c, err := s.store.CloudClient(ctx, clientID)
	if err != nil || c.WorkspaceID != workspaceID {
		if err == nil || ErrorCode(err) == CodeNotFound {
			return "", Errorf(CodeNotFound, "workspace %s has no Rocket.Chat client %s", workspaceID, clientID)
		}
		return "", err
	}
	secret, err := randomBase62(43)
	if err != nil {
		return "", Internal(err, "creating a client secret")
	}
	now := s.now()
	audit := AuditEntry{Actor: actor, Action: "cloud.rotate_secret", WorkspaceID: workspaceID, CreatedAt: now,
		Detail: "client=" + clientID + " old_secret_until=" + now.Add(CloudSecretGrace).Format(time.RFC3339)}
	if err := s.store.RotateCloudClientSecret(ctx, workspaceID, clientID, hashSecret(secret), now.Add(CloudSecretGrace), audit); err != nil {
		return "", err
	}
	return s.manualToken(workspaceID, c.Name, clientID, secret)
}

func (s *Service) manualToken(workspaceID, name, clientID, secret string) (string, error) {
	blob, err := json.Marshal(manualBlob{WorkspaceID: workspaceID, ClientName: name, ClientID: clientID, ClientSecret: secret,
		PublicKey: "", RegistrationClientURI: s.RegistrationClientURI(workspaceID), LicenseData: manualLicense{}})
	if err != nil {
		return "", Internal(err, "encoding the registration token")
	}
	return base64.StdEncoding.EncodeToString(blob), nil
}

// manualBlob is saveRegistrationDataManual's argument (saveRegistrationData.ts).
type manualBlob struct {
	WorkspaceID           string        `json:"workspaceId"`
	ClientName            string        `json:"client_name"`
	ClientID              string        `json:"client_id"`
	ClientSecret          string        `json:"client_secret"`
	ClientSecretExpiresAt int64         `json:"client_secret_expires_at"`
	PublicKey             string        `json:"publicKey"`
	RegistrationClientURI string        `json:"registration_client_uri"`
	LicenseData           manualLicense `json:"licenseData"`
}

// manualLicense is empty: pushgate issues no Rocket.Chat license, and
// Rocket.Chat applies an empty one as none.
type manualLicense struct {
	License string `json:"license"`
}

// CloudClients lists a workspace's Rocket.Chat Cloud clients, newest first.
func (s *Service) CloudClients(ctx context.Context, workspaceID string) ([]CloudClient, error) {
	return s.store.CloudClients(ctx, workspaceID)
}

// RevokeCloudClient ends a client of workspaceID: its tokens stop at once
// here and within the auth cache TTL on other replicas, and its next token
// request tells the server to drop its registration.
func (s *Service) RevokeCloudClient(ctx context.Context, workspaceID, clientID, actor string) error {
	now := s.now()
	audit := AuditEntry{Actor: actor, Action: "cloud.revoke", WorkspaceID: workspaceID, Detail: "client=" + clientID, CreatedAt: now}
	if err := s.store.RevokeCloudClient(ctx, workspaceID, clientID, actor, now, audit); err != nil {
		return err
	}
	s.cache.invalidateWorkspace(workspaceID)
	s.cfg.Log.Info("rocket.chat cloud client revoked", "workspace", workspaceID, "client", clientID, "by", actor)
	return nil
}

// CloudToken is an issued access token (the /api/oauth/token answer).
type CloudToken struct {
	AccessToken string
	ExpiresIn   time.Duration
	Scope       string
}

// The reasons of a refused token request; only ReasonClientRevoked makes
// Rocket.Chat drop its registration (getWorkspaceAccessTokenWithScope).
const (
	ReasonInvalidClient = "invalid_client"
	ReasonClientRevoked = "client_revoked"
)

// IssueCloudToken runs the client-credentials grant. A wrong secret or an
// unknown client is invalid_client; a revoked client whose secret matches is
// client_revoked; a store failure stays a failure (retried), never either.
func (s *Service) IssueCloudToken(ctx context.Context, clientID, secret, scope string) (*CloudToken, error) {
	invalid := &Error{Code: CodeUnauthorized, Reason: ReasonInvalidClient, Message: "client authentication failed: unknown client_id or wrong client_secret"}
	if clientID == "" || secret == "" || len(clientID) > 128 || len(secret) > 256 {
		return nil, invalid
	}
	granted, err := grantScope(scope)
	if err != nil {
		return nil, err
	}
	c, err := s.store.CloudClient(ctx, clientID)
	if err != nil {
		if ErrorCode(err) == CodeNotFound {
			return nil, invalid
		}
		return nil, err
	}
	if !c.secretMatches(secret, s.now()) {
		return nil, invalid
	}
	if c.RevokedAt != nil {
		return nil, &Error{Code: CodeUnauthorized, Reason: ReasonClientRevoked,
			Message: "this server's registration was revoked in pushgate; register it again"}
	}
	token, err := s.newAccessToken()
	if err != nil {
		return nil, Internal(err, "creating an access token")
	}
	now := s.now()
	ttl := s.cloudTokenTTL()
	// Rocket.Chat counts expires_in from when it got the answer, by its own
	// clock, and a 401 push is lost (it never retries one): the token lives
	// a little longer than it says.
	leeway := min(ttl/20, 2*time.Minute)
	t := CloudAccessToken{Hash: HashToken(token), ClientID: c.ID, WorkspaceID: c.WorkspaceID, Scope: granted, CreatedAt: now, ExpiresAt: now.Add(ttl + leeway)}
	if err := s.store.CreateCloudAccessToken(ctx, t); err != nil {
		return nil, err
	}
	return &CloudToken{AccessToken: token, ExpiresIn: ttl, Scope: granted}, nil
}

// secretMatches checks secret against the current one and, until it ends,
// the one before the last rotation.
func (c *CloudClient) secretMatches(secret string, now time.Time) bool {
	h := []byte(hashSecret(secret))
	if subtle.ConstantTimeCompare([]byte(c.SecretHash), h) == 1 {
		return true
	}
	return c.PreviousSecretHash != "" && c.PreviousSecretUntil != nil && now.Before(*c.PreviousSecretUntil) &&
		subtle.ConstantTimeCompare([]byte(c.PreviousSecretHash), h) == 1
}

// grantScope is the requested scopes pushgate serves, all of them when none is asked for.
func grantScope(scope string) (string, error) {
	if len(scope) > 2048 {
		return "", &Error{Code: CodeInvalid, Reason: "invalid_scope", Field: "scope", Message: "scope is too long"}
	}
	asked := strings.Fields(scope)
	if len(asked) == 0 {
		return strings.Join(CloudScopes, " "), nil
	}
	var out []string
	for _, a := range asked {
		for _, served := range CloudScopes {
			if a == served {
				out = append(out, a)
				break
			}
		}
	}
	if len(out) == 0 {
		return "", &Error{Code: CodeInvalid, Reason: "invalid_scope", Field: "scope",
			Message: "none of the requested scopes is served; ask for " + strings.Join(CloudScopes, " ")}
	}
	return strings.Join(out, " "), nil
}

func (s *Service) newAccessToken() (string, error) {
	if s.cfg.TokenKeys == nil {
		return newLegacyToken(accessTokenPrefix, s.cfg.Region)
	}
	return s.cfg.TokenKeys.newToken(accessTokenPrefix, s.cfg.Region)
}

func errAccessTokenExpired() *Error {
	return &Error{Code: CodeUnauthorized, Reason: "token_expired",
		Message: "this Rocket.Chat Cloud access token expired; request a new one at /api/oauth/token"}
}

// loadAccessPrincipal is loadPrincipal for a Rocket.Chat Cloud access token.
func (s *Service) loadAccessPrincipal(ctx context.Context, hash string) (*Principal, error) {
	ws, t, err := s.store.AuthenticateAccessToken(ctx, hash, s.now())
	if err != nil {
		if ErrorCode(err) == CodeNotFound {
			return nil, &Error{Code: CodeUnauthorized, Reason: "token_unknown",
				Message: "this Rocket.Chat Cloud access token is unknown, expired or its registration was revoked"}
		}
		return nil, err
	}
	consent, err := s.store.LatestConsent(ctx, ws.ID)
	if err != nil {
		return nil, err
	}
	return &Principal{Workspace: *ws, Consent: consent, TokenHash: hash, CloudClientID: t.ClientID, ExpiresAt: t.ExpiresAt}, nil
}

// hashSecret is the stored form of a code or secret.
func hashSecret(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

func randomBase62(n int) (string, error) {
	var b strings.Builder
	b.Grow(n)
	if err := writeRandom62(&b, n); err != nil {
		return "", err
	}
	return b.String(), nil
}

// User codes use RFC 8628's consonant alphabet: no vowels, so no words,
// and nothing people confuse (0/O, 1/I).
const (
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLen      = 8
)

// newUserCode returns a code such as BCDF-GHJK (about 34.5 bits), stored normalised.
func newUserCode() (string, error) {
	var out [userCodeLen]byte
	var buf [1]byte
	for i := 0; i < userCodeLen; {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		if buf[0] < 240 { // 240 = 12*20, so every letter is equally likely
			out[i] = userCodeAlphabet[buf[0]%20]
			i++
		}
	}
	return string(out[:4]) + "-" + string(out[4:]), nil
}

// newCloudClientID returns "rcc_" and 24 random lowercase base32 characters.
func newCloudClientID() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return "rcc_" + string(b[:]), nil
}

// QuotaLevel is how much of its monthly quota a workspace used, in the
// steps a Rocket.Chat admin is told about: 0 (below 80%), 80 or 100.
func QuotaLevel(used, limit int64) int {
	switch {
	case limit == Unlimited:
		return 0
	case used >= limit:
		return 100
	case used*5 >= limit*4:
		return 80
	}
	return 0
}
