// Package api is pushgate's HTTP surface: the push protocols, registration,
// the workspace API, probes and metrics.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/billing"
	"github.com/pushgate/pushgate/gateway"
	"github.com/pushgate/pushgate/tenants"
	"github.com/pushgate/pushgate/web"
)

// Checker is a dependency that /readyz pings.
type Checker struct {
	Name string
	Ping func(context.Context) error
	// Timeout bounds this check alone; 0 means two seconds.
	Timeout time.Duration
}

// VersionInfo is what GET /version shows.
type VersionInfo struct {
	Version string `json:"version"`
	Hash    string `json:"hash"`
	Date    string `json:"build_date,omitempty"`
}

// Deps is what the HTTP surface needs from the rest of the program.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Version  VersionInfo
	Ready    []Checker
	// Operator says whether a request carries operator credentials; such
	// requests see /readyz's detail from anywhere, not only from loopback.
	// Nil accepts a live operator API key.
	Operator func(*http.Request) bool
	// Owners lists a workspace's owner accounts for the operator API; nil lists none.
	Owners OwnerLister

	Tenants   *tenants.Service
	PublicURL string
	// RegistrationOpen allows self-service POST /api/v1/workspaces.
	RegistrationOpen bool
	// RegistrationsPerHour is the per-client-address limit of self-service registrations.
	RegistrationsPerHour int
	// TrustProxy takes the client address from the last X-Forwarded-For hop.
	TrustProxy bool
	// AuthFailuresPerMinute is the per-client-address limit of failed
	// authentications before 429 (default 60).
	AuthFailuresPerMinute int

	Apps       *gateway.Registry
	Quotas     tenants.QuotaStore
	History    UsageHistory
	RateLimits map[tenants.Plan]RateLimit
	Thresholds ThresholdRecorder
	// Deliveries buffers the delivery log; nil keeps none.
	Deliveries *tenants.DeliveryLog
	// UpgradeURL is where an over-quota error sends a workspace admin.
	UpgradeURL string
	Now        func() time.Time

	// Billing sells plans and packages through Stripe; nil when billing is not configured.
	Billing *billing.Service
	// Dashboard is the web dashboard; nil serves none.
	Dashboard *web.Dashboard
}

// NewHandler returns the whole HTTP surface of `pushgate serve`.
func NewHandler(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.RateLimits == nil {
		d.RateLimits = DefaultRateLimits()
	}
	ps := &pusher{
		tenants: d.Tenants, quotas: d.Quotas, apps: d.Apps, limits: d.RateLimits, thresholds: d.Thresholds,
		upgradeURL: d.UpgradeURL, log: d.Log, now: d.Now, metrics: newPushMetrics(d.Registry), deliveries: d.Deliveries,
		limiters: map[string]*workspaceLimiter{},
	}
	m := newHTTPMetrics(d.Registry)
	h := addRoutes(d, m, ps)
	if routes, ok := h.(chi.Routes); ok {
		m.knowRoutes(routes)
	}
	return h
}
