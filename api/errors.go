package api

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/pushgate/pushgate/tenants"
)

// statusClientClosed is recorded for a request whose client went away before
// the answer (nginx's 499): not an error of the server.
const statusClientClosed = 499

// apiStatus maps an error code to the HTTP status of the JSON APIs
// (registration, workspace, terms). The push protocols have their own mappers.
func apiStatus(code tenants.Code) int {
	switch code {
	case tenants.CodeInvalid:
		return http.StatusBadRequest
	case tenants.CodeUnauthorized:
		return http.StatusUnauthorized
	case tenants.CodeForbidden:
		return http.StatusForbidden
	case tenants.CodeNotFound:
		return http.StatusNotFound
	case tenants.CodeConflict:
		return http.StatusConflict
	case tenants.CodeQuotaExceeded, tenants.CodeRateLimited:
		return http.StatusTooManyRequests
	case tenants.CodeMisdirected:
		return http.StatusMisdirectedRequest
	case tenants.CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// apiError is the body of every JSON API error.
type apiError struct {
	Error     string `json:"error"`
	Code      string `json:"code"`
	Reason    string `json:"reason,omitempty"`
	Field     string `json:"field,omitempty"`
	RegionURL string `json:"region_url,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// writeAPIError is the one place the JSON APIs turn an error into a
// response; only internal errors are logged as errors.
func writeAPIError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := tenants.AsError(err)
	status := apiStatus(e.Code)
	if e.Reason == "too_large" {
		status = http.StatusRequestEntityTooLarge
	}
	msg := e.Message
	if e.Code == tenants.CodeInternal {
		log.Error("request failed", "request_id", RequestID(r.Context()), "route", routePattern(r), "err", err)
		msg = "internal error; quote request id " + RequestID(r.Context()) + " to support"
	}
	if e.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds))
	}
	writeJSON(w, status, apiError{Error: msg, Code: string(e.Code), Reason: e.Reason, Field: e.Field,
		RegionURL: e.RegionURL, RequestID: RequestID(r.Context())})
}
