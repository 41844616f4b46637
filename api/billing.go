package api

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/pushgate/pushgate/billing"
	"github.com/pushgate/pushgate/tenants"
)

// billingOff is the answer of every billing endpoint on a gateway without Stripe settings.
var billingOff = &tenants.Error{Code: tenants.CodeNotFound, Reason: "billing_not_configured",
	Message: "billing is not configured on this gateway (no Stripe settings); ask its operator to change your plan"}

type checkoutRequest struct {
	Plan tenants.Plan `json:"plan"`
}

type packageRequest struct {
	Pushes int64 `json:"pushes"`
}

// urlJSON is the answer of the Checkout, package and portal calls: where to send the customer.
type urlJSON struct {
	URL string `json:"url"`
}

// handleCheckout answers POST /api/v1/workspace/billing/checkout {"plan":"pro"}.
func handleCheckout(b *billing.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b == nil {
			writeAPIError(w, r, log, billingOff)
			return
		}
		var req checkoutRequest
		if err := decodeStrict(r, &req, false); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		url, err := b.Checkout(r.Context(), principalFrom(r.Context()).Workspace.ID, req.Plan)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, urlJSON{URL: url})
	})
}

// handleBuyPackage answers POST /api/v1/workspace/billing/package {"pushes":100000}.
func handleBuyPackage(b *billing.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b == nil {
			writeAPIError(w, r, log, billingOff)
			return
		}
		var req packageRequest
		if err := decodeStrict(r, &req, false); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		url, err := b.BuyPackage(r.Context(), principalFrom(r.Context()).Workspace.ID, req.Pushes)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, urlJSON{URL: url})
	})
}

// handlePortal answers POST /api/v1/workspace/billing/portal.
func handlePortal(b *billing.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b == nil {
			writeAPIError(w, r, log, billingOff)
			return
		}
		url, err := b.Portal(r.Context(), principalFrom(r.Context()).Workspace.ID)
		if err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, urlJSON{URL: url})
	})
}

// handleStripeWebhook answers Stripe: 200 once the event's effect is
// committed (or it is a replay or of a type billing ignores), 400 for a
// body that is not a fresh, well-signed event, and 5xx when it could not
// be applied, so that Stripe delivers it again.
func handleStripeWebhook(b *billing.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b == nil {
			writeAPIError(w, r, log, billingOff)
			return
		}
		if r.ContentLength > billing.MaxWebhookBytes {
			writeAPIError(w, r, log, tooLarge(r.ContentLength))
			return
		}
		// Read as sent: the signature covers the exact bytes.
		payload, err := io.ReadAll(r.Body)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				err = tooLarge(-1)
			} else {
				err = tenants.Errorf(tenants.CodeInvalid, "reading the request body: %v", err)
			}
			writeAPIError(w, r, log, err)
			return
		}
		if err := b.HandleWebhook(r.Context(), payload, r.Header.Get("Stripe-Signature")); err != nil {
			writeAPIError(w, r, log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"received": true})
	})
}

// billingJSON is a workspace's billing as GET /api/v1/workspace shows it.
type billingJSON struct {
	Plan tenants.Plan `json:"plan"`
	// Status is the subscription's Stripe status, or "none".
	Status           string     `json:"status"`
	CurrentPeriodEnd *time.Time `json:"current_period_end"`
	GraceUntil       *time.Time `json:"grace_until"`
	// PackagePushes are the pushes bought as packages for this month.
	PackagePushes int64 `json:"package_pushes,omitempty"`
}

func newBillingJSON(ws *tenants.Workspace) *billingJSON {
	b := &billingJSON{Plan: ws.Plan, Status: ws.Billing.Status, CurrentPeriodEnd: ws.Billing.CurrentPeriodEnd, GraceUntil: ws.Billing.GraceUntil}
	if b.Status == "" {
		b.Status = "none"
	}
	if ws.PackagePushes > 0 && ws.PackagePeriod == tenants.PeriodOf(time.Now()) {
		b.PackagePushes = ws.PackagePushes
	}
	return b
}
