package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pushgate/pushgate/tenants"
)

// The operator API (/api/v1/admin/…): the operator pages' actions for
// scripts, authenticated by an operator API key and audited with the
// operator's email and the source "api".

type operatorKeyCtx struct{}

func operatorKeyFrom(ctx context.Context) *tenants.OperatorKey {
	k, _ := ctx.Value(operatorKeyCtx{}).(*tenants.OperatorKey)
	return k
}

// apiActor is who an admin API request acts as in the audit log.
func apiActor(r *http.Request) tenants.Actor {
	return tenants.OperatorActor(operatorKeyFrom(r.Context()).Email, "api")
}

// requireOperatorKey authenticates the Bearer operator API key.
func requireOperatorKey(svc *tenants.Service, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := bearerToken(r)
			if key == "" {
				writeAPIError(w, r, log, &tenants.Error{Code: tenants.CodeUnauthorized, Reason: "operator_key_missing",
					Message: "send an operator API key as Authorization: Bearer pgo_… (`pushgate admin create-key --email E` issues one)"})
				return
			}
			k, err := svc.AuthenticateOperatorKey(r.Context(), key)
			if err != nil {
				writeAPIError(w, r, log, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), operatorKeyCtx{}, k)))
		})
	}
}

// operatorKeyCheck says whether a request carries a live operator API key
// (for /readyz's detail).
func operatorKeyCheck(svc *tenants.Service) func(*http.Request) bool {
	return func(r *http.Request) bool {
		key := bearerToken(r)
		if key == "" {
			return false
		}
		_, err := svc.AuthenticateOperatorKey(r.Context(), key)
		return err == nil
	}
}

// adminWorkspaceJSON is a workspace as the operator API shows it.
type adminWorkspaceJSON struct {
	workspaceJSON
	// UsedThisMonth in a list is the count copied every minute; in one workspace it is the quota store's own.
	UsedThisMonth int64  `json:"used_this_month"`
	PackagePushes int64  `json:"package_pushes,omitempty"`
	PackagePeriod string `json:"package_period,omitempty"`
}

func newAdminWorkspaceJSON(ws *tenants.Workspace, used int64) adminWorkspaceJSON {
	out := adminWorkspaceJSON{workspaceJSON: NewWorkspaceJSON(ws, nil, nil, ""), UsedThisMonth: used}
	if ws.PackagePushes > 0 {
		out.PackagePushes, out.PackagePeriod = ws.PackagePushes, string(ws.PackagePeriod)
	}
	return out
}

type adminListJSON struct {
	Workspaces []adminWorkspaceJSON `json:"workspaces"`
	// Next is the after= of the following page, empty on the last page.
	Next        string `json:"next"`
	Total       int    `json:"total"`
	TotalCapped bool   `json:"total_capped"`
}

func boolParam(v string) bool { return v == "1" || v == "true" || v == "yes" }

