package sealed

import (
	"bytes"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKBytes bounds the JSON we are willing to parse as a key.
const maxJWKBytes = 4096

// ParseJWEKey turns a released secret into a symmetric JWE key. The secret
// is either the raw key (16, 24 or 32 bytes) or an oct JWK as JSON
// ({"kty":"oct","k":"<base64url>"}). A raw key of a valid AES size is taken
// as is even if it happens to start with '{', since no JWK is that short.
// The result is a new slice: the caller zeroes both it and raw.
func ParseJWEKey(raw []byte) ([]byte, error) {
	if isAESKeySize(len(raw)) {
		return bytes.Clone(raw), nil
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: %d bytes is neither an AES-128/192/256 key nor an oct JWK", ErrBadKey, len(raw))
	}
	if len(trimmed) > maxJWKBytes {
		return nil, fmt.Errorf("%w: JWK larger than %d bytes", ErrBadKey, maxJWKBytes)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(trimmed, &jwk); err != nil {
		return nil, fmt.Errorf("%w: parse JWK: %v", ErrBadKey, err)
	}
	k, ok := jwk.Key.([]byte)
	if !ok {
		return nil, fmt.Errorf("%w: JWK is not of kty oct (symmetric)", ErrBadKey)
	}
	if !isAESKeySize(len(k)) {
		Zero(k)
		return nil, fmt.Errorf("%w: oct JWK holds %d bytes, want 16, 24 or 32", ErrBadKey, len(k))
	}
	return k, nil
}

func isAESKeySize(n int) bool { return n == 16 || n == 24 || n == 32 }
