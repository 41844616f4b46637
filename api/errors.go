package api

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"

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
	if clientGone(r, err) {
		log.Debug("client went away before the answer", "request_id", RequestID(r.Context()), "route", routePattern(r))
		w.WriteHeader(statusClientClosed) // for the metrics: nobody reads it
		return
	}
	e := tenants.AsError(err)
	if e.Code == tenants.CodeInternal && dependencyDown(err) {
		log.Warn("a dependency is unreachable", "request_id", RequestID(r.Context()), "route", routePattern(r), "err", err)
		e = &tenants.Error{Code: tenants.CodeUnavailable, Reason: "dependency_unavailable", RetryAfterSeconds: 5,
			Message: "the gateway cannot reach its storage right now; retry in a few seconds", Err: err}
	}
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

// clientGone reports whether err is only the consequence of the client
// closing the connection (which cancels the request's context): not an
// error of the server, so not logged as one. The push protocols' mappers
// can use it too.
func clientGone(r *http.Request, err error) bool {
	return errors.Is(r.Context().Err(), context.Canceled) && errors.Is(err, context.Canceled)
}

// dependencyDown reports whether an internal error is a storage backend that
// cannot be reached (refused, reset or timed-out connections): the request
// may succeed on a retry, so it is a 503, not a 500.
func dependencyDown(err error) bool {
	var netErr *net.OpError
	return errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
