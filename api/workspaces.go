package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/pushgate/pushgate/api/clientaddr"
	"github.com/pushgate/pushgate/tenants"
)

type principalKey struct{}

// principalFrom returns the workspace that authenticated this request.
func principalFrom(ctx context.Context) *tenants.Principal {
	p, _ := ctx.Value(principalKey{}).(*tenants.Principal)
	return p
}

// bearerToken returns the token of an "Authorization: Bearer …" header, or "".
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// requireWorkspace authenticates the Bearer token of the workspace API.
func requireWorkspace(svc *tenants.Service, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token := bearerToken(r)
			if token == "" {
				writeAPIError(w, r, log, &tenants.Error{Code: tenants.CodeUnauthorized, Reason: "token_missing",
					Message: "send your workspace token as Authorization: Bearer pgw_…"})
				return
			}
			p, err := svc.Authenticate(r.Context(), token)
			if err == nil && p.CloudClientID != "" {
				err = &tenants.Error{Code: tenants.CodeForbidden, Reason: "cloud_token",
					Message: "a Rocket.Chat Cloud access token only sends pushes and syncs; the workspace API takes the workspace token (pgw_…)"}
			}
			if err != nil {
				writeAPIError(w, r, log, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}

// termsJSON is the body of GET /api/v1/terms.
type termsJSON struct {
	Version     string    `json:"version"`
	URL         string    `json:"url"`
	PublishedAt time.Time `json:"published_at"`
}

func handleTerms(svc *tenants.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := svc.CurrentTerms(r.Context())
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, termsJSON{Version: t.Version, URL: t.URL, PublishedAt: t.PublishedAt})
	})
}

// registrationJSON is the answer to a registration, the same object as
// `pushgate workspace create --json`. The token appears here only.
type registrationJSON struct {
	ID       string           `json:"id"`
	Name     string           `json:"name"`
	Region   string           `json:"region"`
	Token    string           `json:"token"`
	Plan     tenants.Plan     `json:"plan"`
	PushURLs tenants.PushURLs `json:"push_urls"`
	Terms    registeredTerms  `json:"terms"`
	// ClaimURL opens the dashboard form that creates the workspace's owner account, once.
	ClaimURL       string     `json:"claim_url,omitempty"`
	ClaimExpiresAt *time.Time `json:"claim_expires_at,omitempty"`
}

type registeredTerms struct {
	Version  string `json:"version"`
	URL      string `json:"url"`
	Accepted bool   `json:"accepted"`
}

// NewRegistrationJSON renders a registration for the API and the CLI,
// with its claim link when there is one.
func NewRegistrationJSON(ctx context.Context, svc *tenants.Service, reg *tenants.Registration, claim *tenants.ClaimLink) (any, error) {
	t, err := svc.CurrentTerms(ctx)
	if err != nil {
		return nil, err
	}
	out := registrationJSON{
		ID: reg.Workspace.ID, Name: reg.Workspace.Name, Region: reg.Workspace.Region, Token: reg.Token,
		Plan: reg.Workspace.Plan, PushURLs: svc.PushURLs(reg.Token),
		Terms: registeredTerms{Version: t.Version, URL: t.URL, Accepted: reg.Consent != nil},
	}
	if claim != nil {
		out.ClaimURL, out.ClaimExpiresAt = claim.URL, &claim.ExpiresAt
	}
	return out, nil
}

type registerRequest struct {
	Name               string          `json:"name"`
	ContactEmail       string          `json:"contact_email"`
	ServerID           string          `json:"server_id"`
	AcceptTermsVersion string          `json:"accept_terms_version"`
	Privacy            tenants.Privacy `json:"privacy"`
}

func handleRegister(svc *tenants.Service, open bool, limiter *ipLimiter, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !open {
			writeAPIError(w, r, log, &tenants.Error{Code: tenants.CodeForbidden, Reason: "registration_closed",
				Message: "self-service registration is closed on this gateway; ask the operator to create your workspace"})
			return
		}
		ip := clientaddr.Of(r)
		if wait, ok := limiter.allow(ip); !ok {
			writeAPIError(w, r, log, &tenants.Error{Code: tenants.CodeRateLimited, Reason: "registration_rate_limit",
				RetryAfterSeconds: int(wait.Seconds()) + 1,
				Message:           "too many registrations from your address; try again later"})
			return
		}
		var req registerRequest
		if err := decodeStrict(r, &req, false); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		reg, err := svc.Register(r.Context(), tenants.RegisterRequest{
			Name: req.Name, ContactEmail: req.ContactEmail, ServerID: req.ServerID,
			AcceptTermsVersion: req.AcceptTermsVersion, Privacy: req.Privacy,
		}, "self-service:"+ip, ip)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		// The workspace exists either way: a claim link that could not be
		// stored is logged, and the workspace asks for another with its token.
		claim, err := svc.IssueClaimLink(r.Context(), reg.Workspace.ID, "self-service:"+ip)
		if err != nil && tenants.ErrorCode(err) != tenants.CodeNotFound {
			log.Error("storing the claim link of a new workspace", "workspace", reg.Workspace.ID, "err", err)
		}
		body, err := NewRegistrationJSON(r.Context(), svc, reg, claim)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusCreated, body)
	})
}