func handleAdminListWorkspaces(svc *tenants.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		q := tenants.WorkspaceQuery{Search: v.Get("q"), Plan: tenants.Plan(v.Get("plan")), Status: tenants.Status(v.Get("status")),
			NearLimit: boolParam(v.Get("near_limit")), TermsPending: boolParam(v.Get("terms_pending")),
			Sort: tenants.WorkspaceSort(v.Get("sort")), After: v.Get("after")}
		if s := v.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				writeAPIError(w, r, log, tenants.FieldError("limit", "must be a number of rows, got %q", s))
				return
			}
			q.Limit = n
		}
		page, err := svc.FindWorkspaces(r.Context(), q)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		out := adminListJSON{Workspaces: make([]adminWorkspaceJSON, len(page.Workspaces)), Next: page.Next,
			Total: page.Total, TotalCapped: page.TotalCapped}
		for i := range page.Workspaces {
			out.Workspaces[i] = newAdminWorkspaceJSON(&page.Workspaces[i].Workspace, page.Workspaces[i].Used)
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// adminWorkspaceParam reads {id}; a malformed id is 404 like an unknown one.
func adminWorkspaceParam(r *http.Request) (string, error) {
	id := chi.URLParam(r, "id")
	if !tenants.ValidWorkspaceID(id) {
		return "", tenants.Errorf(tenants.CodeNotFound, "workspace %q not found in this region", tenants.RedactTokens(id))
	}
	return id, nil
}

type adminConsentJSON struct {
	TermsVersion string    `json:"terms_version"`
	AcceptedBy   string    `json:"accepted_by"`
	AcceptedIP   string    `json:"accepted_ip"`
	AcceptedAt   time.Time `json:"accepted_at"`
}

type adminOwnerJSON struct {
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"created_at"`
}

type adminShowJSON struct {
	adminWorkspaceJSON
	Period   tenants.Period     `json:"period"`
	Terms    *workspaceTerms    `json:"terms"`
	Consents []adminConsentJSON `json:"consents"`
	Owners   []adminOwnerJSON   `json:"owners"`
}

// OwnerLister lists a workspace's owner accounts for the operator API.
type OwnerLister interface {
	OwnersOf(ctx context.Context, workspaceID string) ([]tenants.OwnerAccount, error)
}

func handleAdminShowWorkspace(svc *tenants.Service, quotas tenants.QuotaStore, owners OwnerLister, now func() time.Time, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id, err := adminWorkspaceParam(r)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		p, err := svc.PrincipalOf(ctx, id)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		period := tenants.PeriodOf(now())
		u, err := quotas.Usage(ctx, id, period)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		st, err := svc.TermsState(ctx, p)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		consents, err := svc.Consents(ctx, id)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		full := NewWorkspaceJSON(&p.Workspace, nil, &st, "")
		out := adminShowJSON{adminWorkspaceJSON: newAdminWorkspaceJSON(&p.Workspace, u.Used), Period: period, Terms: full.Terms,
			Consents: make([]adminConsentJSON, len(consents)), Owners: []adminOwnerJSON{}}
		out.Terms.Action = ""
		for i, c := range consents {
			out.Consents[i] = adminConsentJSON{TermsVersion: c.TermsVersion, AcceptedBy: c.AcceptedBy, AcceptedIP: c.AcceptedIP, AcceptedAt: c.AcceptedAt}
		}
		if owners != nil {
			list, err := owners.OwnersOf(ctx, id)
			if err != nil {
				writeAPIError(w, r, log, err)
				return
			}
			for _, o := range list {
				out.Owners = append(out.Owners, adminOwnerJSON{Email: o.Email, CreatedAt: o.CreatedAt})
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
}

func handleAdminSetStatus(svc *tenants.Service, st tenants.Status, log *slog.Logger) http.Handler {
	action := "workspace.suspend"
	if st == tenants.StatusActive {
		action = "workspace.resume"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := adminWorkspaceParam(r)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		if err := decodeStrict(r, &struct{}{}, true); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		ws, err := svc.UpdateBy(r.Context(), id, apiActor(r), action, tenants.WorkspaceChange{Status: &st})
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, newAdminWorkspaceJSON(ws, 0))
	})
}

type adminPlanRequest struct {
	Plan tenants.Plan `json:"plan"`
	// MonthlyLimit is an enterprise workspace's own limit; null or absent is the plan's.
	MonthlyLimit *int64 `json:"monthly_limit"`
}

func handleAdminSetPlan(svc *tenants.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := adminWorkspaceParam(r)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		var req adminPlanRequest
		if err := decodeStrict(r, &req, false); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		if req.Plan == "" {
			writeAPIError(w, r, log, tenants.FieldError("plan", "is required: free, pro or enterprise"))
			return
		}
		limit := req.MonthlyLimit
		ws, err := svc.UpdateBy(r.Context(), id, apiActor(r), "workspace.set_plan", tenants.WorkspaceChange{Plan: &req.Plan, QuotaLimit: &limit})
		if err != nil {
			if e := tenants.AsError(err); e.Field == "limit" {
				e.Field = "monthly_limit"
			}
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, newAdminWorkspaceJSON(ws, 0))
	})
}

func handleAdminRotateToken(svc *tenants.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := adminWorkspaceParam(r)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		var req rotateRequest
		if err := decodeStrict(r, &req, true); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		if req.GraceSeconds < 0 || req.GraceSeconds > 86400 {
			writeAPIError(w, r, log, tenants.FieldError("grace_seconds", "must be between 0 and 86400, got %d", req.GraceSeconds))
			return
		}
		grace := time.Duration(req.GraceSeconds) * time.Second
		token, err := svc.RotateTokenBy(r.Context(), id, apiActor(r), grace)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, rotateJSON{Token: token, PushURLs: svc.PushURLs(token), OldTokenValidUntil: time.Now().UTC().Add(grace)})
	})
}

type adminPushesRequest struct {
	Pushes int64  `json:"pushes"`
	Note   string `json:"note"`
}

func handleAdminAddPushes(svc *tenants.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := adminWorkspaceParam(r)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		var req adminPushesRequest
		if err := decodeStrict(r, &req, false); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		ws, err := svc.GrantPushes(r.Context(), id, apiActor(r), req.Pushes, req.Note)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, newAdminWorkspaceJSON(ws, 0))
	})
}

type auditEntryJSON struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Source string    `json:"source"`
	Action string    `json:"action"`
	Detail string    `json:"detail"`
}

func handleAdminAudit(svc *tenants.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := adminWorkspaceParam(r)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		limit := 100
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 1000 {
				writeAPIError(w, r, log, tenants.FieldError("limit", "must be between 1 and 1000, got %q", s))
				return
			}
			limit = n
		}
		if _, err := svc.Workspace(r.Context(), id); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		entries, err := svc.AuditLog(r.Context(), id, limit)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		out := struct {
			Entries []auditEntryJSON `json:"entries"`
		}{Entries: make([]auditEntryJSON, len(entries))}
		for i, e := range entries {
			out.Entries[i] = auditEntryJSON{At: e.CreatedAt, Actor: e.Actor, Source: e.Source, Action: e.Action, Detail: e.Detail}
		}
		writeJSON(w, http.StatusOK, out)
	})
}
