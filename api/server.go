// Package api is pushgate's HTTP surface: the push protocols, registration,
// the workspace API, probes and metrics.
package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushgate/pushgate/tenants"
)

// Checker is a dependency that /readyz pings.
type Checker struct {
	Name string
	Ping func(context.Context) error
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

	Tenants   *tenants.Service
	PublicURL string
	// RegistrationOpen allows self-service POST /api/v1/workspaces.
	RegistrationOpen bool
	// RegistrationsPerHour is the per-client-address limit of self-service registrations.
	RegistrationsPerHour int
	// TrustProxy takes the client address from the last X-Forwarded-For hop.
	TrustProxy bool
}

// NewHandler returns the whole HTTP surface of `pushgate serve`.
func NewHandler(d Deps) http.Handler {
	m := newHTTPMetrics(d.Registry)
	return addRoutes(d, m)
}
