package protocol

import (
	"errors"
	"fmt"
	"strings"
)

// Error classes a caller can test with errors.Is. A *ServerError matches the
// class its Trustee error type and detail map to; client-side failures wrap
// the class directly.
var (
	// ErrVersionMismatch: the KBS speaks another protocol version (a
	// configuration problem; retrying does not help).
	ErrVersionMismatch = errors.New("KBS protocol version mismatch")
	// ErrPolicyDenied: attestation succeeded but the resource policy denies
	// this resource to this TEE.
	ErrPolicyDenied = errors.New("denied by KBS resource policy")
	// ErrAttestationFailed: the KBS rejected the evidence.
	ErrAttestationFailed = errors.New("attestation rejected by the KBS")
	// ErrSessionExpired: the RCAR session expired or is unknown; a fresh
	// handshake may succeed.
	ErrSessionExpired = errors.New("KBS session expired or unknown")
	// ErrUnauthorized: no valid session or token was presented.
	ErrUnauthorized = errors.New("not authorized by the KBS")
	// ErrNotFound: the path or plugin does not exist on the KBS.
	ErrNotFound = errors.New("KBS path not found")
	// ErrKBSInternal: the KBS failed internally (Trustee also reports a
	// missing resource this way).
	ErrKBSInternal = errors.New("KBS internal error")
	// ErrBadReply: the KBS reply could not be decoded.
	ErrBadReply = errors.New("malformed KBS reply")
	// ErrDecrypt: the resource JWE did not decrypt or authenticate.
	ErrDecrypt = errors.New("resource decryption failed")
)

// ServerError is an error answered by the KBS with Trustee's error JSON.
type ServerError struct {
	Status int    // HTTP status
	Type   string // full error type URI (or empty when the body was not JSON)
	Detail string
}

// Variant is the last segment of the error type, e.g. "PolicyDeny".
func (e *ServerError) Variant() string {
	return strings.TrimPrefix(e.Type, ErrorTypePrefix)
}

func (e *ServerError) Error() string {
	v := e.Variant()
	if v == "" {
		v = "no error type"
	}
	return fmt.Sprintf("%v: KBS answered HTTP %d (%s): %s", e.Class(), e.Status, v, e.Detail)
}

// Class is the error class (one of the Err* values above) for this reply.
func (e *ServerError) Class() error {
	lower := strings.ToLower(e.Detail)
	switch e.Variant() {
	case "PolicyDeny":
		return ErrPolicyDenied
	case "AttestationError", "RcarAuthFailed", "RcarAttestFailed":
		switch {
		case strings.Contains(lower, "version mismatch"):
			return ErrVersionMismatch
		case strings.Contains(lower, "session") && (strings.Contains(lower, "expired") || strings.Contains(lower, "not found")):
			return ErrSessionExpired
		}
		return ErrAttestationFailed
	case "TokenNotFound", "JWEFailed", "TokenVerificationFailed", "TokenParseFailed", "InvalidCookie", "CookieNotFound":
		return ErrUnauthorized
	case "InvalidRequestPath", "PluginNotFound":
		return ErrNotFound
	case "PluginInternalError":
		return ErrKBSInternal
	}
	switch {
	case e.Status == 404:
		return ErrNotFound
	case e.Status == 401 || e.Status == 403:
		return ErrUnauthorized
	case e.Status >= 500:
		return ErrKBSInternal
	}
	return ErrBadReply
}

// Is lets errors.Is(err, ErrPolicyDenied) etc. match a ServerError.
func (e *ServerError) Is(target error) bool { return e.Class() == target }

// NewServerError builds the Trustee error a server should answer with.
func NewServerError(status int, variant, detail string) *ServerError {
	return &ServerError{Status: status, Type: ErrorTypePrefix + variant, Detail: detail}
}

// Info is the JSON body for e.
func (e *ServerError) Info() ErrorInformation {
	return ErrorInformation{Type: e.Type, Detail: e.Detail}
}
