package sealed

import (
	"bytes"
	"path/filepath"
	"strings"
)

// Format is how a model file's bytes are protected.
type Format int

const (
	// FormatPlain is an unencrypted file.
	FormatPlain Format = iota
	// FormatJWE is a JWE compact serialization (AES-GCM, authenticated).
	FormatJWE
	// FormatOpenSSL is an `openssl enc -pbkdf2` file (unauthenticated).
	FormatOpenSSL
)

func (f Format) String() string {
	switch f {
	case FormatJWE:
		return "jwe"
	case FormatOpenSSL:
		return "openssl"
	default:
		return "plain"
	}
}

// jweMagic is base64url of `{"` — every JWE compact header starts with it.
const jweMagic = "eyJ"

// opensslMagic starts every salted `openssl enc` file.
const opensslMagic = "Salted__"

// Detect tells the format from content alone, so that a sealed file is
// never mistaken for a model just because of its name.
func Detect(content []byte) Format {
	switch {
	case bytes.HasPrefix(content, []byte(opensslMagic)):
		return FormatOpenSSL
	case bytes.HasPrefix(content, []byte(jweMagic)):
		return FormatJWE
	default:
		return FormatPlain
	}
}

// ModelFileName is the plaintext model file a version folder holds.
const ModelFileName = "model.onnx"

// Sealed model file names written by `veil seal` (JWE) and by the CoCo demo
// scripts (openssl); both stand for ModelFileName.
const (
	JWEModelFileName     = ModelFileName + ".jwe"
	OpenSSLModelFileName = ModelFileName + ".enc"
)

// IsModelFileName reports whether a file name (any directory part is
// ignored) stands for the model: model.onnx, model.onnx.jwe or model.onnx.enc.
func IsModelFileName(name string) bool {
	switch strings.ToLower(filepath.Base(name)) {
	case ModelFileName, JWEModelFileName, OpenSSLModelFileName:
		return true
	}
	return false
}

// Zero overwrites secret bytes in place. Go may still hold copies it made
// internally (the GC can move nothing here, but libraries clone keys), so
// this is a best effort that shortens how long the secret stays in memory.
func Zero(secret []byte) {
	clear(secret)
}
