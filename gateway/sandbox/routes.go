package sandbox

import (
	"encoding/json"
	"net/http"
)

// routes lists every path the sandbox serves.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/3/device/", s.handleAPNs)           // APNs; method and HTTP/2 checked inside, like Apple
	mux.HandleFunc("/v1/projects/", s.handleFCM)         // FCM HTTP v1: POST /v1/projects/{project}/messages:send
	mux.HandleFunc("POST /token", s.handleToken)         // OAuth 2 service-account JWT grant
	mux.HandleFunc("GET /sandbox/stats", s.handleStats)  // counters as JSON
	mux.HandleFunc("GET /sandbox/ca.pem", s.handleCA)    // the CA clients must trust
	mux.HandleFunc("POST /sandbox/reset", s.handleReset) // zero the counters
	mux.HandleFunc("POST /sandbox/expire-provider-tokens", s.handleControl(s.ExpireProviderTokens))
	mux.HandleFunc("POST /sandbox/revoke-access-tokens", s.handleControl(s.RevokeAccessTokens))
	return mux
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s.Stats())
}

func (s *Server) handleCA(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(s.ca.certPEM)
}

func (s *Server) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.ResetStats()
	w.WriteHeader(http.StatusNoContent)
}

// handleControl runs a credential control, for tests driving a sandbox in another process.
func (s *Server) handleControl(control func()) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		control()
		w.WriteHeader(http.StatusNoContent)
	}
}
