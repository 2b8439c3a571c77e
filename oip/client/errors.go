package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is every failed call: the operation, and the server's HTTP status
// or gRPC code when it answered (zero values when it did not).
type Error struct {
	Op         string
	HTTPStatus int        // REST: the response status; 0 if no response
	GRPCCode   codes.Code // gRPC: the status code; codes.OK if not gRPC
	Message    string     // the server's error text, if any
	Err        error      // the underlying cause
}

func (e *Error) Error() string {
	switch {
	case e.HTTPStatus != 0:
		return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.HTTPStatus, e.Message)
	case e.GRPCCode != codes.OK:
		return fmt.Sprintf("%s: gRPC %s: %s", e.Op, e.GRPCCode, e.Message)
	default:
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same request may succeed later: the server
// was unreachable, overloaded, failing (5xx, 429, 408; UNAVAILABLE,
// RESOURCE_EXHAUSTED, ABORTED, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN) or the
// call timed out. A request the server rejected (4xx, INVALID_ARGUMENT,
// NOT_FOUND, ...) or a response we could not decode is not retryable.
func (e *Error) Retryable() bool {
	switch {
	case e.HTTPStatus != 0:
		return e.HTTPStatus >= 500 || e.HTTPStatus == http.StatusTooManyRequests || e.HTTPStatus == http.StatusRequestTimeout
	case e.GRPCCode != codes.OK:
		switch e.GRPCCode {
		case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.DeadlineExceeded, codes.Internal, codes.Unknown:
			return true
		}
		return false
	}
	if errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, syscall.ECONNREFUSED) || errors.Is(e.Err, syscall.ECONNRESET) {
		return true
	}
	var ne net.Error
	if errors.As(e.Err, &ne) {
		return true
	}
	var te transportError
	return errors.As(e.Err, &te)
}

// IsRetryable reports whether err (from any Client method) is worth
// retrying later.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable()
}

// transportError marks failures to reach the server or to read its answer
// (connection refused, reset, unexpected EOF).
type transportError struct{ err error }

func (t transportError) Error() string { return t.err.Error() }
func (t transportError) Unwrap() error { return t.err }

// wrap turns a transport's error into *Error, keeping an existing one.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Op == "" {
			e.Op = op
		}
		return e
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.OK {
		code := st.Code()
		if code == codes.Canceled || code == codes.DeadlineExceeded {
			// Keep the context error visible to errors.Is.
			return &Error{Op: op, GRPCCode: code, Message: st.Message(), Err: contextErr(code, err)}
		}
		return &Error{Op: op, GRPCCode: code, Message: st.Message(), Err: err}
	}
	return &Error{Op: op, Err: err}
}

func contextErr(code codes.Code, err error) error {
	if code == codes.DeadlineExceeded {
		return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	return fmt.Errorf("%w: %v", context.Canceled, err)
}
