package sealed

import (
	"errors"
	"fmt"
)

// MaxSealedBytes is the default bound on a sealed model file: the JWE and
// its decoded copies all live in memory at once.
const MaxSealedBytes = 1 << 30

// OpenOptions tunes Open.
type OpenOptions struct {
	// OpenSSLCipher picks the cipher of openssl files (default auto).
	OpenSSLCipher OpenSSLCipher
	// Check accepts the plaintext; default CheckONNX. It runs for every
	// format, and is the only integrity check for openssl files.
	Check func([]byte) error
	// MaxBytes bounds the sealed input; 0 means MaxSealedBytes.
	MaxBytes int
}

// Open decrypts a sealed model whatever its format, found by content. key
// is the secret as released by the KBS: the raw key or an oct JWK for JWE,
// the -kfile content for openssl. Open never writes anything and zeroes
// the key copies it makes; the caller zeroes key and, when done with it,
// the returned plaintext.
func Open(data, key []byte, opts OpenOptions) ([]byte, error) {
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = MaxSealedBytes
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), limit)
	}
	check := opts.Check
	if check == nil {
		check = CheckONNX
	}
	switch Detect(data) {
	case FormatJWE:
		k, err := ParseJWEKey(key)
		if err != nil {
			return nil, err
		}
		defer Zero(k)
		plain, err := OpenJWE(data, k)
		if err != nil {
			return nil, err
		}
		if err := check(plain); err != nil {
			Zero(plain)
			return nil, fmt.Errorf("JWE decrypted: %w", err)
		}
		return plain, nil
	case FormatOpenSSL:
		return OpenOpenSSL(data, key, opts.OpenSSLCipher, check)
	default:
		return nil, errors.New("not a sealed file: it starts with neither \"eyJ\" (JWE) nor \"Salted__\" (openssl)")
	}
}
