package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pushgate/pushgate/api/clientaddr"
	"github.com/pushgate/pushgate/tenants"
)

// The Rocket.Chat Cloud protocol: the calls a stock Rocket.Chat server makes
// to its Cloud_Url, answered in the shapes its server code parses. Each
// handler names the Rocket.Chat function (apps/meteor/app/cloud/server/
// functions/…) whose request it serves.

// cloudIntentRequest is buildWorkspaceRegistrationData's object
// (buildRegistrationData.ts); the fields pushgate does not keep are ignored.
type cloudIntentRequest struct {
	UniqueID     string `json:"uniqueId"`
	WorkspaceID  string `json:"workspaceId"`
	Address      string `json:"address"`
	SiteName     string `json:"siteName"`
	ContactName  string `json:"contactName"`
	ContactEmail string `json:"contactEmail"`
	Version      string `json:"version"`
	Seats        int64  `json:"seats"`
}

// cloudIntentJSON is CloudRegistrationIntentData.
type cloudIntentJSON struct {
	DeviceCode      string `json:"device_code"`
	UserCode        string `json:"user_code"`
	VerificationURL string `json:"verification_url"`
	Interval        int    `json:"interval"`
	ExpiresIn       int    `json:"expires_in"`
}

// cloudError is the error body Rocket.Chat reads: it throws or logs `error`
// (startRegisterWorkspaceSetupWizard, getConfirmationPoll) and compares it
// with oauth_invalid_client_credentials (getWorkspaceAccessTokenWithScope).
type cloudError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Interval    int    `json:"interval,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
}

// writeCloudError is the one mapper of this protocol. Only errors the
// caller can fix are 4xx; a failing dependency is 503 and ours 500, both
// of which Rocket.Chat retries and neither of which drops its registration.
func writeCloudError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error, oauth bool) {
	e := tenants.AsError(err)
	if e.Code == tenants.CodeInternal && dependencyDown(err) {
		e = &tenants.Error{Code: tenants.CodeUnavailable, RetryAfterSeconds: 5, Message: "the gateway cannot reach its storage right now; retry in a few seconds", Err: err}
	}
	body := cloudError{Error: e.Message, RequestID: RequestID(r.Context())}
	if oauth {
		body = cloudError{Error: e.Reason, Description: e.Message, RequestID: RequestID(r.Context())}
	}
	status := http.StatusBadRequest
	switch e.Code {
	case tenants.CodeInvalid:
		if oauth && body.Error == "" {
			body.Error = "invalid_request"
		}
		if e.Reason == "slow_down" {
			body.Interval = e.RetryAfterSeconds
		}
	case tenants.CodeUnauthorized:
		status = http.StatusUnauthorized
		if oauth && e.Reason == tenants.ReasonClientRevoked {
			// The one answer that makes Rocket.Chat forget its registration.
			body.Error = "oauth_invalid_client_credentials"
		} else if oauth {
			body.Error = tenants.ReasonInvalidClient
		}
	case tenants.CodeForbidden:
		status = http.StatusForbidden
	case tenants.CodeNotFound:
		status = http.StatusNotFound
	case tenants.CodeConflict:
		status = http.StatusConflict
	case tenants.CodeRateLimited:
		status = http.StatusTooManyRequests
	case tenants.CodeMisdirected:
		status = http.StatusMisdirectedRequest
	case tenants.CodeUnavailable:
		status = http.StatusServiceUnavailable
		if oauth {
			body.Error = "temporarily_unavailable"
		}
	default:
		status = http.StatusInternalServerError
		log.Error("rocket.chat cloud request failed", "request_id", RequestID(r.Context()), "route", routePattern(r), "err", err)
		body.Description = "internal error; quote request id " + RequestID(r.Context()) + " to support"
		body.Error = body.Description
		if oauth {
			body.Error = "server_error"
		}
	}
	if e.RetryAfterSeconds > 0 && status != http.StatusBadRequest {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds))
	}
	writeJSON(w, status, body)
}

// handleCloudIntent answers POST /api/v2/register/workspace/intent
// (startRegisterWorkspaceSetupWizard.ts; the ?resent= flag needs nothing
// different: each intent gets fresh codes).
func handleCloudIntent(svc *tenants.Service, limiter *ipLimiter, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv, ip, err := decodeCloudServer(r, limiter)
		if err != nil {
			writeCloudError(w, r, log, err, false)
			return
		}
		start, err := svc.StartCloudIntent(r.Context(), srv, ip)
		if err != nil {
			writeCloudError(w, r, log, err, false)
			return
		}
		writeJSON(w, http.StatusOK, cloudIntentJSON{DeviceCode: start.DeviceCode, UserCode: start.UserCode, VerificationURL: start.VerificationURL,
			Interval: int(start.Interval / time.Second), ExpiresIn: int(start.ExpiresIn / time.Second)})
	})
}

// handleCloudPreIntent answers POST /api/v2/register/workspace/pre-intent
// (registerPreIntentWorkspaceWizard.ts): the setup wizard asks it first and
// offers the online registration only on a 2xx, the offline one otherwise.
// Nothing is stored: the intent that follows carries the same data.
func handleCloudPreIntent(limiter *ipLimiter, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv, _, err := decodeCloudServer(r, limiter)
		if err == nil {
			err = srv.Validate()
		}
		if err != nil {
			writeCloudError(w, r, log, err, false)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	})
}

// decodeCloudServer reads the registration data both intents send, after
// the caller's address has passed the registration limit.
func decodeCloudServer(r *http.Request, limiter *ipLimiter) (tenants.CloudServer, string, error) {
	ip := clientaddr.Of(r)
	if wait, ok := limiter.allow(ip); !ok {
		return tenants.CloudServer{}, ip, &tenants.Error{Code: tenants.CodeRateLimited, RetryAfterSeconds: int(wait.Seconds()) + 1,
			Message: "too many registration requests from your address; try again later"}
	}
	body, err := readBody(r)
	if err != nil {
		return tenants.CloudServer{}, ip, err
	}
	var req cloudIntentRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return tenants.CloudServer{}, ip, jsonError(err)
	}
	return tenants.CloudServer{UniqueID: req.UniqueID, WorkspaceID: req.WorkspaceID, Address: req.Address, SiteName: req.SiteName,
		ContactName: req.ContactName, ContactEmail: req.ContactEmail, Version: req.Version, Seats: req.Seats}, ip, nil
}

// cloudPollPayload is what saveRegistrationData stores (saveRegistrationData.ts),
// with the licenseData of CloudConfirmationPollData.
type cloudPollPayload struct {
	WorkspaceID           string           `json:"workspaceId"`
	ClientName            string           `json:"client_name"`
	ClientID              string           `json:"client_id"`
	ClientSecret          string           `json:"client_secret"`
	ClientSecretExpiresAt int64            `json:"client_secret_expires_at"`
	RegistrationClientURI string           `json:"registration_client_uri"`
	RedirectURIs          []string         `json:"redirect_uris"`
	PublicKey             string           `json:"publicKey"`
	LicenseData           cloudLicenseJSON `json:"licenseData"`
}

// cloudLicenseJSON carries no license: pushgate sells push quota, not
// Rocket.Chat editions, and Rocket.Chat applies an empty license as none.
type cloudLicenseJSON struct {
	Version   int    `json:"version"`
	Address   string `json:"address"`
	License   string `json:"license"`
	UpdatedAt string `json:"updatedAt"`
	ExpireAt  string `json:"expireAt"`
}

// handleCloudPoll answers GET /api/v2/register/workspace/poll?token=
// (getConfirmationPoll.ts): 200 {"status":"authorization_pending"} until
// someone confirms, then the client once; RFC 8628 errors as 400.
func handleCloudPoll(svc *tenants.Service, now func() time.Time, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		grant, err := svc.PollCloudIntent(r.Context(), r.URL.Query().Get("token"))
		if err != nil {
			writeCloudError(w, r, log, err, true)
			return
		}
		if grant == nil {
			writeJSON(w, http.StatusOK, map[string]string{"status": "authorization_pending"})
			return
		}
		t := now().UTC()
		writeJSON(w, http.StatusOK, map[string]any{"successful": true, "payload": cloudPollPayload{
			WorkspaceID: grant.WorkspaceID, ClientName: grant.ClientName, ClientID: grant.ClientID, ClientSecret: grant.ClientSecret,
			RegistrationClientURI: grant.RegistrationClientURI, RedirectURIs: grant.RedirectURIs,
			LicenseData: cloudLicenseJSON{Version: 3, UpdatedAt: t.Format(time.RFC3339), ExpireAt: t.AddDate(1, 0, 0).Format(time.RFC3339)},
		}})
	})
}

// cloudTokenJSON is the client-credentials answer (getWorkspaceAccessTokenWithScope.ts
// reads access_token, expires_in and scope).
type cloudTokenJSON struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	TokenType   string `json:"token_type"`
}

// handleCloudToken answers POST /api/oauth/token, form-encoded client_id,
// client_secret, scope, grant_type=client_credentials and redirect_uri
// (redirect_uri is not used by this grant). Client credentials may also come
// as HTTP Basic (RFC 6749 2.3.1).
func handleCloudToken(svc *tenants.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Pragma", "no-cache")
		if err := r.ParseForm(); err != nil {
			writeCloudError(w, r, log, &tenants.Error{Code: tenants.CodeInvalid, Reason: "invalid_request",
				Message: "the body must be application/x-www-form-urlencoded: " + err.Error()}, true)
			return
		}
		if gt := r.Form.Get("grant_type"); gt != "client_credentials" {
			writeCloudError(w, r, log, &tenants.Error{Code: tenants.CodeInvalid, Reason: "unsupported_grant_type",
				Message: fmt.Sprintf("grant_type %q is not served; use client_credentials", gt)}, true)
			return
		}
		id, secret := r.Form.Get("client_id"), r.Form.Get("client_secret")
		if u, p, ok := r.BasicAuth(); ok && id == "" {
			id, secret = u, p
		}
		tok, err := svc.IssueCloudToken(r.Context(), id, secret, r.Form.Get("scope"))
		if err != nil {
			writeCloudError(w, r, log, err, true)
			return
		}
		writeJSON(w, http.StatusOK, cloudTokenJSON{AccessToken: tok.AccessToken, ExpiresIn: int(tok.ExpiresIn / time.Second), Scope: tok.Scope, TokenType: "Bearer"})
	})
}

// requireCloudClient authenticates the access token of a sync call and
// checks that a workspace in the path is the token's own.
func requireCloudClient(svc *tenants.Service, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token := bearerToken(r)
			if token == "" {
				writeCloudError(w, r, log, &tenants.Error{Code: tenants.CodeUnauthorized, Message: "send the access token from /api/oauth/token as Authorization: Bearer"}, false)
				return
			}
			p, err := svc.Authenticate(r.Context(), token)
			if err != nil {
				writeCloudError(w, r, log, err, false)
				return
			}
			if id := chi.URLParam(r, "workspace"); id != "" && id != p.Workspace.ID {
				writeCloudError(w, r, log, tenants.Errorf(tenants.CodeForbidden, "this access token belongs to another workspace"), false)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}

// handleCloudSync answers POST {registration_client_uri}/sync
// (syncCloudData.ts / fetchWorkspaceSyncPayload.ts: workspaceId and license are required).
func handleCloudSync() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principalFrom(r.Context())
		writeJSON(w, http.StatusOK, map[string]string{"workspaceId": p.Workspace.ID, "publicKey": "", "license": ""})
	})
}

// handleCloudLicense answers GET {registration_client_uri}/license?version=
// (getWorkspaceLicense.ts) with no license.
func handleCloudLicense(now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := now().UTC()
		writeJSON(w, http.StatusOK, cloudLicenseJSON{Version: 3, UpdatedAt: t.Format(time.RFC3339), ExpireAt: t.AddDate(1, 0, 0).Format(time.RFC3339)})
	})
}

// cloudAnnouncement is Cloud.Announcement (announcementSync.ts's schema);
// Rocket.Chat shows a "banner" surface to the roles of its selector.
type cloudAnnouncement struct {
	ID        string          `json:"_id"`
	UpdatedAt string          `json:"_updatedAt"`
	Selector  cloudSelector   `json:"selector"`
	Platform  []string        `json:"platform"`
	ExpireAt  string          `json:"expireAt"`
	StartAt   string          `json:"startAt"`
	CreatedBy string          `json:"createdBy"`
	CreatedAt string          `json:"createdAt"`
	View      cloudBannerView `json:"view"`
	Surface   string          `json:"surface"`
}

type cloudSelector struct {
	Roles []string `json:"roles"`
}

// cloudBannerView is a UiKit banner: a title and one section of text.
type cloudBannerView struct {
	ViewID  string       `json:"viewId"`
	AppID   string       `json:"appId"`
	Title   string       `json:"title"`
	Variant string       `json:"variant"`
	Blocks  []cloudBlock `json:"blocks"`
}

type cloudBlock struct {
	Type    string    `json:"type"`
	BlockID string    `json:"blockId"`
	Text    cloudText `json:"text"`
}

type cloudText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type cloudAnnouncements struct {
	Create []cloudAnnouncement `json:"create"`
	Delete []string            `json:"delete"`
}

// quotaAnnouncements is the banner of a workspace at 80% or 100% of this
// month's quota; the 100% banner replaces the 80% one, and both end with the month.
func quotaAnnouncements(ctx context.Context, quotas tenants.QuotaStore, p *tenants.Principal, upgradeURL string, now time.Time) (cloudAnnouncements, error) {
	out := cloudAnnouncements{Create: []cloudAnnouncement{}, Delete: []string{}}
	period := tenants.PeriodOf(now)
	limit := p.Workspace.MonthlyLimit()
	if limit == tenants.Unlimited {
		return out, nil
	}
	u, err := quotas.Usage(ctx, p.Workspace.ID, period)
	if err != nil {
		return out, err
	}
	level := tenants.QuotaLevel(u.Used, limit)
	if level == 0 {
		return out, nil
	}
	id := func(level int) string { return fmt.Sprintf("pushgate-quota-%s-%s-%d", p.Workspace.ID, period, level) }
	title := fmt.Sprintf("Push notifications: %d%% of this month's quota used", level)
	text := fmt.Sprintf("This server has sent %d of its %d push notifications for %s through pushgate. ", u.Used, limit, period)
	variant := "warning"
	if level == 100 {
		title = "Push notifications stopped: this month's quota is used up"
		text += fmt.Sprintf("Mobile devices get no notifications until %s. ", period.End().Format("2 January 2006"))
		variant = "danger"
		out.Delete = append(out.Delete, id(80))
	}
	if upgradeURL != "" {
		text += "Upgrade or buy more at " + upgradeURL
	}
	stamp := now.UTC().Format(time.RFC3339)
	out.Create = append(out.Create, cloudAnnouncement{
		ID: id(level), UpdatedAt: stamp, Selector: cloudSelector{Roles: []string{"admin"}}, Platform: []string{"web"},
		StartAt: stamp, ExpireAt: period.End().Format(time.RFC3339), CreatedBy: "cloud", CreatedAt: stamp, Surface: "banner",
		View: cloudBannerView{ViewID: id(level), AppID: "cloud-announcements-core", Title: title, Variant: variant,
			Blocks: []cloudBlock{{Type: "section", BlockID: "pushgate-quota", Text: cloudText{Type: "plain_text", Text: text}}}},
	})
	return out, nil
}

// handleCloudComms answers POST /api/v3/comms/workspace (announcementSync.ts).
func handleCloudComms(quotas tenants.QuotaStore, upgradeURL string, now func() time.Time, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principalFrom(r.Context())
		a, err := quotaAnnouncements(r.Context(), quotas, p, upgradeURL, now())
		if err != nil {
			writeCloudError(w, r, log, err, false)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"workspaceId": p.Workspace.ID, "announcements": a})
	})
}

// handleCloudClientSync answers the legacy POST {registration_client_uri}/client
// (legacySyncWorkspace.ts), which older servers and the fallback call.
func handleCloudClientSync(quotas tenants.QuotaStore, upgradeURL string, now func() time.Time, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principalFrom(r.Context())
		a, err := quotaAnnouncements(r.Context(), quotas, p, upgradeURL, now())
		if err != nil {
			writeCloudError(w, r, log, err, false)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"workspaceId": p.Workspace.ID, "publicKey": "", "announcements": a})
	})
}
