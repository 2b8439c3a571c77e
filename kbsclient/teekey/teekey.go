// Package teekey holds the ephemeral TEE key pair of one attestation: its
// public half travels to the KBS inside the attested runtime data, and only
// the private half (which never leaves process memory) can open the resource
// JWE the KBS answers with.
package teekey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/go-jose/go-jose/v4"
	josecipher "github.com/go-jose/go-jose/v4/cipher"

	"github.com/veil-ai/veil/kbsclient/protocol"
)

// Algorithm is the JWE key management algorithm the TEE key is used with.
type Algorithm string

const (
	// ECDHP256 is ECDH-ES+A256KW on P-256, the guest-components default.
	ECDHP256 Algorithm = "ECDH-ES+A256KW"
	// RSAOAEP256 is RSA-OAEP-256 with a 3072-bit key.
	RSAOAEP256 Algorithm = "RSA-OAEP-256"
)

const rsaBits = 3072

// p256CoordSize is the fixed coordinate length the KBS insists on.
const p256CoordSize = 32

// Key is an ephemeral TEE key pair.
type Key struct {
	alg Algorithm
	ec  *ecdsa.PrivateKey
	rsa *rsa.PrivateKey
}

// Generate creates a fresh key for alg ("" means ECDHP256).
func Generate(alg Algorithm) (*Key, error) {
	switch alg {
	case "", ECDHP256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate P-256 TEE key: %w", err)
		}
		return &Key{alg: ECDHP256, ec: k}, nil
	case RSAOAEP256:
		k, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return nil, fmt.Errorf("generate RSA TEE key: %w", err)
		}
		return &Key{alg: RSAOAEP256, rsa: k}, nil
	default:
		return nil, fmt.Errorf("unsupported TEE key algorithm %q (want %s or %s)", alg, ECDHP256, RSAOAEP256)
	}
}

// Algorithm is the key's JWE algorithm.
func (k *Key) Algorithm() Algorithm { return k.alg }

// Public is the JWK the KBS encrypts to. EC coordinates are always 32 bytes
// (big.Int.Bytes would drop leading zeros and the KBS rejects short ones).
func (k *Key) Public() (protocol.TeePubKey, error) {
	enc := base64.RawURLEncoding
	switch k.alg {
	case ECDHP256:
		pub, err := k.ec.PublicKey.ECDH()
		if err != nil {
			return protocol.TeePubKey{}, fmt.Errorf("TEE public key: %w", err)
		}
		raw := pub.Bytes() // 0x04 ‖ X ‖ Y
		return protocol.TeePubKey{
			Kty: "EC", Crv: "P-256", Alg: string(ECDHP256),
			X: enc.EncodeToString(raw[1 : 1+p256CoordSize]),
			Y: enc.EncodeToString(raw[1+p256CoordSize:]),
		}, nil
	case RSAOAEP256:
		return protocol.TeePubKey{
			Kty: "RSA", Alg: string(RSAOAEP256),
			N: enc.EncodeToString(k.rsa.N.Bytes()),
			E: enc.EncodeToString(big.NewInt(int64(k.rsa.E)).Bytes()),
		}, nil
	}
	return protocol.TeePubKey{}, fmt.Errorf("TEE key not initialised")
}

// Decrypt opens a resource JWE in flattened JSON serialization (protocol
// ≥ 0.2.0: base64url protected header, AAD = protected header) and returns
// the plaintext. Only the key's own algorithm with A256GCM is accepted.
func (k *Key) Decrypt(body []byte) ([]byte, error) {
	if len(body) > protocol.MaxBodyBytes {
		return nil, fmt.Errorf("%w: JWE of %d bytes exceeds the limit", protocol.ErrDecrypt, len(body))
	}
	obj, err := jose.ParseEncryptedJSON(string(body),
		[]jose.KeyAlgorithm{jose.KeyAlgorithm(k.alg)},
		[]jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, fmt.Errorf("%w: parse resource JWE: %v", protocol.ErrDecrypt, err)
	}
	if err := checkProtectedHeader(body); err != nil {
		return nil, err
	}
	var priv any = k.ec
	if k.alg == RSAOAEP256 {
		priv = k.rsa
	}
	pt, err := obj.Decrypt(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrDecrypt, err)
	}
	return pt, nil
}

