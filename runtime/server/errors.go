package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"

	"github.com/veil-ai/veil/oip"
)

// Error classes the handlers map to HTTP and gRPC codes.
var (
	errNotFound = errors.New("not found")
	errNotReady = errors.New("not ready")
	errTooLarge = errors.New("request too large")
)

// classified is an error whose message reads well on its own (no
// "not found:" prefix) but still unwraps to its class.
type classified struct {
	class error
	msg   string
}

func (e *classified) Error() string { return e.msg }
func (e *classified) Unwrap() error { return e.class }

func notFoundf(format string, args ...any) error {
	return &classified{class: errNotFound, msg: fmt.Sprintf(format, args...)}
}

func notReadyf(format string, args ...any) error {
	return &classified{class: errNotReady, msg: fmt.Sprintf(format, args...)}
}

func tooLargef(format string, args ...any) error {
	return &classified{class: errTooLarge, msg: fmt.Sprintf(format, args...)}
}

// classify maps an error to its HTTP status and gRPC code.
func classify(err error) (int, codes.Code) {
	var maxBytes *http.MaxBytesError
	switch {
	case oip.IsInvalid(err):
		return http.StatusBadRequest, codes.InvalidArgument
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, codes.NotFound
	case errors.Is(err, errNotReady):
		return http.StatusServiceUnavailable, codes.Unavailable
	case errors.Is(err, oip.ErrUnsupported):
		return http.StatusNotImplemented, codes.Unimplemented
	case errors.Is(err, errTooLarge), errors.As(err, &maxBytes):
		return http.StatusRequestEntityTooLarge, codes.ResourceExhausted
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, codes.Canceled
	}
	return http.StatusInternalServerError, codes.Internal
}

// clientFault reports errors whose message may quote the client's data:
// they go back to the client but never into logs.
func clientFault(status int) bool { return status >= 400 && status < 500 }
