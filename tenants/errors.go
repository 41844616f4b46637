// Package tenants holds pushgate's domain: workspaces, tokens, regions, terms
// consent, plans and quotas, and the interfaces the rest of the program uses.
package tenants

import (
	"errors"
	"fmt"
)

// Code classifies an error so that each protocol can map it to its own status.
type Code string

// The error codes every protocol mapper knows.
const (
	CodeInvalid       Code = "invalid"        // the request is malformed; fix it
	CodeUnauthorized  Code = "unauthorized"   // missing or wrong credentials
	CodeForbidden     Code = "forbidden"      // authenticated, but not allowed (suspended, terms)
	CodeNotFound      Code = "not_found"      // no such thing in this workspace
	CodeConflict      Code = "conflict"       // the request contradicts current state
	CodeQuotaExceeded Code = "quota_exceeded" // the monthly quota is used up
	CodeRateLimited   Code = "rate_limited"   // too many requests right now
	CodeMisdirected   Code = "misdirected"    // the workspace lives in another region
	CodeUnavailable   Code = "unavailable"    // a dependency is down; retry later
	CodeUndeliverable Code = "undeliverable"  // the provider refused the push for good, or it cannot be built
	CodeInternal      Code = "internal"       // our bug or an unexpected failure
)

// Error is pushgate's one error type: a code, a message a person can act on,
// and an optional cause that is logged but never shown to clients.
type Error struct {
	Code    Code
	Message string
	// Field names the request field at fault, when there is one.
	Field string
	// Reason is a stable machine-readable reason within the code (e.g. "terms_not_accepted").
	Reason string
	// RetryAfterSeconds is set for quota and rate-limit errors.
	RetryAfterSeconds int
	// RegionURL is set for misdirected errors: where the workspace lives.
	RegionURL string
	Err       error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an invalid-input error naming the field at fault.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected failure; its message to clients stays generic.
func Internal(err error, what string) *Error {
	return &Error{Code: CodeInternal, Message: "internal error while " + what, Err: err}
}

// ErrorCode returns the code of err, or CodeInternal for errors of other types.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// AsError returns err as an *Error, wrapping unknown errors as internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err, "handling the request")
}
