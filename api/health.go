package api

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/pushgate/pushgate/tenants"
)

// handleHealthz answers as long as the process serves HTTP; it has no dependencies.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz pings every dependency; a replica that cannot reach one is
// taken out of the load balancer until it can.
func handleReadyz(checks []Checker, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status := http.StatusOK
		result := map[string]string{}
		for _, c := range checks {
			if err := c.Ping(ctx); err != nil {
				status = http.StatusServiceUnavailable
				result[c.Name] = "unreachable: " + err.Error()
				log.Warn("readiness check failed", "dependency", c.Name, "err", err)
				continue
			}
			result[c.Name] = "ok"
		}
		body := map[string]any{"status": "ok", "checks": result}
		if status != http.StatusOK {
			body["status"] = "unavailable"
		}
		writeJSON(w, status, body)
	})
}

func handleVersion(v VersionInfo) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, v)
	})
}

func handleNotFound() http.HandlerFunc {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint: " + r.Method + " " + tenants.RedactTokens(r.URL.Path)})
	})
}

func handleMethodNotAllowed() http.HandlerFunc {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method " + r.Method + " is not allowed here"})
	})
}

//go:embed terms.txt
var defaultTerms string

// handleTermsPage serves the built-in terms text at the default terms_url.
func handleTermsPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(defaultTerms))
	})
}
