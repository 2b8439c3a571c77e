package oip

import (
	"errors"
	"fmt"
)

// ErrInvalid marks every error caused by what a client sent (bad JSON, bad
// framing, wrong datatype, shape mismatch). Servers map it to HTTP 400 and
// gRPC INVALID_ARGUMENT; anything else from a codec is a server fault.
var ErrInvalid = errors.New("invalid request")

// invalidf builds an ErrInvalid-wrapping error.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// IsInvalid reports whether err was caused by the client's data.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// ErrUnsupported marks a well-formed request the server cannot run (a
// datatype or shape its engine lacks). Servers map it to HTTP 501 and gRPC
// UNIMPLEMENTED.
var ErrUnsupported = errors.New("not supported")
