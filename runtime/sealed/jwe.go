package sealed

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// JWE algorithms accepted for sealed models: symmetric only, since the key
// comes from the KBS as a shared secret.
var (
	jweKeyAlgs = []jose.KeyAlgorithm{jose.DIRECT, jose.A128KW, jose.A192KW, jose.A256KW}
	jweEncs    = []jose.ContentEncryption{jose.A128GCM, jose.A192GCM, jose.A256GCM}
)

// kekSize is the key-encryption key size each key-wrap alg needs. go-jose
// would accept any AES size for any KW alg; we hold the header to its word.
var kekSize = map[jose.KeyAlgorithm]int{jose.A128KW: 16, jose.A192KW: 24, jose.A256KW: 32}

// cekSize is the content key size each enc needs (the key itself for dir).
var cekSize = map[jose.ContentEncryption]int{jose.A128GCM: 16, jose.A192GCM: 24, jose.A256GCM: 32}

// jweHeader is the part of the protected header we check before handing the
// object to go-jose.
type jweHeader struct {
	Alg jose.KeyAlgorithm
	Enc jose.ContentEncryption
}

// parseJWEHeader decodes the protected header strictly: zip is refused
// (decompression bombs, and KServe never writes it) and so is crit (we
// understand no extensions, and ignoring one would be unsafe).
func parseJWEHeader(compact string) (jweHeader, error) {
	first, _, ok := bytes.Cut([]byte(compact), []byte("."))
	if !ok {
		return jweHeader{}, fmt.Errorf("%w: not a JWE compact serialization", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(string(first))
	if err != nil {
		return jweHeader{}, fmt.Errorf("%w: protected header is not base64url: %v", ErrMalformed, err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return jweHeader{}, fmt.Errorf("%w: protected header is not a JSON object: %v", ErrMalformed, err)
	}
	for _, refused := range []string{"zip", "crit"} {
		if _, ok := fields[refused]; ok {
			return jweHeader{}, fmt.Errorf("%w: JWE header %q is refused", ErrUnsupported, refused)
		}
	}
	var h struct {
		Alg string `json:"alg"`
		Enc string `json:"enc"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return jweHeader{}, fmt.Errorf("%w: protected header alg/enc: %v", ErrMalformed, err)
	}
	alg, enc := jose.KeyAlgorithm(h.Alg), jose.ContentEncryption(h.Enc)
	if alg != jose.DIRECT && kekSize[alg] == 0 {
		return jweHeader{}, fmt.Errorf("%w: JWE alg %q (want dir, A128KW, A192KW or A256KW)", ErrUnsupported, h.Alg)
	}
	if cekSize[enc] == 0 {
		return jweHeader{}, fmt.Errorf("%w: JWE enc %q (want A128GCM, A192GCM or A256GCM)", ErrUnsupported, h.Enc)
	}
	return jweHeader{Alg: alg, Enc: enc}, nil
}

// OpenJWE decrypts a JWE compact serialization with a symmetric key (raw
// bytes, see ParseJWEKey). AES-GCM authenticates the content, so any wrong
// key or tampering yields ErrDecrypt. The caller zeroes key.
func OpenJWE(compact []byte, key []byte) ([]byte, error) {
	// Tools often end a text file with a newline; it is not part of the JWE.
	s := string(bytes.TrimRight(compact, " \t\r\n"))
	h, err := parseJWEHeader(s)
	if err != nil {
		return nil, err
	}
	want := kekSize[h.Alg]
	if h.Alg == jose.DIRECT {
		want = cekSize[h.Enc]
	}
	if len(key) != want {
		return nil, fmt.Errorf("%w: JWE %s/%s needs a %d-byte key, got %d bytes", ErrBadKey, h.Alg, h.Enc, want, len(key))
	}
	obj, err := jose.ParseEncryptedCompact(s, jweKeyAlgs, jweEncs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	plain, err := obj.Decrypt(key)
	if err != nil {
		return nil, fmt.Errorf("%w (JWE %s/%s): %v", ErrDecrypt, h.Alg, h.Enc, err)
	}
	return plain, nil
}

// SealJWE encrypts plaintext as a JWE compact serialization with alg (dir or
// AxxxKW) and enc (AxxxGCM). key must have the size alg (or enc, for dir)
// needs. The caller zeroes key.
func SealJWE(plaintext, key []byte, alg jose.KeyAlgorithm, enc jose.ContentEncryption) ([]byte, error) {
	want := kekSize[alg]
	if alg == jose.DIRECT {
		want = cekSize[enc]
	}
	if want == 0 || cekSize[enc] == 0 {
		return nil, fmt.Errorf("%w: JWE %s/%s", ErrUnsupported, alg, enc)
	}
	if len(key) != want {
		return nil, fmt.Errorf("%w: JWE %s/%s needs a %d-byte key, got %d bytes", ErrBadKey, alg, enc, want, len(key))
	}
	encrypter, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: key}, nil)
	if err != nil {
		return nil, fmt.Errorf("create JWE encrypter: %w", err)
	}
	obj, err := encrypter.Encrypt(plaintext)
	if err != nil {
		return nil, fmt.Errorf("JWE encrypt: %w", err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("JWE serialize: %w", err)
	}
	return []byte(out), nil
}
