package sealed

import "errors"

// Errors callers can tell apart with errors.Is. Every one of them means the
// model must not be served.
var (
	// ErrUnsupported: a header, algorithm or cipher Veil does not accept.
	ErrUnsupported = errors.New("unsupported sealed format")
	// ErrMalformed: the file does not parse as the format it claims.
	ErrMalformed = errors.New("malformed sealed file")
	// ErrBadKey: the key is unusable for this file (wrong size or shape).
	ErrBadKey = errors.New("unusable key")
	// ErrDecrypt: authentication or padding failed (wrong key or tampered).
	ErrDecrypt = errors.New("decryption failed: wrong key or tampered file")
	// ErrNotModel: decryption produced something that is not an ONNX model;
	// for unauthenticated formats this is how a wrong key shows up.
	ErrNotModel = errors.New("decrypted bytes are not an ONNX model")
	// ErrTooLarge: the sealed file is over the size limit.
	ErrTooLarge = errors.New("sealed file too large")
)