// checkProtectedHeader refuses "zip" (decompression is an avoidable attack
// surface; Trustee never compresses) and "crit" (no extension is understood).
func checkProtectedHeader(body []byte) error {
	var outer struct {
		Protected string `json:"protected"`
	}
	if err := json.Unmarshal(body, &outer); err != nil {
		return fmt.Errorf("%w: JWE is not a JSON object: %v", protocol.ErrDecrypt, err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(outer.Protected)
	if err != nil {
		return fmt.Errorf("%w: protected header is not base64url: %v", protocol.ErrDecrypt, err)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(raw, &hdr); err != nil {
		return fmt.Errorf("%w: protected header is not a JSON object: %v", protocol.ErrDecrypt, err)
	}
	for _, k := range []string{"zip", "crit"} {
		if _, ok := hdr[k]; ok {
			return fmt.Errorf("%w: protected header %q refused", protocol.ErrDecrypt, k)
		}
	}
	return nil
}

// Encrypt seals plaintext to a TEE public key exactly as Trustee's
// kbs/src/jwe does (flattened JSON JWE, CEK wrapped with the key's
// algorithm, A256GCM content, AAD = the base64url protected header). The
// protected header bytes are compact with sorted keys, because the Rust
// client (kbs-types) re-serialises the parsed header to compute the AAD.
// The development KBS uses it; it lives here so both halves of the JWE
// format stay together.
func Encrypt(pub protocol.TeePubKey, plaintext []byte) ([]byte, error) {
	key, _, err := publicKey(pub)
	if err != nil {
		return nil, err
	}
	cek := make([]byte, 32)
	if _, err := rand.Read(cek); err != nil {
		return nil, fmt.Errorf("JWE content key: %w", err)
	}
	defer clear(cek)
	var header []byte
	var encryptedKey []byte
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		header, encryptedKey, err = wrapECDH(k, cek)
	case *rsa.PublicKey:
		header = []byte(`{"alg":"RSA-OAEP-256","enc":"A256GCM"}`)
		encryptedKey, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, k, cek, nil)
	default:
		err = fmt.Errorf("unsupported key type %T", key)
	}
	if err != nil {
		return nil, fmt.Errorf("JWE key wrap: %w", err)
	}
	enc := base64.RawURLEncoding
	protected := enc.EncodeToString(header)
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, fmt.Errorf("JWE content cipher: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("JWE content cipher: %w", err)
	}
	iv := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(iv); err != nil {
		return nil, fmt.Errorf("JWE iv: %w", err)
	}
	sealed := gcm.Seal(nil, iv, plaintext, []byte(protected))
	ct, tag := sealed[:len(sealed)-gcm.Overhead()], sealed[len(sealed)-gcm.Overhead():]
	return json.Marshal(flattenedJWE{
		Protected:    protected,
		EncryptedKey: enc.EncodeToString(encryptedKey),
		IV:           enc.EncodeToString(iv),
		Ciphertext:   enc.EncodeToString(ct),
		Tag:          enc.EncodeToString(tag),
	})
}

// flattenedJWE is RFC 7516 §7.2.2 as kbs-types' Response serialises it.
type flattenedJWE struct {
	Protected    string `json:"protected"`
	EncryptedKey string `json:"encrypted_key"`
	IV           string `json:"iv"`
	Ciphertext   string `json:"ciphertext"`
	Tag          string `json:"tag"`
}

// ecdhHeader keeps the field order Trustee emits: alg, enc, epk{crv,kty,x,y}.
type ecdhHeader struct {
	Alg string `json:"alg"`
	Enc string `json:"enc"`
	EPK struct {
		Crv string `json:"crv"`
		Kty string `json:"kty"`
		X   string `json:"x"`
		Y   string `json:"y"`
	} `json:"epk"`
}

// wrapECDH runs ECDH-ES (Concat KDF, SHA-256, empty PartyU/VInfo) with a
// fresh ephemeral key and AES-256-KW-wraps the CEK.
func wrapECDH(recipient *ecdsa.PublicKey, cek []byte) ([]byte, []byte, error) {
	eph, err := ecdsa.GenerateKey(recipient.Curve, rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	kek := josecipher.DeriveECDHES(string(ECDHP256), nil, nil, eph, recipient, 32)
	defer clear(kek)
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, nil, err
	}
	wrapped, err := josecipher.KeyWrap(block, cek)
	if err != nil {
		return nil, nil, err
	}
	pub, err := eph.PublicKey.ECDH()
	if err != nil {
		return nil, nil, err
	}
	raw := pub.Bytes()
	var h ecdhHeader
	h.Alg, h.Enc = string(ECDHP256), "A256GCM"
	h.EPK.Crv, h.EPK.Kty = "P-256", "EC"
	h.EPK.X = base64.RawURLEncoding.EncodeToString(raw[1 : 1+p256CoordSize])
	h.EPK.Y = base64.RawURLEncoding.EncodeToString(raw[1+p256CoordSize:])
	header, err := json.Marshal(h)
	if err != nil {
		return nil, nil, err
	}
	return header, wrapped, nil
}

// publicKey turns a TeePubKey into a crypto public key, checking the shapes
// the KBS checks (fixed-length P-256 coordinates on the curve).
func publicKey(pub protocol.TeePubKey) (any, jose.KeyAlgorithm, error) {
	dec := base64.RawURLEncoding
	switch {
	case pub.Kty == "EC" && pub.Alg == string(ECDHP256):
		if pub.Crv != "P-256" {
			return nil, "", fmt.Errorf("tee-pubkey: unsupported curve %q", pub.Crv)
		}
		x, errX := dec.DecodeString(pub.X)
		y, errY := dec.DecodeString(pub.Y)
		if errX != nil || errY != nil || len(x) != p256CoordSize || len(y) != p256CoordSize {
			return nil, "", fmt.Errorf("tee-pubkey: EC coordinates must be %d-byte base64url", p256CoordSize)
		}
		raw := append(append([]byte{4}, x...), y...)
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
		if err != nil {
			return nil, "", fmt.Errorf("tee-pubkey: %w", err)
		}
		return pk, jose.ECDH_ES_A256KW, nil
	case pub.Kty == "RSA" && pub.Alg == string(RSAOAEP256):
		n, errN := dec.DecodeString(pub.N)
		e, errE := dec.DecodeString(pub.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return nil, "", fmt.Errorf("tee-pubkey: bad RSA modulus or exponent")
		}
		nn := new(big.Int).SetBytes(n)
		if nn.BitLen() < 2048 {
			return nil, "", fmt.Errorf("tee-pubkey: RSA key of %d bits is too small", nn.BitLen())
		}
		return &rsa.PublicKey{N: nn, E: int(new(big.Int).SetBytes(e).Int64())}, jose.RSA_OAEP_256, nil
	}
	return nil, "", fmt.Errorf("tee-pubkey: unsupported key kty=%q alg=%q (want EC/%s or RSA/%s)", pub.Kty, pub.Alg, ECDHP256, RSAOAEP256)
}

// ValidatePublic checks that pub is a key the KBS can encrypt to.
func ValidatePublic(pub protocol.TeePubKey) error {
	_, _, err := publicKey(pub)
	return err
}
