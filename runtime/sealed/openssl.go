package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// OpenSSLCipher is the `openssl enc` cipher a file was made with; the file
// itself does not record it.
type OpenSSLCipher int

const (
	// OpenSSLAuto tries AES-256-CBC, then AES-256-CFB, keeping the first
	// result the plaintext check accepts.
	OpenSSLAuto OpenSSLCipher = iota
	// OpenSSLCBC is `-aes-256-cbc` (PKCS#7 padding).
	OpenSSLCBC
	// OpenSSLCFB is `-aes-256-cfb` (CFB-128, no padding).
	OpenSSLCFB
)

func (c OpenSSLCipher) String() string {
	switch c {
	case OpenSSLCBC:
		return "aes-256-cbc"
	case OpenSSLCFB:
		return "aes-256-cfb"
	default:
		return "auto"
	}
}

// ParseOpenSSLCipher reads "auto", "aes-256-cbc"/"cbc" or "aes-256-cfb"/"cfb".
func ParseOpenSSLCipher(s string) (OpenSSLCipher, error) {
	switch s {
	case "", "auto":
		return OpenSSLAuto, nil
	case "cbc", "aes-256-cbc":
		return OpenSSLCBC, nil
	case "cfb", "aes-256-cfb":
		return OpenSSLCFB, nil
	}
	return OpenSSLAuto, fmt.Errorf("%w: openssl cipher %q (want auto, aes-256-cbc or aes-256-cfb)", ErrUnsupported, s)
}

// openssl `enc -pbkdf2` defaults (OpenSSL 1.1.1 and 3.x): PBKDF2-HMAC-SHA256,
// 10000 iterations, 8-byte salt, deriving the AES-256 key and the IV at once.
const (
	opensslSaltLen    = 8
	opensslIterations = 10000
	opensslKeyLen     = 32
	opensslIVLen      = aes.BlockSize
	// kfileBufSize is the size of `openssl enc`'s static buffer for -kfile:
	// BIO_gets reads at most kfileBufSize-1 bytes of the first line.
	kfileBufSize = 128
)

// KFilePassphrase applies `openssl enc -kfile`'s rule to a key file's
// content: the first line (fgets into a 128-byte buffer, so at most 127
// bytes), cut at the first NUL byte (C string), with trailing CR/LF
// stripped. Like openssl it refuses a passphrase that ends up empty or a
// single character: openssl's stripping loop never looks at the first byte
// and reports "zero length password" for both. The result aliases kfile;
// zero kfile when done.
func KFilePassphrase(kfile []byte) ([]byte, error) {
	line := kfile[:min(len(kfile), kfileBufSize-1)]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i+1]
	}
	if nul := bytes.IndexByte(line, 0); nul >= 0 {
		line = line[:nul]
	}
	if len(line) == 0 {
		return nil, fmt.Errorf("%w: openssl -kfile key is empty", ErrBadKey)
	}
	i := len(line) - 1
	for i > 0 && (line[i] == '\r' || line[i] == '\n') {
		i--
	}
	// openssl refuses when its index ends at 0, whatever that byte is.
	if i <= 0 {
		return nil, fmt.Errorf("%w: openssl -kfile passphrase is shorter than 2 bytes (openssl refuses it too)", ErrBadKey)
	}
	return line[:i+1], nil
}

// opensslKeyIV derives openssl's key and IV from passphrase and salt; the
// caller zeroes the result.
func opensslKeyIV(pass, salt []byte) ([]byte, error) {
	// crypto/pbkdf2 takes the password as a string, an immutable copy we
	// cannot wipe; the derived key below is ours to zero.
	kiv, err := pbkdf2.Key(sha256.New, string(pass), salt, opensslIterations, opensslKeyLen+opensslIVLen)
	if err != nil {
		return nil, fmt.Errorf("derive openssl key: %w", err)
	}
	return kiv, nil
}

// OpenOpenSSL decrypts an `openssl enc -pbkdf2 -kfile` file. kfile is the
// key file's content as released by the KBS. Because CBC and CFB are not
// authenticated, check must accept the plaintext (for models: CheckONNX);
// a nil check is refused rather than serving unverified bytes.
func OpenOpenSSL(data, kfile []byte, c OpenSSLCipher, check func([]byte) error) ([]byte, error) {
	if check == nil {
		return nil, errors.New("openssl format needs a plaintext check: it is not authenticated")
	}
	if !bytes.HasPrefix(data, []byte(opensslMagic)) || len(data) < len(opensslMagic)+opensslSaltLen {
		return nil, fmt.Errorf("%w: no %q header with an 8-byte salt", ErrMalformed, opensslMagic)
	}
	salt := data[len(opensslMagic) : len(opensslMagic)+opensslSaltLen]
	body := data[len(opensslMagic)+opensslSaltLen:]
	pass, err := KFilePassphrase(kfile)
	if err != nil {
		return nil, err
	}
	kiv, err := opensslKeyIV(pass, salt)
	if err != nil {
		return nil, err
	}
	defer Zero(kiv)
	key, iv := kiv[:opensslKeyLen], kiv[opensslKeyLen:]

	ciphers := []OpenSSLCipher{c}
	if c == OpenSSLAuto {
		ciphers = []OpenSSLCipher{OpenSSLCBC, OpenSSLCFB}
	}
	var errs []error
	for _, try := range ciphers {
		plain, err := decryptOpenSSLBody(body, key, iv, try)
		if err == nil {
			if err = check(plain); err == nil {
				return plain, nil
			}
			Zero(plain)
		}
		errs = append(errs, fmt.Errorf("%s: %w", try, err))
	}
	return nil, fmt.Errorf("openssl file: %w", errors.Join(errs...))
}

func decryptOpenSSLBody(body, key, iv []byte, c OpenSSLCipher) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	switch c {
	case OpenSSLCBC:
		if len(body) == 0 || len(body)%aes.BlockSize != 0 {
			return nil, fmt.Errorf("%w: CBC ciphertext of %d bytes is not whole blocks", ErrMalformed, len(body))
		}
		plain := make([]byte, len(body))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, body)
		n, err := pkcs7Unpad(plain)
		if err != nil {
			Zero(plain)
			return nil, err
		}
		Zero(plain[n:])
		return plain[:n:n], nil
	case OpenSSLCFB:
		plain := make([]byte, len(body))
		//lint:ignore SA1019 CFB is deprecated for being unauthenticated; the caller's plaintext check stands in for that, and openssl files need it.
		cipher.NewCFBDecrypter(block, iv).XORKeyStream(plain, body)
		return plain, nil
	}
	return nil, fmt.Errorf("%w: openssl cipher %v", ErrUnsupported, c)
}

// pkcs7Unpad returns the unpadded length, checking every padding byte
// without branching on their values.
func pkcs7Unpad(b []byte) (int, error) {
	pad := int(b[len(b)-1])
	if pad == 0 || pad > aes.BlockSize {
		return 0, fmt.Errorf("%w: bad CBC padding", ErrDecrypt)
	}
	good := 1
	for _, v := range b[len(b)-pad:] {
		good &= subtle.ConstantTimeByteEq(v, byte(pad))
	}
	if good != 1 {
		return 0, fmt.Errorf("%w: bad CBC padding", ErrDecrypt)
	}
	return len(b) - pad, nil
}