// workspaceJSON is a workspace as its own admin sees it.
type workspaceJSON struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	ContactEmail string            `json:"contact_email"`
	Region       string            `json:"region"`
	Plan         tenants.Plan      `json:"plan"`
	MonthlyLimit *int64            `json:"monthly_limit"` // null: unlimited
	Status       tenants.Status    `json:"status"`
	ServerID     string            `json:"server_id"`
	Privacy      tenants.Privacy   `json:"privacy"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
	PushURLs     *tenants.PushURLs `json:"push_urls,omitempty"`
	Terms        *workspaceTerms   `json:"terms,omitempty"`
	Billing      *billingJSON      `json:"billing"`
}

type workspaceTerms struct {
	CurrentVersion  string     `json:"current_version"`
	URL             string     `json:"url"`
	AcceptedVersion string     `json:"accepted_version"`
	AcceptedAt      *time.Time `json:"accepted_at"`
	// Status is accepted, grace (re-accept before grace_until) or required.
	Status     string     `json:"status"`
	GraceUntil *time.Time `json:"grace_until,omitempty"`
	Action     string     `json:"action,omitempty"`
}

// NewWorkspaceJSON renders a workspace; urls and state are optional.
func NewWorkspaceJSON(ws *tenants.Workspace, urls *tenants.PushURLs, st *tenants.TermsState, publicURL string) workspaceJSON {
	out := workspaceJSON{
		ID: ws.ID, Name: ws.Name, ContactEmail: ws.ContactEmail, Region: ws.Region, Plan: ws.Plan,
		Status: ws.Status, ServerID: ws.ServerID, Privacy: ws.Privacy, CreatedAt: ws.CreatedAt, UpdatedAt: ws.UpdatedAt,
		PushURLs: urls, Billing: newBillingJSON(ws),
	}
	if l := ws.MonthlyLimit(); l != tenants.Unlimited {
		out.MonthlyLimit = &l
	}
	if st != nil {
		out.Terms = &workspaceTerms{CurrentVersion: st.Current.Version, URL: st.Current.URL,
			AcceptedVersion: st.Accepted, AcceptedAt: st.AcceptedAt, Status: st.Status, GraceUntil: st.GraceUntil}
		if st.Status != "accepted" {
			out.Terms.Action = "read " + st.Current.URL + ` and POST ` + publicURL + `/api/v1/workspace/consent {"terms_version":"` + st.Current.Version + `"}`
		}
	}
	return out
}

func handleGetWorkspace(svc *tenants.Service, publicURL string, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principalFrom(r.Context())
		st, err := svc.TermsState(r.Context(), p)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		urls := svc.PushURLs(bearerToken(r))
		writeJSON(w, http.StatusOK, NewWorkspaceJSON(&p.Workspace, &urls, &st, publicURL))
	})
}

type updateWorkspaceRequest struct {
	Privacy  *tenants.Privacy `json:"privacy"`
	ServerID *string          `json:"server_id"`
}

func handleUpdateWorkspace(svc *tenants.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principalFrom(r.Context())
		var req updateWorkspaceRequest
		if err := decodeStrict(r, &req, false); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		if req.Privacy == nil && req.ServerID == nil {
			writeAPIError(w, r, log, tenants.Errorf(tenants.CodeInvalid, "nothing to change: send privacy and/or server_id"))
			return
		}
		ws, err := svc.UpdateOwn(r.Context(), p, tenants.WorkspaceChange{Privacy: req.Privacy, ServerID: req.ServerID})
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, NewWorkspaceJSON(ws, nil, nil, ""))
	})
}

type consentRequest struct {
	TermsVersion string `json:"terms_version"`
	AcceptedBy   string `json:"accepted_by"`
}

type consentJSON struct {
	TermsVersion string    `json:"terms_version"`
	AcceptedBy   string    `json:"accepted_by"`
	AcceptedAt   time.Time `json:"accepted_at"`
}

func handleConsent(svc *tenants.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principalFrom(r.Context())
		var req consentRequest
		if err := decodeStrict(r, &req, false); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		by := strings.TrimSpace(req.AcceptedBy)
		if by == "" {
			by = p.Workspace.ContactEmail
		}
		c, err := svc.Accept(r.Context(), p, req.TermsVersion, by, clientaddr.Of(r))
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, consentJSON{TermsVersion: c.TermsVersion, AcceptedBy: c.AcceptedBy, AcceptedAt: c.AcceptedAt})
	})
}

type rotateRequest struct {
	GraceSeconds int64 `json:"grace_seconds"`
}

type rotateJSON struct {
	Token    string           `json:"token"`
	PushURLs tenants.PushURLs `json:"push_urls"`
	// OldTokenValidUntil is when the previous token stops working.
	OldTokenValidUntil time.Time `json:"old_token_valid_until"`
}

func handleRotateToken(svc *tenants.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principalFrom(r.Context())
		var req rotateRequest
		if err := decodeStrict(r, &req, true); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		grace := time.Duration(req.GraceSeconds) * time.Second
		if req.GraceSeconds < 0 || req.GraceSeconds > 86400 {
			writeAPIError(w, r, log, tenants.FieldError("grace_seconds", "must be between 0 and 86400, got %d", req.GraceSeconds))
			return
		}
		token, err := svc.RotateToken(r.Context(), p.Workspace.ID, "workspace:"+p.Workspace.ID, grace)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, rotateJSON{Token: token, PushURLs: svc.PushURLs(token), OldTokenValidUntil: time.Now().UTC().Add(grace)})
	})
}
