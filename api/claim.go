package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

// claimJSON is the answer of POST /api/v1/workspace/claim.
type claimJSON struct {
	ClaimURL  string    `json:"claim_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// handleClaimLink issues a new claim link for the authenticated workspace
// (the one of its registration answer expired or got lost); earlier links
// stop working. A workspace that has an owner answers 409.
func handleClaimLink(svc *tenants.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws := principalFrom(r.Context()).Workspace
		claim, err := svc.IssueClaimLink(r.Context(), ws.ID, "workspace:"+ws.ID)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusCreated, claimJSON{ClaimURL: claim.URL, ExpiresAt: claim.ExpiresAt})
	})
}
