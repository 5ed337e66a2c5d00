package airlock

import (
	"errors"
	"fmt"
)

// Error codes. The HTTP edge maps each to a status; other edges to their own.
const (
	ECONFLICT     = "conflict"            // the thing exists, or was already used
	EINTERNAL     = "internal"            // a bug or an unexpected failure
	EINVALID      = "invalid"             // bad input
	ENOTFOUND     = "not_found"           // no such thing
	EUNAUTHORIZED = "unauthorized"        // no valid session or ceremony
	EFORBIDDEN    = "forbidden"           // authenticated, but not allowed
	EEXPIRED      = "expired"             // too old: token, ceremony, session
	ERATELIMIT    = "rate_limited"        // too many attempts
	EUNAVAILABLE  = "unavailable"         // a dependency (the store) is down
	EFRESHAUTH    = "fresh_auth_required" // needs a recent user-verified passkey use
)

// Error is a domain error: a machine-readable code and a message safe to show
// to the client. Err, if set, is the internal cause and is never shown.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("airlock %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("airlock %s: %s", e.Code, e.Message)
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with code and message whose cause is err.
func Wrap(code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err: the *Error's message,
// or "internal error" for anything else.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
