package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// addRoutes is the map of the HTTP surface: every path, its method and the
// middleware around it.
func addRoutes(d Deps, m *httpMetrics) http.Handler {
	r := chi.NewRouter()
	r.Use(recoverPanics(d.Log), requestID, m.instrument, limitBody(maxBodyBytes))

	r.Method(http.MethodGet, "/healthz", handleHealthz())
	r.Method(http.MethodGet, "/readyz", handleReadyz(d.Ready, d.Log))
	r.Method(http.MethodGet, "/version", handleVersion(d.Version))
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{Registry: d.Registry}))

	r.NotFound(handleNotFound())
	r.MethodNotAllowed(handleMethodNotAllowed())
	return r
}
